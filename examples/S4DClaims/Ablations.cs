using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;
using SsmGen.Examples.Mnist;
using SsmGen.Training;

namespace SsmGen.Examples.S4DClaims;

/// <summary>
/// The S4D paper's ablations on psMNIST at a budget the 2-core machine affords: every initialization × discretization
/// × B trained or fixed (<see cref="AblationModels"/>), each over several seeds; one JSON line per finished run, so a
/// sweep that stops resumes where it was. Every run sees the same digit permutation and the same held-out digits; the
/// seed sets the model's initialization, dropout and the order of the training digits.
/// </summary>
public static class Ablations
{
    public sealed record Options
    {
        public int Epochs { get; init; } = 3;
        public ulong[] Seeds { get; init; } = [1, 2];
        public int? TrainLimit { get; init; }
        public string OutDir { get; init; } = Path.Combine("docs", "s4d-claims", "ablations-psmnist");
        public string DataDir { get; init; } = Path.Combine(".cache", "mnist");
        public int Batch { get; init; } = 16;
        public float LearningRate { get; init; } = 1e-2f;
    }

    /// <summary>One finished run: its cell, seed, the held-out accuracy after each epoch and the training time.</summary>
    public sealed record Run(string Init, string Discretization, bool TrainB, ulong Seed, int Epochs, double[] Accuracy, double Seconds)
    {
        [JsonIgnore] public double Final => Accuracy[^1];
        [JsonIgnore] public string Cell => $"{Init}/{Discretization}/{(TrainB ? "trained B" : "B = 1")}";
    }

    /// <summary>The permutation and split every run shares (the seeds vary the model, not the task).</summary>
    internal const ulong TaskSeed = 1;

    public static int Execute(Options o)
    {
        var data = MnistData.Load(o.DataDir, m => AnsiConsole.MarkupLineInterpolated($"[grey]{m}[/]"));
        var (train, test) = data.Split(testCount: 1500, TaskSeed);
        if (o.TrainLimit is int limit) train = train[..Math.Min(limit, train.Length)];
        int[] perm = MnistData.PsmnistPermutation(TaskSeed);
        var cells = (from init in AblationModels.Inits from disc in AblationModels.Discretizations from b in new[] { false, true } select (init, disc, b)).ToList();
        AnsiConsole.MarkupLineInterpolated($"psMNIST ablations: {cells.Count} cells × {o.Seeds.Length} seeds, {o.Epochs} epochs of {train.Length:N0} digits each (batch {o.Batch}, lr {o.LearningRate}), {test.Length:N0} held-out digits; results in {Path.Combine(o.OutDir, "runs.jsonl")}");
        var runs = Sweep(o.OutDir, cells, o.Seeds, o.Epochs, (init, disc, trainB, seed) => Train(data, train, test, perm, init, disc, trainB, seed, o));
        string report = Report(runs, o.Epochs, "psMNIST");
        File.WriteAllText(Path.Combine(o.OutDir, "table.md"), report);
        AnsiConsole.WriteLine(report);
        return 0;
    }

    /// <summary>
    /// Every cell × seed at <paramref name="epochs"/> epochs, resumable: runs already in OUT/runs.jsonl are skipped,
    /// each new one is appended as it finishes. Returns the runs of these epochs, old and new.
    /// </summary>
    internal static List<Run> Sweep(string outDir, IReadOnlyList<(S4DInit Init, Discretization Discretization, bool TrainB)> cells, ulong[] seeds, int epochs,
        Func<S4DInit, Discretization, bool, ulong, Run> train)
    {
        Directory.CreateDirectory(outDir);
        string runsPath = Path.Combine(outDir, "runs.jsonl");
        var runs = File.Exists(runsPath)
            ? File.ReadAllLines(runsPath).Where(l => l.Length > 0).Select(l => JsonSerializer.Deserialize(l, RunJson.Default.Run)!).ToList()
            : [];
        var clock = Stopwatch.StartNew();
        int total = cells.Count * seeds.Length, done = 0;
        foreach (ulong seed in seeds)
            foreach (var (init, disc, trainB) in cells)
            {
                done++;
                if (runs.Any(r => r.Init == init.ToString() && r.Discretization == disc.ToString() && r.TrainB == trainB && r.Seed == seed && r.Epochs == epochs))
                    continue;
                var run = train(init, disc, trainB, seed);
                runs.Add(run);
                File.AppendAllText(runsPath, JsonSerializer.Serialize(run, RunJson.Default.Run) + "\n");
                AnsiConsole.MarkupLineInterpolated($"[[{done}/{total}]] {run.Cell}, seed {seed}: [bold]{100 * run.Final:F2}%[/] ({string.Join(" → ", run.Accuracy.Select(a => $"{100 * a:F1}"))}), {run.Seconds:F0} s; {clock.Elapsed.TotalMinutes:F1} min so far");
            }
        return runs.Where(r => r.Epochs == epochs).ToList();
    }

    /// <summary>
    /// One run of a cell; <paramref name="watch"/> sees the model after initialization (false) and after training
    /// (true), before it is disposed.
    /// </summary>
    internal static Run Train(MnistData data, int[] train, int[] test, int[] perm, S4DInit init, Discretization disc, bool trainB, ulong seed, Options o,
        Action<ISsmModel, bool>? watch = null)
    {
        var model = AblationModels.Create(init, disc, trainB, o.Batch, MnistData.Pixels);
        model.Initialize(seed);
        model.DropoutSeed = seed;
        watch?.Invoke(model, false);
        int steps = train.Length / o.Batch;
        var trainer = new Trainer(model, MnistData.Recipe(o.LearningRate, steps, o.Epochs));
        var xb = new float[o.Batch * MnistData.Pixels];
        var yb = new int[o.Batch];
        var accuracy = new double[o.Epochs];
        var clock = Stopwatch.StartNew();
        for (int epoch = 0; epoch < o.Epochs; epoch++)
        {
            var order = (int[])train.Clone();
            MnistData.Shuffle(order, new Rng(seed * 1000 + (ulong)epoch + 1));
            for (int step = 0; step < steps; step++)
            {
                for (int b = 0; b < o.Batch; b++)
                {
                    int k = order[step * o.Batch + b];
                    data.CopySequence(k, perm, xb.AsSpan(b * MnistData.Pixels, MnistData.Pixels));
                    yb[b] = data.Labels[k];
                }
                trainer.TrainStep(xb, yb, o.Batch, MnistData.Pixels);
            }
            accuracy[epoch] = data.Accuracy(trainer, test, perm, o.Batch);
        }
        watch?.Invoke(model, true);
        model.Dispose();
        return new Run(init.ToString(), disc.ToString(), trainB, seed, o.Epochs, accuracy, clock.Elapsed.TotalSeconds);
    }

    /// <summary>The table per cell (mean and range over seeds) and per factor (mean over the other two), as Markdown.</summary>
    /// <param name="factors">Whether to add the per-factor means (meaningful when every cell was run).</param>
    public static string Report(List<Run> runs, int epochs, string task, bool factors = true)
    {
        string Stat(IEnumerable<Run> rs)
        {
            var a = rs.Select(r => 100 * r.Final).ToArray();
            return a.Length == 0 ? "—" : a.Length == 1 ? $"{a[0]:F2}" : $"{a.Average():F2} ({a.Min():F2}–{a.Max():F2})";
        }
        var s = new StringBuilder();
        s.AppendLine(CultureInfo.InvariantCulture, $"{task} held-out accuracy (%) after {epochs} epochs: mean over seeds (range); {runs.Count} runs, seeds {string.Join(", ", runs.Select(r => r.Seed).Distinct().Order())}.");
        s.AppendLine();
        s.AppendLine("| init | ZOH, B = 1 | ZOH, trained B | bilinear, B = 1 | bilinear, trained B | all four |");
        s.AppendLine("|---|---|---|---|---|---|");
        foreach (var init in AblationModels.Inits.Select(i => i.ToString()))
        {
            var row = runs.Where(r => r.Init == init).ToList();
            s.Append(CultureInfo.InvariantCulture, $"| {init} |");
            foreach (var disc in AblationModels.Discretizations.Select(d => d.ToString()))
                foreach (bool b in new[] { false, true })
                    s.Append(CultureInfo.InvariantCulture, $" {Stat(row.Where(r => r.Discretization == disc && r.TrainB == b))} |");
            s.AppendLine(CultureInfo.InvariantCulture, $" {Stat(row)} |");
        }
        if (!factors) return s.ToString();
        s.AppendLine();
        s.AppendLine("| factor | level | mean over the other factors and seeds (range) |");
        s.AppendLine("|---|---|---|");
        foreach (var init in AblationModels.Inits.Select(i => i.ToString())) s.AppendLine(CultureInfo.InvariantCulture, $"| init | {init} | {Stat(runs.Where(r => r.Init == init))} |");
        foreach (var disc in AblationModels.Discretizations.Select(d => d.ToString())) s.AppendLine(CultureInfo.InvariantCulture, $"| discretization | {disc} | {Stat(runs.Where(r => r.Discretization == disc))} |");
        foreach (bool b in new[] { false, true }) s.AppendLine(CultureInfo.InvariantCulture, $"| B | {(b ? "trained" : "fixed at 1")} | {Stat(runs.Where(r => r.TrainB == b))} |");
        return s.ToString();
    }
}

[JsonSerializable(typeof(Ablations.Run))]
internal partial class RunJson : JsonSerializerContext { }
