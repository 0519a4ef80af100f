using ScottPlot;
using SsmGen.Tasks;

namespace SsmGen.Examples.WordProblems;

/// <summary>The sweep's picture: minimum depth against length, one line per kind and group.</summary>
public static class Plots
{
    public static void MinDepth(string path, Options o, FiniteGroup[] groups, Dictionary<(string Kind, string Group, int Length), int?> minDepth)
    {
        var plt = new Plot();
        var patterns = new[] { LinePattern.Solid, LinePattern.Dashed, LinePattern.Dotted, LinePattern.DenselyDashed };
        var palette = new ScottPlot.Palettes.Category10();
        for (int gi = 0; gi < groups.Length; gi++)
            for (int ki = 0; ki < o.Kinds.Length; ki++)
            {
                var points = o.Lengths.Where(k => minDepth.ContainsKey((o.Kinds[ki], groups[gi].Name, k))).ToArray();
                if (points.Length == 0) continue;
                // "not reached at depth 4" is drawn at 5; a small offset per kind keeps coinciding lines apart
                double[] x = points.Select(k => (double)k).ToArray();
                double[] y = points.Select(k => (minDepth[(o.Kinds[ki], groups[gi].Name, k)] ?? 5) + 0.06 * (ki - 2)).ToArray();
                var s = plt.Add.Scatter(x, y);
                s.Color = palette.GetColor(ki);
                s.LinePattern = patterns[gi % patterns.Length];
                s.LegendText = $"{o.Kinds[ki]} on {groups[gi].Name}";
            }
        plt.Title("Minimum depth reaching 99% per-token accuracy (5 = not reached at depth 4)");
        plt.XLabel("sequence length k");
        plt.YLabel("minimum depth");
        plt.Axes.SetLimitsY(0.5, 5.5);
        plt.ShowLegend(Alignment.UpperLeft);
        plt.SavePng(path, 1100, 620);
    }
}
