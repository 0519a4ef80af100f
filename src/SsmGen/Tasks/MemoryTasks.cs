using SsmGen.Training;

namespace SsmGen.Tasks;

/// <summary>
/// A memory task as token tagging: a generator of (tokens, targets) sequences of one length, targets
/// <see cref="Losses.Ignored"/> where nothing is asked. Models read <see cref="InputVocab"/> token ids and predict
/// one of <see cref="Classes"/> at the asked positions.
/// </summary>
public abstract class MemoryTask
{
    public int Length { get; }
    public int InputVocab { get; }
    public int Classes { get; }

    private protected MemoryTask(int length, int inputVocab, int classes) => (Length, InputVocab, Classes) = (length, inputVocab, classes);

    /// <summary>The positions asked per sequence.</summary>
    public abstract int Answers { get; }

    /// <summary>Human-readable parameters, e.g. "selective copying: L = 64, k = 8, 8 symbols".</summary>
    public abstract string Description { get; }

    /// <summary>Scratch up to this many ints lives on the stack while sampling; more goes to the heap.</summary>
    private protected const int StackLimit = 1024;

    /// <summary>Draws one sequence into <paramref name="tokens"/> and its targets into <paramref name="targets"/>.</summary>
    public abstract void Sample(ref Rng rng, Span<int> tokens, Span<int> targets);
}

/// <summary>
/// Selective copying: k data tokens (from <see cref="Symbols"/> symbols) scattered at random positions among noise
/// tokens, then a marker, then k blank positions at which the model must output the data tokens in order. Input ids:
/// symbols 0…S−1, <see cref="Noise"/> = S, <see cref="Marker"/> = S + 1, <see cref="Blank"/> = S + 2; targets are
/// symbols. Length L holds L − k − 1 body positions, the marker and the k answers.
/// </summary>
public sealed class SelectiveCopying : MemoryTask
{
    public SelectiveCopying(int length, int dataTokens, int symbols)
        : base(length, symbols + 3, symbols)
    {
        if (symbols < 2) throw new ArgumentOutOfRangeException(nameof(symbols), symbols, "Selective copying needs at least 2 symbols.");
        if (dataTokens < 1) throw new ArgumentOutOfRangeException(nameof(dataTokens), dataTokens, "Selective copying needs at least one data token.");
        if (length < 2 * dataTokens + 1)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"A length of {length} cannot hold {dataTokens} data tokens, the marker and {dataTokens} answers (at least {2 * dataTokens + 1}).");
        (DataTokens, Symbols) = (dataTokens, symbols);
    }

    public int DataTokens { get; }
    public int Symbols { get; }
    public int Noise => Symbols;
    public int Marker => Symbols + 1;
    public int Blank => Symbols + 2;
    public override int Answers => DataTokens;
    public override string Description => $"selective copying: L = {Length}, k = {DataTokens}, {Symbols} symbols";

    public override void Sample(ref Rng rng, Span<int> tokens, Span<int> targets)
    {
        int body = Length - DataTokens - 1;
        tokens[..body].Fill(Noise);
        targets.Fill(Losses.Ignored);
        // k distinct positions of the body, in increasing order: a partial Fisher–Yates draw, then sorted
        Span<int> positions = body <= StackLimit ? stackalloc int[body] : new int[body];   // long sequences: the heap, not the stack
        for (int i = 0; i < body; i++) positions[i] = i;
        for (int i = 0; i < DataTokens; i++) { int j = i + rng.NextInt(body - i); (positions[i], positions[j]) = (positions[j], positions[i]); }
        var chosen = positions[..DataTokens];
        chosen.Sort();
        tokens[body] = Marker;
        for (int i = 0; i < DataTokens; i++)
        {
            int symbol = rng.NextInt(Symbols);
            tokens[chosen[i]] = symbol;
            tokens[body + 1 + i] = Blank;
            targets[body + 1 + i] = symbol;
        }
    }
}

/// <summary>
/// Multi-query associative recall: P key–value pairs (distinct keys from <see cref="Keys"/>, values from
/// <see cref="Values"/>) as tokens k₁ v₁ k₂ v₂ …, noise up to the query section, then Q queries — keys drawn from the
/// pairs shown — at each of which the model must output that key's value. Input ids: keys 0…K−1, values K…K+V−1,
/// <see cref="Noise"/> = K + V; targets are value indices 0…V−1.
/// </summary>
public sealed class AssociativeRecall : MemoryTask
{
    public AssociativeRecall(int length, int pairs, int queries, int keys, int values)
        : base(length, keys + values + 1, values)
    {
        if (pairs < 1 || queries < 1) throw new ArgumentOutOfRangeException(nameof(pairs), "Associative recall needs at least one pair and one query.");
        if (keys < pairs) throw new ArgumentOutOfRangeException(nameof(keys), keys, $"{pairs} pairs need at least {pairs} distinct keys.");
        if (values < 2) throw new ArgumentOutOfRangeException(nameof(values), values, "Associative recall needs at least 2 values.");
        if (length < 2 * pairs + queries)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"A length of {length} cannot hold {pairs} pairs and {queries} queries (at least {2 * pairs + queries}).");
        (Pairs, Queries, Keys, Values) = (pairs, queries, keys, values);
    }

    public int Pairs { get; }
    public int Queries { get; }
    public int Keys { get; }
    public int Values { get; }
    public int Noise => Keys + Values;
    public override int Answers => Queries;
    public override string Description => $"associative recall: L = {Length}, {Pairs} pairs, {Queries} queries, {Keys} keys, {Values} values";

    public override void Sample(ref Rng rng, Span<int> tokens, Span<int> targets)
    {
        tokens.Fill(Noise);
        targets.Fill(Losses.Ignored);
        Span<int> keys = Keys <= StackLimit ? stackalloc int[Keys] : new int[Keys];
        for (int i = 0; i < Keys; i++) keys[i] = i;
        for (int i = 0; i < Pairs; i++) { int j = i + rng.NextInt(Keys - i); (keys[i], keys[j]) = (keys[j], keys[i]); }
        Span<int> values = Pairs <= StackLimit ? stackalloc int[Pairs] : new int[Pairs];
        for (int i = 0; i < Pairs; i++)
        {
            values[i] = rng.NextInt(Values);
            tokens[2 * i] = keys[i];
            tokens[2 * i + 1] = Keys + values[i];
        }
        int start = Length - Queries;
        for (int q = 0; q < Queries; q++)
        {
            int pair = rng.NextInt(Pairs);
            tokens[start + q] = keys[pair];
            targets[start + q] = values[pair];
        }
    }
}

/// <summary>A fixed set of sequences of one memory task: (Count, Length) tokens and targets.</summary>
public sealed class MemoryTaskSet
{
    internal MemoryTaskSet(MemoryTask task, int[] tokens, int[] targets)
    {
        (Task, Tokens, Targets) = (task, tokens, targets);
        Count = tokens.Length / task.Length;
    }

    public MemoryTask Task { get; }
    public int Count { get; }
    public int Length => Task.Length;

    /// <summary>(Count, Length) input ids.</summary>
    public int[] Tokens { get; }

    /// <summary>(Count, Length) targets, <see cref="Losses.Ignored"/> where nothing is asked.</summary>
    public int[] Targets { get; }

    public ReadOnlySpan<int> Sequence(int i) => Tokens.AsSpan(i * Length, Length);
}

/// <summary>Seeded memory-task data: distinct sequences, the held-out set never shares one with training.</summary>
public static class MemoryTasks
{
    /// <summary>
    /// <paramref name="trainCount"/> + <paramref name="heldOutCount"/> distinct sequences of the task, split in that
    /// order; the same seed gives the same sets. Throws when the task cannot produce that many distinct sequences
    /// within a bounded number of draws.
    /// </summary>
    public static (MemoryTaskSet Train, MemoryTaskSet HeldOut) Generate(MemoryTask task, int trainCount, int heldOutCount, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (trainCount < 0 || heldOutCount < 0) throw new ArgumentOutOfRangeException(nameof(trainCount), "Counts must not be negative.");
        int total = checked(trainCount + heldOutCount), length = task.Length;
        var tokens = new int[checked(total * length)];
        var targets = new int[tokens.Length];
        var seen = new HashSet<int[]>(WordProblems.SequenceComparer.Instance);
        var rng = new Rng(seed);
        long draws = 0, budget = 20L * total + 1000;
        var sequence = new int[length];
        var target = new int[length];
        for (int s = 0; s < total;)
        {
            if (++draws > budget)
                throw new ArgumentException($"{task.Description}: only {s:N0} distinct sequences found in {budget:N0} draws; {total:N0} were requested. Lengthen the sequences or widen the vocabulary.");
            task.Sample(ref rng, sequence, target);
            if (!seen.Add(sequence.ToArray())) continue;
            sequence.CopyTo(tokens, s * length);
            target.CopyTo(targets, s * length);
            s++;
        }
        int split = trainCount * length;
        return (new MemoryTaskSet(task, tokens[..split], targets[..split]), new MemoryTaskSet(task, tokens[split..], targets[split..]));
    }
}
