using ScottPlot;

namespace SsmGen.Examples.Mnist;

/// <summary>PNG plots: learning curves, and the convolution kernels each S4D layer has learned.</summary>
public static class Plots
{
    public static void Curves(string path, IReadOnlyList<EpochRecord> history, string title)
    {
        var plt = new Plot();
        double[] x = history.Select(h => (double)h.Epoch).ToArray();
        void Line(Func<EpochRecord, double> f, string label)
        {
            var s = plt.Add.Scatter(x, history.Select(f).ToArray());
            s.LegendText = label;
        }
        Line(h => h.TrainAccuracy * 100, "train accuracy (%)");
        Line(h => h.TestAccuracy * 100, "test accuracy (%)");
        Line(h => h.TrainLoss * 100, "train loss × 100");
        plt.Title(title);
        plt.XLabel("epoch");
        plt.ShowLegend(Alignment.MiddleRight);
        plt.SavePng(path, 900, 520);
    }

    /// <summary>
    /// For each S4D or S4 layer, the convolution kernel of the first channels over the first 300 steps, computed by the
    /// reference implementation from the model's parameters.
    /// </summary>
    public static void Kernels(string path, ISsmModel model, int channels = 6, int length = 300)
    {
        var cfg = model.Config;
        int h = cfg.DModel;
        var plt = new Plot();
        for (int i = 0; i < cfg.Layers.Count; i++)
        {
            if (LayerKernels.Of(model, i, length) is not double[] k) continue;
            for (int c = 0; c < Math.Min(channels, h); c++)
            {
                // each layer in its own band: offset so the layers stack vertically
                double scale = k.AsSpan(c * length, length).ToArray().Max(Math.Abs);
                var ys = k.AsSpan(c * length, length).ToArray().Select(v => v / Math.Max(scale, 1e-12) * 0.45 - 1.2 * i).ToArray();
                var line = plt.Add.Signal(ys);
                if (c == 0) line.LegendText = $"layer {i}";
                line.Color = Colors.Category10[i % 10].WithAlpha(0.5 + 0.5 * (c == 0 ? 1 : 0));
            }
        }
        plt.Title($"Learned SSM kernels (first {channels} channels per layer, each normalized)");
        plt.XLabel("lag l (steps)");
        plt.YLabel("layer (top = 0)");
        plt.ShowLegend(Alignment.LowerRight);
        plt.SavePng(path, 1000, 260 + 140 * cfg.Layers.Count);
    }
}

/// <summary>One epoch's numbers, kept in the checkpoint and plotted.</summary>
public sealed record EpochRecord(int Epoch, double TrainLoss, double TrainAccuracy, double TestAccuracy, double Seconds);
