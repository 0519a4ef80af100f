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
        if (total > available / 2 && available <= int.MaxValue)
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

    internal sealed class SequenceComparer : IEqualityComparer<int[]>
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

/// <summary>
/// An endless, seeded stream of fresh training sequences: uniform random words of one length that are never in
/// the held-out set, with their prefix-product targets. Training on fresh words instead of a fixed set is what
/// lets a small model generalize the group operation; the held-out words stay unseen.
/// </summary>
public sealed class WordProblemStream
{
    private readonly FiniteGroup _group;
    private readonly int _length;
    private readonly HashSet<int[]> _heldOut;
    private readonly int[] _word;
    private Rng _rng;

    public WordProblemStream(FiniteGroup group, int length, WordProblemSet heldOut, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(heldOut);
        if (heldOut.Length != length || heldOut.Group != group)
            throw new ArgumentException($"The held-out set is {heldOut.Group.Name} words of length {heldOut.Length}; this stream makes {group.Name} words of length {length}.");
        if (WordProblems.DistinctSequences(group, length) <= heldOut.Count)
            throw new ArgumentException("The held-out set holds every word of this length; nothing is left to train on.");
        _group = group; _length = length; _rng = new Rng(seed);
        _word = new int[length];
        _heldOut = new HashSet<int[]>(WordProblems.SequenceComparer.Instance);
        for (int i = 0; i < heldOut.Count; i++) _heldOut.Add(heldOut.Sequence(i).ToArray());
    }

    /// <summary>Writes the next word into <paramref name="tokens"/> and its prefix products into <paramref name="targets"/>.</summary>
    public void Next(Span<int> tokens, Span<int> targets)
    {
        do
        {
            for (int t = 0; t < _length; t++) _word[t] = _rng.NextInt(_group.Order);
        } while (_heldOut.Contains(_word));
        int p = _group.Identity;
        for (int t = 0; t < _length; t++)
        {
            tokens[t] = _word[t];
            targets[t] = p = _group.Multiply(p, _word[t]);
        }
    }
}
