using SsmGen.Reference;
using Xunit.Abstractions;

namespace SsmGen.Tests.Reference;

/// <summary>
/// The Mamba (S6) oracle against finite differences, against a direct O(L²) evaluation of the selective
/// scan written out here independently, and against its own token-by-token recurrence.
/// </summary>
public class MambaReferenceTests(ITestOutputHelper output)
{
    private static readonly string[] Names =
        ["in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias", "A_log", "D", "out_proj.weight"];

    /// <summary>
    /// Random parameters: scale 0.5 everywhere, A_log ≈ log(1..N), dt bias ≈ −2, D ≈ 1. With negative eigenvalues the dt
    /// bias is ≈ −0.7 instead (Δ ≈ 0.4), so that Δ·|A| often passes ln 2 and a good share of the transitions 2·exp(Δ·A) − 1 are negative.
    /// </summary>
    private static double[] RandomParameters(MambaReference<double> m, int n, ulong seed, MambaEigenvalues eigenvalues = MambaEigenvalues.Positive)
    {
        double dtBias = eigenvalues == MambaEigenvalues.PositiveAndNegative ? -0.7 : -2;
        var flat = TestConfigs.RandomArray(m.ParameterCount, seed, 0.5);
        var p = m.View(flat);
        var rng = new Rng(seed + 1000);
        for (int e = 0; e < m.Inner; e++)
        {
            p.DtBias[e] = dtBias + 0.3 * rng.Normal();
            p.D[e] = 1 + 0.3 * rng.Normal();
            for (int k = 0; k < n; k++) p.ALog[e * n + k] = Math.Log(k + 1) + 0.2 * rng.Normal();
        }
        return flat;
    }

    private static double Sig(double v) => 1 / (1 + Math.Exp(-v));

    /// <summary>Every test below runs for Mamba's transitions in (0, 1) and in (−1, 1).</summary>
    public static TheoryData<MambaEigenvalues> BothRanges => new() { MambaEigenvalues.Positive, MambaEigenvalues.PositiveAndNegative };

    /// <summary>The share of negative transitions in the last forward of sequence 0: with negative eigenvalues, enough to test them.</summary>
    private void AssertTransitionsCover(MambaReference<double> m, double[] flat, MambaEigenvalues eigenvalues)
    {
        var (a, _) = m.Recurrence(m.View(flat), 0);
        double negative = a.Count(v => v < 0) / (double)a.Length;
        output.WriteLine($"{eigenvalues}: {negative:P0} of the transitions negative, range [{a.Min():F3}, {a.Max():F3}]");
        if (eigenvalues == MambaEigenvalues.PositiveAndNegative) Assert.InRange(negative, 0.2, 0.8);
        else Assert.Equal(0, negative);
    }

    [Theory]
    [MemberData(nameof(BothRanges))]
    public void MambaEveryGradientMatchesCentralDifferences(MambaEigenvalues eigenvalues)
    {
        const int h = 3, expand = 2, n = 4, w = 3, r = 2, batch = 2, length = 7;
        var m = new MambaReference<double>(h, n, expand, w, r, eigenvalues);
        var flat = RandomParameters(m, n, 21, eigenvalues);
        FiniteDifferences.CheckMixerGradients(flat, Names, m.ParameterSizes, batch * length, h, seed: 22,
            (p, x, y) => m.Forward(m.View(p), x, y, batch, length), (p, g, dy, dx) => m.Backward(m.View(p), m.View(g), dy, dx), 1e-6, output);
        AssertTransitionsCover(m, flat, eigenvalues);
    }

    [Theory]
    [MemberData(nameof(BothRanges))]
    public void MambaForwardMatchesDirectQuadraticEvaluation(MambaEigenvalues eigenvalues)
    {
        const int H = 3, expand = 2, N = 4, W = 3, R = 2, batch = 2, length = 7, E = expand * H, ND = R + 2 * N;
        var m = new MambaReference<double>(H, N, expand, W, R, eigenvalues);
        var flat = RandomParameters(m, N, 31, eigenvalues);
        bool negative = eigenvalues == MambaEigenvalues.PositiveAndNegative;
        var x = TestConfigs.RandomArray(batch * length * H, 32);
        var y = new double[x.Length];
        m.Forward(m.View(flat), x, y, batch, length);

        var p = m.View(flat);
        double[] inProj = p.InProj.ToArray(), convW = p.ConvWeight.ToArray(), convB = p.ConvBias.ToArray(),
            xProj = p.XProj.ToArray(), dtW = p.DtWeight.ToArray(), dtB = p.DtBias.ToArray(),
            aLog = p.ALog.ToArray(), d = p.D.ToArray(), outProj = p.OutProj.ToArray();

        double worst = 0;
        for (int b = 0; b < batch; b++)
        {
            // Every intermediate, per position, written out plainly.
            var xi = new double[length, E]; var z = new double[length, E];
            for (int t = 0; t < length; t++)
                for (int j = 0; j < 2 * E; j++)
                {
                    double s = 0;
                    for (int i = 0; i < H; i++) s += inProj[j * H + i] * x[(b * length + t) * H + i];
                    if (j < E) xi[t, j] = s; else z[t, j - E] = s;
                }
            var u = new double[length, E];
            for (int t = 0; t < length; t++)
                for (int e = 0; e < E; e++)
                {
                    double c = convB[e];
                    for (int lag = 0; lag < W && lag <= t; lag++) c += convW[e * W + (W - 1 - lag)] * xi[t - lag, e];
                    u[t, e] = c / (1 + Math.Exp(-c));
                }
            var dbc = new double[length, ND];
            for (int t = 0; t < length; t++)
                for (int j = 0; j < ND; j++)
                    for (int e = 0; e < E; e++) dbc[t, j] += xProj[j * E + e] * u[t, e];
            var delta = new double[length, E];
            for (int t = 0; t < length; t++)
                for (int e = 0; e < E; e++)
                {
                    double s = dtB[e];
                    for (int k = 0; k < R; k++) s += dtW[e * R + k] * dbc[t, k];
                    delta[t, e] = Math.Log(1 + Math.Exp(s));
                }

            for (int t = 0; t < length; t++)
            {
                var gate = new double[E];
                for (int e = 0; e < E; e++)
                {
                    double ys = d[e] * u[t, e];
                    for (int s = 0; s <= t; s++)
                        for (int k = 0; k < N; k++)
                        {
                            // the transitions from s + 1 to t: Π exp(a·Δ_q), or Π (2·exp(a·Δ_q) − 1)
                            double a = -Math.Exp(aLog[e * N + k]), carried = 1;
                            for (int q = s + 1; q <= t; q++) carried *= negative ? 2 * Math.Exp(a * delta[q, e]) - 1 : Math.Exp(a * delta[q, e]);
                            ys += dbc[t, R + N + k] * carried * delta[s, e] * dbc[s, R + k] * u[s, e];
                        }
                    gate[e] = ys * z[t, e] * Sig(z[t, e]);
                }
                for (int i = 0; i < H; i++)
                {
                    double expected = 0;
                    for (int e = 0; e < E; e++) expected += outProj[i * E + e] * gate[e];
                    double err = Math.Abs(expected - y[(b * length + t) * H + i]) / Math.Max(1, Math.Abs(expected));
                    worst = Math.Max(worst, err);
                }
            }
        }
        output.WriteLine($"Forward vs direct O(L²) evaluation: worst error {worst:E2}");
        Assert.True(worst < 1e-12, $"worst error {worst:E2}");
        AssertTransitionsCover(m, flat, eigenvalues);
    }

    [Theory]
    [MemberData(nameof(BothRanges))]
    public void MambaStepMatchesForwardPositionByPosition(MambaEigenvalues eigenvalues)
    {
        const int H = 3, expand = 2, N = 4, W = 4, R = 2, length = 24;
        var m = new MambaReference<double>(H, N, expand, W, R, eigenvalues);
        var flat = RandomParameters(m, N, 41, eigenvalues);
        Assert.Equal(m.Inner * (W - 1) + m.Inner * N, m.StateSize);
        var conv = new double[m.ConvStateSize];
        var ssm = new double[m.SsmStateSize];
        Comparison.StepMatchesForward(output, "", TestConfigs.RandomArray(length * H, 42), H, smallest: 1e-3,
            (x, y) => m.Forward(m.View(flat), x, y, 1, length), (t, xt, yt) => m.Step(m.View(flat), conv, ssm, xt, yt));
    }

    [Theory]
    [MemberData(nameof(BothRanges))]
    public void MambaRecurrenceIsTheScanTheStepRuns(MambaEigenvalues eigenvalues)
    {
        // the (Ā_t, b_t) Recurrence exposes for Forward, run as h_t = Ā_t ⊙ h_(t−1) + b_t, ends in the SSM state that
        // the streaming Step (separate code) reaches, and every Ā_t lies in (0, 1), or (−1, 1) with negative eigenvalues
        const int H = 3, expand = 2, N = 4, W = 4, R = 2, length = 20;
        var m = new MambaReference<double>(H, N, expand, W, R, eigenvalues);
        var flat = RandomParameters(m, N, 61, eigenvalues);
        var x = TestConfigs.RandomArray(2 * length * H, 62);
        m.Forward(m.View(flat), x, new double[x.Length], 2, length);
        var (a, drive) = m.Recurrence(m.View(flat), 1);
        int width = m.Inner * N;
        var h = new double[width];
        for (int t = 0; t < length; t++)
            for (int i = 0; i < width; i++) h[i] = a[t * width + i] * h[i] + drive[t * width + i];
        var conv = new double[m.ConvStateSize];
        var ssm = new double[m.SsmStateSize];
        for (int t = 0; t < length; t++) m.Step(m.View(flat), conv, ssm, x.AsSpan((length + t) * H, H), new double[H]);
        for (int i = 0; i < width; i++) Assert.Equal(ssm[i], h[i], 12);
        double lowest = eigenvalues == MambaEigenvalues.PositiveAndNegative ? -1 + 1e-12 : double.Epsilon;
        Assert.All(a, v => Assert.InRange(v, lowest, 1 - 1e-12));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Recurrence(m.View(flat), 2));
    }

    [Theory]
    [MemberData(nameof(BothRanges))]
    public void MambaFloatForwardTracksDouble(MambaEigenvalues eigenvalues)
    {
        const int H = 3, expand = 2, N = 4, W = 3, R = 2, batch = 2, length = 7;
        var md = new MambaReference<double>(H, N, expand, W, R, eigenvalues);
        var mf = new MambaReference<float>(H, N, expand, W, R, eigenvalues);
        Comparison.FloatTracksDouble(output, "", RandomParameters(md, N, 51, eigenvalues), TestConfigs.RandomArray(batch * length * H, 52),
            (p, x, y) => md.Forward(md.View(p), x, y, batch, length), (p, x, y) => mf.Forward(mf.View(p), x, y, batch, length));
    }

    [Fact]
    public void RmsNormForwardMatchesFormula()
    {
        const int rows = 5, h = 7;
        var x = TestConfigs.RandomArray(rows * h, 61, 2);
        var w = TestConfigs.RandomArray(h, 62);
        var y = new double[rows * h];
        var rstd = new double[rows];
        BlockReference<double>.RmsNormForward(x, w, y, rstd, rows, h);
        double worst = 0;
        for (int r = 0; r < rows; r++)
        {
            double ss = 0;
            for (int i = 0; i < h; i++) ss += x[r * h + i] * x[r * h + i];
            double rms = Math.Sqrt(ss / h + 1e-5);
            worst = Math.Max(worst, Math.Abs(rstd[r] - 1 / rms));
            for (int i = 0; i < h; i++) worst = Math.Max(worst, Math.Abs(y[r * h + i] - x[r * h + i] / rms * w[i]));
        }
        output.WriteLine($"RMSNorm forward vs formula: worst error {worst:E2}");
        Assert.True(worst < 1e-14, $"worst error {worst:E2}");
    }

    [Fact]
    public void RmsNormBackwardMatchesCentralDifferences()
    {
        const int rows = 4, h = 6;
        var x = TestConfigs.RandomArray(rows * h, 71);
        var w = TestConfigs.RandomArray(h, 72);
        var dy = TestConfigs.RandomArray(rows * h, 73);
        var y = new double[rows * h];
        var rstd = new double[rows];
        FiniteDifferences.CheckGradients(w, x, dy,
            (ws, xs) => { BlockReference<double>.RmsNormForward(xs, ws, y, rstd, rows, h); return y; },
            (ws, dw, dys, dxs) => BlockReference<double>.RmsNormBackward(x, ws, rstd, dys, dxs, dw, rows, h),
            [("RMSNorm weight", 0, h)], 1e-7, output, gradientSeed: 75, dxSeed: 74);
    }
}
