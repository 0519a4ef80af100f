using System.Diagnostics;
using System.Globalization;
using ScottPlot;
using Spectre.Console;

namespace SsmGen.Examples.S4DClaims;

/// <summary>
/// Theorem 3 of the S4D paper, numerically: the basis functions e^(tA)·B of HiPPO-LegS (what S4-LegS convolves with)
/// against those of its normal part with half the input, (A + P·Pᵀ, B/2) (what S4D-LegS convolves with), both under
/// the bilinear rule with one step Δ, for growing N (<see cref="HippoLegS.Basis"/>).
/// </summary>
public static class Theorem3
{
    public sealed record Options
    {
        public int[] Sizes { get; init; } = [16, 32, 64, 128, 256, 512];
        public double Dt { get; init; } = 0.01;
        public int Length { get; init; } = 1000;
        public int Functions { get; init; } = 8;
        public string OutDir { get; init; } = Path.Combine("docs", "s4d-claims");
    }

    /// <summary>
    /// One state size: the distance of the impulse responses (the basis functions themselves) over the first K
    /// functions together and per function, and of the step responses (their running sums).
    /// </summary>
    public sealed record Row(int N, double Distance, double[] PerFunction, double StepDistance, double Seconds);

    /// <summary>Running sums down the steps: the response to a unit step input.</summary>
    public static double[,] StepResponse(double[,] basis)
    {
        int length = basis.GetLength(0), n = basis.GetLength(1);
        var s = new double[length, n];
        for (int f = 0; f < n; f++)
        {
            double acc = 0;
            for (int l = 0; l < length; l++) s[l, f] = acc += basis[l, f];
        }
        return s;
    }

    /// <summary>‖Δ‖/‖S4‖ over steps and the first K functions (Frobenius), and per function.</summary>
    public static (double Together, double[] Each) Distance(double[,] s4, double[,] s4d, int functions)
    {
        int length = s4.GetLength(0);
        double num = 0, den = 0;
        var each = new double[functions];
        for (int f = 0; f < functions; f++)
        {
            double nf = 0, df = 0;
            for (int l = 0; l < length; l++)
            {
                double d = s4d[l, f] - s4[l, f];
                nf += d * d;
                df += s4[l, f] * s4[l, f];
            }
            each[f] = Math.Sqrt(nf / df);
            (num, den) = (num + nf, den + df);
        }
        return (Math.Sqrt(num / den), each);
    }

    /// <summary>Least-squares slope of log y against log x: the rate, y ∝ x^slope.</summary>
    public static double LogLogSlope(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        var lx = x.Select(v => Math.Log(v)).ToArray();
        var ly = y.Select(v => Math.Log(v)).ToArray();
        double mx = lx.Average(), my = ly.Average(), sxy = 0, sxx = 0;
        for (int i = 0; i < lx.Length; i++) { sxy += (lx[i] - mx) * (ly[i] - my); sxx += (lx[i] - mx) * (lx[i] - mx); }
        return sxy / sxx;
    }

    public static void Run(Options o)
    {
        Directory.CreateDirectory(o.OutDir);
        AnsiConsole.MarkupLine($"Theorem 3: S4-LegS (A, B) against S4D-LegS (A + PPᵀ, B/2), bilinear, Δ = {o.Dt}, {o.Length} steps (t ≤ {o.Dt * o.Length:G4}), the first {o.Functions} basis functions");
        var rows = new List<Row>();
        double[,]? shownS4 = null, shownD = null;
        int shownN = o.Sizes.Contains(64) ? 64 : o.Sizes[0];
        var table = new Table().AddColumns("N", "impulse responses", "step responses", "impulse, per function (0 … K−1)", "seconds");
        foreach (int n in o.Sizes)
        {
            var clock = Stopwatch.StartNew();
            var s4 = HippoLegS.Basis(n, o.Dt, o.Length, normalPart: false);
            var s4d = HippoLegS.Basis(n, o.Dt, o.Length, normalPart: true);
            var (together, each) = Distance(s4, s4d, o.Functions);
            var (step, _) = Distance(StepResponse(s4), StepResponse(s4d), o.Functions);
            rows.Add(new Row(n, together, each, step, clock.Elapsed.TotalSeconds));
            table.AddRow(n.ToString(), together.ToString("E3", CultureInfo.InvariantCulture), step.ToString("E3", CultureInfo.InvariantCulture),
                string.Join(" ", each.Select(e => e.ToString("E1", CultureInfo.InvariantCulture))), clock.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture));
            if (n == shownN) (shownS4, shownD) = (s4, s4d);
        }
        AnsiConsole.Write(table);
        var sizes = rows.Select(r => (double)r.N).ToArray();
        double rate = LogLogSlope(sizes, rows.Select(r => r.Distance).ToArray());
        double stepRate = LogLogSlope(sizes, rows.Select(r => r.StepDistance).ToArray());
        int tail = Math.Min(3, rows.Count);
        double tailRate = LogLogSlope(sizes[^tail..], rows.TakeLast(tail).Select(r => r.Distance).ToArray());
        AnsiConsole.MarkupLine($"impulse responses: distance ∝ N^{rate:F2} over all sizes, N^{tailRate:F2} over the last {tail}; step responses: ∝ N^{stepRate:F2}");

        string csv = Path.Combine(o.OutDir, "theorem3.csv");
        using (var w = new StreamWriter(csv))
        {
            w.WriteLine("n,impulse_distance,step_distance," + string.Join(",", Enumerable.Range(0, o.Functions).Select(f => $"impulse_function{f}")) + ",seconds");
            foreach (var r in rows)
                w.WriteLine(string.Join(",", new[] { r.N.ToString(), r.Distance.ToString("R", CultureInfo.InvariantCulture), r.StepDistance.ToString("R", CultureInfo.InvariantCulture) }
                    .Concat(r.PerFunction.Select(e => e.ToString("R", CultureInfo.InvariantCulture))).Append(r.Seconds.ToString("F2", CultureInfo.InvariantCulture))));
        }

        var plt = new Plot();
        var line = plt.Add.Scatter(rows.Select(r => Math.Log2(r.N)).ToArray(), rows.Select(r => Math.Log10(r.Distance)).ToArray());
        line.LegendText = $"impulse responses, first {o.Functions} together: ∝ N^{rate:F2}";
        line.LineWidth = 2;
        var stepLine = plt.Add.Scatter(rows.Select(r => Math.Log2(r.N)).ToArray(), rows.Select(r => Math.Log10(r.StepDistance)).ToArray());
        stepLine.LegendText = $"step responses, first {o.Functions} together: ∝ N^{stepRate:F2}";
        stepLine.LineWidth = 2;
        for (int f = 0; f < Math.Min(o.Functions, 4); f++)
        {
            var each = plt.Add.Scatter(rows.Select(r => Math.Log2(r.N)).ToArray(), rows.Select(r => Math.Log10(r.PerFunction[f])).ToArray());
            each.LegendText = $"impulse response of function {f}";
            each.LinePattern = LinePattern.Dashed;
        }
        plt.Title($"S4D-LegS vs S4-LegS basis, bilinear Δ = {o.Dt}, t ≤ {o.Dt * o.Length:G4}");
        plt.XLabel("log₂ N");
        plt.YLabel("log₁₀ relative L2 distance");
        plt.ShowLegend(Alignment.LowerLeft);
        string distancePlot = Path.Combine(o.OutDir, "theorem3.png");
        plt.SavePng(distancePlot, 900, 560);

        var basis = new Plot();
        double[] t = Enumerable.Range(0, o.Length).Select(l => l * o.Dt).ToArray();
        var palette = new ScottPlot.Palettes.Category10();
        for (int f = 0; f < Math.Min(o.Functions, 4); f++)
        {
            var s = basis.Add.Scatter(t, Enumerable.Range(0, o.Length).Select(l => shownS4![l, f]).ToArray());
            s.MarkerSize = 0;
            s.Color = palette.GetColor(f);
            s.LegendText = $"S4-LegS, function {f}";
            var d = basis.Add.Scatter(t, Enumerable.Range(0, o.Length).Select(l => shownD![l, f]).ToArray());
            d.MarkerSize = 0;
            d.Color = palette.GetColor(f);
            d.LinePattern = LinePattern.Dashed;
            d.LegendText = $"S4D-LegS, function {f}";
        }
        basis.Title($"The first basis functions at N = {shownN}: S4-LegS (solid) and S4D-LegS (dashed)");
        basis.XLabel("t = l·Δ");
        basis.ShowLegend(Alignment.UpperRight);
        string basisPlot = Path.Combine(o.OutDir, "theorem3-basis.png");
        basis.SavePng(basisPlot, 900, 560);
        AnsiConsole.MarkupLine($"wrote {csv}, {distancePlot}, {basisPlot}");
    }
}
