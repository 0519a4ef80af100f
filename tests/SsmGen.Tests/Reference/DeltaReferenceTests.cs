using SsmGen.Reference;
using Xunit.Abstractions;

namespace SsmGen.Tests.Reference;

/// <summary>
/// The delta-rule oracle (gated DeltaNet and DeltaProduct) against finite differences, its recurrence against the
/// explicit product of dense token transitions α·Π_j(I − β_j k_j k_jᵀ), and its sequence pass against its own
/// token-by-token step.
/// </summary>
public class DeltaReferenceTests(ITestOutputHelper output)
{
    private static string[] Names(bool gate) => gate
        ? ["q_proj.weight", "k_proj.weight", "v_proj.weight", "b_proj.weight", "a_proj.weight", "A_log", "dt_bias", "q_conv1d.weight", "k_conv1d.weight", "v_conv1d.weight", "g_proj.weight", "o_norm.weight", "o_proj.weight"]
        : ["q_proj.weight", "k_proj.weight", "v_proj.weight", "b_proj.weight", "q_conv1d.weight", "k_conv1d.weight", "v_conv1d.weight", "g_proj.weight", "o_norm.weight", "o_proj.weight"];

    /// <summary>Random parameters of scale 0.5; the gate's rates A ≈ 1…4 and its bias ≈ −1, so α spreads over (0, 1).</summary>
    private static double[] RandomParameters(DeltaReference<double> m, bool gate, ulong seed)
    {
        var flat = TestConfigs.RandomArray(m.ParameterCount, seed, 0.5);
        if (gate)
        {
            var p = m.View(flat);
            var rng = new Rng(seed + 1000);
            for (int i = 0; i < p.ALog.Length; i++) { p.ALog[i] = Math.Log(1 + 3 * rng.Uniform(0, 1)); p.DtBias[i] = -1 + 0.3 * rng.Normal(); }
        }
        return flat;
    }

    [Theory]
    [InlineData(1, true, true)]    // gated DeltaNet with β ∈ (0, 2)
    [InlineData(2, true, true)]    // DeltaProduct, two Householder steps per token
    [InlineData(3, false, false)]  // three steps, no gate, β ∈ (0, 1)
    public void DeltaEveryGradientMatchesCentralDifferences(int steps, bool gate, bool negative)
    {
        const int h = 5, heads = 2, d = 3, w = 3, batch = 2, length = 5;
        var m = new DeltaReference<double>(h, heads, d, steps, w, gate, negative);
        var errors = FiniteDifferences.CheckMixerGradients(RandomParameters(m, gate, 11), Names(gate), m.ParameterSizes, batch * length, h, seed: 12,
            (p, x, y) => m.Forward(m.View(p), x, y, batch, length), (p, g, dy, dx) => m.Backward(m.View(p), m.View(g), dy, dx), 1e-6, output);
        foreach (var e in errors)
            Assert.True(e.MaxGradient > 1e-4, $"{e.Name}: gradients too small for the comparison to mean anything");
    }

    /// <summary>
    /// S_t = A_t·S_(t−1) + B_t with the token's transition A_t = H_(n−1)⋯H_0·α, H_j = I − β_j k_j k_jᵀ, and its write
    /// B_t = Σ_j H_(n−1)⋯H_(j+1)·β_j k_j v_jᵀ, written out as dense d × d matrices here; o_t = d^(−½)·S_tᵀ q_t. With
    /// β ∈ (0, 2) some transitions have a negative eigenvalue (1 − β along k): checked to occur.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void RecurrenceMatchesTheProductOfDenseTransitions(int steps)
    {
        const int h = 6, heads = 2, d = 4, length = 9;
        var m = new DeltaReference<double>(h, heads, d, steps, 4, gate: true, negativeEigenvalues: true);
        var flat = RandomParameters(m, true, 21);
        var x = TestConfigs.RandomArray(length * h, 22);
        m.Forward(m.View(flat), x, new double[x.Length], 1, length);
        var (q, k, v, beta, alpha, o) = m.LastRecurrence;
        int hd = heads * d, kd = steps * hd;
        double worst = 0, largest = 0;
        int flips = 0;
        for (int head = 0; head < heads; head++)
        {
            var s = new double[d, d];
            for (int t = 0; t < length; t++)
            {
                var a = Dense.Identity(d, alpha[t * heads + head]);
                var write = new double[d, d];
                for (int j = 0; j < steps; j++)
                {
                    int kv = t * kd + (j * heads + head) * d;
                    double bj = beta[(t * steps + j) * heads + head];
                    if (bj > 1) flips++;
                    var hj = Dense.Identity(d, 1);
                    for (int r = 0; r < d; r++)
                        for (int c = 0; c < d; c++) hj[r, c] -= bj * k[kv + r] * k[kv + c];
                    a = Dense.Multiply(hj, a);
                    write = Dense.Multiply(hj, write);
                    for (int r = 0; r < d; r++)
                        for (int c = 0; c < d; c++) write[r, c] += bj * k[kv + r] * v[kv + c];
                }
                var next = Dense.Multiply(a, s);
                for (int r = 0; r < d; r++)
                    for (int c = 0; c < d; c++) next[r, c] += write[r, c];
                s = next;
                for (int c = 0; c < d; c++)
                {
                    double expected = 0;
                    for (int r = 0; r < d; r++) expected += s[r, c] * q[t * hd + head * d + r];
                    expected /= Math.Sqrt(d);
                    largest = Math.Max(largest, Math.Abs(expected));
                    worst = Math.Max(worst, Math.Abs(expected - o[t * hd + head * d + c]) / Math.Max(1, Math.Abs(expected)));
                }
            }
        }
        output.WriteLine($"n = {steps}: recurrence vs dense transitions: worst error {worst:E2} (max |o| {largest:G3}); {flips} Householder steps with β > 1 (a negative eigenvalue)");
        Assert.True(largest > 1e-2, "outputs too small for the comparison to mean anything");
        Assert.True(worst < 1e-12, $"worst error {worst:E2}");
        Assert.True(flips > 0, "no step had β > 1: the negative range went untested");
        Assert.All(beta, b => Assert.InRange(b, 0, 2));
        Assert.All(alpha, a => Assert.InRange(a, 0, 1));
    }

    [Theory]
    [InlineData(1, true, true)]
    [InlineData(2, true, true)]
    [InlineData(2, false, false)]
    public void DeltaStepMatchesForwardPositionByPosition(int steps, bool gate, bool negative)
    {
        const int h = 5, heads = 2, d = 3, w = 4, length = 24;
        var m = new DeltaReference<double>(h, heads, d, steps, w, gate, negative);
        var flat = RandomParameters(m, gate, 31);
        var state = new double[m.StateSize];
        Comparison.StepMatchesForward(output, "", TestConfigs.RandomArray(length * h, 32), h, smallest: 1e-2,
            (xs, ys) => m.Forward(m.View(flat), xs, ys, 1, length), (t, xt, yt) => m.Step(m.View(flat), state, xt, yt));
    }

    [Fact]
    public void TheGateStartsAsGatedDeltaNetsDoes()
    {
        // A uniform in [1, 16] per head, softplus(dt_bias) log-uniform in [DtMin, DtMax]; the ungated block has neither
        var model = new ReferenceModel<double>(TestConfigs.DeltaTokens);
        model.Initialize(3);
        var table = model.Table.ToDictionary(p => p.Name);
        var aLog = table["layers.0.mixer.A_log"];
        var dtBias = table["layers.0.mixer.dt_bias"];
        for (int i = 0; i < aLog.Length; i++) Assert.InRange(Math.Exp(model.Parameters[aLog.Offset + i]), 1 - 1e-6, 16 + 1e-5);
        for (int i = 0; i < dtBias.Length; i++) Assert.InRange(Math.Log(1 + Math.Exp(model.Parameters[dtBias.Offset + i])), 1e-3 - 1e-9, 0.1 + 1e-7);
        Assert.DoesNotContain("layers.1.mixer.A_log", table.Keys);
        Assert.Equal(1.0, model.Parameters[table["layers.1.mixer.o_norm.weight"].Offset]);
    }

    [Theory]
    [InlineData(1, true)]
    [InlineData(2, true)]
    [InlineData(3, false)]
    public void TheChunkedFloatCoreMatchesItsTokenStepOverALongSequence(int steps, bool gate)
    {
        // The float core's sequence pass (the chunked WY form) against its own token-by-token step, 2,000 tokens, with
        // gates from α ≈ 0 (a forgotten state) to α ≈ 1 and β across (0, 2): every chunk's start carries real state.
        const int heads = 2, d = 8, w = 4, batch = 2, length = 2000;
        var rule = new SsmGen.Numerics.DeltaRule(heads, d, steps, w, gate, negativeEigenvalues: true, batch, length);
        int c = rule.Channels, rows = batch * length, hd = heads * d;
        var rng = new Rng(21);
        float[] Random(int count, double scale) { var a = new float[count]; for (int i = 0; i < count; i++) a[i] = (float)(scale * rng.Normal()); return a; }
        var raw = Random(rows * c, 1);
        var conv = Random(c * w, 0.5);
        var bPre = Random(rows * steps * heads, 3);
        var aPre = gate ? Random(rows * heads, 4) : [];
        float[] aLog = gate ? [0f, 1f] : [], dtBias = gate ? [-2f, 0f] : [];
        var o = new float[rows * hd];
        rule.Forward(raw, conv, bPre, aPre, aLog, dtBias, o, batch, length);
        double worst = 0, largest = 0;
        var stepOut = new float[hd];
        for (int b = 0; b < batch; b++)
        {
            var state = new float[rule.StateSize];
            for (int t = 0; t < length; t++)
            {
                int row = b * length + t;
                rule.Step(state, raw.AsSpan(row * c, c), conv, bPre.AsSpan(row * steps * heads, steps * heads), gate ? aPre.AsSpan(row * heads, heads) : [], aLog, dtBias, stepOut);
                for (int i = 0; i < hd; i++)
                {
                    worst = Math.Max(worst, Math.Abs(stepOut[i] - o[row * hd + i]));
                    largest = Math.Max(largest, Math.Abs(stepOut[i]));
                }
            }
        }
        output.WriteLine($"n = {steps}: largest |o| {largest:G3}, largest |chunked − step| {worst:G3}");
        Assert.True(largest > 0.1, "the outputs should not all vanish");
        Assert.True(worst <= 2e-5 * Math.Max(1, largest), $"chunked and step differ by {worst:G3} (largest |o| {largest:G3})");
    }

    [Fact]
    public void BadSizesThrow()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new DeltaReference<double>(4, 0, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DeltaReference<double>(4, 2, 2, householderSteps: 0));
        // the runtime description refuses what the generator's diagnostics refuse, naming the setting
        foreach (var (bad, word) in new (DeltaLayerConfig, string)[]
                 { (new(0, 4), "Heads"), (new(2, 4, HouseholderSteps: 0), "HouseholderSteps"), (new(2, 4, ConvWidth: 0), "ConvWidth"), (new(2, 4, DtMin: 0.5, DtMax: 0.1), "DtMin") })
        {
            var e = Assert.Throws<ArgumentException>(() => new ReferenceModel<double>(new ModelConfig(0, 5, 8, 5, Pooling.None, [bad])));
            Assert.Contains(word, e.Message);
        }
        var mamba = Assert.Throws<ArgumentException>(() => new ModelConfig(0, 5, 8, 5, Pooling.None, [new MambaLayerConfig(Eigenvalues: (MambaEigenvalues)2)]).Validate());
        Assert.Contains("Eigenvalues", mamba.Message);
        // the float core checks the call's sizes before it reads anything
        var rule = new SsmGen.Numerics.DeltaRule(2, 4, 1, 4, gate: true, negativeEigenvalues: true, maxBatch: 2, maxLength: 8);
        Assert.Throws<ArgumentOutOfRangeException>(() => rule.Forward(new float[3 * 9 * rule.Channels], new float[rule.Channels * 4], new float[54], new float[27], new float[2], new float[2], new float[216], 3, 9));
        Assert.Throws<ArgumentException>(() => rule.Forward(new float[16 * rule.Channels], new float[rule.Channels * 4], new float[32], new float[16], new float[2], new float[2], new float[8], 2, 8));
        Assert.Throws<InvalidOperationException>(() => rule.Backward(new float[16 * rule.Channels], new float[rule.Channels * 4], new float[16], new float[2], new float[2],
            new float[128], new float[16 * rule.Channels], new float[rule.Channels * 4], new float[32], new float[16], new float[2], new float[2]));
    }
}
