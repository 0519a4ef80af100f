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
                // "not reached at the kind's deepest model" is drawn at 5; a small offset per kind keeps coinciding lines apart
                double[] x = points.Select(k => (double)k).ToArray();
                double[] y = points.Select(k => (minDepth[(o.Kinds[ki], groups[gi].Name, k)] ?? 5) + 0.06 * (ki - 2)).ToArray();
                var s = plt.Add.Scatter(x, y);
                s.Color = palette.GetColor(ki);
                s.LinePattern = patterns[gi % patterns.Length];
                s.LegendText = $"{o.Kinds[ki]} on {groups[gi].Name}";
            }
        plt.Title("Minimum depth reaching 99% per-token accuracy (5 = not reached by the kind's deepest model)");
        plt.XLabel("sequence length k");
        plt.YLabel("minimum depth");
        plt.Axes.SetLimitsY(0.5, 5.5);
        plt.ShowLegend(Edge.Right);
        plt.SavePng(path, 1250, 620);
    }

    /// <summary>Length generalization: per-token accuracy past the trained length against the test length, mean over seeds, one line per kind and group.</summary>
    public static void Generalization(string path, IReadOnlyList<GeneralizationRun> runs, int trainedLength)
    {
        var plt = new Plot();
        var patterns = new[] { LinePattern.Solid, LinePattern.Dashed, LinePattern.Dotted, LinePattern.DenselyDashed };
        var palette = new ScottPlot.Palettes.Category10();
        var kinds = runs.Select(r => r.Training.Config.Kind).Distinct().ToList();
        var groups = runs.Select(r => r.Training.Config.Group).Distinct().ToList();
        foreach (string group in groups)
            foreach (string kind in kinds)
            {
                var mine = runs.Where(r => r.Training.Config.Kind == kind && r.Training.Config.Group == group).ToList();
                if (mine.Count == 0) continue;
                double[] x = mine[0].Tests.Select(t => (double)t.Length).ToArray();
                double[] y = Enumerable.Range(0, x.Length).Select(i => 100 * mine.Average(r => r.Tests[i].Beyond ?? r.Tests[i].PerToken)).ToArray();
                var s = plt.Add.Scatter(x, y);
                s.Color = palette.GetColor(kinds.IndexOf(kind));
                s.LinePattern = patterns[groups.IndexOf(group) % patterns.Length];
                s.LegendText = $"{kind} on {group}";
            }
        plt.Title($"Per-token accuracy past the trained length {trainedLength} (at {trainedLength}: every position), mean over seeds");
        plt.XLabel("test length");
        plt.YLabel("per-token accuracy (%)");
        plt.Axes.SetLimitsY(0, 105);
        plt.ShowLegend(Alignment.LowerLeft);
        plt.SavePng(path, 1100, 620);
    }
}
