using System.Globalization;

namespace SsmGen.Examples.Mnist;

/// <summary>Command-line options of the example.</summary>
public sealed record Options
{
    public bool Permuted { get; init; }
    public bool Quick { get; init; }
    /// <summary>The SSM of the blocks: S4D (diagonal) or S4 (diagonal plus low rank).</summary>
    public string Kind { get; init; } = "S4D";
    public int Epochs { get; init; } = 20;
    public int Batch { get; init; } = 16;
    public float LearningRate { get; init; } = 4e-3f;
    public ulong Seed { get; init; } = 1;
    public string? Resume { get; init; }
    public string? OutputDir { get; init; }
    public string DataDir { get; init; } = Path.Combine(".cache", "mnist");
    public int? TrainLimit { get; init; }
    /// <summary>Held-out digits to write as text for ssm-serve (examples/Serve), 0 = none.</summary>
    public int ExportDigits { get; init; }
    /// <summary>Largest random translation (pixels, each axis) applied to training digits; null = task default.</summary>
    public int? Shift { get; init; }
    /// <summary>Under mpirun: all-reduce the gradients after the backward instead of while it runs.</summary>
    public bool NoOverlap { get; init; }
    public int MaxShift => Shift ?? (Permuted && !Quick ? 2 : 0);

    public string Task => Permuted ? "psmnist" : "smnist";
    public string Output => OutputDir ?? Path.Combine("runs", Task + (Kind == "S4" ? "-s4" : "") + (Quick ? "-quick" : ""));

    public const string Usage = """
        Options:
          --permuted          psMNIST: pixels in a fixed random order (default: sMNIST, row by row)
          --quick             a short run: smaller model, 3 epochs
          --kind S4D|S4       the blocks' SSM: S4D (diagonal, the default) or S4 (diagonal plus low rank,
                              HiPPO-LegS, kernel length 1024), at the same sizes
          --epochs N          epochs to train (default 20; 28 with --permuted, whose shifted digits
                              take longer to fit; 3 with --quick)
          --batch N           batch size (default 16)
          --lr X              peak learning rate (default 0.004; 0.01 with --quick)
          --train-limit N     train on the first N training digits only
          --shift K           translate each training digit by up to K pixels per axis, at random
                              (default 2 with --permuted, else 0; held-out digits are never shifted)
          --no-overlap        under mpirun: all-reduce the gradients after the backward, not while it runs
          --seed N            seed of the split, permutation, init and shuffles (default 1)
          --resume FILE       continue from a checkpoint written by an earlier run
          --export-digits N   also write the first N held-out digits to DIR/held-out-digits.txt (one per line,
                              784 pixel values in model order) and their labels to DIR/held-out-labels.txt
          --out DIR           where checkpoints and plots go (default runs/<task>, runs/<task>-s4 for S4)
          --data DIR          MNIST cache (default .cache/mnist)
        """;

    public static Options? Parse(string[] args, TextWriter error)
    {
        var o = new Options();
        bool epochsSet = false, lrSet = false;
        var outcome = CommandLine.Read(args, error, error, Usage, (a, Next) =>
        {
            bool ok = true;
            switch (a)
            {
                case "--permuted": o = o with { Permuted = true }; break;
                case "--quick": o = o with { Quick = true }; break;
                case "--no-overlap": o = o with { NoOverlap = true }; break;
                case "--kind": { string? kind = Next(); ok = kind is "S4D" or "S4"; o = o with { Kind = kind! }; break; }
                case "--epochs": ok = int.TryParse(Next(), out int e) && e > 0; o = o with { Epochs = e }; epochsSet = true; break;
                case "--batch": ok = int.TryParse(Next(), out int b) && b > 0; o = o with { Batch = b }; break;
                case "--lr": ok = float.TryParse(Next(), NumberStyles.Float, CultureInfo.InvariantCulture, out float lr) && lr > 0; o = o with { LearningRate = lr }; lrSet = true; break;
                case "--train-limit": ok = int.TryParse(Next(), out int n) && n > 0; o = o with { TrainLimit = n }; break;
                case "--shift": ok = int.TryParse(Next(), out int k) && k is >= 0 and < MnistData.Side; o = o with { Shift = k }; break;
                case "--seed": ok = ulong.TryParse(Next(), out ulong s); o = o with { Seed = s }; break;
                case "--export-digits": ok = int.TryParse(Next(), out int x) && x > 0; o = o with { ExportDigits = x }; break;
                case "--resume": { string? f = Next(); ok = f is not null; o = o with { Resume = f }; break; }
                case "--out": { string? d = Next(); ok = d is not null; o = o with { OutputDir = d }; break; }
                case "--data": { string? d = Next(); ok = d is not null; o = o with { DataDir = d! }; break; }
                default: ok = false; break;
            }
            return ok;
        });
        if (outcome != CommandLineOutcome.Run) return null;
        if (o.Quick && !epochsSet) o = o with { Epochs = 3 };
        else if (o.Permuted && !epochsSet) o = o with { Epochs = 28 };
        if (o.Quick && !lrSet) o = o with { LearningRate = 1e-2f };
        return o;
    }
}
