namespace SsmGen.Tasks;

/// <summary>
/// A finite group as a multiplication table over elements 0…Order−1 (element 0 is the identity). Built from
/// modular arithmetic (Z_m), permutations (S_n, A_n) and direct products; used for the group word problems of
/// "The Illusion of State in State-Space Models".
/// </summary>
public sealed class FiniteGroup
{
    private readonly int[] _table;
    private readonly int[] _inverse;

    /// <summary>The group's name, e.g. <c>A4×Z5</c>.</summary>
    public string Name { get; }
    /// <summary>Number of elements.</summary>
    public int Order { get; }
    /// <summary>A readable label per element (a residue, a permutation in one-line notation, or a pair).</summary>
    public IReadOnlyList<string> Labels { get; }

    private FiniteGroup(string name, int[] table, string[] labels)
    {
        Name = name;
        Order = labels.Length;
        _table = table;
        Labels = labels;
        _inverse = new int[Order];
        for (int a = 0; a < Order; a++)
            for (int b = 0; b < Order; b++)
                if (_table[a * Order + b] == 0) { _inverse[a] = b; break; }
    }

    /// <summary>The product a·b.</summary>
    public int Multiply(int a, int b) => _table[a * Order + b];

    /// <summary>The inverse a⁻¹.</summary>
    public int Inverse(int a) => _inverse[a];

    /// <summary>The identity element (always 0).</summary>
    public int Identity => 0;

    /// <summary>The cyclic group Z_m: residues under addition mod m.</summary>
    public static FiniteGroup Cyclic(int m)
    {
        if (m < 1) throw new ArgumentOutOfRangeException(nameof(m), m, "Z_m needs m ≥ 1.");
        var table = new int[m * m];
        for (int a = 0; a < m; a++)
            for (int b = 0; b < m; b++) table[a * m + b] = (a + b) % m;
        return new FiniteGroup($"Z{m}", table, Enumerable.Range(0, m).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray());
    }

    /// <summary>The symmetric group S_n: all permutations of n points under composition, (g·h)(i) = g(h(i)).</summary>
    public static FiniteGroup Symmetric(int n) => Permutations($"S{n}", n, evenOnly: false);

    /// <summary>The alternating group A_n: the even permutations of n points.</summary>
    public static FiniteGroup Alternating(int n) => Permutations($"A{n}", n, evenOnly: true);

    private static FiniteGroup Permutations(string name, int n, bool evenOnly)
    {
        if (n < 1 || n > 7) throw new ArgumentOutOfRangeException(nameof(n), n, "Permutation groups are built for 1 ≤ n ≤ 7 (at most 5,040 elements).");
        var perms = new List<int[]>();
        void Build(int[] p, int k)
        {
            if (k == n) { if (!evenOnly || IsEven(p)) perms.Add((int[])p.Clone()); return; }
            for (int i = k; i < n; i++)
            {
                (p[k], p[i]) = (p[i], p[k]);
                Build(p, k + 1);
                (p[k], p[i]) = (p[i], p[k]);
            }
        }
        Build(Enumerable.Range(0, n).ToArray(), 0);
        // identity first, then lexicographic order, so element ids are stable
        perms.Sort((a, b) => a.AsSpan().SequenceCompareTo(b));
        var index = perms.Select((p, i) => (Key: string.Join(",", p), i)).ToDictionary(t => t.Key, t => t.i);
        int order = perms.Count;
        var table = new int[order * order];
        var c = new int[n];
        for (int a = 0; a < order; a++)
            for (int b = 0; b < order; b++)
            {
                for (int i = 0; i < n; i++) c[i] = perms[a][perms[b][i]];
                table[a * order + b] = index[string.Join(",", c)];
            }
        return new FiniteGroup(name, table, perms.Select(p => "(" + string.Join(" ", p) + ")").ToArray());
    }

    private static bool IsEven(int[] p)
    {
        int inversions = 0;
        for (int i = 0; i < p.Length; i++)
            for (int j = i + 1; j < p.Length; j++)
                if (p[i] > p[j]) inversions++;
        return inversions % 2 == 0;
    }

    /// <summary>The direct product G×H: pairs multiplied componentwise; element (g, h) is g·|H| + h.</summary>
    public static FiniteGroup Product(FiniteGroup g, FiniteGroup h)
    {
        int order = checked(g.Order * h.Order);
        if (order > 5040) throw new ArgumentOutOfRangeException(nameof(h), order, "Products are built up to 5,040 elements.");
        var table = new int[order * order];
        for (int a = 0; a < order; a++)
            for (int b = 0; b < order; b++)
                table[a * order + b] = g.Multiply(a / h.Order, b / h.Order) * h.Order + h.Multiply(a % h.Order, b % h.Order);
        var labels = new string[order];
        for (int a = 0; a < order; a++) labels[a] = $"({g.Labels[a / h.Order]}, {h.Labels[a % h.Order]})";
        return new FiniteGroup($"{g.Name}×{h.Name}", table, labels);
    }

    /// <summary>
    /// A group by name: <c>Z60</c>, <c>S5</c>, <c>A5</c>, or a direct product of them joined by <c>x</c> or <c>×</c>,
    /// e.g. <c>A4xZ5</c>. Throws an ArgumentException naming the part it cannot read.
    /// </summary>
    public static FiniteGroup Parse(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var parts = name.Replace('×', 'x').Replace('X', 'x').Split('x', StringSplitOptions.TrimEntries);
        FiniteGroup? result = null;
        foreach (string part in parts)
        {
            if (part.Length < 2 || !int.TryParse(part.AsSpan(1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int k))
                throw new ArgumentException($"Cannot read the group '{part}' in '{name}': use Z<m>, S<n> or A<n>, joined by 'x' for direct products.", nameof(name));
            var g = char.ToUpperInvariant(part[0]) switch
            {
                'Z' => Cyclic(k),
                'S' => Symmetric(k),
                'A' => Alternating(k),
                _ => throw new ArgumentException($"Cannot read the group '{part}' in '{name}': use Z<m>, S<n> or A<n>.", nameof(name)),
            };
            result = result is null ? g : Product(result, g);
        }
        return result!;
    }

    /// <summary>The commutator subgroup [S, S] of a subgroup S (given as a set of elements): generated by a⁻¹b⁻¹ab.</summary>
    public HashSet<int> Commutator(IReadOnlyCollection<int> subgroup)
    {
        var generators = new HashSet<int>();
        foreach (int a in subgroup)
            foreach (int b in subgroup)
                generators.Add(Multiply(Multiply(Inverse(a), Inverse(b)), Multiply(a, b)));
        return Closure(generators);
    }

    /// <summary>The subgroup generated by a set of elements.</summary>
    public HashSet<int> Closure(IEnumerable<int> generators)
    {
        var set = new HashSet<int> { Identity };
        var frontier = new Queue<int>(set);
        var gens = generators.ToArray();
        while (frontier.Count > 0)
        {
            int x = frontier.Dequeue();
            foreach (int g in gens)
            {
                int y = Multiply(x, g);
                if (set.Add(y)) frontier.Enqueue(y);
            }
        }
        return set;
    }

    /// <summary>The orders of the derived series G ⊇ G′ ⊇ G″ ⊇ … until it stops shrinking.</summary>
    public IReadOnlyList<int> DerivedSeriesOrders()
    {
        var orders = new List<int> { Order };
        IReadOnlyCollection<int> current = Enumerable.Range(0, Order).ToArray();
        while (true)
        {
            var next = Commutator(current);
            if (next.Count == current.Count) return orders;
            orders.Add(next.Count);
            current = next;
        }
    }

    /// <summary>Solvable: the derived series reaches the trivial group.</summary>
    public bool IsSolvable => DerivedSeriesOrders()[^1] == 1;

    /// <summary>Every pair commutes.</summary>
    public bool IsAbelian
    {
        get
        {
            for (int a = 0; a < Order; a++)
                for (int b = 0; b < a; b++)
                    if (Multiply(a, b) != Multiply(b, a)) return false;
            return true;
        }
    }

    public override string ToString() => $"{Name} (order {Order})";
}
