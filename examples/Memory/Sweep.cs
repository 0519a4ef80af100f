using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ScottPlot;
using SsmGen.Memory;
using SsmGen.Tasks;

namespace SsmGen.Examples.Memory;

/// <summary>One model of the sweep: its layer kind, its state size N, and how to build it.</summary>
public sealed record SweepModel(string Kind, int N, Func<int, int, ISsmModel> Create);

/// <summary>A memory-curve point: the input token at lag τ before the marker, read from the state at the marker.</summary>
public sealed record LagPoint(int Lag, double Accuracy, double R2, double GaussianBits);

/// <summary>One trained model of the sweep and what its state keeps.</summary>
/// <param name="DataTokenAccuracy">Per data token j (in order), the probe's held-out accuracy reading it from the state at the marker.</param>
/// <param name="RetainedBits">Σ_j of Fano's lower bound on the bits the state holds about data token j (at most k·log₂ symbols).</param>
public sealed record SweepRun(string Kind, int N, int DModel, int Parameters, long StateValues, long StateBytes, double FlopsPerToken,
    int Steps, double Seconds, double FinalLoss, double HeldOutAccuracy, double[] DataTokenAccuracy, double RetainedBits, LagPoint[] MemoryCurve);

/// <summary>
/// The state-size sweep: S4D, Mamba, RNN and IDS at N = 2…64, every model near the same parameter budget, trained
/// alike on selective copying; held-out accuracy against N and against the state's bytes, FLOPs per token, and what
/// a linear probe reads from the state at the marker (the data tokens, and the input at each lag).
/// </summary>
public static class Sweep
{
    public const int Budget = 40_000;
    private const double BudgetTolerance = 0.06;
    public static readonly int[] StateSizes = [2, 4, 8, 16, 32, 64];
    public static readonly string[] Kinds = ["S4D", "Mamba", "RNN", "IDS"];
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static IReadOnlyList<SweepModel> Models { get; } =
    [
        new("S4D", 2, (batch, length) => new SweepS4DN2(batch, length)),
        new("S4D", 4, (batch, length) => new SweepS4DN4(batch, length)),
        new("S4D", 8, (batch, length) => new SweepS4DN8(batch, length)),
        new("S4D", 16, (batch, length) => new SweepS4DN16(batch, length)),
        new("S4D", 32, (batch, length) => new SweepS4DN32(batch, length)),
        new("S4D", 64, (batch, length) => new SweepS4DN64(batch, length)),
        new("Mamba", 2, (batch, length) => new SweepMambaN2(batch, length)),
        new("Mamba", 4, (batch, length) => new SweepMambaN4(batch, length)),
        new("Mamba", 8, (batch, length) => new SweepMambaN8(batch, length)),
        new("Mamba", 16, (batch, length) => new SweepMambaN16(batch, length)),
        new("Mamba", 32, (batch, length) => new SweepMambaN32(batch, length)),
        new("Mamba", 64, (batch, length) => new SweepMambaN64(batch, length)),
        new("RNN", 2, (batch, length) => new SweepRnnN2(batch, length)),
        new("RNN", 4, (batch, length) => new SweepRnnN4(batch, length)),
        new("RNN", 8, (batch, length) => new SweepRnnN8(batch, length)),
        new("RNN", 16, (batch, length) => new SweepRnnN16(batch, length)),
        new("RNN", 32, (batch, length) => new SweepRnnN32(batch, length)),
        new("RNN", 64, (batch, length) => new SweepRnnN64(batch, length)),
        new("IDS", 2, (batch, length) => new SweepIdsN2(batch, length)),
        new("IDS", 4, (batch, length) => new SweepIdsN4(batch, length)),
        new("IDS", 8, (batch, length) => new SweepIdsN8(batch, length)),
        new("IDS", 16, (batch, length) => new SweepIdsN16(batch, length)),
        new("IDS", 32, (batch, length) => new SweepIdsN32(batch, length)),
        new("IDS", 64, (batch, length) => new SweepIdsN64(batch, length)),
    ];

    public static List<SweepRun> Run(int length, int dataTokens, int steps, int batch, int heldOut, ulong seed, IReadOnlyList<int> sizes, IReadOnlyList<string> kinds,
        string output, Action<string> progress)
    {
        var chosen = Models.Where(m => kinds.Contains(m.Kind) && sizes.Contains(m.N)).ToList();
        if (chosen.Count == 0) throw new ArgumentException("No model of the sweep matches the kinds and state sizes asked.");
        foreach (var m in chosen)
        {
            using var probe = m.Create(1, 1);
            double off = probe.Parameters.Length / (double)Budget - 1;
            if (Math.Abs(off) > BudgetTolerance)
                throw new InvalidOperationException($"{m.Kind} N = {m.N} has {probe.Parameters.Length:N0} parameters, {off:P1} off the budget of {Budget:N0}.");
        }
        var task = new SelectiveCopying(length, dataTokens, Gate.Symbols);
        var (train, test) = MemoryTasks.Generate(task, 20_000, heldOut, seed);
        progress($"{task.Description}: {train.Count:N0} training and {test.Count:N0} held-out sequences; {chosen.Count} models of ≈{Budget:N0} parameters, {steps:N0} steps of batch {batch} each");
        Directory.CreateDirectory(output);
        var runs = new List<SweepRun>();
        foreach (var m in chosen)
        {
            var clock = Stopwatch.StartNew();
            using var model = m.Create(batch, length);
            model.Initialize(seed);
            string name = $"{m.Kind} N = {m.N} (d_model {model.Config.DModel}, {model.Parameters.Length:N0} parameters)";
            float loss = float.NaN;
            double accuracy = 0;
            TaskTraining.Train(model, train, steps, batch, seed, Math.Max(steps / 4, 1), (step, l, trainer) =>
            {
                loss = l;
                accuracy = TaskTraining.Accuracy(trainer, test, batch);
                progress($"  {name}: step {step}, loss {l:F3}, held-out accuracy {accuracy:P1}");
            });
            double seconds = clock.Elapsed.TotalSeconds;
            var (dataAccuracy, retained, curve) = ProbeState(model, task, test);
            var run = new SweepRun(m.Kind, m.N, model.Config.DModel, model.Parameters.Length, ModelCost.StateValues(model.Config, length),
                ModelCost.StateBytes(model.Config, length), ModelCost.FlopsPerToken(model.Config, length), steps, seconds, loss, accuracy,
                dataAccuracy, retained, curve);
            runs.Add(run);
            progress($"{name}: {accuracy:P1} held out, state {run.StateBytes:N0} B, {run.FlopsPerToken:N0} FLOPs/token, the state at the marker holds ≥ {retained:F1} of {dataTokens * Math.Log2(Gate.Symbols):F0} bits of the data ({seconds:F0} s)");
            Write(output, task, runs);   // after every model, so an interrupted sweep keeps what it measured
        }
        return runs;
    }

    /// <summary>
    /// The state each held-out sequence leaves at the marker, probed: each data token (one-hot over the symbols) and
    /// the input token at lags before the marker. The probe is fitted on three quarters of the sequences, scored on the rest.
    /// </summary>
    private static (double[] DataAccuracy, double RetainedBits, LagPoint[] Curve) ProbeState(ISsmModel model, SelectiveCopying task, MemoryTaskSet set)
    {
        int prefix = task.Length - task.DataTokens, count = set.Count, fit = 3 * count / 4;
        var tokens = new int[count * prefix];
        for (int s = 0; s < count; s++) set.Sequence(s)[..prefix].CopyTo(tokens.AsSpan(s * prefix));
        var all = MemoryCurve.FinalStates(model, tokens, count, prefix);
        var states = VaryingColumns(all, count, out int d);

        // one probe reads every data token: outputs (k, symbols), each token's accuracy its own arg-max over its symbols
        int k = task.DataTokens, v = task.Symbols;
        var targets = new float[count * k * v];
        for (int s = 0; s < count; s++)
            for (int j = 0; j < k; j++) targets[(s * k + j) * v + set.Targets[s * task.Length + prefix + j]] = 1;
        var probe = LinearProbe.Fit(states.AsSpan(0, fit * d), targets.AsSpan(0, fit * k * v), fit, d, k * v, ridge: 1.0);
        var predicted = probe.Predict(states.AsSpan(fit * d), count - fit);
        var data = new double[k];
        for (int s = fit; s < count; s++)
            for (int j = 0; j < k; j++)
            {
                var row = predicted.AsSpan(((s - fit) * k + j) * v, v);
                if (targets[(s * k + j) * v + ArgMax(row)] == 1) data[j] += 1.0 / (count - fit);
            }
        double retained = data.Sum(a => new ProbeScore(0, a, 0).FanoBits(v));
        int body = prefix - 1;
        int[] lags = [.. new[] { 1, 2, 4, 8, 16, body }.Where(l => l <= body).Distinct()];
        var curve = MemoryCurve.Measure(states, count, d, tokens, prefix, task.InputVocab, lags, fit)
            .Select((p, i) => new LagPoint(lags[i], p.Accuracy, p.R2, p.GaussianBits)).ToArray();
        return (data, retained, curve);
    }

    private static int ArgMax(ReadOnlySpan<double> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    /// <summary>The columns that vary across rows (what depends on the sequence; tables derived from the parameters drop out).</summary>
    private static float[] VaryingColumns(float[] x, int rows, out int kept)
    {
        int d = x.Length / rows;
        var keep = Enumerable.Range(0, d).Where(j => Enumerable.Range(1, rows - 1).Any(r => x[r * d + j] != x[j])).ToArray();
        kept = Math.Max(keep.Length, 1);
        var y = new float[rows * kept];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < keep.Length; c++) y[r * kept + c] = x[r * d + keep[c]];
        return y;
    }

    private static void Write(string output, SelectiveCopying task, List<SweepRun> runs)
    {
        double maxBits = task.DataTokens * Math.Log2(task.Symbols);
        File.WriteAllText(Path.Combine(output, "sweep.json"), JsonSerializer.Serialize(new { task = task.Description, budget = Budget, runs }, new JsonSerializerOptions { WriteIndented = true }));
        var md = new StringBuilder();
        md.AppendLine("# State-size sweep on selective copying");
        md.AppendLine();
        md.AppendLine(Inv, $"{task.Description}; every model two blocks, {Budget:N0} parameters ± {BudgetTolerance:P0} (the width d_model chosen for the budget), trained {runs[0].Steps:N0} steps alike. *Retained bits*: Fano's lower bound on what the state at the marker holds about the {task.DataTokens} data tokens, from a linear probe's held-out accuracy (at most {maxBits:F0} bits). State bytes: the recurrent memory per sequence in float32; FLOPs per streaming step.");
        md.AppendLine();
        md.AppendLine("| kind | N | d_model | parameters | state bytes | FLOPs/token | held-out accuracy | retained bits | data-token probe accuracy | train s |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in runs)
            md.AppendLine(Inv, $"| {r.Kind} | {r.N} | {r.DModel} | {r.Parameters:N0} | {r.StateBytes:N0} | {r.FlopsPerToken:N0} | {r.HeldOutAccuracy:P1} | {r.RetainedBits:F1} | {string.Join(" ", r.DataTokenAccuracy.Select(a => a.ToString("P0", Inv)))} | {r.Seconds:F0} |");
        md.AppendLine();
        var lags = runs[0].MemoryCurve.Select(p => p.Lag).ToArray();
        md.AppendLine("Memory curve: the probe's held-out accuracy reading the input token at lag τ before the marker from the state at the marker (chance is the share of noise tokens, about " + (1 - (double)task.DataTokens / (task.Length - task.DataTokens - 1)).ToString("P0", Inv) + "); R² and Gaussian bits per lag are in the JSON.");
        md.AppendLine();
        md.AppendLine("| kind | N | " + string.Join(" | ", lags.Select(l => $"τ = {l}")) + " |");
        md.AppendLine("|---|---|" + string.Concat(lags.Select(_ => "---|")));
        foreach (var r in runs) md.AppendLine($"| {r.Kind} | {r.N} | " + string.Join(" | ", r.MemoryCurve.Select(p => p.Accuracy.ToString("P1", Inv))) + " |");
        md.AppendLine();
        md.AppendLine("![accuracy against N](sweep-accuracy.png)");
        md.AppendLine("![accuracy against state bytes](sweep-state-bytes.png)");
        md.AppendLine("![retained bits against state bytes](sweep-rate-distortion.png)");
        File.WriteAllText(Path.Combine(output, "sweep.md"), md.ToString());

        Chart(output, "sweep-accuracy.png", runs, r => Math.Log2(r.N), r => 100 * r.HeldOutAccuracy, "log₂ N (state size per channel)", "held-out accuracy (%)", "Selective copying against state size", null);
        Chart(output, "sweep-state-bytes.png", runs, r => Math.Log10(r.StateBytes), r => 100 * r.HeldOutAccuracy, "log₁₀ state bytes per sequence", "held-out accuracy (%)", "Selective copying against the state's bytes", null);
        Chart(output, "sweep-rate-distortion.png", runs, r => Math.Log10(r.StateBytes), r => r.RetainedBits, "log₁₀ state bytes per sequence", "bits about the data held at the marker (Fano bound)", "Measured rate–distortion: retained information against state size", maxBits);
    }

    private static void Chart(string output, string file, List<SweepRun> runs, Func<SweepRun, double> x, Func<SweepRun, double> y, string xLabel, string yLabel, string title, double? ceiling)
    {
        var plt = new Plot();
        foreach (var kind in runs.Select(r => r.Kind).Distinct())
        {
            var mine = runs.Where(r => r.Kind == kind).OrderBy(x).ToArray();
            var line = plt.Add.Scatter(mine.Select(x).ToArray(), mine.Select(y).ToArray());
            line.LegendText = kind;
        }
        if (ceiling is { } c)
        {
            var h = plt.Add.HorizontalLine(c);
            h.LinePattern = LinePattern.Dashed;
            h.LegendText = "all of the data";
        }
        plt.Title(title);
        plt.XLabel(xLabel);
        plt.YLabel(yLabel);
        plt.ShowLegend(Alignment.LowerRight);
        plt.SavePng(Path.Combine(output, file), 900, 550);
    }
}
