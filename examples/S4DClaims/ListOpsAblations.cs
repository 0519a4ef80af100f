using System.Diagnostics;
using Spectre.Console;
using SsmGen.Tasks;
using SsmGen.Training;

namespace SsmGen.Examples.S4DClaims;

/// <summary>
/// The ablations on ListOps at a size the 2-core machine trains in minutes: short expressions (by default 16–127
/// tokens), the quick stack reading them token by token; every init (ZOH, trained B), and Lin with bilinear and
/// with B fixed; several seeds; one JSON line per run (resumable) and the same table as psMNIST's. All runs share
/// the expressions (generated from one seed); the seed sets the model's initialization, dropout and the batch order.
/// </summary>
public static class ListOpsAblations
{
    public sealed record Options
    {
        public int Epochs { get; init; } = 10;
        public ulong[] Seeds { get; init; } = [1, 2, 3];
        public int Train { get; init; } = 10_000;
        public int HeldOut { get; init; } = 1_000;
        public int MinLength { get; init; } = 15;
        public int MaxLength { get; init; } = 128;
        public int Batch { get; init; } = 32;
        public float LearningRate { get; init; } = 4e-3f;
        public string OutDir { get; init; } = Path.Combine("docs", "s4d-claims", "ablations-listops");
    }

    private const ulong TaskSeed = 1;

    public static int Execute(Options o)
    {
        var task = new ListOpsOptions(o.MinLength, o.MaxLength);
        var (train, heldOut, _) = ListOps.Generate(task, o.Train, o.HeldOut, 1, TaskSeed);
        int length = o.MaxLength - 1;
        var counts = heldOut.GroupBy(e => e.Label).Select(g => g.Count()).ToArray();
        AnsiConsole.MarkupLineInterpolated($"ListOps ablations: {ListOpsAblationModels.Cells.Length} cells × {o.Seeds.Length} seeds, {o.Epochs} epochs of {train.Length:N0} expressions of {o.MinLength + 1}–{length} tokens (mean {train.Average(e => e.Tokens.Length):F0}), {heldOut.Length:N0} held out (majority class {100.0 * counts.Max() / heldOut.Length:F1}%); results in {Path.Combine(o.OutDir, "runs.jsonl")}");
        var runs = Ablations.Sweep(o.OutDir, ListOpsAblationModels.Cells, o.Seeds, o.Epochs, (init, disc, trainB, seed) => TrainOne(train, heldOut, length, init, disc, trainB, seed, o));
        string report = Ablations.Report(runs, o.Epochs,
            $"ListOps ({o.MinLength + 1}–{length} tokens, {train.Length:N0} training expressions)", factors: false); // not every cell is run
        File.WriteAllText(Path.Combine(o.OutDir, "table.md"), report);
        AnsiConsole.WriteLine(report);
        return 0;
    }

    private static Ablations.Run TrainOne(ListOpsExample[] train, ListOpsExample[] heldOut, int length, S4DInit init, Discretization disc, bool trainB, ulong seed, Options o)
    {
        using var model = ListOpsAblationModels.Create(init, disc, trainB, o.Batch, length);
        model.Initialize(seed);
        model.DropoutSeed = seed;
        int steps = train.Length / o.Batch;
        var trainer = new Trainer(model, new TrainerOptions
        {
            LearningRate = o.LearningRate,
            SsmLearningRate = 1e-3f,
            WeightDecay = 0.05f,
            WarmupSteps = Math.Min(200, steps),
            TotalSteps = steps * o.Epochs,
        });
        var tokens = new int[o.Batch * length];
        var labels = new int[o.Batch];
        void Fill(ListOpsExample[] set, int[] order, int from, int count)
        {
            for (int b = 0; b < count; b++)
            {
                var e = set[order[from + b]];
                ListOps.PadLeft(e.Tokens, tokens.AsSpan(b * length, length), length);
                labels[b] = e.Label;
            }
        }
        var accuracy = new double[o.Epochs];
        var clock = Stopwatch.StartNew();
        for (int epoch = 0; epoch < o.Epochs; epoch++)
        {
            var order = Enumerable.Range(0, train.Length).ToArray();
            var rng = new Rng(seed * 1000 + (ulong)epoch + 1);
            for (int i = order.Length - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (order[i], order[j]) = (order[j], order[i]); }
            for (int step = 0; step < steps; step++)
            {
                Fill(train, order, step * o.Batch, o.Batch);
                trainer.TrainStep(tokens, labels, o.Batch, length);
            }
            var all = Enumerable.Range(0, heldOut.Length).ToArray();
            int correct = 0;
            for (int s = 0; s < heldOut.Length; s += o.Batch)
            {
                int n = Math.Min(o.Batch, heldOut.Length - s);
                Fill(heldOut, all, s, n);
                correct += trainer.Evaluate(tokens.AsSpan(0, n * length), labels.AsSpan(0, n), n, length);
            }
            accuracy[epoch] = (double)correct / heldOut.Length;
        }
        return new Ablations.Run(init.ToString(), disc.ToString(), trainB, seed, o.Epochs, accuracy, clock.Elapsed.TotalSeconds);
    }
}
