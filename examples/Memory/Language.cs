using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ScottPlot;
using SsmGen.Examples.Sonnets;
using SsmGen.Memory;
using SsmGen.Training;

namespace SsmGen.Examples.Memory;

/// <summary>One character model of the language comparison, trained and measured.</summary>
/// <param name="StateBytes">Memory a stream keeps after <see cref="StateLengths"/> characters (the recurrent state, or the key/value cache).</param>
public sealed record LanguageRun(string Kind, int Parameters, int DModel, int Steps, int KeptStep, double Seconds, double HeldOutBitsPerCharacter,
    double HeldOutAccuracy, long[] StateBytes, double FlopsPerToken, double MicrosecondsPerToken);

/// <summary>
/// Language at matched size: the sonnet Mamba, a tanh RNN and a transformer of ≈266,000 parameters trained alike on
/// sonnets 1–140, scored in bits per character on sonnets 141–154, with the memory each keeps per stream and the time
/// each streaming step takes.
/// </summary>
public static class Language
{
    public static readonly int[] StateLengths = [128, 2048];
    private const int FirstHeldOut = 141;

    public static List<LanguageRun> Run(int steps, int batch, int length, ulong seed, string dataDir, string output, Action<string> progress)
    {
        var data = SonnetData.Load(dataDir, progress);
        int[] train = CharVocabulary.Encode(data.Text(1, FirstHeldOut - 1));
        int[] heldOut = CharVocabulary.Encode(data.Text(FirstHeldOut, SonnetData.Count));
        progress($"sonnets: {train.Length:N0} training characters (1–{FirstHeldOut - 1}), {heldOut.Length:N0} held out ({FirstHeldOut}–{SonnetData.Count}); {steps:N0} steps of {batch} windows × {length} characters per model");
        (string Kind, Func<int, int, ModelUse, ISsmModel> Create)[] kinds =
        [
            ("Mamba", (b, l, use) => new SonnetModel(b, l, use)),
            ("RNN", (b, l, use) => new SonnetRnn(b, l, use)),
            ("attention", (b, l, use) => new SonnetAttention(b, l, use)),
        ];
        var runs = new List<LanguageRun>();
        foreach (var (kind, create) in kinds)
        {
            using var model = create(batch, length, ModelUse.Training);
            model.Initialize(seed);
            var trainer = new Trainer(model, new TrainerOptions { LearningRate = 2e-3f, WeightDecay = 0.01f, WarmupSteps = Math.Min(100, steps / 10), TotalSteps = steps });
            var evaluator = new Evaluator(model, batch, length);
            var rng = new Rng(seed + 3);
            var (x, y) = (new int[batch * length], new int[batch * length]);
            var best = (Loss: double.PositiveInfinity, Accuracy: 0.0, Step: 0, Parameters: model.Parameters.ToArray());
            var clock = Stopwatch.StartNew();
            int every = Math.Max(steps / 10, 1);
            for (int step = 1; step <= steps; step++)
            {
                for (int b = 0; b < batch; b++)
                {
                    int start = rng.NextInt(train.Length - length);
                    train.AsSpan(start, length).CopyTo(x.AsSpan(b * length));
                    train.AsSpan(start + 1, length).CopyTo(y.AsSpan(b * length));
                }
                var r = trainer.TrainStep(x, y, batch, length);
                if (step % every == 0 || step == steps)
                {
                    var (loss, accuracy) = evaluator.Evaluate(heldOut);
                    if (loss < best.Loss) best = (loss, accuracy, step, model.Parameters.ToArray());
                    progress($"  {kind}: step {step}, training {r.Loss / Math.Log(2):F3} bits/char, held-out {loss / Math.Log(2):F3} bits/char");
                }
            }
            double seconds = clock.Elapsed.TotalSeconds;
            best.Parameters.CopyTo(model.Parameters);
            var run = new LanguageRun(kind, model.Parameters.Length, model.Config.DModel, steps, best.Step, seconds, best.Loss / Math.Log(2), best.Accuracy,
                StateLengths.Select(l => ModelCost.StateBytes(model.Config, l)).ToArray(), ModelCost.FlopsPerToken(model.Config, length), StepTime(model, create(1, length, ModelUse.Inference), heldOut, length));
            runs.Add(run);
            progress($"{kind} ({run.Parameters:N0} parameters): {run.HeldOutBitsPerCharacter:F3} bits/char held out (step {run.KeptStep}), state {run.StateBytes[0]:N0} B after {StateLengths[0]} characters and {run.StateBytes[1]:N0} B after {StateLengths[1]}, {run.MicrosecondsPerToken:F0} µs per streamed character ({seconds:F0} s to train)");
            Write(output, batch, length, runs);
        }
        return runs;
    }

    /// <summary>
    /// Microseconds per character of one stream stepping through <paramref name="length"/> held-out characters (the
    /// best of five passes, after twenty untimed ones), on <paramref name="stream"/>: the trained parameters in an
    /// inference build for one stream, as a server would load them.
    /// </summary>
    private static double StepTime(ISsmModel trained, ISsmModel stream, int[] text, int length)
    {
        using var model = stream;
        trained.Parameters.CopyTo(model.Parameters);
        var state = model.CreateState();
        var y = new float[model.Config.Output];
        double best = double.PositiveInfinity;
        for (int warm = 0; warm < 20 * length; warm++)   // past the JIT's tiers before timing
        {
            if (warm % length == 0) state.Reset();
            model.Step(state, text[warm % length], y);
        }
        for (int pass = 0; pass < 5; pass++)
        {
            state.Reset();
            var clock = Stopwatch.StartNew();
            for (int t = 0; t < length; t++) model.Step(state, text[t], y);
            best = Math.Min(best, clock.Elapsed.TotalMicroseconds / length);
        }
        return best;
    }

    private static void Write(string output, int batch, int length, List<LanguageRun> runs)
    {
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "language.json"), JsonSerializer.Serialize(new { batch, length, stateLengths = StateLengths, runs }, new JsonSerializerOptions { WriteIndented = true }));
        var md = new StringBuilder();
        md.AppendLine("# Language at matched size: Mamba, RNN and attention on the sonnets");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Character models of ≈266,000 parameters, trained alike ({runs[0].Steps:N0} steps of {batch} windows × {length} characters of sonnets 1–{FirstHeldOut - 1}, AdamW 2e-3, cosine), scored on sonnets {FirstHeldOut}–{SonnetData.Count} at the best of ten checks. State bytes: what one stream keeps to go on (recurrent state, or the key/value cache). Time: one stream's Step per character on this machine, over {length} characters.");
        md.AppendLine();
        md.AppendLine("| model | parameters | d_model | held-out bits/char | accuracy | " + string.Join(" | ", StateLengths.Select(l => $"state bytes after {l:N0} chars")) + " | FLOPs/char | µs/char | train s |");
        md.AppendLine("|---|---|---|---|---|" + string.Concat(StateLengths.Select(_ => "---|")) + "---|---|---|");
        foreach (var r in runs)
            md.AppendLine($"| {r.Kind} | {r.Parameters:N0} | {r.DModel} | {r.HeldOutBitsPerCharacter:F3} | {r.HeldOutAccuracy:P1} | " + string.Join(" | ", r.StateBytes.Select(b => b.ToString("N0", CultureInfo.InvariantCulture))) + $" | {r.FlopsPerToken:N0} | {r.MicrosecondsPerToken:F0} | {r.Seconds:F0} |");
        md.AppendLine();
        md.AppendLine("![bits per character against state bytes](language.png)");
        File.WriteAllText(Path.Combine(output, "language.md"), md.ToString());

        var plt = new Plot();
        foreach (var r in runs)
        {
            var s = plt.Add.ScatterLine(r.StateBytes.Select(b => Math.Log10(b)).ToArray(), r.StateBytes.Select(_ => r.HeldOutBitsPerCharacter).ToArray());
            s.LegendText = r.Kind;
            s.MarkerSize = 8;
        }
        plt.Title("Held-out bits per character against the memory a stream keeps");
        plt.XLabel($"log₁₀ state bytes per stream (after {StateLengths[0]} and {StateLengths[1]:N0} characters)");
        plt.YLabel("held-out bits per character");
        plt.ShowLegend(Alignment.UpperRight);
        plt.SavePng(Path.Combine(output, "language.png"), 900, 550);
    }
}
