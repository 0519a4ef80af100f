using System.Diagnostics;
using System.Globalization;
using SsmGen;
using SsmGen.Checkpoints;
using SsmGen.Examples.Mnist;
using SsmGen.Examples.Oscillators;
using SsmGen.Examples.Sonnets;

// The oscillator report of a trained S4D checkpoint:
//   dotnet run -c Release --project examples/Oscillators -- runs/smnist/checkpoint.safetensors [options]
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
const string Usage = """
    usage: Oscillators CHECKPOINT [--out DIR] [--digits N] [--block B] [--channel H] [--bilinear] [--pooling mean|last]
                                  [--data DIR]
      CHECKPOINT       a safetensors file of an S4D stack (an sMNIST or psMNIST checkpoint of examples/SequentialMnist),
                       or of the sonnet model of examples/Sonnets (Mamba: the selective view, token by token)
      --out DIR        the report folder (default: 'oscillators' beside the checkpoint)
      --digits N       held-out digits for the accuracy of the truncated decoders (default 500)
      --block, --channel  the channel of the kernel and ring figures (default: block 0, its strongest channel)
      --bilinear       the model was declared with bilinear discretization (default ZOH)
      --pooling P      the model's pooling (default mean)
      --data DIR       MNIST cache (default .cache/mnist)
    """;
if (args.Length == 0 || args[0] is "--help" or "-h") { Console.Error.WriteLine(Usage); return args.Length == 0 ? 2 : 0; }
string checkpoint = args[0];
string? Option(string name) { int i = Array.IndexOf(args, name); return i > 0 && i + 1 < args.Length ? args[i + 1] : null; }
int Int(string name, int fallback) => Option(name) is { } v ? (int.TryParse(v, out int n) && n >= 0 ? n : throw new ArgumentException($"{name} takes a whole number; got '{v}'.")) : fallback;
try
{
    if (!File.Exists(checkpoint)) throw new FileNotFoundException($"No checkpoint at '{checkpoint}'. Train one first: dotnet run -c Release --project examples/SequentialMnist");
    string output = Option("--out") ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(checkpoint))!, "oscillators");
    int digits = Int("--digits", 500), block = Int("--block", 0);
    int? channel = Option("--channel") is null ? null : Int("--channel", 0);
    var discretization = args.Contains("--bilinear") ? Discretization.Bilinear : Discretization.Zoh;
    var pooling = (Option("--pooling") ?? "mean") switch
    {
        "mean" => Pooling.Mean,
        "last" => Pooling.Last,
        var p => throw new ArgumentException($"--pooling takes mean or last; got '{p}'."),
    };
    var clock = Stopwatch.StartNew();
    void Progress(string what) => Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] {what}");

    var file = SafetensorsFile.Read(checkpoint);
    if (file.TryGet("backbone.layers.0.mixer.A_log", out _))
    {
        // A Mamba checkpoint: the selective view, for the sonnet model of examples/Sonnets.
        const string Line = "In faith, I do not love thee with mine eyes, For they in thee a thousand errors note;"; // sonnet 141, held out
        using var sonnet = new SonnetModel(1, Line.Length, ModelUse.Inference);
        Checkpoint.Load(sonnet, file);
        SelectiveReport.Write(sonnet, Line, CharVocabulary.Encode(Line), output, new Figures(), Progress);
        Progress($"report: {Path.Combine(output, "selective.md")}");
        return 0;
    }

    // The checkpoint's own held-out digits: the example's seeded split (and permutation for psMNIST), from its metadata.
    var meta = file.Metadata;
    var (task, seed, permutation) = MnistData.TaskOf(meta);
    Progress($"checkpoint {checkpoint}: task {task}, seed {seed}{(meta.ContainsKey("task") ? "" : " (no metadata: sMNIST with seed 1 assumed)")}");
    var data = MnistData.Load(Option("--data") ?? Path.Combine(".cache", "mnist"), Progress);
    var (train, test) = data.Split(testCount: 1500, seed);
    Sequences Take(int[] indices, string description)
    {
        var inputs = new float[indices.Length * MnistData.Pixels];
        for (int i = 0; i < indices.Length; i++) data.CopySequence(indices[i], permutation, inputs.AsSpan(i * MnistData.Pixels, MnistData.Pixels));
        return new Sequences(inputs, indices.Select(i => data.Labels[i]).ToArray(), MnistData.Pixels, description);
    }
    string kind = task == "psmnist" ? "psMNIST" : "sMNIST";
    var heldOut = Take(test[..Math.Min(digits, test.Length)], $"the first {Math.Min(digits, test.Length)} of the run's 1,500 held-out {kind} digits");
    var calibration = Take(train[..64], $"64 {kind} training digits");

    // The generated model of a checkpoint of the sMNIST example (its metadata names the class): the report checks the
    // operator against its Forward and runs the band removals on it (much faster than the operator).
    using ISsmModel? model = meta.TryGetValue("model", out var name) ? name switch
    {
        nameof(SmnistModel) => new SmnistModel(50, MnistData.Pixels, ModelUse.Inference),
        nameof(QuickSmnistModel) => new QuickSmnistModel(50, MnistData.Pixels, ModelUse.Inference),
        _ => null,
    } : null;
    var summary = OscillatorReport.Write(checkpoint, output, heldOut, calibration, new Figures(), Progress, discretization, pooling, block, channel, model);
    Progress($"kernel = Σ damped sinusoids within {summary.KernelCheck:E1}; operator = reference forward within {summary.OperatorVsReference:E1}" +
        (summary.OperatorVsModel is { } m ? $", = the model's Forward within {m:E1}" : ""));
    Progress("accuracy with the decoders' Taylor series cut at order " + string.Join(", ", summary.Truncation.Select(r => $"{r.Order}: {r.Accuracy:P2}")));
    foreach (var f in summary.Series.Fit)
        Progress($"block {f.Block}: its Taylor series diverges at {f.Diverging:P2} of the exact model's (step, channel) evaluations");
    foreach (var (p, q, b, accuracy) in summary.Series.Polynomial)
        Progress($"{(b is null ? "every block" : $"block {b} alone")} with GELU and σ polynomials of degrees {p} and {q} (degree {p * (1 + q)} in the waves): {accuracy:P2}");
    Progress($"report: {Path.Combine(output, "report.md")}");
    return 0;
}
catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException or NotSupportedException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}
