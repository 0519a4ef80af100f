using System.Globalization;

namespace SsmGen.Examples.WordProblems;

/// <summary>Command-line options: one run, or a sweep over kinds, groups and lengths.</summary>
public sealed record Options
{
    public bool Sweep { get; init; }
    /// <summary>Length generalization: train at <see cref="Length"/>, test on longer held-out words (<see cref="TestLengths"/>).</summary>
    public bool Generalize { get; init; }
    public int[] TestLengths { get; init; } = [40, 64, 128, 256];
    /// <summary>Seeds per (kind, group) of a generalization run: <see cref="Seed"/>, <see cref="Seed"/> + 1, ….</summary>
    public int Seeds { get; init; } = 3;
    /// <summary>Draw generalization.png again from the generalization.json in <see cref="Output"/>, without training.</summary>
    public bool Replot { get; init; }
    public bool Quick { get; init; }
    /// <summary>Train separately at every length (the paper's protocol) instead of once at the longest.</summary>
    public bool PerLength { get; init; }
    public string Kind { get; init; } = "Mamba";
    public int Depth { get; init; } = 1;
    public string Group { get; init; } = "A5";
    public int Length { get; init; } = 8;
    public string[] Kinds { get; init; } = Zoo.PaperKinds;
    public string[] Groups { get; init; } = ["Z60", "A4xZ5", "A5"];
    public int[] Lengths { get; init; } = Enumerable.Range(2, 19).ToArray();
    /// <summary>Step budget for every kind; null = each kind's default (<see cref="Zoo.Steps"/>).</summary>
    public int? Steps { get; init; }
    public int Batch { get; init; } = 128;
    /// <summary>Peak learning rate for every kind; null = each kind's default (<see cref="Zoo.LearningRate"/>).</summary>
    public float? LearningRate { get; init; }

    /// <summary>The learning rate a kind trains with in this sweep or run.</summary>
    public float LearningRateOf(string kind) => LearningRate ?? Zoo.LearningRate(kind);

    /// <summary>The step budget a kind trains with in this sweep or run.</summary>
    public int StepsOf(string kind) => Steps ?? Zoo.Steps(kind);

    /// <summary>The budget and peak learning rate of each kind, for headers.</summary>
    public string Budgets() => string.Join(", ", Kinds.Select(k => $"{k} {StepsOf(k)} steps at {LearningRateOf(k).ToString(CultureInfo.InvariantCulture)}"));
    public ulong Seed { get; init; } = 1;
    public string Output { get; init; } = Path.Combine("runs", "word-problems");

    public const string Usage = """
        One run:   --kind Mamba --depth 2 --group A5 --length 8
        A sweep:   --sweep [--kinds S4D,Mamba,Rnn256,Ids,Attention] [--groups Z60,A4xZ5,A5] [--lengths 2-20]
                   finds, per kind, group and length, the smallest depth (1–4) reaching 99% per-token validation
                   accuracy within the step budget; writes runs.json, curves.csv (every evaluation of every
                   run), min-depth.md and min-depth.png.
                   By default each kind, group and depth trains once, with a length curriculum: the words are
                   cut to the shortest length until the held-out words cut to it reach 99%, then to the next
                   (the models are causal, so a cut word is a word of that length); the budget covers the whole
                   curriculum. --per-length trains a model for every length instead (the paper's protocol;
                   slower). A single run follows the curriculum 2…length unless --per-length is given.
        Length generalization (parity and modular counting; "Unlocking State-Tracking in Linear RNNs Through
        Negative Eigenvalues"):
                   --generalize [--kinds Mamba,MambaNeg] [--groups Z2,Z3] [--length 40] [--test-lengths 40,64,128,256]
                   [--seeds 3] trains each kind at depth --depth (default 1) on words up to --length (curriculum
                   2…length), then streams held-out words of each test length through Step and reports the
                   per-token accuracy past the trained length; writes generalization.json, .md and .png and the
                   training curves (generalization-curves.csv).
                   --replot --out DIR draws DIR/generalization.png again from DIR/generalization.json.
        --replot --out DIR    draws the plot of a sweep or a --generalize run in DIR again from its JSON (no training).
        Options:
          --quick             a short sweep: groups Z60 and A5, lengths 2–5, 2,000 steps per run
          --steps N           training steps per run of every kind (default per kind: 8,000; 30,000 for
                              Rnn256 and Rnn1024)
          --batch N           batch size (default 128)
          --lr X              peak learning rate of every kind (default per kind: 0.02 for S4D, Rnn and
                              IDS; 0.005 for Mamba, attention and the delta rule (Mamba and attention diverge
                              at depth ≥ 2 with 0.02); 0.002 for Rnn256 and Rnn1024)
          --seed N            seed of data, initialization and batches (default 1)
          --out DIR           output folder (default runs/word-problems)
        Groups: Z<m>, S<n>, A<n> and direct products joined by 'x', up to order 120 (e.g. Z60, A4xZ5, A5, S5).
        Kinds: S4D, Mamba, MambaNeg (Mamba with transitions in (−1, 1)), Rnn, Rnn256 and Rnn1024 (hidden 256 and
        1,024), Ids, Attention, DeltaNet, DeltaProduct2 and DeltaProduct3 (delta rule with 1–3 Householder steps)
        (d_model 64; see Models.cs; the wide RNNs in depth 1 only, the delta-rule models in 1 and 2); a sweep runs S4D, Mamba,
        Rnn256, Ids and Attention unless --kinds names others.
        """;

    public static Options? Parse(string[] args, TextWriter error)
    {
        var o = new Options();
        bool groupsSet = false, lengthsSet = false, kindsSet = false, lengthSet = false;
        var outcome = CommandLine.Read(args, error, error, Usage, (a, Next) =>
        {
            bool ok = true;
            switch (a)
            {
                case "--sweep": o = o with { Sweep = true }; break;
                case "--quick": o = o with { Quick = true }; break;
                case "--generalize": o = o with { Generalize = true }; break;
                case "--replot": o = o with { Replot = true }; break;
                case "--test-lengths": { var ls = ParseLengths(Next()); ok = ls is not null; o = o with { TestLengths = ls ?? [] }; break; }
                case "--seeds": ok = int.TryParse(Next(), out int n) && n is >= 1 and <= 100; o = o with { Seeds = n }; break;
                case "--per-length": o = o with { PerLength = true }; break;
                case "--kind": { string? k = Next(); ok = k is not null && Zoo.Kinds.Contains(k); o = o with { Kind = k ?? "" }; break; }
                case "--depth": ok = int.TryParse(Next(), out int d) && d is >= 1 and <= Zoo.MaxDepth; o = o with { Depth = d }; break;
                case "--group": { string? g = Next(); ok = g is not null; o = o with { Group = g ?? "" }; break; }
                case "--length": ok = int.TryParse(Next(), out int l) && l > 0; o = o with { Length = l }; lengthSet = true; break;
                case "--kinds": { var k = Next()?.Split(','); ok = k is not null && k.All(Zoo.Kinds.Contains); o = o with { Kinds = k ?? [] }; kindsSet = true; break; }
                case "--groups": { var g = Next()?.Split(','); ok = g is not null; o = o with { Groups = g ?? [] }; groupsSet = true; break; }
                case "--lengths": { var ls = ParseLengths(Next()); ok = ls is not null; o = o with { Lengths = ls ?? [] }; lengthsSet = true; break; }
                case "--steps": ok = int.TryParse(Next(), out int s) && s > 0; o = o with { Steps = s }; break;
                case "--batch": ok = int.TryParse(Next(), out int b) && b > 0; o = o with { Batch = b }; break;
                case "--lr": ok = float.TryParse(Next(), NumberStyles.Float, CultureInfo.InvariantCulture, out float lr) && lr > 0; o = o with { LearningRate = lr }; break;
                case "--seed": ok = ulong.TryParse(Next(), out ulong seed); o = o with { Seed = seed }; break;
                case "--out": { string? dir = Next(); ok = dir is not null; o = o with { Output = dir ?? "" }; break; }
                default: ok = false; break;
            }
            return ok;
        });
        if (outcome != CommandLineOutcome.Run) return null;
        if (o.Generalize)
        {
            if (!kindsSet) o = o with { Kinds = ["Mamba", "MambaNeg"] };
            if (!groupsSet) o = o with { Groups = ["Z2", "Z3"] };
            if (!lengthSet) o = o with { Length = o.Quick ? 8 : 40 };
            if (o.Quick) o = o with { TestLengths = [8, 16], Seeds = 1, Steps = o.Steps ?? 300 };
            if (o.TestLengths.Any(k => k < o.Length))
            {
                error.WriteLine($"Test lengths ({string.Join(", ", o.TestLengths)}) must be at least the trained length {o.Length}.");
                return null;
            }
            return o;
        }
        if (o.Quick) o = o with { Sweep = true };
        if (o.Quick)
        {
            if (!groupsSet) o = o with { Groups = ["Z60", "A5"] };
            if (!lengthsSet) o = o with { Lengths = [2, 3, 4, 5] };
            if (o.Steps is null) o = o with { Steps = 2000 };
        }
        return o;
    }

    /// <summary>"2-20", "2,4,8" or a mix.</summary>
    private static int[]? ParseLengths(string? text)
    {
        if (text is null) return null;
        var list = new List<int>();
        foreach (string part in text.Split(','))
        {
            var ends = part.Split('-');
            if (ends.Length == 1 && int.TryParse(ends[0], out int v) && v > 0) list.Add(v);
            else if (ends.Length == 2 && int.TryParse(ends[0], out int lo) && int.TryParse(ends[1], out int hi) && lo > 0 && hi >= lo)
                list.AddRange(Enumerable.Range(lo, hi - lo + 1));
            else return null;
        }
        return list.Distinct().Order().ToArray();
    }
}
