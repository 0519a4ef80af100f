using System.Numerics;
using System.Runtime.Intrinsics;
using SsmGen.Numerics;
using Guards = SsmGen.Numerics.Stability;
using Xunit.Abstractions;

namespace SsmGen.Tests.Stability;

/// <summary>
/// "Mathematical Formalism for Memory Compression in Selective State Space Models": a contractive transition
/// (|Ā| &lt; 1) keeps the state bounded for bounded input. Checked for every parameter value the S4D and Mamba
/// parameterizations can reach, extremes included, on the float values the generated code actually uses.
/// </summary>
public class ContractivityTests(ITestOutputHelper output)
{
    // Log-parameters from the ordinary range to the float extremes.
    private static readonly float[] Extremes = [float.MinValue, -1e6f, -200, -80, -30, -10, -1, -1e-7f, 0, 1e-7f, 1, 10, 30, 80, 200, 1e6f, float.MaxValue];

    [Fact]
    public void ContractKeepsTheFloatMagnitudeBelowOne()
    {
        var rng = new Rng(5);
        for (int i = 0; i < 100_000; i++)
        {
            double m = 1 - Math.Pow(2, -rng.Uniform(0, 40)) * (rng.Uniform(0, 1) < 0.5 ? 1 : -1); // around 1, both sides
            var z = Complex.FromPolarCoordinates(m, rng.Uniform(-Math.PI, Math.PI));
            var c = Guards.Contract(z);
            double mf = Math.Sqrt((double)(float)c.Real * (float)c.Real + (double)(float)c.Imaginary * (float)c.Imaginary);
            Assert.True(mf < 1, $"|Ā| = {mf:R} for z = {z}");
            if (m <= Guards.MaxMagnitude) Assert.Equal(z, c); // ordinary modes are untouched
        }
    }

    [Fact]
    public void MambaDecayIsBelowOneForEveryExponent()
    {
        foreach (float a in Extremes.Concat([-1e-30f, -1e-40f, -0f, -6e-8f]))
            foreach (float dt in new[] { 0f, 1e-40f, 1e-10f, 1e-3f, 1f, 1e3f, float.MaxValue })
            {
                float x = dt * -MathF.Exp(MathF.Min(a, (float)Guards.MaxLog));
                float scalar = MathF.Exp(Guards.LogDecay(x));
                float vector = FastMath.Exp(Guards.LogDecay(System.Runtime.Intrinsics.Vector512.Create(x))).GetElement(0);
                Assert.True(scalar is >= 0 and < 1, $"scalar decay {scalar:R} at Δ = {dt}, A_log = {a}");
                Assert.True(vector is >= 0 and < 1, $"vector decay {vector:R} at Δ = {dt}, A_log = {a}");
                float scan = FastMath.Exp2Decay(Vector512.Create(x * 1.44269504f)).GetElement(0); // the generated scan's form
                Assert.True(scan is >= 0 and < 1, $"scan decay {scan:R} at Δ = {dt}, A_log = {a}");
                // with negative eigenvalues, Ā = 2·decay − 1 held above −1: |Ā| < 1 on every path
                foreach (float decay in new[] { scalar, vector, scan })
                {
                    float signed = Guards.NegativeTransition(decay), lanes = Guards.NegativeTransition(Vector512.Create(decay)).GetElement(0);
                    Assert.True(MathF.Abs(signed) < 1 && signed == lanes, $"transition {signed:R} (lanes {lanes:R}) from decay {decay:R} at Δ = {dt}, A_log = {a}");
                }
            }
        Assert.Equal(-1 + 2 * Guards.MinNegativeDecay, Guards.NegativeTransition(0f)); // the floor: a state can flip, never sit at |Ā| = 1
    }

    /// <summary>The discretized Ā tables a stream runs with (generated code), for random and extreme parameters.</summary>
    [Theory]
    [InlineData("VectorTokens")]   // bilinear N = 32, ZOH N = 16
    [InlineData("TinyRealMean")]   // ZOH and bilinear, scalar mode loops
    public void GeneratedS4DTransitionsAreContractive(string name)
    {
        var (m, cfg) = Generated.GeneratedVsReferenceTests.Make(name, 1, 4);
        var rng = new Rng(11);
        double worst = 0;
        for (int trial = 0; trial < 200; trial++)
        {
            m.Initialize((ulong)trial);
            foreach (var p in m.ParameterTable)
                if (p.Name.EndsWith("log_dt") || p.Name.EndsWith("log_A_real") || p.Name.EndsWith("A_imag"))
                    for (int j = 0; j < p.Length; j++)
                        m.Parameters[p.Offset + j] = trial % 2 == 0 ? Extremes[rng.NextInt(Extremes.Length)] : (float)rng.Uniform(-12, 12);
            var state = m.CreateState();
            Step(m, cfg, state, 0.5f);
            int offset = 0;
            foreach (var layer in cfg.Layers.Cast<S4DLayerConfig>())
            {
                int hm = cfg.DModel * layer.N / 2;
                // layout: [Re x | Im x] (2·H·M), then the mode tables [Re Ā | Im Ā | Re W | Im W | Re Ā³² | Im Ā³²]
                var re = state.Values.AsSpan(offset + 2 * hm, hm);
                var im = state.Values.AsSpan(offset + 3 * hm, hm);
                for (int i = 0; i < hm; i++)
                {
                    double mag = Math.Sqrt((double)re[i] * re[i] + (double)im[i] * im[i]);
                    Assert.True(mag < 1, $"|Ā| = {mag:R} in {name} trial {trial}");
                    worst = Math.Max(worst, mag);
                }
                Assert.All(state.Values.AsSpan(offset, 8 * hm).ToArray(), v => Assert.True(float.IsFinite(v)));
                offset += 8 * hm;
            }
        }
        output.WriteLine($"{name}: largest |Ā| over 200 draws = {worst:R}");
    }

    /// <summary>
    /// 10⁶ steps of bounded input: every state and output stays finite and bounded, with random parameters, and with
    /// the transition parameters (log A, A's frequencies) at the float extremes. Δ stays in its trainable range
    /// (log Δ, Mamba's Δ pre-activation ≤ 20): the theorem bounds the state by the input term Δ·B·u, which an
    /// unbounded Δ makes unbounded.
    /// </summary>
    [Theory]
    [InlineData("VectorTokens", false)]
    [InlineData("VectorTokens", true)]
    [InlineData("MambaTokens", false)]
    [InlineData("MambaTokens", true)]
    [InlineData("MambaSigned", true)]
    public void StateStaysBoundedOverAMillionSteps(string name, bool extreme)
    {
        const int steps = 1_000_000;
        var (m, cfg) = Generated.GeneratedVsReferenceTests.Make(name, 1, 4);
        m.Initialize(3);
        var rng = new Rng(extreme ? 21UL : 22UL);
        foreach (var p in m.ParameterTable)
        {
            bool transition = p.Name.EndsWith("log_A_real") || p.Name.EndsWith("A_imag") || p.Name.EndsWith("A_log");
            bool step = p.Name.EndsWith("log_dt") || p.Name.EndsWith("dt_proj.bias");
            for (int j = 0; j < p.Length && (transition || step); j++)
                m.Parameters[p.Offset + j] = extreme && transition ? Extremes[rng.NextInt(Extremes.Length)]
                    : step && extreme ? (float)rng.Uniform(-20, p.Name.EndsWith("log_dt") ? 5 : 20)
                    : (float)rng.Uniform(-8, 4);
        }
        var state = m.CreateState();
        var y = new float[cfg.Output];
        float largest = 0;
        for (int t = 0; t < steps; t++)
        {
            m.Step(state, t * 7 % cfg.Vocab, y);
            if (t % 1000 == 999 || t == steps - 1)
            {
                foreach (float v in state.Values) { Assert.True(float.IsFinite(v), $"state not finite at step {t}"); largest = Math.Max(largest, Math.Abs(v)); }
                foreach (float v in y) Assert.True(float.IsFinite(v), $"output not finite at step {t}");
            }
        }
        // |h| ≤ max|input|/(1 − max|Ā|) with |Ā| ≤ 1 − 2⁻²³: a loose but finite bound; the typical value is printed.
        output.WriteLine($"{name} ({(extreme ? "extreme" : "random")} parameters): largest |state| after 10⁶ steps = {largest:G4}");
        Assert.True(largest < 1e12f, $"state grew to {largest:G4}");
    }

    private static void Step(ISsmModel m, ModelConfig cfg, SsmState state, float x)
    {
        var y = new float[cfg.Output];
        if (cfg.TokenInput) m.Step(state, 1, y);
        else m.Step(state, Enumerable.Repeat(x, cfg.InputWidth).ToArray(), y);
    }
}
