using SsmGen.Reference;
using Xunit.Abstractions;

namespace SsmGen.Tests.Reference;

/// <summary>
/// The two mixers of "The Illusion of State in State-Space Models" (the nonlinear RNN baseline and the
/// input-dependent transition SSM, IDS4) against finite differences, against closed forms written out
/// here independently (nested formulas, explicit matrix products, permutation powers as index maps), and
/// against their own token-by-token recurrences; and the IDS transition initializer against its formula.
/// </summary>
public class RnnIdsReferenceTests(ITestOutputHelper output)
{
    private static readonly string[] RnnNames = ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "out_proj.weight", "out_proj.bias"];
    private static readonly string[] IdsNames = ["A.weight", "A.bias", "B.weight", "C.weight", "C.bias"];

    // ───────────────────────── shared helpers ─────────────────────────

    private static double RelErr(double expected, double actual) => Math.Abs(expected - actual) / Math.Max(1, Math.Abs(expected));

    // ───────────────────────── RNN ─────────────────────────

    /// <summary>Random RNN parameters of scale 0.5 (biases included, so relu pre-activations take both signs).</summary>
    private static double[] RnnParameters(RnnReference<double> m, ulong seed) => TestConfigs.RandomArray(m.ParameterCount, seed, 0.5);

    /// <summary>Pre-activations s (B,L,D) recomputed here, to check the relu test straddles the kink with margin.</summary>
    private static double[] RnnPreActivations(RnnReference<double> m, double[] flat, double[] x, int batch, int length)
    {
        int H = m.DModel, D = m.Hidden;
        var p = m.View(flat);
        double[] wih = p.WeightIh.ToArray(), whh = p.WeightHh.ToArray(), bih = p.BiasIh.ToArray(), bhh = p.BiasHh.ToArray();
        var s = new double[batch * length * D];
        for (int b = 0; b < batch; b++)
        {
            var h = new double[D];
            for (int t = 0; t < length; t++)
            {
                int row = b * length + t;
                for (int d = 0; d < D; d++)
                {
                    double v = bih[d] + bhh[d];
                    for (int i = 0; i < H; i++) v += wih[d * H + i] * x[row * H + i];
                    for (int k = 0; k < D; k++) v += whh[d * D + k] * h[k];
                    s[row * D + d] = v;
                }
                for (int d = 0; d < D; d++)
                    h[d] = m.Nonlinearity == Nonlinearity.Tanh ? Math.Tanh(s[row * D + d]) : Math.Max(0, s[row * D + d]);
            }
        }
        return s;
    }

    [Theory]
    [InlineData(Nonlinearity.Tanh)]
    [InlineData(Nonlinearity.Relu)]
    public void RnnEveryGradientMatchesCentralDifferences(Nonlinearity f)
    {
        const int H = 3, D = 4, batch = 2, length = 6;
        var m = new RnnReference<double>(H, D, f);
        var flat = RnnParameters(m, 101);
        var x = TestConfigs.RandomArray(batch * length * H, 102); // the input the check below draws

        var pre = RnnPreActivations(m, flat, x, batch, length);
        int positive = pre.Count(v => v > 0), negative = pre.Count(v => v < 0);
        double margin = pre.Min(v => Math.Abs(v));
        output.WriteLine($"{f}: pre-activations {positive} positive, {negative} negative, min |s| {margin:E2}");
        Assert.True(positive >= pre.Length / 5 && negative >= pre.Length / 5, "pre-activations must take both signs");
        // A ±1e-6 change of one parameter or input moves every s by far less than 1e-5.
        if (f == Nonlinearity.Relu) Assert.True(margin > 1e-5, "a pre-activation is too close to the relu kink for finite differences");

        FiniteDifferences.CheckMixerGradients(flat, RnnNames, m.ParameterSizes, batch * length, H, seed: 102,
            (p, xs, y) => m.Forward(m.View(p), xs, y, batch, length), (p, g, dy, dx) => m.Backward(m.View(p), m.View(g), dy, dx), 1e-6, output);
    }

    [Theory]
    [InlineData(Nonlinearity.Tanh)]
    [InlineData(Nonlinearity.Relu)]
    public void RnnLengthTwoForwardMatchesNestedFormula(Nonlinearity f)
    {
        const int H = 3, D = 4, length = 2;
        var m = new RnnReference<double>(H, D, f);
        var flat = RnnParameters(m, 112);
        var x = TestConfigs.RandomArray(length * H, 112);
        var y = new double[x.Length];
        m.Forward(m.View(flat), x, y, 1, length);

        var p = m.View(flat);
        double[] wih = p.WeightIh.ToArray(), whh = p.WeightHh.ToArray(), bih = p.BiasIh.ToArray(), bhh = p.BiasHh.ToArray(),
            wo = p.OutWeight.ToArray(), bo = p.OutBias.ToArray();
        Func<double, double> act = f == Nonlinearity.Tanh ? Math.Tanh : v => v > 0 ? v : 0;

        // h_0[k] = f(Σ_i W_ih[k,i] x_0[i] + b_ih[k] + b_hh[k])
        double H0(int k)
        {
            double s = bih[k] + bhh[k];
            for (int i = 0; i < H; i++) s += wih[k * H + i] * x[i];
            return act(s);
        }
        // h_1[d] = f(Σ_i W_ih[d,i] x_1[i] + b_ih[d] + Σ_k W_hh[d,k] h_0[k] + b_hh[d])
        double H1(int d)
        {
            double s = bih[d] + bhh[d];
            for (int i = 0; i < H; i++) s += wih[d * H + i] * x[H + i];
            for (int k = 0; k < D; k++) s += whh[d * D + k] * H0(k);
            return act(s);
        }

        double worst = 0;
        int zeros = 0;
        for (int o = 0; o < H; o++)
        {
            // y_0[o] = Σ_k W_out[o,k] h_0[k] + b_out[o];  y_1[o] = Σ_d W_out[o,d] h_1[d] + b_out[o]
            double y0 = bo[o], y1 = bo[o];
            for (int k = 0; k < D; k++) y0 += wo[o * D + k] * H0(k);
            for (int d = 0; d < D; d++) y1 += wo[o * D + d] * H1(d);
            worst = Math.Max(worst, Math.Max(RelErr(y0, y[o]), RelErr(y1, y[H + o])));
        }
        for (int d = 0; d < D; d++) if (H1(d) == 0) zeros++;
        output.WriteLine($"{f}: length-2 forward vs nested formula: worst error {worst:E2} ({zeros} of {D} h_1 entries clipped)");
        if (f == Nonlinearity.Relu) Assert.True(zeros > 0 && zeros < D, "relu must clip some but not all of h_1 for the check to cover both branches");
        Assert.True(worst < 1e-14, $"worst error {worst:E2}");
    }

    [Theory]
    [InlineData(Nonlinearity.Tanh)]
    [InlineData(Nonlinearity.Relu)]
    public void RnnStepMatchesForwardPositionByPosition(Nonlinearity f)
    {
        const int H = 3, D = 4, length = 24;
        var m = new RnnReference<double>(H, D, f);
        var flat = RnnParameters(m, 121);
        Assert.Equal(D, m.StateSize);
        var state = new double[m.StateSize];
        Comparison.StepMatchesForward(output, $"{f}: ", TestConfigs.RandomArray(length * H, 122), H, smallest: 1e-3,
            (x, y) => m.Forward(m.View(flat), x, y, 1, length), (t, xt, yt) => m.Step(m.View(flat), state, xt, yt));
    }

    // ───────────────────────── IDS ─────────────────────────

    /// <summary>
    /// Random IDS parameters with a transition near the identity: A.bias = 0.9·I + 0.1·noise, A.weight of
    /// scale <paramref name="aScale"/>, B, C, C.bias of scale 0.5.
    /// </summary>
    private static double[] IdsParameters(IdsReference<double> m, ulong seed, double aScale = 0.15)
    {
        int N = m.N;
        var flat = TestConfigs.RandomArray(m.ParameterCount, seed, 0.5);
        var p = m.View(flat);
        var rng = new Rng(seed + 1000);
        for (int i = 0; i < p.AWeight.Length; i++) p.AWeight[i] = aScale * rng.Normal();
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) p.ABias[i * N + j] = (i == j ? 0.9 : 0) + 0.1 * rng.Normal();
        return flat;
    }

    private static double[,] MatMul(double[,] a, double[,] b)
    {
        int n = a.GetLength(0), k = a.GetLength(1), m = b.GetLength(1);
        var c = new double[n, m];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
                for (int q = 0; q < k; q++) c[i, j] += a[i, q] * b[q, j];
        return c;
    }

    private static double[,] Identity(int n)
    {
        var e = new double[n, n];
        for (int i = 0; i < n; i++) e[i, i] = 1;
        return e;
    }

    [Fact]
    public void IdsEveryGradientMatchesCentralDifferences()
    {
        const int H = 3, N = 3, batch = 2, length = 6;
        var m = new IdsReference<double>(H, N);
        FiniteDifferences.CheckMixerGradients(IdsParameters(m, 201), IdsNames, m.ParameterSizes, batch * length, H, seed: 202,
            (p, x, y) => m.Forward(m.View(p), x, y, batch, length), (p, g, dy, dx) => m.Backward(m.View(p), m.View(g), dy, dx), 1e-6, output);
    }

    [Fact]
    public void IdsForwardMatchesSumOfMatrixProducts()
    {
        const int H = 3, N = 3, batch = 2, length = 6;
        var m = new IdsReference<double>(H, N);
        var flat = IdsParameters(m, 211, aScale: 0.3);
        var x = TestConfigs.RandomArray(batch * length * H, 212);
        var y = new double[x.Length];
        m.Forward(m.View(flat), x, y, batch, length);

        var p = m.View(flat);
        double[] aw = p.AWeight.ToArray(), ab = p.ABias.ToArray(), bw = p.BWeight.ToArray(), cw = p.CWeight.ToArray(), cb = p.CBias.ToArray();
        var compare = new Comparison();
        for (int b = 0; b < batch; b++)
        {
            // A_t as N×N matrices and B x_t as N×1 columns.
            var a = new double[length][,];
            var bx = new double[length][,];
            for (int t = 0; t < length; t++)
            {
                a[t] = new double[N, N];
                bx[t] = new double[N, 1];
                for (int i = 0; i < N; i++)
                {
                    for (int j = 0; j < N; j++)
                    {
                        double v = ab[i * N + j];
                        for (int k = 0; k < H; k++) v += aw[(i * N + j) * H + k] * x[(b * length + t) * H + k];
                        a[t][i, j] = v;
                    }
                    for (int k = 0; k < H; k++) bx[t][i, 0] += bw[i * H + k] * x[(b * length + t) * H + k];
                }
            }
            for (int t = 0; t < length; t++)
            {
                // h_t = Σ_{s≤t} (A_t A_{t−1} ⋯ A_{s+1}) B x_s
                var h = new double[N, 1];
                for (int s = 0; s <= t; s++)
                {
                    var prod = Identity(N);
                    for (int q = t; q > s; q--) prod = MatMul(prod, a[q]);
                    var term = MatMul(prod, bx[s]);
                    for (int i = 0; i < N; i++) h[i, 0] += term[i, 0];
                }
                for (int o = 0; o < H; o++)
                {
                    double expected = cb[o];
                    for (int i = 0; i < N; i++) expected += cw[o * N + i] * h[i, 0];
                    compare.Add(expected, y[(b * length + t) * H + o]);
                }
            }
        }
        compare.Check(output, "Forward vs Σ of explicit matrix products", smallest: 1e-2, tolerance: 1e-12);
    }

    [Fact]
    public void IdsPermutationTransitionsTrackState()
    {
        // H = N and C = I, C.bias = 0, so y_t = h_t. Permutations act as index maps: (P v)[i] = v[π(i)].
        const int N = 4, H = N, length = 9;
        var m = new IdsReference<double>(H, N);
        var flat = new double[m.ParameterCount];
        var p = m.View(flat);
        for (int i = 0; i < N; i++) p.CWeight[i * N + i] = 1;
        var bRand = TestConfigs.RandomArray(N * H, 221);
        bRand.CopyTo(p.BWeight);
        var x = TestConfigs.RandomArray(length * H, 222);

        // B x_s, written out.
        var bx = new double[length][];
        for (int s = 0; s < length; s++)
        {
            bx[s] = new double[N];
            for (int i = 0; i < N; i++)
                for (int k = 0; k < H; k++) bx[s][i] += bRand[i * H + k] * x[s * H + k];
        }
        static double[] Apply(int[] pi, double[] v) { var r = new double[v.Length]; for (int i = 0; i < v.Length; i++) r[i] = v[pi[i]]; return r; }

        // (1) A.weight = 0, A.bias = P (a 3-cycle and a fixed point): h_t = Σ_s P^(t−s) B x_s.
        int[] perm = [2, 0, 1, 3];
        for (int i = 0; i < N; i++) p.ABias[i * N + perm[i]] = 1;
        var y = new double[length * H];
        m.Forward(p, x, y, 1, length);
        double worst = 0;
        for (int t = 0; t < length; t++)
        {
            var h = new double[N];
            for (int s = 0; s <= t; s++)
            {
                var v = bx[s];
                for (int k = 0; k < t - s; k++) v = Apply(perm, v);
                for (int i = 0; i < N; i++) h[i] += v[i];
            }
            for (int i = 0; i < N; i++) worst = Math.Max(worst, RelErr(h[i], y[t * H + i]));
        }
        // P³ = I on the cycle: a token injected alone at s = 0 returns after 3 steps.
        var single = new double[length * H];
        x.AsSpan(0, H).CopyTo(single);
        var ys = new double[length * H];
        m.Forward(p, single, ys, 1, length);
        for (int i = 0; i < N; i++) worst = Math.Max(worst, Math.Abs(ys[3 * H + i] - bx[0][i]) + Math.Abs(ys[6 * H + i] - bx[0][i]));
        output.WriteLine($"fixed permutation P: h_t vs Σ_s P^(t−s) B x_s and P³ = I: worst error {worst:E2}");

        // (2) Input-selected permutations (the word problem on S_3 ⊂ S_4): one-hot token k selects
        // A_t = P_k through A.weight's column k, A.bias = 0; h_t = Σ_s P_{k_t} ⋯ P_{k_{s+1}} B x_s.
        int[][] gens = [[1, 0, 2, 3], [2, 0, 1, 3], [0, 1, 2, 3], [0, 2, 1, 3]];
        p.ABias.Clear();
        for (int k = 0; k < H; k++)
            for (int i = 0; i < N; i++) p.AWeight[(i * N + gens[k][i]) * H + k] = 1;
        var tokens = TestConfigs.RandomTokens(length, H, 223);
        var oneHot = new double[length * H];
        for (int t = 0; t < length; t++) oneHot[t * H + tokens[t]] = 1;
        var yw = new double[length * H];
        m.Forward(p, oneHot, yw, 1, length);
        double worstWord = 0;
        for (int t = 0; t < length; t++)
        {
            var h = new double[N];
            for (int s = 0; s <= t; s++)
            {
                var v = new double[N];
                for (int i = 0; i < N; i++) v[i] = bRand[i * H + tokens[s]];
                for (int q = s + 1; q <= t; q++) v = Apply(gens[tokens[q]], v);
                for (int i = 0; i < N; i++) h[i] += v[i];
            }
            for (int i = 0; i < N; i++) worstWord = Math.Max(worstWord, RelErr(h[i], yw[t * H + i]));
        }
        output.WriteLine($"input-selected permutations ({string.Join("", tokens)}): worst error {worstWord:E2}");
        Assert.True(worst < 1e-14, $"fixed permutation: worst error {worst:E2}");
        Assert.True(worstWord < 1e-14, $"input-selected permutations: worst error {worstWord:E2}");
    }

    [Fact]
    public void IdsStepMatchesForwardPositionByPosition()
    {
        const int H = 3, N = 3, length = 24;
        var m = new IdsReference<double>(H, N);
        var flat = IdsParameters(m, 231);
        Assert.Equal(N, m.StateSize);
        var state = new double[m.StateSize];
        Comparison.StepMatchesForward(output, "", TestConfigs.RandomArray(length * H, 232), H, smallest: 1e-3,
            (x, y) => m.Forward(m.View(flat), x, y, 1, length), (t, xt, yt) => m.Step(m.View(flat), state, xt, yt));
    }

    [Fact]
    public void IdsTransitionInitializerIsIdentityPlusScaledNoise()
    {
        const int N = 8, H = 256;
        var w = new float[N * N * H];
        var bias = new float[N * N];
        bias.AsSpan().Fill(7); // must be overwritten entirely
        var rng = new Rng(241);
        Initialization.IdsTransition(w, bias, N, H, ref rng);

        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) Assert.Equal(i == j ? 1f : 0f, bias[i * N + j]);

        double mean = w.Average(v => (double)v);
        double std = Math.Sqrt(w.Average(v => ((double)v - mean) * ((double)v - mean)));
        double target = 1 / (N * Math.Sqrt(H));
        output.WriteLine($"A.weight: {w.Length} draws, mean {mean:E2}, std {std:E4} vs 1/(N√H) = {target:E4} ({std / target - 1:P2})");
        Assert.True(Math.Abs(std / target - 1) < 0.10, $"std {std:E4} vs {target:E4}");
        Assert.True(Math.Abs(mean) < 0.1 * target, $"mean {mean:E2}");

        // For unit-variance inputs the noise part A_t − I has entries of std ≈ 1/N.
        var xr = new Rng(242);
        double ss = 0; int count = 0;
        for (int draw = 0; draw < 64; draw++)
        {
            var x = new double[H];
            for (int k = 0; k < H; k++) x[k] = xr.Normal();
            for (int ij = 0; ij < N * N; ij++)
            {
                double v = 0;
                for (int k = 0; k < H; k++) v += w[ij * H + k] * x[k];
                ss += v * v; count++;
            }
        }
        double noiseStd = Math.Sqrt(ss / count);
        output.WriteLine($"A_t − I for unit-variance x: entry std {noiseStd:E4} vs 1/N = {1.0 / N:E4}");
        Assert.True(Math.Abs(noiseStd * N - 1) < 0.10, $"noise std {noiseStd:E4}");
    }

    // ───────────────────────── float vs double ─────────────────────────

    [Fact]
    public void RnnAndIdsFloatForwardTrackDouble()
    {
        const int H = 3, D = 4, N = 3, batch = 2, length = 7;
        var x = TestConfigs.RandomArray(batch * length * H, 252);

        var rd = new RnnReference<double>(H, D, Nonlinearity.Tanh);
        var rf = new RnnReference<float>(H, D, Nonlinearity.Tanh);
        Comparison.FloatTracksDouble(output, "RNN: ", RnnParameters(rd, 251), x,
            (p, xs, y) => rd.Forward(rd.View(p), xs, y, batch, length), (p, xs, y) => rf.Forward(rf.View(p), xs, y, batch, length));

        var id = new IdsReference<double>(H, N);
        var @if = new IdsReference<float>(H, N);
        Comparison.FloatTracksDouble(output, "IDS: ", IdsParameters(id, 253), x,
            (p, xs, y) => id.Forward(id.View(p), xs, y, batch, length), (p, xs, y) => @if.Forward(@if.View(p), xs, y, batch, length));
    }
}
