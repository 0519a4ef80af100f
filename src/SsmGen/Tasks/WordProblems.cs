namespace SsmGen.Tasks;

/// <summary>
/// A set of group word problems as token tagging: sequence i is <c>Tokens[i·Length … ]</c>, the group elements
/// g_1…g_k as ids, and <c>Targets</c> holds at each position the prefix product g_1·g_2·…·g_t.
/// </summary>
public sealed class WordProblemSet
{
    public FiniteGroup Group { get; }
    public int Length { get; }
    public int Count { get; }
    /// <summary>(Count, Length) element ids.</summary>
    public int[] Tokens { get; }
    /// <summary>(Count, Length) prefix products.</summary>
    public int[] Targets { get; }

    internal WordProblemSet(FiniteGroup group, int length, int[] tokens)
    {
        Group = group; Length = length; Count = tokens.Length / length; Tokens = tokens;
        Targets = new int[tokens.Length];
        for (int s = 0; s < Count; s++)
        {
            int p = group.Identity;
            for (int t = 0; t < length; t++) Targets[s * length + t] = p = group.Multiply(p, tokens[s * length + t]);
        }
    }

    /// <summary>Sequence i's tokens.</summary>
    public ReadOnlySpan<int> Sequence(int i) => Tokens.AsSpan(i * Length, Length);
}

/// <summary>Seeded, reproducible word-problem data: uniform random sequences, all distinct, validation never in training.</summary>
public static class WordProblems
{
    /// <summary>
    /// Draws <paramref name="trainCount"/> + <paramref name="validationCount"/> distinct sequences of length
    /// <paramref name="length"/> uniformly from the group's elements, and splits them; the same seed gives the same
    /// sets. Throws when fewer distinct sequences exist than requested (see <see cref="DistinctSequences"/>).
    /// </summary>
    public static (WordProblemSet Train, WordProblemSet Validation) Generate(FiniteGroup group, int length, int trainCount, int validationCount, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(group);
        if (length < 1) throw new ArgumentOutOfRangeException(nameof(length), length, "Sequences need at least one element.");
        if (trainCount < 0 || validationCount < 0) throw new ArgumentOutOfRangeException(nameof(trainCount), "Counts must not be negative.");
        double available = DistinctSequences(group, length);
        int total = checked(trainCount + validationCount);
        if (total > available)
            throw new ArgumentException($"{group.Name} has only {available:N0} distinct sequences of length {length}; {total:N0} were requested.");
        var rng = new Rng(seed);
        var tokens = new int[checked(total * length)];
        if (total > available / 2)
        {
            // most of all sequences: enumerate them, shuffle, take the first
            int all = (int)available;
            var order = Enumerable.Range(0, all).ToArray();
            for (int i = all - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (order[i], order[j]) = (order[j], order[i]); }
            for (int s = 0; s < total; s++)
            {
                int code = order[s];
                for (int t = length - 1; t >= 0; t--) { tokens[s * length + t] = code % group.Order; code /= group.Order; }
            }
        }
        else
        {
            var seen = new HashSet<int[]>(SequenceComparer.Instance);
            for (int s = 0; s < total;)
            {
                var seq = new int[length];
                for (int t = 0; t < length; t++) seq[t] = rng.NextInt(group.Order);
                if (!seen.Add(seq)) continue;
                seq.CopyTo(tokens, s * length);
                s++;
            }
        }
        return (new WordProblemSet(group, length, tokens[..(trainCount * length)]),
                new WordProblemSet(group, length, tokens[(trainCount * length)..]));
    }

    /// <summary>|G|^length, the number of distinct sequences (as a double: it overflows integers quickly).</summary>
    public static double DistinctSequences(FiniteGroup group, int length) => Math.Pow(group.Order, length);

    private sealed class SequenceComparer : IEqualityComparer<int[]>
    {
        public static readonly SequenceComparer Instance = new();
        public bool Equals(int[]? a, int[]? b) => a.AsSpan().SequenceEqual(b);
        public int GetHashCode(int[] a)
        {
            var h = new HashCode();
            foreach (int v in a) h.Add(v);
            return h.ToHashCode();
        }
    }
}
