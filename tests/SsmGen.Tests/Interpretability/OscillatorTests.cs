using System.Numerics;
using SsmGen.Interpretability;
using SsmGen.Reference;
using Xunit.Abstractions;

namespace SsmGen.Tests.Interpretability;

/// <summary>
/// The oscillator view of S4D: its damped sinusoids against the reference's kernel (complex powers), its
/// discretization against the S4D paper's formulas written out here, and the ring's travelling bump against the
/// speed the mode spacing predicts.
/// </summary>
public class OscillatorTests(ITestOutputHelper output)
{
    private static ModelConfig OneBlock(int h, int n, S4DInit init, Discretization disc, bool trainB) =>
        new(Input: 1, Vocab: 0, DModel: h, Output: 2, Pooling.Mean, [new S4DLayerConfig(n, init, disc, trainB)]);

    /// <summary>Initialized parameters with log Δ spread over [−4, −0.5] so that slow and fast modes both count.</summary>
    private static float[] Parameters(ModelConfig config, ulong seed)
    {
        var model = new ReferenceModel<float>(config);
        model.Initialize(seed);
        var rng = new Rng(seed + 1);
        foreach (var p in model.Table)
        {
            if (p.Name.EndsWith("log_dt")) for (int i = 0; i < p.Length; i++) model.Parameters[p.Offset + i] = (float)rng.Uniform(-4, -0.5);
            if (p.Name.EndsWith("mixer.B")) for (int i = 0; i < p.Length; i++) model.Parameters[p.Offset + i] = (float)rng.Normal();
        }
        return model.Parameters;
    }

    public static TheoryData<S4DInit, Discretization, bool> Variants()
    {
        var d = new TheoryData<S4DInit, Discretization, bool>();
        foreach (var init in Enum.GetValues<S4DInit>())
            foreach (var disc in Enum.GetValues<Discretization>())
                d.Add(init, disc, init == S4DInit.Lin);
        return d;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void KernelIsTheSumOfItsDampedSinusoids(S4DInit init, Discretization disc, bool trainB)
    {
        const int H = 3, N = 16, L = 300;
        var config = OneBlock(H, N, init, disc, trainB);
        var p = Parameters(config, 5);
        var block = OscillatorView.FromParameters(config, p).Blocks.Single();

        var table = ParameterLayout.Build(config).ToDictionary(t => t.Name);
        double[] T(string name) => p.AsSpan(table[name].Offset, table[name].Length).ToArray().Select(v => (double)v).ToArray();
        var reference = new S4DReference<double>(H, N, disc);
        var kernel = reference.Kernel(new(T("layers.0.mixer.log_dt"), T("layers.0.mixer.log_A_real"), T("layers.0.mixer.A_imag"),
            trainB ? T("layers.0.mixer.B") : Span<double>.Empty, T("layers.0.mixer.C"), T("layers.0.mixer.D")), L);
        double worst = 0;
        for (int h = 0; h < H; h++)
        {
            var sum = block.Kernel(h, L, includeSkip: false);
            var expected = kernel.AsSpan(h * L, L);
            double scale = 0, diff = 0;
            for (int l = 0; l < L; l++) { scale = Math.Max(scale, Math.Abs(expected[l])); diff = Math.Max(diff, Math.Abs(expected[l] - sum[l])); }
            worst = Math.Max(worst, diff / scale);
            // with the skip: D at lag 0 only
            var withSkip = block.Kernel(h, L);
            Assert.Equal(sum[0] + block.Skip[h], withSkip[0], 12);
            Assert.Equal(sum[1], withSkip[1]);
        }
        output.WriteLine($"{init} {disc}: max |Σ oscillators − K| / max |K| = {worst:E2}");
        Assert.True(worst < 1e-12, $"the damped sinusoids differ from the kernel by {worst:E2}");
    }

    [Theory]
    [InlineData(Discretization.Zoh)]
    [InlineData(Discretization.Bilinear)]
    public void OscillatorsFollowThePapersDiscretization(Discretization disc)
    {
        const int H = 2, N = 8;
        var config = OneBlock(H, N, S4DInit.Inv, disc, trainB: true);
        var p = Parameters(config, 9);
        var table = ParameterLayout.Build(config).ToDictionary(t => t.Name);
        float Value(string name, int i) => p[table["layers.0.mixer." + name].Offset + i];
        foreach (var o in OscillatorView.FromParameters(config, p).Blocks[0].Oscillators)
        {
            int i = o.Channel * N / 2 + o.Mode;
            double dt = Math.Exp(Value("log_dt", o.Channel));
            var a = new Complex(-Math.Exp(Value("log_A_real", i)), Value("A_imag", i));
            var b = new Complex(Value("B", 2 * i), Value("B", 2 * i + 1));
            var c = new Complex(Value("C", 2 * i), Value("C", 2 * i + 1));
            // S4D paper: ZOH Ā = exp(ΔA), B̄ = (exp(ΔA) − 1)/A·B; bilinear Ā = (1 + ΔA/2)/(1 − ΔA/2), B̄ = Δ/(1 − ΔA/2)·B
            var (abar, bbar) = disc == Discretization.Zoh
                ? (Complex.Exp(dt * a), (Complex.Exp(dt * a) - 1) / a * b)
                : ((1 + dt * a / 2) / (1 - dt * a / 2), dt / (1 - dt * a / 2) * b);
            Assert.True(Complex.Abs(o.Transition - abar) < 1e-12, $"Ā of mode {o.Mode}: {o.Transition} vs {abar}");
            Assert.True(Complex.Abs(o.Weight - c * bbar) < 1e-12 * Math.Max(1, Complex.Abs(c * bbar)), $"W of mode {o.Mode}");
            Assert.Equal(dt, o.Dt, 12);
            Assert.Equal(-a.Real, o.Damping, 12);
            Assert.Equal(-1 / Math.Log(abar.Magnitude), o.DecaySteps, 6);
            if (disc == Discretization.Zoh) Assert.Equal(1 / (dt * -a.Real), o.DecaySteps, 6);
        }
    }

    [Theory]
    [InlineData(0.05)]
    [InlineData(0.013)]
    public void AnImpulseTravelsAroundTheRingAtThePredictedSpeed(double dt)
    {
        const int H = 1, N = 64, L = 400, M = N / 2;
        var config = OneBlock(H, N, S4DInit.Lin, Discretization.Zoh, trainB: false);
        var p = Parameters(config, 3);
        p[ParameterLayout.Build(config).Single(t => t.Name == "layers.0.mixer.log_dt").Offset] = (float)Math.Log(dt);
        var block = OscillatorView.FromParameters(config, p).Blocks[0];

        // Lin: Im A_n = πn, so the phases advance by Δ·π·n per step and the bump moves −M·Δ/2 nodes per step
        double? speed = block.RingSpeed(0, tolerance: 1e-5);
        Assert.NotNull(speed);
        double dtStored = Math.Exp((double)(float)Math.Log(dt));
        Assert.Equal(-M * dtStored / 2, speed!.Value, 4);

        var impulse = new double[L];
        impulse[0] = 1;
        var ring = block.RingActivity(0, impulse);
        int worst = 0;
        for (int t = 0; t < L; t++)
        {
            int peak = 0;
            for (int j = 1; j < M; j++) if (ring[t * M + j] > ring[t * M + peak]) peak = j;
            double predicted = ((speed.Value * t) % M + M) % M;
            double distance = Math.Abs(peak - predicted);
            distance = Math.Min(distance, M - distance);
            Assert.True(distance <= 1, $"t = {t}: bump at node {peak}, predicted {predicted:F2}");
            worst = Math.Max(worst, (int)Math.Round(distance * 100));
        }
        output.WriteLine($"Δ = {dt}: {speed:F3} nodes per step, {L} steps, largest distance from the prediction {worst / 100.0:F2} node");
    }

    [Fact]
    public void RingSpeedIsUndefinedForUnevenFrequencies()
    {
        var config = OneBlock(1, 16, S4DInit.Inv, Discretization.Zoh, trainB: false);
        Assert.Null(OscillatorView.FromParameters(config, Parameters(config, 1)).Blocks[0].RingSpeed(0));
    }

    [Fact]
    public void AModelWithoutS4DBlocksIsRefusedByName()
    {
        var config = GeneratedConfigs.MambaTokens;
        var e = Assert.Throws<ArgumentException>(() => OscillatorView.FromParameters(config, new float[ParameterLayout.Count(ParameterLayout.Build(config))]));
        Assert.Contains("no S4D block", e.Message);
        Assert.Contains("MambaLayer", e.Message);
        var wrongSize = Assert.Throws<ArgumentException>(() => OscillatorView.FromParameters(TestConfigs.RealMean, new float[3]));
        Assert.Contains("got 3", wrongSize.Message);
    }
}
