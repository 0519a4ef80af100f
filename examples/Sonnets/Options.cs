using System.Globalization;

namespace SsmGen.Examples.Sonnets;

/// <summary>Command-line options of the example.</summary>
public sealed record Options
{
    public bool Quick { get; init; }
    public int Steps { get; init; } = 4000;
    public int Batch { get; init; } = 16;
    public int Length { get; init; } = 128;
    public float LearningRate { get; init; } = 4e-3f;
    /// <summary>Probability that a training input character is replaced by a random printable one (targets never are).</summary>
    public double Noise { get; init; } = 0.3;
    public ulong Seed { get; init; } = 1;
    public string? OutputDir { get; init; }
    public string DataDir { get; init; } = Path.Combine(".cache", "sonnets");

    public string Output => OutputDir ?? Path.Combine("runs", "sonnets" + (Quick ? "-quick" : ""));

    public const string Usage = """
        Trains a character-level Mamba model on sonnets 1–140 and reports the loss on sonnets 141–154.
        Options:
          --quick             a short run: 200 steps (under a minute on two cores)
          --steps N           training steps (default 4,000, about 5 minutes on two cores; 200 with --quick)
          --batch N           windows per step (default 16)
          --length N          characters per training window (default 128)
          --lr X              peak learning rate (default 0.004)
          --noise P           fraction of training input characters replaced by random printable ones, a
                              regularizer (default 0.3; 0 turns it off; targets are never changed)
          --seed N            seed of the initialization and the windows (default 1)
          --out DIR           where sonnets.safetensors and held-out.txt (sonnets 141–154) go (default runs/sonnets;
                              runs/sonnets-quick with --quick)
          --data DIR          cache of the sonnets package (default .cache/sonnets)
        """;

    /// <summary>
    /// The options, or null when the program should stop: <paramref name="exitCode"/> is 0 after --help (usage on
    /// <paramref name="output"/>), 2 after a bad option (message and usage on <paramref name="error"/>).
    /// </summary>
    public static Options? Parse(string[] args, TextWriter output, TextWriter error, out int exitCode)
    {
        exitCode = 0;
        var o = new Options();
        bool stepsSet = false;
        var outcome = CommandLine.Read(args, output, error, Usage, (a, Next) =>
        {
            bool ok = true;
            switch (a)
            {
                case "--quick": o = o with { Quick = true }; break;
                case "--steps": ok = int.TryParse(Next(), out int s) && s > 0; o = o with { Steps = s }; stepsSet = true; break;
                case "--batch": ok = int.TryParse(Next(), out int b) && b > 0; o = o with { Batch = b }; break;
                case "--length": ok = int.TryParse(Next(), out int l) && l is > 0 and <= 4096; o = o with { Length = l }; break;
                case "--lr": ok = float.TryParse(Next(), NumberStyles.Float, CultureInfo.InvariantCulture, out float lr) && lr > 0 && float.IsFinite(lr); o = o with { LearningRate = lr }; break;
                case "--noise": ok = double.TryParse(Next(), NumberStyles.Float, CultureInfo.InvariantCulture, out double p) && p is >= 0 and < 1; o = o with { Noise = p }; break;
                case "--seed": ok = ulong.TryParse(Next(), out ulong seed); o = o with { Seed = seed }; break;
                case "--out": { string? d = Next(); ok = !string.IsNullOrEmpty(d); o = o with { OutputDir = d }; break; }
                case "--data": { string? d = Next(); ok = !string.IsNullOrEmpty(d); o = o with { DataDir = d ?? "" }; break; }
                default: ok = false; break;
            }
            return ok;
        });
        if (outcome != CommandLineOutcome.Run)
        {
            exitCode = outcome == CommandLineOutcome.Help ? 0 : 2;
            return null;
        }
        if (o.Quick && !stepsSet) o = o with { Steps = 200 };
        return o;
    }
}
