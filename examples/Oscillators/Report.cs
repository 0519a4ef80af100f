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
public sealed record ReportSummary(ModelConfig Config, double KernelCheck, double OperatorVsReference, double? OperatorVsModel,
    IReadOnlyList<(string Order, double Accuracy)> Truncation, WaveSeries Series, BandAblation Bands, double? RingSpeedPredicted, double RingSpeedMeasured);

/// <summary>
/// Each block's Taylor series against its exact decoder on the exact model's waves (to order FitOrder), and the
/// accuracy with polynomial decoders: GELU of degree Gelu, σ of degree Gate, in every block (Block null) or one.
/// </summary>
public sealed record WaveSeries(DecoderSeriesFit[] Fit, int FitOrder, IReadOnlyList<(int Gelu, int Gate, int? Block, double Accuracy)> Polynomial);

/// <summary>
/// Accuracy with oscillator bands removed: band b holds the oscillators whose step angle |θ| = |arg Ā| lies in
/// (π/2^(b+1), π/2^b] (the last band everything slower). Drop[a, b] is the accuracy lost removing bands a and b
/// (a = b: band a alone); the interaction of a pair is its drop beyond the two single drops.
/// </summary>
public sealed record BandAblation(string[] Bands, int[] Counts, double Full, double[,] Drop)
{
    public double Interaction(int a, int b) => Drop[a, b] - Drop[a, a] - Drop[b, b];
}

/// <summary>The PNG figures; the report's text and CSV do not depend on them.</summary>
public interface IFigures
{
    void FrequencyDamping(string path, S4DBlockOscillators block);
    void Kernel(string path, S4DBlockOscillators block, int channel, int length);
    void Ring(string path, double[] ring, int length, int nodes, string title);
    void Bands(string path, BandAblation ablation);
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
        Action<string> progress, Discretization discretization = Discretization.Zoh, Pooling pooling = Pooling.Mean, int block = 0, int? channel = null,
        ISsmModel? model = null)
    {
        var file = SafetensorsFile.Read(checkpoint);
        var read = S4DCheckpoint.Read(file, discretization, pooling);
        var config = read.Config;
        if (model is not null && !ParameterLayout.Build(config).Select(p => (p.Name, p.ShapeText)).SequenceEqual(model.ParameterTable.Select(p => (p.Name, p.ShapeText))))
            throw new ArgumentException($"The model given ({model.GetType().Name}) has another parameter table than the checkpoint.");
        if (model is not null) Checkpoint.Load(model, file);
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
        var (predicted, measured) = RingSection(md, op, s4d, channel ?? RingChannel(s4d), heldOut, output, figures);

        progress("the exact operator: text, LaTeX and its check");
        var (operatorCheck, operatorVsModel) = OperatorSection(md, op, config, read.Parameters, heldOut, output, model);

        progress("wave interactions: the decoder series at orders 1, 2, 3");
        var (truncation, series) = Interactions(md, op, heldOut, calibration, output, progress);

        progress("wave interactions: oscillator bands removed one and two at a time");
        var bands = Bands(md, op, config, read.Parameters, heldOut, output, figures, model, progress);

        File.WriteAllText(Path.Combine(output, "report.md"), md.ToString());
        return new ReportSummary(config, kernelCheck, operatorCheck, operatorVsModel, truncation, series, bands, predicted, measured);
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
        var exact = Array.ConvertAll(parameters, v => (double)v);
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
            kernelCheck = Math.Max(kernelCheck, KernelCheck(config, exact, b, 784));
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
    private static double KernelCheck(ModelConfig config, double[] p, S4DBlockOscillators b, int length)
    {
        var s = (S4DLayerConfig)config.Layers[b.Block];
        var reference = new S4DReference<double>(config.DModel, s.N, s.Discretization);
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

    /// <summary>
    /// The channel the ring figures show unless one is chosen: the strongest whose bump moves 0.1–0.5 nodes per step
    /// (M·Δ·δω/2π from its mean spacing), so that its travel is seen step by step rather than aliased; the strongest
    /// channel when none does.
    /// </summary>
    private static int RingChannel(S4DBlockOscillators b)
    {
        double Speed(int c)
        {
            var modes = b.Channel(c);
            return Math.Abs(b.Modes * (modes[b.Modes - 1].PhaseAdvance - modes[0].PhaseAdvance) / (b.Modes - 1) / (2 * Math.PI));
        }
        double Strength(int c) => b.Channel(c).ToArray().Sum(o => o.Amplitude);
        var slow = Enumerable.Range(0, b.Channels).Where(c => Speed(c) is >= 0.1 and <= 0.5).ToArray();
        return (slow.Length > 0 ? slow : Enumerable.Range(0, b.Channels)).MaxBy(Strength);
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
        // The channel's input minus its mean over the sequence: the constant part (the background pixels) only feeds
        // the ω ≈ 0 mode, node 0 of every step; without it the strokes' waves are what the figure shows.
        double background = u.Average();
        var digit = b.RingActivity(h, u.Select(v => v - background).ToArray());

        md.AppendLine("## 3. The ring and its waves");
        md.AppendLine();
        md.AppendLine(Inv, $"The modal states x_n(t) of block {b.Block}, channel {h} (the strongest channel whose bump moves 0.1–0.5 nodes per step, unless one is chosen), on a ring of M = {m} nodes: z_j(t) = Σ_n x_n(t)·e^(2πi·n·j/M). With evenly spaced frequencies (Lin: ω_n = πn) an impulse becomes a bump that travels −M·Δ·δω/2π nodes per step.");
        md.AppendLine();
        md.AppendLine(Inv, $"- Lin-initialized A with this channel's Δ = {b.Channel(h)[0].Dt:G4}: predicted **{predicted:F3}** nodes per step.");
        md.AppendLine(Inv, $"- Trained: the spacing of Δω_n varies by {spacingSpread:P0} (standard deviation of the gaps over their mean); the impulse's peak moves **{measured:F3}** nodes per step (least-squares slope of the unwrapped peak position over its first decay times).");
        md.AppendLine();
        if (figures is not null)
        {
            figures.Ring(Path.Combine(output, "ring-impulse-trained.png"), trained, length, m, $"Block {b.Block}, channel {h}, trained: an impulse on the ring");
            figures.Ring(Path.Combine(output, "ring-impulse-lin.png"), initial, length, m, $"Same channel with A at its Lin initialization: the travelling bump");
            figures.Ring(Path.Combine(output, "ring-digit.png"), digit, heldOut.Length, m, $"Block {b.Block}, channel {h}: a held-out sequence (label {heldOut.Labels[0]}), its mean removed");
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

    private static (double Reference, double? Model) OperatorSection(StringBuilder md, S4DOperator op, ModelConfig config, float[] parameters, Sequences heldOut, string output, ISsmModel? model)
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
        double? vsModel = null;
        if (model is not null)
        {
            var y = Evaluate(model, heldOut.Inputs.AsSpan(0, count * length * width).ToArray(), count, length);
            vsModel = y.Zip(exact, (a, b) => Math.Abs(a - b)).Max() / y.Max(v => Math.Abs((double)v));
            md.AppendLine(Inv, $"Against the generated model's own Forward ({model.GetType().Name}, float32): within **{vsModel:E1}**.");
        }
        md.AppendLine();
        return (check, vsModel);
    }

    /// <summary>The model's logits over many sequences, in batches of its largest batch.</summary>
    private static float[] Evaluate(ISsmModel model, float[] inputs, int count, int length)
    {
        int width = model.Config.InputWidth, classes = model.Config.Output;
        var logits = new float[count * classes];
        for (int i = 0; i < count; i += model.MaxBatch)
        {
            int n = Math.Min(model.MaxBatch, count - i);
            model.Forward(inputs.AsSpan(i * length * width, n * length * width), n, length, logits.AsSpan(i * classes, n * classes));
        }
        return logits;
    }

    private static double Accuracy(ReadOnlySpan<double> logits, int[] labels, int classes)
    {
        int correct = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            var row = logits.Slice(i * classes, classes);
            int best = 0;
            for (int c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
            if (best == labels[i]) correct++;
        }
        return (double)correct / labels.Length;
    }

    private static BandAblation Bands(StringBuilder md, S4DOperator op, ModelConfig config, float[] parameters, Sequences heldOut, string output,
        IFigures? figures, ISsmModel? model, Action<string> progress)
    {
        const int Count = 8;
        var names = Enumerable.Range(0, Count).Select(b => b == Count - 1 ? $"|θ| ≤ π/{1 << b}" : $"π/{1 << (b + 1)} < |θ| ≤ {(b == 0 ? "π" : $"π/{1 << b}")}").ToArray();
        string Cell(int b) => names[b].Replace("|", "\\|", StringComparison.Ordinal); // a markdown table cell
        int Band(Oscillator o) => Math.Min(Count - 1, (int)Math.Floor(Math.Log2(Math.PI / Math.Max(Math.Abs(o.StepAngle), 1e-300))));
        var all = op.Oscillators.Blocks.SelectMany(b => b.Oscillators).ToArray();
        var counts = new int[Count];
        foreach (var o in all) counts[Band(o)]++;
        var table = ParameterLayout.Build(config).ToDictionary(t => t.Name);
        int modes = op.Oscillators.Blocks[0].Modes;
        double Run(Func<int, bool> removed)
        {
            // removing an oscillator: C = 0, so W = C·B̄ = 0 and its damped sinusoid vanishes from the kernel
            var p = (float[])parameters.Clone();
            foreach (var o in all)
                if (removed(Band(o)))
                {
                    int at = table[$"layers.{o.Block}.mixer.C"].Offset + 2 * (o.Channel * modes + o.Mode);
                    p[at] = p[at + 1] = 0;
                }
            if (model is not null)
            {
                p.CopyTo(model.Parameters);
                var y = Evaluate(model, heldOut.Inputs, heldOut.Count, heldOut.Length);
                return Accuracy(Array.ConvertAll(y, v => (double)v), heldOut.Labels, config.Output);
            }
            var masked = S4DOperator.FromParameters(config, p);
            return Accuracy(masked.Forward(heldOut.Inputs, heldOut.Count, heldOut.Length), heldOut.Labels, config.Output);
        }
        double full = Run(_ => false);
        var drop = new double[Count, Count];
        for (int a = 0; a < Count; a++)
        {
            progress($"  without band {a + 1} of {Count} ({counts[a]} oscillators), then with each other band");
            for (int b = a; b < Count; b++) drop[a, b] = drop[b, a] = full - Run(x => x == a || x == b);
        }
        if (model is not null) parameters.CopyTo(model.Parameters);
        var ablation = new BandAblation(names, counts, full, drop);

        var csv = new StringBuilder("band_a,band_b,oscillators_a,oscillators_b,accuracy_drop,interaction\n");
        for (int a = 0; a < Count; a++)
            for (int b = a; b < Count; b++)
                csv.AppendLine(Inv, $"\"{names[a]}\",\"{names[b]}\",{counts[a]},{counts[b]},{drop[a, b]:R},{(a == b ? 0 : ablation.Interaction(a, b)):R}");
        File.WriteAllText(Path.Combine(output, "bands.csv"), csv.ToString());

        md.AppendLine("## 6. Which oscillators interact");
        md.AppendLine();
        md.AppendLine(Inv, $"Oscillators grouped by octave of their step angle |θ| = |arg Ā| (radians turned per step), removed (C = 0) one band and two bands at a time; accuracy on {heldOut.Description}, {100 * full:F2}% with all of them{(model is null ? " (exact operator)" : $" ({model.GetType().Name})")}. The interaction of a pair is the accuracy its joint removal costs beyond the two single removals: positive when the bands stand in for each other, negative when each needs the other.");
        md.AppendLine();
        md.AppendLine("| band | oscillators | accuracy lost alone |");
        md.AppendLine("|---|---|---|");
        for (int a = 0; a < Count; a++) md.AppendLine(Inv, $"| {Cell(a)} | {counts[a]} | {100 * drop[a, a]:F2} points |");
        md.AppendLine();
        md.AppendLine("Strongest pairs (by |interaction|):");
        md.AppendLine();
        md.AppendLine("| bands | lost together | interaction |");
        md.AppendLine("|---|---|---|");
        var pairs = from a in Enumerable.Range(0, Count) from b in Enumerable.Range(a + 1, Count - a - 1) select (a, b);
        foreach (var (a, b) in pairs.OrderByDescending(q => Math.Abs(ablation.Interaction(q.a, q.b))).Take(5))
            md.AppendLine(Inv, $"| {Cell(a)} and {Cell(b)} | {100 * drop[a, b]:F2} points | {100 * ablation.Interaction(a, b):+0.00;−0.00} points |");
        md.AppendLine();
        if (figures is not null)
        {
            figures.Bands(Path.Combine(output, "bands.png"), ablation);
            md.AppendLine("![bands](bands.png)");
            md.AppendLine();
        }
        return ablation;
    }

    private static readonly int[] Orders = [1, 2, 3];

    /// <summary>(GELU degree p, σ degree q) of the polynomial decoders, every block's replaced: degree p·(1 + q) in the waves.</summary>
    private static readonly (int, int)[] PolynomialDegrees = [(1, 0), (1, 1), (2, 1), (3, 3), (6, 6)];

    /// <summary>The same with one block's decoder replaced at a time.</summary>
    private static readonly (int, int)[] BlockPolynomialDegrees = [(1, 0), (1, 1)];

    /// <summary>The highest order of the series' fit on the exact waves; convergence is judged between it and half of it.</summary>
    private const int FitOrder = 16;

    private static (List<(string Order, double Accuracy)>, WaveSeries) Interactions(StringBuilder md, S4DOperator op, Sequences heldOut, Sequences calibration, string output, Action<string> progress)
    {
        double With(DecoderApproximation? decoder) => Accuracy(op.Forward(heldOut.Inputs, heldOut.Count, heldOut.Length, decoder), heldOut.Labels, op.Config.Output);
        var point = op.MeanWaves(calibration.Inputs, calibration.Count, calibration.Length);
        var rows = new List<(string Order, double Accuracy)>();
        foreach (int order in Orders)
        {
            progress($"  Taylor series: every block at order {order} on {heldOut.Count} sequences");
            rows.Add(($"{order}", With(new DecoderSeries(order, point))));
        }
        progress("  the exact decoder");
        rows.Add(("full", With(null)));
        int fitCount = Math.Min(16, calibration.Count);
        progress($"  each block's Taylor series to order {FitOrder} on the exact waves of {fitCount} sequences");
        var fit = DecoderSeries.Fit(op, calibration.Inputs.AsSpan(0, fitCount * calibration.Length * op.Config.InputWidth), fitCount, calibration.Length, point, FitOrder);

        int blocks = op.Config.Layers.Count;
        var polynomial = new List<(int Gelu, int Gate, int? Block, double Accuracy)>();
        var cases = PolynomialDegrees.Select(d => (d.Item1, d.Item2, (int?)null))
            .Concat(Enumerable.Range(0, blocks).SelectMany(i => BlockPolynomialDegrees.Select(d => (d.Item1, d.Item2, (int?)i))));
        // the fits walk the exact model over their sequences twice: 32 of them keep a row to about a minute on two cores
        int polynomialCount = Math.Min(32, calibration.Count);
        var fitInputs = calibration.Inputs.AsSpan(0, polynomialCount * calibration.Length * op.Config.InputWidth).ToArray();
        foreach (var (p, q, b) in cases)
        {
            progress($"  polynomial decoder: {(b is null ? "every block" : $"block {b} alone")}, GELU of degree {p}, σ of degree {q}");
            polynomial.Add((p, q, b, With(PolynomialDecoder.Fit(op, fitInputs, polynomialCount, calibration.Length, p, q, b))));
        }

        var csv = new StringBuilder("decoders replaced,approximation,accuracy\n");
        foreach (var (order, accuracy) in rows) csv.Append($"every block,{(order == "full" ? "exact" : "taylor order " + order)},{accuracy.ToString("R", Inv)}\n");
        foreach (var (p, q, b, accuracy) in polynomial)
            csv.Append($"{(b is null ? "every block" : $"block {b}")},polynomial gelu {p} gate {q},{accuracy.ToString("R", Inv)}\n");
        File.WriteAllText(Path.Combine(output, "interactions.csv"), csv.ToString());
        var fitCsv = new StringBuilder("block,diverging," + string.Join(",", Enumerable.Range(0, FitOrder + 1).Select(m => $"error_order{m}")) + "\n");
        foreach (var f in fit) fitCsv.Append($"{f.Block},{f.Diverging.ToString("R", Inv)},{string.Join(",", f.RelativeError.Select(e => e.ToString("R", Inv)))}\n");
        File.WriteAllText(Path.Combine(output, "series-fit.csv"), fitCsv.ToString());

        md.AppendLine("## 5. Wave interactions");
        md.AppendLine();
        md.AppendLine(Inv, $"**Taylor series.** Each block's decoder replaced by its Taylor series in the waves y − y₀ around their mean over {calibration.Description}, cut at a total order (order 1: the linear wave model; order 2: products of pairs of waves; …); LayerNorms, pooling and read-out exact. Accuracy on {heldOut.Description}:");
        md.AppendLine();
        md.AppendLine("| decoder | accuracy |");
        md.AppendLine("|---|---|");
        foreach (var (order, accuracy) in rows) md.AppendLine(Inv, $"| {(order == "full" ? "exact" : "order " + order)} | {accuracy:P2} |");
        md.AppendLine();
        md.AppendLine(Inv, $"Whether the series can stand for the decoder at all: each block's series against its exact decoder on the waves of the exact forward pass ({fitCount} of {calibration.Description}; no error carried from block to block) — Σ|series − decoder| / Σ|decoder| by order, and the share of (step, channel) evaluations where the series diverges (its order-{FitOrder} sum farther from the decoder than its order-{FitOrder / 2} sum: the sigmoid's or GELU's complex poles lie closer to y₀ than the wave reaches, and no order converges there).");
        md.AppendLine();
        int[] shown = [0, 1, 2, 3, FitOrder / 2, FitOrder];
        md.AppendLine("| block | " + string.Join(" | ", shown.Select(m => $"order {m}")) + " | diverging |");
        md.AppendLine("|---|" + string.Concat(shown.Select(_ => "---|")) + "---|");
        foreach (var f in fit)
            md.AppendLine($"| {f.Block} | " + string.Join(" | ", shown.Select(m => f.RelativeError[m].ToString("G3", Inv))) + $" | {f.Diverging.ToString("P2", Inv)} |");
        md.AppendLine();
        double worst = fit.Max(f => f.Diverging);
        md.AppendLine(worst > 0.01
            ? string.Format(Inv, "Where the series diverges (up to {0:P0} of a block's evaluations here), a truncated series measures its own divergence, not the model's need for interactions: read the Taylor accuracies as an upper bound on what a global expansion around one operating point can explain, and the polynomial decoders below for the interaction order.", worst)
            : "The series converges on the model's own waves, so the truncated accuracies measure the interaction order the model needs.");
        md.AppendLine();
        md.AppendLine(Inv, $"**Polynomial decoders.** GELU replaced per channel by its least-squares polynomial of degree p in y, and σ per gate by its least-squares polynomial of degree q in g, both fitted over the values their inputs take on {polynomialCount} of {calibration.Description} under the exact model. The decoder is then a polynomial of degree p·(1 + q) in the waves and converges to the exact one as p and q grow: (1, 0) is the best linear wave model (a constant gate), (1, 1) adds exactly the pairwise products of waves the gate forms. Accuracy on {heldOut.Description}:");
        md.AppendLine();
        md.AppendLine("| decoders replaced | GELU degree p | σ degree q | degree in the waves | accuracy |");
        md.AppendLine("|---|---|---|---|---|");
        foreach (var (p, q, b, accuracy) in polynomial)
            md.AppendLine($"| {(b is null ? "every block" : $"block {b} alone")} | {p} | {q} | {p * (1 + q)} | {accuracy.ToString("P2", Inv)} |");
        md.AppendLine();
        double linear = polynomial[0].Accuracy;
        md.AppendLine(Inv, $"Gap between the best linear wave model and the exact decoder: **{100 * (rows[^1].Accuracy - linear):F1} points**.");
        md.AppendLine();
        return (rows, new WaveSeries(fit, FitOrder, polynomial));
    }
}
