using System.Globalization;
using System.Text;
using System.Text.Json;
using ScottPlot;
using SsmGen.Memory;

namespace SsmGen.Examples.Memory;

/// <summary>One block's contraction measured over several sequences.</summary>
public sealed record BlockStability(string Model, string Kind, int Block, int Sequences, double MaxModulus, double MaxStateNorm, double MaxBound,
    double FittedRate, double PredictedRate);

/// <summary>
/// Stability and convergence of trained models on real data: per block, the largest |Ā| seen, the largest ‖h_t‖
/// against the contraction bound, and the rate at which two runs from different starts meet against the rate the
/// transitions predict. Writes stability.md, stability.json and stability-*.png.
/// </summary>
public static class Stability
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Reports over sequences, grouped by block: (model, kind, block, one report per sequence).</summary>
    public static IReadOnlyList<BlockStability> Write(IReadOnlyList<(string Model, string Kind, int Block, ContractionReport[] Reports)> blocks, string output)
    {
        Directory.CreateDirectory(output);
        var rows = blocks.Select(b => new BlockStability(b.Model, b.Kind, b.Block, b.Reports.Length,
            b.Reports.Max(r => r.MaxModulus), b.Reports.Max(r => r.StateNorm.Max()), b.Reports.Max(r => r.Bound.Max()),
            Geometric(b.Reports.Select(r => r.FittedRate)), Geometric(b.Reports.Select(r => r.PredictedRate)))).ToList();
        File.WriteAllText(Path.Combine(output, "stability.json"), JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }));
        var md = new StringBuilder();
        md.AppendLine("# Stability and convergence on real data");
        md.AppendLine();
        md.AppendLine("Per block, over the sequences read: the largest |Ā| (below 1: contractive), the largest state norm ‖h_t‖₂ against the largest contraction bound ‖B_t‖₂ (B_t = |Ā_t|·B_{t−1} + |b_t| per mode, so |h_t| ≤ B_t), and two runs from initial states 1 apart in every mode: the per-step rate at which they meet (fitted over the second half of the steps where they differ by more than rounding) against the slowest mode's |Ā_t| over the same steps (geometric means over sequences). Contraction demands fitted ≤ predicted; they are equal once only the slowest mode is left, which takes longer than a sequence when that mode's decay time 1/(1 − |Ā|) exceeds the sequence's length. The distance stays under its bound ‖h₀ − h′₀‖·Π max|Ā| at every step: " + "{BOUND}.");
        md.AppendLine();
        md.Replace("{BOUND}", blocks.All(b => b.Reports.All(r => r.Distance.Zip(r.DistanceBound).All(p => p.First <= p.Second * (1 + 1e-12)))) ? "checked, it holds for every block and sequence" : "checked, and it FAILS for at least one block (see stability.json)");
        md.AppendLine("| model | block | kind | sequences | max \\|Ā\\| | max ‖h‖ | max bound | fitted rate | predicted rate |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var r in rows)
            md.AppendLine(Inv, $"| {r.Model} | {r.Block} | {r.Kind} | {r.Sequences} | {r.MaxModulus:F6} | {r.MaxStateNorm:G4} | {r.MaxBound:G4} | {r.FittedRate:F6} | {r.PredictedRate:F6} |");
        md.AppendLine();
        foreach (var group in blocks.GroupBy(b => b.Model))
        {
            var first = group.First();
            string name = $"stability-{Slug(group.Key)}.png";
            Plot(Path.Combine(output, name), group.Key, first.Block, first.Reports[0]);
            md.AppendLine(Inv, $"![{group.Key}, block {first.Block}: state and bound]({name.Replace(".png", "-state.png")}) ![{group.Key}, block {first.Block}: convergence]({name.Replace(".png", "-convergence.png")})");
            md.AppendLine();
        }
        File.WriteAllText(Path.Combine(output, "stability.md"), md.ToString());
        return rows;
    }

    private static double Geometric(IEnumerable<double> rates)
    {
        var finite = rates.Where(double.IsFinite).ToArray();
        return finite.Length == 0 ? double.NaN : Math.Exp(finite.Average(Math.Log));
    }

    private static string Slug(string s) => new(s.ToLowerInvariant().Select(c => char.IsLetterOrDigit(c) ? c : '-').ToArray());

    /// <summary>‖h_t‖ with its bound, and the distance between two starts (log scale) with the predicted decay: two PNGs.</summary>
    private static void Plot(string path, string model, int block, ContractionReport r)
    {
        var xs = Enumerable.Range(0, r.StateNorm.Length).Select(t => (double)t).ToArray();
        var state = new Plot();
        state.Add.ScatterLine(xs, r.StateNorm).LegendText = "‖h_t‖₂ (from h₀ = 0)";
        state.Add.ScatterLine(xs, r.Bound).LegendText = "contraction bound ‖B_t‖₂";
        state.Title($"{model}, block {block}: state and bound");
        state.XLabel("step t");
        state.ShowLegend(Alignment.UpperLeft);
        state.SavePng(path.Replace(".png", "-state.png"), 900, 550);
        var meet = new Plot();
        var logDistance = r.Distance.Select(d => Math.Log10(Math.Max(d, 1e-300))).ToArray();
        meet.Add.ScatterLine(xs, logDistance).LegendText = "log₁₀ ‖h_t − h′_t‖₂ (starts 1 apart per mode)";
        meet.Add.ScatterLine(xs, r.DistanceBound.Select(d => Math.Log10(Math.Max(d, 1e-300))).ToArray()).LegendText = "contraction bound ‖h₀ − h′₀‖·Π max|Ā|";
        meet.Title($"{model}, block {block}: two starts, same input");
        meet.XLabel("step t");
        meet.ShowLegend(Alignment.UpperRight);
        meet.SavePng(path.Replace(".png", "-convergence.png"), 900, 550);
    }
}
