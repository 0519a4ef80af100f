using System.Globalization;
using System.Text;
using SsmGen.Checkpoints;
using SsmGen.Interpretability;
using SsmGen.Reference;

namespace SsmGen.Examples.Oscillators;

/// <summary>Sequences to evaluate on: (count, length, input width) inputs, a label each.</summary>
public sealed record Sequences(float[] Inputs, int[] Labels, int Length, string Description)
{
    public int Count => Labels.Length;
}

/// <summary>What the report measures, for the console and for tests.</summary>
public sealed record ReportSummary(ModelConfig Config, double KernelCheck, double OperatorVsReference, IReadOnlyList<(string Order, double Accuracy)> Truncation, double? RingSpeedPredicted, double RingSpeedMeasured);

/// <summary>The PNG figures; the report's text and CSV do not depend on them.</summary>
public interface IFigures
{
    void FrequencyDamping(string path, S4DBlockOscillators block);
    void Kernel(string path, S4DBlockOscillators block, int channel, int length);
    void Ring(string path, double[] ring, int length, int nodes, string title);
}

/// <summary>
/// The oscillator report of an S4D checkpoint (issue: S4D as an exactly solvable oscillator network): the oscillators,
/// the kernels as damped sinusoids, the ring and its waves, the exact operator and its check, and the accuracy of
/// the model with its decoders cut at orders 1, 2, 3 of the wave series. Writes report.md, CSV, text and LaTeX
/// into one folder, and PNG figures when given <see cref="IFigures"/>.
/// </summary>
public static class OscillatorReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static ReportSummary Write(string checkpoint, string output, Sequences heldOut, Sequences calibration, IFigures? figures,
        Action<string> progress, Discretization discretization = Discretization.Zoh, Pooling pooling = Pooling.Mean, int block = 0, int? channel = null)
    {
        var file = SafetensorsFile.Read(checkpoint);
        var read = S4DCheckpoint.Read(file, discretization, pooling);
        var config = read.Config;
        if (heldOut.Inputs.Length != heldOut.Count * heldOut.Length * config.InputWidth)
            throw new ArgumentException($"The held-out sequences hold {heldOut.Inputs.Length} values, not {heldOut.Count}·{heldOut.Length}·{config.InputWidth} for this model.");
        if ((uint)block >= (uint)config.Layers.Count) throw new ArgumentException($"Block {block} is outside 0..{config.Layers.Count - 1}.");
        Directory.CreateDirectory(output);
        var op = S4DOperator.FromParameters(config, read.Parameters);
        var view = op.Oscillators;
        var md = new StringBuilder();
        md.AppendLine(Inv, $"# Oscillator report: `{Path.GetFileName(checkpoint)}`");
        md.AppendLine();
        md.AppendLine(Inv, $"{config.Layers.Count} S4D blocks, H = {config.DModel}, N = {((S4DLayerConfig)config.Layers[0]).N} ({view.Blocks[0].Modes} oscillators per channel), " +
            $"{(config.TokenInput ? $"vocabulary {config.Vocab}" : $"{config.Input} input feature(s)")}, {config.Output} outputs; {read.Parameters.Length:N0} parameters. " +
            $"Read from the tensor names and shapes; stated, not stored in the checkpoint: {(discretization == Discretization.Zoh ? "ZOH" : "bilinear")} discretization, {pooling.ToString().ToLowerInvariant()} pooling. " +
            $"Held-out data: {heldOut.Description}.");
        md.AppendLine();

        progress("oscillators: table and plots");
        double kernelCheck = Oscillators(md, view, config, read.Parameters, output, figures);
        var s4d = view.Blocks[block];
        int h = channel ?? Enumerable.Range(0, s4d.Channels).MaxBy(c => s4d.Channel(c).ToArray().Sum(o => o.Amplitude));
        if ((uint)h >= (uint)s4d.Channels) throw new ArgumentException($"Channel {h} is outside 0..{s4d.Channels - 1}.");
        KernelSection(md, s4d, h, kernelCheck, output, figures);

        progress("the ring: impulse and a held-out sequence");
        var (predicted, measured) = RingSection(md, op, s4d, h, heldOut, output, figures);

        progress("the exact operator: text, LaTeX and its check");
        double operatorCheck = OperatorSection(md, op, config, read.Parameters, heldOut, output);

        progress("wave interactions: the decoder series at orders 1, 2, 3");
        var truncation = Interactions(md, op, heldOut, calibration, output, progress);

        File.WriteAllText(Path.Combine(output, "report.md"), md.ToString());
        return new ReportSummary(config, kernelCheck, operatorCheck, truncation, predicted, measured);
    }

    private static double Oscillators(StringBuilder md, OscillatorView view, ModelConfig config, float[] parameters, string output, IFigures? figures)
    {
        var csv = new StringBuilder("block,channel,mode,re_A,im_A,dt,phase_advance,step_angle,damping,radius,decay_steps,quality,amplitude,phase\n");
        foreach (var b in view.Blocks)
            foreach (var o in b.Oscillators)
                csv.AppendLine(Inv, $"{o.Block},{o.Channel},{o.Mode},{o.A.Real:G9},{o.A.Imaginary:G9},{o.Dt:G9},{o.PhaseAdvance:G9},{o.StepAngle:G9},{o.Damping:G9},{o.Radius:G12},{o.DecaySteps:G9},{o.Quality:G9},{o.Amplitude:G9},{o.Phase:G9}");
        File.WriteAllText(Path.Combine(output, "oscillators.csv"), csv.ToString());

        md.AppendLine("## 1. The oscillators");
        md.AppendLine();
        md.AppendLine("Every mode n of every channel is a damped oscillator: A = −γ + iω, Ā = r·e^{iθ}, W = C·B̄ = |W|e^{iφ}. " +
            "All of them, one row each, are in `oscillators.csv`. Medians (and the 10th–90th percentile range) per block:");
        md.AppendLine();
        md.AppendLine("| block | frequency ω | phase advance Δω (rad/step) | damping γ | decay time (steps) | quality ω/2γ | amplitude 2\\|W\\| | share of the amplitude in the strongest 10% |");
        md.AppendLine("|---|---|---|---|---|---|---|---|");
        double kernelCheck = 0;
        foreach (var b in view.Blocks)
        {
            var os = b.Oscillators;
            string Q(Func<Oscillator, double> f)
            {
                var v = os.Select(f).Order().ToArray();
                double P(double q) => v[(int)Math.Round(q * (v.Length - 1))];
                return $"{P(0.5):G3} ({P(0.1):G3}–{P(0.9):G3})";
            }
            var amplitudes = os.Select(o => o.Amplitude).OrderDescending().ToArray();
            double top = amplitudes.Take(Math.Max(1, amplitudes.Length / 10)).Sum() / amplitudes.Sum();
            md.AppendLine(Inv, $"| {b.Block} | {Q(o => o.Frequency)} | {Q(o => Math.Abs(o.PhaseAdvance))} | {Q(o => o.Damping)} | {Q(o => o.DecaySteps)} | {Q(o => o.Quality)} | {Q(o => o.Amplitude)} | {top:P0} |");
            figures?.FrequencyDamping(Path.Combine(output, $"frequency-damping-block{b.Block}.png"), b);
            kernelCheck = Math.Max(kernelCheck, KernelCheck(config, parameters, b, 784));
        }
        md.AppendLine();
        if (figures is not null)
        {
            foreach (var b in view.Blocks) md.AppendLine(Inv, $"![block {b.Block}](frequency-damping-block{b.Block}.png)");
            md.AppendLine();
        }
        md.AppendLine("The strongest oscillators of each block:");
        md.AppendLine();
        md.AppendLine("| block | channel | mode | ω | Δω | decay (steps) | Q | 2\\|W\\| | φ |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var b in view.Blocks)
            foreach (var o in b.Oscillators.OrderByDescending(o => o.Amplitude).Take(5))
                md.AppendLine(Inv, $"| {o.Block} | {o.Channel} | {o.Mode} | {o.Frequency:G4} | {o.PhaseAdvance:G4} | {o.DecaySteps:G4} | {o.Quality:G4} | {o.Amplitude:G4} | {o.Phase:F3} |");
        md.AppendLine();
        return kernelCheck;
    }

    /// <summary>Largest |Σ damped sinusoids − K| over the largest |K| of every channel, K from the reference's complex powers.</summary>
    private static double KernelCheck(ModelConfig config, float[] parameters, S4DBlockOscillators b, int length)
    {
        var s = (S4DLayerConfig)config.Layers[b.Block];
        var reference = new S4DReference<double>(config.DModel, s.N, s.Discretization);
        var p = Array.ConvertAll(parameters, v => (double)v);
        var table = ParameterLayout.Build(config).ToDictionary(t => t.Name);
        Span<double> T(string name) => table.TryGetValue($"layers.{b.Block}.mixer.{name}", out var t) ? p.AsSpan(t.Offset, t.Length) : Span<double>.Empty;
        var k = reference.Kernel(new(T("log_dt"), T("log_A_real"), T("A_imag"), T("B"), T("C"), T("D")), length);
        double worst = 0;
        for (int c = 0; c < b.Channels; c++)
        {
            var sum = b.Kernel(c, length, includeSkip: false);
            double scale = 0, diff = 0;
            for (int l = 0; l < length; l++) { scale = Math.Max(scale, Math.Abs(k[c * length + l])); diff = Math.Max(diff, Math.Abs(k[c * length + l] - sum[l])); }
            worst = Math.Max(worst, diff / Math.Max(scale, 1e-300));
        }
        return worst;
    }

    private static void KernelSection(StringBuilder md, S4DBlockOscillators b, int h, double check, string output, IFigures? figures)
    {
        md.AppendLine("## 2. The kernel as a sum of damped sinusoids");
        md.AppendLine();
        md.AppendLine(Inv, $"K_h(l) = D_h·δ_l + Σ_n 2|W_n|·r_nˡ·cos(θ_n·l + φ_n). Against the kernel computed as 2·Re Σ W·Āˡ (the reference implementation), every channel of every block over 784 lags: largest difference **{check:E1}** of the channel's largest value.");
        md.AppendLine();
        var strongest = b.Channel(h).ToArray().OrderByDescending(o => o.Amplitude).Take(3).ToArray();
        string terms = string.Join("; ", strongest.Select(o => string.Create(Inv, $"mode {o.Mode}: 2|W| = {o.Amplitude:G3}, ω = {o.Frequency:G3}, decay {o.DecaySteps:G3} steps")));
        md.AppendLine(Inv, $"Block {b.Block}, channel {h} (the channel with the most oscillator amplitude): D = {b.Skip[h]:G4}; its strongest oscillators {terms}.");
        md.AppendLine();
        if (figures is not null)
        {
            figures.Kernel(Path.Combine(output, "kernel.png"), b, h, 400);
            md.AppendLine("![kernel](kernel.png)");
            md.AppendLine();
        }
    }

    private static (double? Predicted, double Measured) RingSection(StringBuilder md, S4DOperator op, S4DBlockOscillators b, int h, Sequences heldOut, string output, IFigures? figures)
    {
        int m = b.Modes, length = Math.Min(400, heldOut.Length);
        var impulse = new double[length];
        impulse[0] = 1;
        var trained = b.RingActivity(h, impulse);
        double measured = BumpSpeed(trained, length, m, (int)Math.Min(length, 3 * b.Channel(h).ToArray().Max(o => o.DecaySteps)));
        // The same channel with its A reset to the Lin initialization (Δ and C kept): the picture before training moved A.
        var lin = LinChannel(b, h);
        double? predicted = lin.RingSpeed(0, 1e-4); // float32 parameters: the gaps of πn agree to ≈ 1e-6
        var initial = lin.RingActivity(0, impulse);
        double spacingSpread = Spread(b.Channel(h).ToArray().Select(o => o.PhaseAdvance).ToArray());

        var digitInput = op.Trace(heldOut.Inputs.AsSpan(0, heldOut.Length * op.Config.InputWidth), heldOut.Length)[b.Block].U;
        var u = new double[heldOut.Length];
        for (int t = 0; t < u.Length; t++) u[t] = digitInput[t * op.Config.DModel + h];
        var digit = b.RingActivity(h, u);

        md.AppendLine("## 3. The ring and its waves");
        md.AppendLine();
        md.AppendLine(Inv, $"The modal states x_n(t) of block {b.Block}, channel {h}, on a ring of M = {m} nodes: z_j(t) = Σ_n x_n(t)·e^(2πi·n·j/M). With evenly spaced frequencies (Lin: ω_n = πn) an impulse becomes a bump that travels −M·Δ·δω/2π nodes per step.");
        md.AppendLine();
        md.AppendLine(Inv, $"- Lin-initialized A with this channel's Δ = {b.Channel(h)[0].Dt:G4}: predicted **{predicted:F3}** nodes per step.");
        md.AppendLine(Inv, $"- Trained: the spacing of Δω_n varies by {spacingSpread:P0} (standard deviation of the gaps over their mean); the impulse's peak moves **{measured:F3}** nodes per step (least-squares slope of the unwrapped peak position over its first decay times).");
        md.AppendLine();
        if (figures is not null)
        {
            figures.Ring(Path.Combine(output, "ring-impulse-trained.png"), trained, length, m, $"Block {b.Block}, channel {h}, trained: an impulse on the ring");
            figures.Ring(Path.Combine(output, "ring-impulse-lin.png"), initial, length, m, $"Same channel with A at its Lin initialization: the travelling bump");
            figures.Ring(Path.Combine(output, "ring-digit.png"), digit, heldOut.Length, m, $"Block {b.Block}, channel {h}: a held-out sequence (label {heldOut.Labels[0]})");
            md.AppendLine("![trained](ring-impulse-trained.png)");
            md.AppendLine("![lin](ring-impulse-lin.png)");
            md.AppendLine("![digit](ring-digit.png)");
            md.AppendLine();
        }
        return (predicted, measured);
    }

    private static S4DBlockOscillators LinChannel(S4DBlockOscillators b, int h)
    {
        var modes = b.Channel(h).ToArray();
        var config = new ModelConfig(Input: 1, Vocab: 0, DModel: 1, Output: 1, Pooling.Mean, [new S4DLayerConfig(2 * b.Modes, S4DInit.Lin, b.Discretization)]);
        var reference = new ReferenceModel<float>(config);
        reference.Initialize(1);
        var table = reference.Table.ToDictionary(t => t.Name);
        reference.Parameters[table["layers.0.mixer.log_dt"].Offset] = (float)Math.Log(modes[0].Dt);
        for (int n = 0; n < b.Modes; n++)
        {
            reference.Parameters[table["layers.0.mixer.C"].Offset + 2 * n] = (float)1;
            reference.Parameters[table["layers.0.mixer.C"].Offset + 2 * n + 1] = 0;
        }
        return OscillatorView.FromParameters(config, reference.Parameters).Blocks[0];
    }

    private static double Spread(double[] phases)
    {
        var gaps = phases.Zip(phases.Skip(1), (a, c) => c - a).ToArray();
        double mean = gaps.Average();
        return Math.Sqrt(gaps.Select(g => (g - mean) * (g - mean)).Average()) / Math.Abs(mean);
    }

    /// <summary>Least-squares slope of the ring's peak position over the first <paramref name="steps"/> steps, unwrapped around the ring.</summary>
    private static double BumpSpeed(double[] ring, int length, int m, int steps)
    {
        steps = Math.Clamp(steps, 2, length);
        var position = new double[steps];
        double offset = 0;
        int previous = -1;
        for (int t = 0; t < steps; t++)
        {
            int peak = 0;
            for (int j = 1; j < m; j++) if (ring[t * m + j] > ring[t * m + peak]) peak = j;
            if (previous >= 0)
            {
                int jump = peak - previous;
                if (jump > m / 2) offset -= m;
                else if (jump < -m / 2) offset += m;
            }
            position[t] = peak + offset;
            previous = peak;
        }
        double tm = (steps - 1) / 2.0, pm = position.Average(), num = 0, den = 0;
        for (int t = 0; t < steps; t++) { num += (t - tm) * (position[t] - pm); den += (t - tm) * (t - tm); }
        return num / den;
    }

    private static double OperatorSection(StringBuilder md, S4DOperator op, ModelConfig config, float[] parameters, Sequences heldOut, string output)
    {
        File.WriteAllText(Path.Combine(output, "operator.txt"), op.ToText());
        File.WriteAllText(Path.Combine(output, "operator.tex"), op.ToLatex());
        int count = Math.Min(8, heldOut.Count), width = config.InputWidth, length = heldOut.Length;
        var input = heldOut.Inputs.AsSpan(0, count * length * width);
        var exact = op.Forward(input, count, length);
        var reference = new ReferenceModel<double>(config);
        for (int i = 0; i < parameters.Length; i++) reference.Parameters[i] = parameters[i];
        var expected = config.TokenInput
            ? reference.Forward(input.ToArray().Select(v => (int)v).ToArray(), count, length)
            : reference.Forward(input.ToArray().Select(v => (double)v).ToArray(), count, length);
        double check = expected.Zip(exact, (a, b) => Math.Abs(a - b)).Max() / expected.Max(Math.Abs);
        md.AppendLine("## 4. The exact operator");
        md.AppendLine();
        md.AppendLine("The whole forward pass as one expression (every block: LayerNorm, D·u plus the oscillators' damped-sinusoid convolutions, then GELU, " +
            "the GLU projection and the residual; then the final LayerNorm, pooling and read-out), with the trained numbers of every oscillator: " +
            "[operator.txt](operator.txt), [operator.tex](operator.tex).");
        md.AppendLine();
        md.AppendLine("```");
        md.AppendLine(string.Join('\n', op.ToText().Split('\n').Take(4).Select(l => l.Length > 240 ? l[..240] + " …" : l)));
        md.AppendLine("```");
        md.AppendLine();
        md.AppendLine(Inv, $"An evaluator written from that expression alone reproduces the reference model (float64) on {count} held-out sequences within **{check:E1}** of the largest logit.");
        md.AppendLine();
        return check;
    }

    private static List<(string Order, double Accuracy)> Interactions(StringBuilder md, S4DOperator op, Sequences heldOut, Sequences calibration, string output, Action<string> progress)
    {
        int width = op.Config.InputWidth;
        var point = op.MeanWaves(calibration.Inputs, calibration.Count, calibration.Length);
        var rows = new List<(string Order, double Accuracy)>();
        double Accuracy(DecoderSeries? series)
        {
            var logits = op.Forward(heldOut.Inputs, heldOut.Count, heldOut.Length, series);
            int classes = op.Config.Output, correct = 0;
            for (int i = 0; i < heldOut.Count; i++)
            {
                var row = logits.AsSpan(i * classes, classes);
                int best = 0;
                for (int c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
                if (best == heldOut.Labels[i]) correct++;
            }
            return (double)correct / heldOut.Count;
        }
        foreach (int order in new[] { 1, 2, 3 })
        {
            progress($"  order {order} on {heldOut.Count} sequences");
            rows.Add(($"{order}", Accuracy(new DecoderSeries(order, point))));
        }
        progress("  the exact decoder");
        rows.Add(("full", Accuracy(null)));
        File.WriteAllText(Path.Combine(output, "interactions.csv"), "order,accuracy\n" + string.Join("", rows.Select(r => $"{r.Order},{r.Accuracy.ToString("R", Inv)}\n")));
        md.AppendLine("## 5. Wave interactions");
        md.AppendLine();
        md.AppendLine(Inv, $"Each block's decoder replaced by its Taylor series in the waves y − y₀ around their mean over {calibration.Description}, cut at a total order (order 1: the linear wave model; order 2: products of pairs of waves; …); LayerNorms, pooling and read-out exact. Accuracy on {heldOut.Description}:");
        md.AppendLine();
        md.AppendLine("| decoder | accuracy |");
        md.AppendLine("|---|---|");
        foreach (var (order, accuracy) in rows) md.AppendLine(Inv, $"| {(order == "full" ? "exact" : "order " + order)} | {accuracy:P2} |");
        md.AppendLine();
        md.AppendLine(Inv, $"Gap between the linear wave model and the exact decoder: **{100 * (rows[^1].Accuracy - rows[0].Accuracy):F1} points**.");
        md.AppendLine();
        return rows;
    }
}
