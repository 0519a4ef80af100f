using ScottPlot;
using SsmGen.Interpretability;

namespace SsmGen.Examples.Oscillators;

/// <summary>The report's PNG figures, drawn with ScottPlot.</summary>
public sealed class Figures : IFigures, ISelectiveFigures
{
    /// <summary>Frequency against damping, one dot per oscillator, coloured by amplitude quartile.</summary>
    public void FrequencyDamping(string path, S4DBlockOscillators block)
    {
        var plt = new Plot();
        var os = block.Oscillators.OrderBy(o => o.Amplitude).ToArray();
        var colormap = new ScottPlot.Colormaps.Viridis();
        for (int q = 0; q < 4; q++)
        {
            var part = os[(q * os.Length / 4)..((q + 1) * os.Length / 4)];
            if (part.Length == 0) continue;
            var s = plt.Add.ScatterPoints(part.Select(o => Math.Log10(o.Damping)).ToArray(), part.Select(o => Math.Abs(o.Frequency)).ToArray());
            s.Color = colormap.GetColor(q / 3.0).WithAlpha(0.7);
            s.MarkerSize = 3 + 2 * q;
            s.LegendText = $"amplitude quartile {q + 1} (2|W| ≤ {part[^1].Amplitude:G3})";
        }
        plt.Title($"Block {block.Block}: {os.Length} oscillators");
        plt.XLabel("log₁₀ damping γ = −Re A");
        plt.YLabel("|frequency| ω = |Im A|");
        plt.ShowLegend(Alignment.UpperRight);
        plt.SavePng(path, 900, 600);
    }

    /// <summary>A channel's kernel (the oscillators' sum, D left out) beside its three strongest oscillators.</summary>
    public void Kernel(string path, S4DBlockOscillators block, int channel, int length)
    {
        var plt = new Plot();
        var k = block.Kernel(channel, length, includeSkip: false);
        var total = plt.Add.Signal(k);
        total.LegendText = "kernel: Σ of all oscillators";
        total.LineWidth = 2;
        foreach (var o in block.Channel(channel).ToArray().OrderByDescending(o => o.Amplitude).Take(3))
        {
            var term = plt.Add.Signal(Enumerable.Range(0, length).Select(o.KernelTerm).ToArray());
            term.LegendText = $"mode {o.Mode}: 2|W| = {o.Amplitude:G3}, ω = {o.Frequency:G3}, decay {o.DecaySteps:G3} steps";
            term.LinePattern = LinePattern.Dashed;
        }
        plt.Title($"Block {block.Block}, channel {channel}: the kernel as damped sinusoids");
        plt.XLabel("lag l (steps)");
        plt.ShowLegend(Alignment.UpperRight);
        plt.SavePng(path, 1000, 520);
    }

    /// <summary>|z_j(t)| as an image: time down, ring node across.</summary>
    public void Ring(string path, double[] ring, int length, int nodes, string title)
    {
        var data = new double[length, nodes];
        for (int t = 0; t < length; t++)
        {
            // each step scaled to its own largest node, so the shape stays visible while the amplitude decays
            double max = 0;
            for (int j = 0; j < nodes; j++) max = Math.Max(max, ring[t * nodes + j]);
            for (int j = 0; j < nodes; j++) data[length - 1 - t, j] = max > 0 ? ring[t * nodes + j] / max : 0; // row 0 is drawn on top
        }
        var plt = new Plot();
        var map = plt.Add.Heatmap(data);
        map.Colormap = new ScottPlot.Colormaps.Turbo();
        plt.Add.ColorBar(map);
        plt.Title(title);
        plt.XLabel("ring node j");
        plt.YLabel("time step t");
        plt.SavePng(path, 700, 900);
    }

    /// <summary>Accuracy lost removing two bands (the diagonal: one band), as a heat map.</summary>
    public void Bands(string path, BandAblation ablation)
    {
        int n = ablation.Bands.Length;
        var data = new double[n, n];
        for (int a = 0; a < n; a++)
            for (int b = 0; b < n; b++) data[n - 1 - a, b] = 100 * ablation.Drop[a, b]; // row 0 is drawn on top
        var plt = new Plot();
        var map = plt.Add.Heatmap(data);
        map.Colormap = new ScottPlot.Colormaps.Viridis();
        plt.Add.ColorBar(map).Label = "accuracy points lost";
        var ticks = Enumerable.Range(0, n).Select(i => new Tick(i, i == 0 ? "π" : $"π/{1 << i}")).ToArray();
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        plt.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        plt.Title($"Accuracy lost removing oscillator bands (|θ| below each label, one octave each; all kept: {100 * ablation.Full:F1}%)");
        plt.XLabel("band (upper edge of |θ|)");
        plt.YLabel("band (upper edge of |θ|)");
        plt.SavePng(path, 900, 780);
    }

    /// <summary>log₁₀ of each state's decay time 1/(Δ_t·|A_n|) over the text, for one inner channel: time across, state up.</summary>
    public void Decay(string path, SelectiveView view, int channel, string text)
    {
        var damping = view.DampingPerStep(channel);
        var data = new double[view.States, view.Length];
        for (int t = 0; t < view.Length; t++)
            for (int n = 0; n < view.States; n++) data[view.States - 1 - n, t] = Math.Log10(1 / damping[t * view.States + n]); // row 0 on top
        var plt = new Plot();
        var map = plt.Add.Heatmap(data);
        map.Colormap = new ScottPlot.Colormaps.Viridis();
        plt.Add.ColorBar(map).Label = "log₁₀ decay time (steps)";
        var ticks = Enumerable.Range(0, view.Length).Select(t => new Tick(t, text[t] == ' ' ? "␣" : text[t].ToString())).ToArray();
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        plt.Title($"Mamba block {view.Block}, channel {channel}: each state's memory per character (exp(Δ_t·A_n) per step)");
        plt.XLabel("character");
        plt.YLabel("state n");
        plt.SavePng(path, Math.Max(900, 14 * view.Length), 520);
    }
}
