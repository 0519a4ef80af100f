using System.Text;

namespace SsmGen.Tasks;

/// <summary>How ListOps expressions are drawn (the Long Range Arena version: depth 10, 10 arguments, 500 to 2,000 tokens).</summary>
/// <param name="MinLength">Expressions must be longer than this many tokens.</param>
/// <param name="MaxLength">… and shorter than this many.</param>
/// <param name="MaxDepth">Deepest nesting: at this depth every node is a digit.</param>
/// <param name="MaxArguments">Most arguments of one operator (at least 2).</param>
public sealed record ListOpsOptions(int MinLength = 500, int MaxLength = 2000, int MaxDepth = 10, int MaxArguments = 10)
{
    /// <summary>Probability that a node above the deepest level is an operator rather than a digit.</summary>
    public const double OperatorProbability = 0.25;

    internal void Validate()
    {
        if (MinLength < 0 || MaxLength <= MinLength + 1)
            throw new ArgumentOutOfRangeException(nameof(MaxLength), $"Need 0 ≤ MinLength < MaxLength − 1, got {MinLength} and {MaxLength}.");
        if (MaxDepth < 1) throw new ArgumentOutOfRangeException(nameof(MaxDepth), MaxDepth, "The depth must be at least 1.");
        if (MaxArguments < 2) throw new ArgumentOutOfRangeException(nameof(MaxArguments), MaxArguments, "Operators take at least 2 arguments.");
    }
}

/// <summary>One expression: its tokens (ids of <see cref="ListOps"/>) and its value, the class 0–9.</summary>
public sealed record ListOpsExample(int[] Tokens, int Label);

/// <summary>
/// ListOps (Nangia and Bowman; the Long Range Arena version): nested prefix expressions over the digits 0–9 with the
/// operators MAX, MIN, MED (the median, truncated to an integer) and SM (the sum modulo 10), e.g.
/// <c>[MAX 2 9 [MIN 4 7 ] 0 ]</c> → 9; the task is the value, 10 classes. An expression is drawn top down: a node
/// above the deepest level is an operator with probability ¼ (with 2 to MaxArguments arguments, each a node one level
/// deeper), otherwise a digit; the root may be a digit too. Expressions outside the length window are redrawn, and
/// duplicates dropped, so the three splits share no sequence. Tokens (no brackets other than the closing one, as in
/// the benchmark's token count): 0 is padding, 1–10 the digits 0–9, 11–14 the operators, 15 the closing bracket.
/// </summary>
public static class ListOps
{
    public const int Pad = 0, FirstDigit = 1, Max = 11, Min = 12, Median = 13, SumMod = 14, Close = 15, Vocabulary = 16, Classes = 10;

    private static readonly string[] Names = ["<pad>", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "[MAX", "[MIN", "[MED", "[SM", "]"];

    /// <summary>
    /// Distinct expressions split into training, validation and test sets of the given sizes; the same seed gives the
    /// same sets. Throws when the window is so narrow that the draws stop finding new expressions.
    /// </summary>
    public static (ListOpsExample[] Train, ListOpsExample[] Validation, ListOpsExample[] Test) Generate(ListOpsOptions options, int trainCount, int validationCount, int testCount, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (trainCount < 0 || validationCount < 0 || testCount < 0) throw new ArgumentOutOfRangeException(nameof(trainCount), "Counts must not be negative.");
        int total = checked(trainCount + validationCount + testCount);
        var rng = new Rng(seed);
        var seen = new HashSet<string>();
        var all = new List<ListOpsExample>(total);
        var tokens = new List<int>();
        long draws = 0, limit = 1000L * total + 100_000;
        while (all.Count < total)
        {
            if (++draws > limit)
                throw new InvalidOperationException($"Only {all.Count:N0} distinct expressions of {options.MinLength + 1} to {options.MaxLength - 1} tokens in {limit:N0} draws; widen the window or ask for fewer.");
            tokens.Clear();
            int value = Draw(1, options, ref rng, tokens);
            if (tokens.Count <= options.MinLength || tokens.Count >= options.MaxLength) continue;
            var example = new ListOpsExample(tokens.ToArray(), value);
            if (seen.Add(ToText(example.Tokens))) all.Add(example);
        }
        return (all.GetRange(0, trainCount).ToArray(), all.GetRange(trainCount, validationCount).ToArray(), all.GetRange(trainCount + validationCount, testCount).ToArray());
    }

    /// <summary>Appends one node at <paramref name="depth"/> (1 is the root) and returns its value.</summary>
    private static int Draw(int depth, ListOpsOptions o, ref Rng rng, List<int> tokens)
    {
        bool op = depth < o.MaxDepth && rng.NextDouble() < ListOpsOptions.OperatorProbability;
        if (!op)
        {
            int digit = rng.NextInt(10);
            tokens.Add(FirstDigit + digit);
            return digit;
        }
        int count = 2 + rng.NextInt(o.MaxArguments - 1);
        int kind = Max + rng.NextInt(4);
        tokens.Add(kind);
        Span<int> args = stackalloc int[count];
        for (int i = 0; i < count; i++) args[i] = Draw(depth + 1, o, ref rng, tokens);
        tokens.Add(Close);
        return Apply(kind, args);
    }

    /// <summary>The value of an operator over its arguments (which it may reorder).</summary>
    private static int Apply(int op, Span<int> args)
    {
        switch (op)
        {
            case Max: { int m = args[0]; foreach (int a in args) m = Math.Max(m, a); return m; }
            case Min: { int m = args[0]; foreach (int a in args) m = Math.Min(m, a); return m; }
            case SumMod: { int s = 0; foreach (int a in args) s += a; return s % 10; }
            case Median:
            {
                args.Sort();
                int n = args.Length;
                return n % 2 == 1 ? args[n / 2] : (args[n / 2 - 1] + args[n / 2]) / 2; // the mean of the middle two, truncated
            }
            default: throw new ArgumentOutOfRangeException(nameof(op), op, "Not an operator token.");
        }
    }

    /// <summary>The value of a token sequence, parsed independently of how it was drawn; throws on a malformed one.</summary>
    public static int Evaluate(ReadOnlySpan<int> tokens)
    {
        var stack = new Stack<(int Op, List<int> Args)>();
        int? result = null;
        foreach (int t in tokens)
        {
            if (t == Pad) continue;
            if (result is not null) throw new FormatException("Tokens after the end of the expression.");
            if (t is >= FirstDigit and < FirstDigit + 10)
            {
                if (stack.Count == 0) result = t - FirstDigit; else stack.Peek().Args.Add(t - FirstDigit);
            }
            else if (t is >= Max and <= SumMod) stack.Push((t, []));
            else if (t == Close)
            {
                if (stack.Count == 0) throw new FormatException("A closing bracket without an operator.");
                var (op, args) = stack.Pop();
                if (args.Count < 2) throw new FormatException("An operator with fewer than 2 arguments.");
                int v = Apply(op, args.ToArray());
                if (stack.Count == 0) result = v; else stack.Peek().Args.Add(v);
            }
            else throw new FormatException($"Unknown token {t}.");
        }
        return result ?? throw new FormatException(stack.Count > 0 ? "An operator is never closed." : "An empty expression.");
    }

    /// <summary>The tokens as text, e.g. <c>[MAX 2 9 [MIN 4 7 ] 0 ]</c> (padding left out).</summary>
    public static string ToText(ReadOnlySpan<int> tokens)
    {
        var s = new StringBuilder();
        foreach (int t in tokens)
        {
            if (t == Pad) continue;
            if (t is < 0 or >= Vocabulary) throw new ArgumentOutOfRangeException(nameof(tokens), t, "Not a ListOps token.");
            if (s.Length > 0) s.Append(' ');
            s.Append(Names[t]);
        }
        return s.ToString();
    }

    /// <summary>The tokens left-padded to <paramref name="length"/> (the expression ends on the last position, which a model pooling its last step reads).</summary>
    public static void PadLeft(ReadOnlySpan<int> tokens, Span<int> destination, int length)
    {
        if (tokens.Length > length) throw new ArgumentException($"An expression of {tokens.Length} tokens does not fit {length}.", nameof(tokens));
        destination.Slice(0, length - tokens.Length).Fill(Pad);
        tokens.CopyTo(destination.Slice(length - tokens.Length, tokens.Length));
    }
}
