using System.Diagnostics;
using System.Globalization;
using SsmGen;
using SsmGen.Checkpoints;
using SsmGen.Examples.Memory;
using SsmGen.Examples.Mnist;
using SsmGen.Examples.Sonnets;
using SsmGen.Interpretability;
using SsmGen.Memory;
using SsmGen.Reference;

// Memory compression in selective SSMs, measured:
//   dotnet run -c Release --project examples/Memory -- stability --smnist CKPT [--sonnet CKPT] [--sequences N] [--out DIR]
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
const string Usage = """
    usage: Memory stability [--smnist CKPT] [--sonnet CKPT] [--sequences N] [--out DIR] [--data DIR]
           Memory gate [--length L] [--data-tokens K] [--steps S] [--batch B] [--seed N] [--out DIR]
           Memory sweep [--quick] [--sizes 2,4,…] [--kinds S4D,Mamba,RNN,IDS] [--length L] [--data-tokens K] [--steps S]
                        [--batch B] [--held-out N] [--seed N] [--out DIR]
           Memory language [--quick] [--steps S] [--batch B] [--length L] [--seed N] [--out DIR] [--sonnets DIR]
      gate             trains a Mamba on selective copying (16 symbols, L 64, k 8 by default) and measures its step
                       sizes Δ_t on data tokens against noise tokens
      sweep            S4D, Mamba, RNN and IDS at state sizes N = 2…64, every model ≈ 40,000 parameters, trained on
                       selective copying (L 32, k 4, 2,000 steps of batch 16 by default): accuracy against N and state
                       bytes, FLOPs per token, and what a linear probe reads from the state; --quick: N 4 and 64,
                       250 steps, 384 held-out sequences (for CI)
      language         the sonnet Mamba, a tanh RNN and a transformer of ≈266,000 parameters trained alike on the
                       sonnets (300 steps of 16 × 128 characters; --quick 20): held-out bits per character against
                       the bytes a stream keeps, FLOPs and µs per character
      stability        per block of trained models on real data: the largest |Ā|, ‖h_t‖ against the contraction
                       bound, and the rate at which two runs from different starts meet against the predicted rate
      --smnist CKPT    an S4D checkpoint of examples/SequentialMnist (sMNIST or psMNIST; its held-out digits are read)
      --sonnet CKPT    a Mamba checkpoint of examples/Sonnets (held-out sonnet lines are read)
      --sequences N    sequences per model (default 8)
      --out DIR        the report folder (default runs/memory)
      --data DIR       MNIST cache (default .cache/mnist)
    """;
if (args.Length == 0 || args[0] is "--help" or "-h") { Console.Error.WriteLine(Usage); return args.Length == 0 ? 2 : 0; }
string? Option(string name) { int i = Array.IndexOf(args, name); return i > 0 && i + 1 < args.Length ? args[i + 1] : null; }
var clock = Stopwatch.StartNew();
void Progress(string what) => Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] {what}");
try
{
    if (args[0] is not ("stability" or "gate" or "sweep" or "language")) throw new ArgumentException($"Unknown command '{args[0]}'.\n{Usage}");
    string output = Option("--out") ?? Path.Combine("runs", "memory");
    int Int(string name, int fallback) => Option(name) is { } text ? (int.TryParse(text, out int value) && value > 0 ? value : throw new ArgumentException($"{name} takes a positive whole number; got '{text}'.")) : fallback;
    if (args[0] == "gate")
    {
        Gate.Run(Int("--length", 64), Int("--data-tokens", 8), Int("--steps", 3000), Int("--batch", 32), (ulong)Int("--seed", 1), output, Progress);
        Progress($"report: {Path.Combine(output, "gate.md")}");
        return 0;
    }
    if (args[0] == "language")
    {
        bool quick = args.Contains("--quick");
        Language.Run(Int("--steps", quick ? 20 : 300), Int("--batch", 16), Int("--length", 128), (ulong)Int("--seed", 1), Option("--sonnets") ?? Path.Combine(".cache", "sonnets"), output, Progress);
        Progress($"report: {Path.Combine(output, "language.md")}");
        return 0;
    }
    if (args[0] == "sweep")
    {
        bool quick = args.Contains("--quick");
        int[] sizes = Option("--sizes") is { } list
            ? list.Split(',').Select(t => int.TryParse(t, out int n) && SsmGen.Examples.Memory.Sweep.StateSizes.Contains(n) ? n : throw new ArgumentException($"--sizes takes state sizes among {string.Join(", ", SsmGen.Examples.Memory.Sweep.StateSizes)}; got '{t}'.")).ToArray()
            : quick ? [4, 64] : SsmGen.Examples.Memory.Sweep.StateSizes;
        string[] kinds = Option("--kinds") is { } names
            ? names.Split(',').Select(k => SsmGen.Examples.Memory.Sweep.Kinds.FirstOrDefault(x => x.Equals(k, StringComparison.OrdinalIgnoreCase)) ?? throw new ArgumentException($"--kinds takes {string.Join(", ", SsmGen.Examples.Memory.Sweep.Kinds)}; got '{k}'.")).ToArray()
            : SsmGen.Examples.Memory.Sweep.Kinds;
        SsmGen.Examples.Memory.Sweep.Run(Int("--length", 32), Int("--data-tokens", 4), Int("--steps", quick ? 250 : 2000), Int("--batch", 16), Int("--held-out", quick ? 384 : 1024),
            (ulong)Int("--seed", 1), sizes, kinds, output, Progress);
        Progress($"report: {Path.Combine(output, "sweep.md")}");
        return 0;
    }
    int sequences = Option("--sequences") is { } n ? (int.TryParse(n, out int v) && v > 0 ? v : throw new ArgumentException($"--sequences takes a positive whole number; got '{n}'.")) : 8;
    string? smnist = Option("--smnist"), sonnet = Option("--sonnet");
    if (smnist is null && sonnet is null) throw new ArgumentException("Give --smnist CKPT, --sonnet CKPT or both.");
    var blocks = new List<(string, string, int, ContractionReport[])>();

    if (smnist is not null)
    {
        if (!File.Exists(smnist)) throw new FileNotFoundException($"No checkpoint at '{smnist}'. Train one: dotnet run -c Release --project examples/SequentialMnist");
        var file = SafetensorsFile.Read(smnist);
        var read = S4DCheckpoint.Read(file, Discretization.Zoh, Pooling.Mean);
        var op = S4DOperator.FromParameters(read.Config, read.Parameters);
        var (task, seed, permutation) = MnistData.TaskOf(file.Metadata);
        var data = MnistData.Load(Option("--data") ?? Path.Combine(".cache", "mnist"), Progress);
        var (_, test) = data.Split(testCount: 1500, seed);
        var digit = new float[MnistData.Pixels];
        string name = $"{task} S4D ({Path.GetFileName(smnist)})";
        for (int i = 0; i < read.Config.Layers.Count; i++)
        {
            Progress($"{name}: block {i} over {sequences} held-out digits");
            var reports = new ContractionReport[sequences];
            for (int s = 0; s < sequences; s++)
            {
                data.CopySequence(test[s], permutation, digit);
                reports[s] = ContractionCheck.ForS4DBlock(op, digit, MnistData.Pixels, i);
            }
            blocks.Add((name, "S4D", i, reports));
        }
    }

    if (sonnet is not null)
    {
        if (!File.Exists(sonnet)) throw new FileNotFoundException($"No checkpoint at '{sonnet}'. Train one: dotnet run -c Release --project examples/Sonnets");
        // held-out lines of sonnets the sonnet example does not train on (141 and 142)
        string[] lines =
        [
            "In faith, I do not love thee with mine eyes, For they in thee a thousand errors note;",
            "But 'tis my heart that loves what they despise, Who in despite of view is pleased to dote.",
            "Love is my sin, and thy dear virtue hate, Hate of my sin, grounded on sinful loving:",
            "O! but with mine compare thou thine own state, And thou shalt find it merits not reproving;",
        ];
        int length = lines.Min(l => l.Length);
        using var model = new SonnetModel(1, length, ModelUse.Inference);
        Checkpoint.Load(model, SafetensorsFile.Read(sonnet));
        var reference = new ReferenceModel<double>(model.Config);
        var p = model.Parameters;
        for (int i = 0; i < p.Length; i++) reference.Parameters[i] = p[i];
        int count = Math.Min(sequences, lines.Length);
        var tokens = lines.Take(count).SelectMany(l => CharVocabulary.Encode(l.Substring(0, length))).ToArray();
        reference.Forward(tokens, count, length);
        string name = $"sonnet Mamba ({Path.GetFileName(sonnet)})";
        for (int i = 0; i < model.Config.Layers.Count; i++)
        {
            Progress($"{name}: block {i} over {count} held-out lines");
            blocks.Add((name, "Mamba", i, Enumerable.Range(0, count).Select(b => ContractionCheck.ForMambaBlock(reference, i, b)).ToArray()));
        }
    }

    var rows = Stability.Write(blocks, output);
    foreach (var r in rows)
        Progress($"{r.Model} block {r.Block}: max |Ā| {r.MaxModulus:F6}, max ‖h‖ {r.MaxStateNorm:G4} ≤ bound {r.MaxBound:G4}, two starts meet at {r.FittedRate:F6} per step (predicted {r.PredictedRate:F6})");
    Progress($"report: {Path.Combine(output, "stability.md")}");
    return 0;
}
catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException or NotSupportedException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}
