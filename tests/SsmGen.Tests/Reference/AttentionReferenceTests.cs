using SsmGen.Reference;
using Xunit.Abstractions;

namespace SsmGen.Tests.Reference;

/// <summary>
/// The causal rotary attention oracle against finite differences, against a plain masked-softmax
/// evaluation written out here independently, against its own key/value-cache step, and for the
/// properties causality and relative positions must have.
/// </summary>
public class AttentionReferenceTests(ITestOutputHelper output)
{
    private const int H = 8, Heads = 2, D = H / Heads, Batch = 2, Length = 5;
    private static readonly string[] Names = ["in_proj.weight", "in_proj.bias", "out_proj.weight", "out_proj.bias"];

    private static double RelErr(double expected, double actual) => Math.Abs(expected - actual) / Math.Max(1, Math.Abs(expected));

    [Fact]
    public void AttentionEveryGradientMatchesCentralDifferences()
    {
        var m = new AttentionReference<double>(H, Heads);
        var flat = TestConfigs.RandomArray(m.ParameterCount, 101, 0.5);
        Assert.Equal([3 * H * H, 3 * H, H * H, H], m.ParameterSizes);
        var errors = FiniteDifferences.CheckMixerGradients(flat, Names, m.ParameterSizes, Batch * Length, H, seed: 102,
            (p, x, y) => m.Forward(m.View(p), x, y, Batch, Length), (p, g, dy, dx) => m.Backward(m.View(p), m.View(g), dy, dx), 1e-6, output);
        foreach (var e in errors)
            Assert.True(e.MaxGradient > 1e-3, $"{e.Name}: gradients too small for the comparison to mean anything");
    }

    [Fact]
    public void AttentionIsCausal()
    {
        var m = new AttentionReference<double>(H, Heads);
        var flat = TestConfigs.RandomArray(m.ParameterCount, 111, 0.5);
        var x = TestConfigs.RandomArray(Batch * Length * H, 112);
        var y = new double[x.Length];
        m.Forward(m.View(flat), x, y, Batch, Length);

        var bump = TestConfigs.RandomArray(H, 113);
        var y2 = new double[x.Length];
        double smallestChange = double.MaxValue;
        for (int b = 0; b < Batch; b++)
            for (int t = 0; t < Length; t++)
            {
                var x2 = (double[])x.Clone();
                for (int i = 0; i < H; i++) x2[(b * Length + t) * H + i] += bump[i];
                m.Forward(m.View(flat), x2, y2, Batch, Length);
                for (int bb = 0; bb < Batch; bb++)
                    for (int s = 0; s < Length; s++)
                    {
                        double change = 0;
                        for (int i = 0; i < H; i++)
                            change = Math.Max(change, Math.Abs(y2[(bb * Length + s) * H + i] - y[(bb * Length + s) * H + i]));
                        if (bb != b || s < t)
                            Assert.True(change == 0, $"x[{b},{t}] changed y[{bb},{s}] by {change:E2}");
                        else if (s == t)
                            smallestChange = Math.Min(smallestChange, change);
                    }
            }
        output.WriteLine($"earlier positions and other sequences unchanged exactly; smallest change of y_t {smallestChange:E2}");
        Assert.True(smallestChange > 1e-3, $"changing x_t barely changed y_t ({smallestChange:E2})");
    }

    [Fact]
    public void AttentionForwardMatchesPlainMaskedSoftmax()
    {
        var m = new AttentionReference<double>(H, Heads);
        var flat = TestConfigs.RandomArray(m.ParameterCount, 121, 0.5);
        var x = TestConfigs.RandomArray(Batch * Length * H, 122);
        var y = new double[x.Length];
        m.Forward(m.View(flat), x, y, Batch, Length);

        var p = m.View(flat);
        double[] w = p.InWeight.ToArray(), bias = p.InBias.ToArray(), wo = p.OutWeight.ToArray(), bo = p.OutBias.ToArray();

        var compare = new Comparison();
        for (int b = 0; b < Batch; b++)
        {
            var concat = new double[Length, H];
            for (int head = 0; head < Heads; head++)
            {
                // Q, K, V (L × d) of this head: rows head·d.. of each third of in_proj.
                var q = new double[Length, D]; var k = new double[Length, D]; var v = new double[Length, D];
                for (int t = 0; t < Length; t++)
                    for (int c = 0; c < D; c++)
                    {
                        int rq = head * D + c, rk = H + head * D + c, rv = 2 * H + head * D + c;
                        double sq = bias[rq], sk = bias[rk], sv = bias[rv];
                        for (int i = 0; i < H; i++)
                        {
                            double xi = x[(b * Length + t) * H + i];
                            sq += w[rq * H + i] * xi; sk += w[rk * H + i] * xi; sv += w[rv * H + i] * xi;
                        }
                        q[t, c] = sq; k[t, c] = sk; v[t, c] = sv;
                    }

                // Rotation by explicit 2×2 matrices [[cos, −sin], [sin, cos]] on pairs (2i, 2i+1).
                for (int t = 0; t < Length; t++)
                    for (int i = 0; i < D / 2; i++)
                    {
                        double theta = t / Math.Pow(10000, 2.0 * i / D), cos = Math.Cos(theta), sin = Math.Sin(theta);
                        (q[t, 2 * i], q[t, 2 * i + 1]) = (cos * q[t, 2 * i] - sin * q[t, 2 * i + 1], sin * q[t, 2 * i] + cos * q[t, 2 * i + 1]);
                        (k[t, 2 * i], k[t, 2 * i + 1]) = (cos * k[t, 2 * i] - sin * k[t, 2 * i + 1], sin * k[t, 2 * i] + cos * k[t, 2 * i + 1]);
                    }

                // Masked softmax: weight exp(s) for u ≤ t, 0 beyond, divided by the row sum.
                for (int t = 0; t < Length; t++)
                {
                    var e = new double[Length];
                    double sum = 0;
                    for (int u = 0; u < Length; u++)
                    {
                        if (u > t) continue;
                        double s = 0;
                        for (int c = 0; c < D; c++) s += q[t, c] * k[u, c];
                        e[u] = Math.Exp(s / Math.Sqrt(D));
                        sum += e[u];
                    }
                    for (int c = 0; c < D; c++)
                    {
                        double acc = 0;
                        for (int u = 0; u < Length; u++) acc += e[u] / sum * v[u, c];
                        concat[t, head * D + c] = acc;
                    }
                }
            }
            for (int t = 0; t < Length; t++)
                for (int r = 0; r < H; r++)
                {
                    double expected = bo[r];
                    for (int c = 0; c < H; c++) expected += wo[r * H + c] * concat[t, c];
                    compare.Add(expected, y[(b * Length + t) * H + r]);
                }
        }
        compare.Check(output, "Forward vs plain masked softmax", smallest: 1e-2, tolerance: 1e-12);
    }

    [Fact]
    public void RotaryScoreDependsOnlyOnOffset()
    {
        var q = TestConfigs.RandomArray(H, 131);
        var k = TestConfigs.RandomArray(H, 132);

        // Per-head scores of q rotated to position t and k rotated to position u (the whole H vector,
        // consecutive heads of size D).
        double[] Scores(int t, int u)
        {
            var qr = (double[])q.Clone(); var kr = (double[])k.Clone();
            AttentionReference<double>.Rotate(qr, t, D);
            AttentionReference<double>.Rotate(kr, u, D);
            var s = new double[Heads];
            for (int j = 0; j < Heads; j++)
                for (int i = 0; i < D; i++) s[j] += qr[j * D + i] * kr[j * D + i];
            return s;
        }

        double worst = 0, spread = 0;
        foreach (var (t, u) in new[] { (0, 0), (3, 1), (1, 3), (7, 2), (4, 4), (10, 0) })
        {
            var s0 = Scores(t, u);
            foreach (int shift in new[] { 1, 5, 17, 100 })
            {
                var s1 = Scores(t + shift, u + shift);
                for (int j = 0; j < Heads; j++) worst = Math.Max(worst, RelErr(s0[j], s1[j]));
            }
            // Different offsets must give different scores, or the property above proves nothing.
            var other = Scores(t + 1, u);
            for (int j = 0; j < Heads; j++) spread = Math.Max(spread, Math.Abs(other[j] - s0[j]));
        }
        output.WriteLine($"score(t+s, u+s) vs score(t, u): worst error {worst:E2}; score change with offset up to {spread:G3}");
        Assert.True(spread > 1e-2, "rotation does not depend on position");
        Assert.True(worst < 1e-12, $"worst error {worst:E2}");

        // Conventions pinned down: position 0 is the identity, pair 0 turns by 1 radian per position
        // counter-clockwise, the last pair of a head by 10000^(−(d−2)/d), and a negative position undoes.
        var e = new double[D];
        e[0] = 1; e[D - 2] = 1;
        var r0 = (double[])e.Clone(); AttentionReference<double>.Rotate(r0, 0, D);
        Assert.Equal(e, r0);
        var r3 = (double[])e.Clone(); AttentionReference<double>.Rotate(r3, 3, D);
        double last = 3 * Math.Pow(10000, -(D - 2.0) / D);
        Assert.Equal(Math.Cos(3), r3[0], 15); Assert.Equal(Math.Sin(3), r3[1], 15);
        Assert.Equal(Math.Cos(last), r3[D - 2], 15); Assert.Equal(Math.Sin(last), r3[D - 1], 15);
        AttentionReference<double>.Rotate(r3, -3, D);
        for (int i = 0; i < D; i++) Assert.Equal(e[i], r3[i], 15);
    }

    [Fact]
    public void AttentionStepMatchesForwardPositionByPosition()
    {
        const int length = 16, maxLength = 20;
        var m = new AttentionReference<double>(H, Heads);
        var flat = TestConfigs.RandomArray(m.ParameterCount, 141, 0.5);
        var x = TestConfigs.RandomArray(length * H, 142);
        Assert.Equal(2 * maxLength * H, AttentionReference<double>.CacheSize(maxLength, H));
        var cache = new double[AttentionReference<double>.CacheSize(maxLength, H)];
        Array.Fill(cache, double.NaN); // positions not yet written must never be read
        Comparison.StepMatchesForward(output, "", x, H, smallest: 1e-2,
            (xs, ys) => m.Forward(m.View(flat), xs, ys, 1, length), (t, xt, yt) => m.Step(m.View(flat), cache, t, xt, yt));

        // The layout: values (no rotation) at maxLength·H + t·H; beyond the written positions, untouched.
        var p = m.View(flat);
        for (int t = 0; t < length; t++)
            for (int c = 0; c < H; c++)
            {
                double v = p.InBias[2 * H + c];
                for (int i = 0; i < H; i++) v += p.InWeight[(2 * H + c) * H + i] * x[t * H + i];
                Assert.True(RelErr(v, cache[maxLength * H + t * H + c]) < 1e-14, $"value cache at {t},{c}");
            }
        Assert.True(double.IsNaN(cache[length * H]) && double.IsNaN(cache[maxLength * H + length * H]));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Step(m.View(flat), cache, maxLength, x.AsSpan(0, H), new double[H]));
    }

    [Fact]
    public void AttentionFloatForwardTracksDouble()
    {
        var md = new AttentionReference<double>(H, Heads);
        var mf = new AttentionReference<float>(H, Heads);
        Comparison.FloatTracksDouble(output, "", TestConfigs.RandomArray(md.ParameterCount, 151, 0.5), TestConfigs.RandomArray(Batch * Length * H, 152),
            (p, x, y) => md.Forward(md.View(p), x, y, Batch, Length), (p, x, y) => mf.Forward(mf.View(p), x, y, Batch, Length));
    }

    [Fact]
    public void AttentionBadConfigurationThrows()
    {
        var notDividing = Assert.Throws<ArgumentException>(() => new AttentionReference<double>(8, 3));
        output.WriteLine(notDividing.Message);
        Assert.Contains("divide", notDividing.Message);
        var odd = Assert.Throws<ArgumentException>(() => new AttentionReference<double>(6, 2));
        output.WriteLine(odd.Message);
        Assert.Contains("even", odd.Message);
        Assert.Throws<ArgumentException>(() => new AttentionReference<float>(8, 0));
        Assert.Throws<ArgumentException>(() => AttentionReference<double>.Rotate(new double[6], 1, 3));
    }
}
