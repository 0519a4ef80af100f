using System.Globalization;
using System.Text;
using System.Text.Json;
using ScottPlot;
using SsmGen.Interpretability;
using SsmGen.Reference;
using SsmGen.Tasks;
using SsmGen.Training;

namespace SsmGen.Examples.Memory;

/// <summary>One kind of token in one block, over held-out sequences: the distribution of Δ_t (mean over inner channels) or of the write ‖Δ_t·B_t·x_t‖.</summary>
public sealed record DeltaSummary(int Block, string Tokens, int Count, double Mean, double Median, double P10, double P90);

/// <summary>
/// Per inner channel of a block, its selectivity: the geometric-mean Δ on data tokens over that on noise tokens;
/// summarized over the block's channels (median, extremes, and the shares at least 2× and at most ½).
/// </summary>
public sealed record ChannelSelectivity(int Block, int Channels, double MedianRatio, double MinRatio, double MaxRatio, double AtLeastDouble, double AtMostHalf);

/// <summary>
/// The gate at work: a Mamba trained on selective copying, and its step sizes Δ_t (how much a token writes into the
/// state and how much of the past it lets go) on data tokens against noise tokens — "filters by relevance", measured.
/// </summary>
public static class Gate
{
    public const int Symbols = 16, InputVocab = Symbols + 3;
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Run(int length, int dataTokens, int steps, int batch, ulong seed, string output, Action<string> progress)
    {
        var task = new SelectiveCopying(length, dataTokens, Symbols);
        var (train, heldOut) = MemoryTasks.Generate(task, 20_000, 512, seed);
        using var model = new CopyMamba(batch, length);
        model.Initialize(seed);
        progress($"{task.Description}: {train.Count:N0} training and {heldOut.Count} held-out sequences; CopyMamba ({model.Parameters.Length:N0} parameters), {steps:N0} steps of batch {batch}");
        double accuracy = 0;
        TaskTraining.Train(model, train, steps, batch, seed, 250, (step, loss, trainer) =>
        {
            accuracy = TaskTraining.Accuracy(trainer, heldOut, batch);
            progress($"  step {step}: loss {loss:F3}, held-out accuracy on the copied tokens {accuracy:P1}");
        });

        progress("Δ_t on data and noise tokens of 64 held-out sequences");
        var samples = new Dictionary<(int Block, string Kind), List<double>>();
        // per block and inner channel: Σ log Δ and counts on data and on noise tokens, for each channel's selectivity
        var logSums = new Dictionary<int, (double[] Data, double[] Noise, int[] Counts)>();
        for (int s = 0; s < 64; s++)
        {
            var tokens = heldOut.Sequence(s);
            foreach (var v in SelectiveView.ForTokens(model, tokens))
                for (int t = 0; t < length; t++)
                {
                    string kind = KindOf(task, tokens[t]);
                    if (!logSums.TryGetValue(v.Block, out var sums)) logSums[v.Block] = sums = (new double[v.Inner], new double[v.Inner], new int[2]);
                    if (kind is "data" or "noise")
                    {
                        var target = kind == "data" ? sums.Data : sums.Noise;
                        for (int e = 0; e < v.Inner; e++) target[e] += Math.Log(v.Delta[t * v.Inner + e]);
                        sums.Counts[kind == "data" ? 0 : 1]++;
                    }
                    double mean = 0;
                    for (int e = 0; e < v.Inner; e++) mean += v.Delta[t * v.Inner + e];
                    var key = (v.Block, kind);
                    if (!samples.TryGetValue(key, out var list)) samples[key] = list = [];
                    list.Add(mean / v.Inner);
                }
        }
        var rows = Summarize(samples);
        var channels = logSums.OrderBy(p => p.Key).Select(p =>
        {
            var (data, noise, counts) = p.Value;
            var ratios = data.Select((d, e) => Math.Exp(d / counts[0] - noise[e] / counts[1])).Order().ToArray();
            return new ChannelSelectivity(p.Key, ratios.Length, ratios[ratios.Length / 2], ratios[0], ratios[^1],
                ratios.Count(r => r >= 2) / (double)ratios.Length, ratios.Count(r => r <= 0.5) / (double)ratios.Length);
        }).ToList();
        var writes = Writes(model, task, heldOut, 64);
        Write(output, task, steps, accuracy, rows, channels, samples, writes);
    }

    /// <summary>
    /// The write of each token into a block's state, ‖Δ_t·B_t·x_t‖ over the block's E·N states (from the float64
    /// reference), summarized by token kind over the first <paramref name="sequences"/> held-out sequences.
    /// </summary>
    private static List<DeltaSummary> Writes(ISsmModel model, SelectiveCopying task, MemoryTaskSet set, int sequences)
    {
        var reference = new ReferenceModel<double>(model.Config);
        var p = model.Parameters;
        for (int i = 0; i < p.Length; i++) reference.Parameters[i] = p[i];
        reference.Forward(set.Tokens.AsSpan(0, sequences * set.Length), sequences, set.Length);
        var norms = new Dictionary<(int Block, string Kind), List<double>>();
        for (int block = 0; block < model.Config.Layers.Count; block++)
            for (int b = 0; b < sequences; b++)
            {
                var (_, drive) = reference.MambaRecurrence(block, b);
                int width = drive.Length / set.Length;
                var tokens = set.Sequence(b);
                for (int t = 0; t < set.Length; t++)
                {
                    double sum = 0;
                    for (int j = 0; j < width; j++) sum += drive[t * width + j] * drive[t * width + j];
                    var key = (block, KindOf(task, tokens[t]));
                    if (!norms.TryGetValue(key, out var list)) norms[key] = list = [];
                    list.Add(Math.Sqrt(sum));
                }
            }
        return Summarize(norms);
    }

    /// <summary>Per block and token kind: count, mean, median and the 10th and 90th percentiles of the values.</summary>
    private static List<DeltaSummary> Summarize(Dictionary<(int Block, string Kind), List<double>> values) =>
        values.OrderBy(p => p.Key.Block).ThenBy(p => p.Key.Kind).Select(p =>
        {
            var v = p.Value.Order().ToArray();
            return new DeltaSummary(p.Key.Block, p.Key.Kind, v.Length, v.Average(), v[v.Length / 2], v[v.Length / 10], v[9 * v.Length / 10]);
        }).ToList();

    private static string KindOf(SelectiveCopying task, int token) =>
        token < task.Symbols ? "data" : token == task.Noise ? "noise" : token == task.Marker ? "marker" : "blank";

    private static void Write(string output, SelectiveCopying task, int steps, double accuracy, List<DeltaSummary> rows, List<ChannelSelectivity> channels,
        Dictionary<(int Block, string Kind), List<double>> samples, List<DeltaSummary> writes)
    {
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "gate.json"), JsonSerializer.Serialize(new { task = task.Description, steps, accuracy, rows, channels, writes }, new JsonSerializerOptions { WriteIndented = true }));
        var md = new StringBuilder();
        md.AppendLine("# The gate at work: Δ_t on selective copying");
        md.AppendLine();
        md.AppendLine(Inv, $"CopyMamba (2 Mamba blocks, d_model 64, N 16) trained {steps:N0} steps on {task.Description}; held-out accuracy on the copied tokens **{accuracy:P1}**. Δ_t is the step size a token gets, averaged over a block's inner channels: a large Δ writes the token into the state and lets the past decay (exp(Δ·A) smaller), a small one keeps the state and ignores the token.");
        md.AppendLine();
        md.AppendLine("| block | tokens | count | mean Δ | median | 10th pct | 90th pct |");
        md.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var r in rows) md.AppendLine(Inv, $"| {r.Block} | {r.Tokens} | {r.Count} | {r.Mean:G4} | {r.Median:G4} | {r.P10:G4} | {r.P90:G4} |");
        md.AppendLine();
        foreach (int block in rows.Select(r => r.Block).Distinct())
        {
            var data = rows.First(r => r.Block == block && r.Tokens == "data");
            var noise = rows.First(r => r.Block == block && r.Tokens == "noise");
            md.AppendLine(Inv, $"Block {block}: median Δ on data tokens {data.Median / noise.Median:F2}× that on noise tokens.");
        }
        md.AppendLine();
        md.AppendLine("Channel by channel (the mean over channels can hide channels that select in opposite directions): the ratio of a channel's geometric-mean Δ on data tokens to that on noise tokens.");
        md.AppendLine();
        md.AppendLine("| block | channels | median ratio | smallest | largest | channels ≥ 2× | channels ≤ ½ |");
        md.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var c in channels)
            md.AppendLine(Inv, $"| {c.Block} | {c.Channels} | {c.MedianRatio:F2} | {c.MinRatio:F2} | {c.MaxRatio:F2} | {c.AtLeastDouble:P1} | {c.AtMostHalf:P1} |");
        md.AppendLine();
        md.AppendLine("![Δ on data and noise tokens](gate.png)");
        md.AppendLine();
        md.AppendLine("What each token writes into the state: ‖Δ_t·B_t·x_t‖ over a block's E·N states (x_t the scan's input: SiLU of the convolved projection), by token kind.");
        md.AppendLine();
        md.AppendLine("| block | tokens | count | mean write | median | 10th pct | 90th pct |");
        md.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var r in writes) md.AppendLine(Inv, $"| {r.Block} | {r.Tokens} | {r.Count} | {r.Mean:G4} | {r.Median:G4} | {r.P10:G4} | {r.P90:G4} |");
        md.AppendLine();
        foreach (int block in writes.Select(r => r.Block).Distinct())
        {
            var data = writes.First(r => r.Block == block && r.Tokens == "data");
            var noise = writes.First(r => r.Block == block && r.Tokens == "noise");
            md.AppendLine(Inv, $"Block {block}: the median data token writes {data.Median / noise.Median:F2}× what the median noise token writes (90th percentile of noise: {noise.P90:G3}; 10th percentile of data: {data.P10:G3}).");
        }
        File.WriteAllText(Path.Combine(output, "gate.md"), md.ToString());

        var plt = new Plot();
        foreach (var kind in new[] { "noise", "data" })
        {
            var v = samples[(0, kind)].Select(Math.Log10).ToArray();
            var hist = ScottPlot.Statistics.Histogram.WithBinCount(40, v.Min(), v.Max());
            hist.AddRange(v);
            var bars = plt.Add.Bars(hist.Bins, hist.GetProbability().Select(p => p * 100).ToArray());
            bars.LegendText = $"{kind} tokens ({v.Length})";
        }
        plt.Title("Block 0: Δ_t (mean over inner channels) by token");
        plt.XLabel("log₁₀ Δ_t");
        plt.YLabel("% of tokens");
        plt.ShowLegend(Alignment.UpperRight);
        plt.SavePng(Path.Combine(output, "gate.png"), 900, 550);
    }
}
