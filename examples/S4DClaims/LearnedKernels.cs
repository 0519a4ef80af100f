using System.Globalization;
using System.Text;
using ScottPlot;
using Spectre.Console;
using SsmGen.Examples.Mnist;

namespace SsmGen.Examples.S4DClaims;

/// <summary>
/// The kernels an S4D layer learns from the Lin, Inv and LegS initializations (the paper's figures show them as damped
/// Fourier-like bases): one ablation run per init on psMNIST (ZOH, trained B, the ablations' recipe and seed), the
/// first layer's kernels K_l = 2·Re Σ_n C_n·B̄_n·Ā_nˡ of the first channels before and after training, computed by the
/// reference from the model's parameters; one plot, and the accuracies in a Markdown table.
/// </summary>
public static class LearnedKernels
{
    private static readonly S4DInit[] Inits = [S4DInit.Lin, S4DInit.Inv, S4DInit.LegS];

    public static int Execute(Ablations.Options o, int channels = 4, int lags = 784)
    {
        Directory.CreateDirectory(o.OutDir);
        var data = MnistData.Load(o.DataDir, m => AnsiConsole.MarkupLineInterpolated($"[grey]{m}[/]"));
        var (train, test) = data.Split(testCount: 1500, Ablations.TaskSeed);
        if (o.TrainLimit is int limit) train = train[..Math.Min(limit, train.Length)];
        int[] perm = MnistData.PsmnistPermutation(Ablations.TaskSeed);
        ulong seed = o.Seeds[0];
        var plot = new Multiplot();
        plot.AddPlots(2 * Inits.Length);
        var table = new StringBuilder("| init | held-out accuracy after each epoch (%) | seconds |\n|---|---|---|\n");
        for (int i = 0; i < Inits.Length; i++)
        {
            var init = Inits[i];
            AnsiConsole.MarkupLineInterpolated($"{init}: training {o.Epochs} epochs on {train.Length:N0} permuted digits (seed {seed})");
            var run = Ablations.Train(data, train, test, perm, init, Discretization.Zoh, trainB: true, seed, o,
                (model, trained) => Draw(plot.GetPlot(2 * i + (trained ? 1 : 0)), model, channels, lags, $"{init}, {(trained ? $"learned ({o.Epochs} epochs)" : "at initialization")}"));
            table.AppendLine(CultureInfo.InvariantCulture, $"| {init} | {string.Join(" → ", run.Accuracy.Select(a => (100 * a).ToString("F1", CultureInfo.InvariantCulture)))} | {run.Seconds:F0} |");
        }
        plot.Layout = new ScottPlot.MultiplotLayouts.Grid(rows: Inits.Length, columns: 2);
        string png = Path.Combine(o.OutDir, "learned-kernels.png");
        plot.SavePng(png, 1400, 330 * Inits.Length);
        File.WriteAllText(Path.Combine(o.OutDir, "learned-kernels.md"), table.ToString());
        AnsiConsole.WriteLine(table.ToString());
        AnsiConsole.MarkupLineInterpolated($"Plot in {png}");
        return 0;
    }

    /// <summary>The first layer's kernels of the first channels, each scaled to its largest magnitude and stacked.</summary>
    private static void Draw(Plot plt, ISsmModel model, int channels, int lags, string title)
    {
        var k = LayerKernels.Of(model, 0, lags)!;
        for (int c = 0; c < channels; c++)
        {
            var row = k.AsSpan(c * lags, lags).ToArray();
            double scale = Math.Max(row.Max(Math.Abs), 1e-12);
            var line = plt.Add.Signal(row.Select(v => v / scale * 0.45 - c).ToArray());
            line.Color = Colors.Category10[c % 10];
        }
        plt.Title(title);
        plt.XLabel("lag l (pixels)");
        plt.YLabel("channel (each scaled)");
    }
}
