using SsmGen.Reference;
using Xunit.Abstractions;

namespace SsmGen.Tests.Generated;

/// <summary>
/// Convolution mode and recurrent mode are the same map (S4D paper). Checked on sequences of 4096 steps:
/// the reference's two modes against each other in double, and the generated Forward (FFT convolution, or its own
/// float recurrence where H is a multiple of 16) and generated Step (recurrence) each against the reference recurrence.
/// </summary>
public class RecurrentModeTests(ITestOutputHelper output)
{
    private const int Long = 4096;

    [Theory]
    [InlineData(Discretization.Zoh)]
    [InlineData(Discretization.Bilinear)]
    public void ReferenceConvolutionEqualsReferenceRecurrence(Discretization disc)
    {
        const int h = 3, n = 8;
        var s4d = new S4DReference<double>(h, n, disc);
        var logDt = TestConfigs.RandomArray(h, 1, 0.5).Select(v => v - 4).ToArray();
        var logAReal = new double[h * n / 2]; var aImag = new double[h * n / 2];
        var f = new float[h * n / 2]; var fi = new float[h * n / 2];
        var rng = new Rng(2);
        Initialization.S4DA(f, fi, h, n, S4DInit.Lin, ref rng);
        for (int i = 0; i < f.Length; i++) { logAReal[i] = f[i]; aImag[i] = fi[i]; }
        var c = TestConfigs.RandomArray(h * n, 3); var d = TestConfigs.RandomArray(h, 4);
        var p = new S4DReference<double>.Params(logDt, logAReal, aImag, Span<double>.Empty, c, d);
        var u = TestConfigs.RandomArray(Long * h, 5);
        var conv = new double[Long * h]; var rec = new double[Long * h];
        s4d.Forward(p, u, conv, 1, Long);
        s4d.Recurrent(p, u, rec, 1, Long);
        double scale = conv.Max(Math.Abs), err = conv.Zip(rec, (a, b) => Math.Abs(a - b)).Max() / scale;
        output.WriteLine($"{disc}: max |conv − recurrent| / max |y| = {err:E2}");
        Assert.True(err < 1e-10, $"relative difference {err:E2}");
    }

    [Fact]
    public void GeneratedForwardAndStepMatchTheReferenceRecurrenceOver4096Tokens()
    {
        var gen = new VectorTokens(1, Long);
        var reference = new ReferenceModel<double>(GeneratedConfigs.VectorTokens);
        gen.Initialize(3);
        for (int i = 0; i < gen.Parameters.Length; i++) reference.Parameters[i] = gen.Parameters[i];
        var tokens = TestConfigs.RandomTokens(Long, 7, 6);
        var expected = reference.ForwardRecurrent([], tokens, Long);

        var y = new float[Long * 7];
        gen.Forward(tokens, 1, Long, y);
        double scale = expected.Max(Math.Abs);
        double convErr = y.Zip(expected, (a, b) => Math.Abs(a - b)).Max() / scale;

        var state = gen.CreateState();
        var ys = new float[Long * 7];
        for (int t = 0; t < Long; t++) gen.Step(state, tokens[t], ys.AsSpan(t * 7, 7));
        double stepErr = ys.Zip(expected, (a, b) => Math.Abs(a - b)).Max() / scale;
        output.WriteLine($"generated Forward vs reference recurrence: {convErr:E2}; generated Step: {stepErr:E2}");
        Assert.True(convErr < 1e-4, $"Forward relative error {convErr:E2}");
        Assert.True(stepErr < 1e-4, $"Step relative error {stepErr:E2}");
    }

    /// <summary>
    /// Every layer kind: the generated sequence pass (Forward: Mamba's chunked scan, RNN and IDS recurrences,
    /// attention over the whole sequence) and the generated one-token Step (attention with its key/value cache)
    /// against the reference's step-by-step recurrence; the hybrids mix kinds in one stack.
    /// </summary>
    [Theory]
    [InlineData("MambaTokens", Long)]
    [InlineData("MambaOdd", 1000)]
    [InlineData("MambaSigned", 1000)]
    [InlineData("DeltaTokens", 300)]
    [InlineData("S4Tokens", 64)]
    [InlineData("S4Long", 4096)]    // S4's convolution and its DPLR step over the whole kernel length
    [InlineData("Wide16", 4096)]    // S4D's forward as its float recurrence (S4DRecurrence): its drift over a long sequence
    [InlineData("Wide16", 16384)]
    [InlineData("SeqClassifier", 4096)]
    [InlineData("Hybrid", 1000)]
    [InlineData("RnnTokens", 1000)]
    // IDS transitions are not contractive: a product of near-identity random matrices grows geometrically, and past
    // a few hundred steps float and double drift apart (float overflows). The paper's word problems are short.
    [InlineData("IdsTokens", 60)]
    [InlineData("AttentionTokens", 200)]
    [InlineData("AllKinds", 40)]
    public void GeneratedSequenceAndStepMatchTheReferenceRecurrence(string name, int length)
    {
        var (gen, cfg) = GeneratedVsReferenceTests.Make(name, 1, length);
        SequenceAndStepMatchTheReferenceRecurrence(gen, cfg, name, length, output);
    }

    /// <summary>The model's Forward over one sequence and its Step token by token against the reference's recurrence (relative 10⁻⁴).</summary>
    internal static void SequenceAndStepMatchTheReferenceRecurrence(ISsmModel gen, ModelConfig cfg, string name, int length, ITestOutputHelper output)
    {
        var reference = new ReferenceModel<double>(cfg);
        gen.Initialize(3);
        for (int i = 0; i < gen.Parameters.Length; i++) reference.Parameters[i] = gen.Parameters[i];
        var tokens = TestConfigs.RandomTokens(length, Math.Max(cfg.Vocab, 1), 6);
        var x = TestConfigs.RandomArray(length * cfg.Input, 7);
        var expected = reference.ForwardRecurrent(x, tokens, length);
        int o = cfg.Output;
        var ys = new float[length * o];
        var state = gen.CreateState();
        var xs = new float[cfg.InputWidth];
        for (int t = 0; t < length; t++)
        {
            if (cfg.TokenInput) gen.Step(state, tokens[t], ys.AsSpan(t * o, o));
            else
            {
                for (int k = 0; k < xs.Length; k++) xs[k] = (float)x[t * cfg.Input + k];
                gen.Step(state, xs, ys.AsSpan(t * o, o));
            }
        }
        double scale = expected.Max(Math.Abs);
        double stepErr = ys.Zip(expected, (a, b) => Math.Abs(a - b)).Max() / scale;
        // Forward: per-token outputs compare row by row; pooled models give the full-sequence row only.
        var y = new float[(cfg.Pooling == Pooling.None ? length : 1) * o];
        if (cfg.TokenInput) gen.Forward(tokens, 1, length, y); else gen.Forward(x.Select(v => (float)v).ToArray(), 1, length, y);
        var last = expected.AsSpan((length - 1) * o, o).ToArray();
        double fwdErr = cfg.Pooling == Pooling.None
            ? y.Zip(expected, (a, b) => Math.Abs(a - b)).Max() / scale
            : y.Zip(last, (a, b) => Math.Abs(a - b)).Max() / Math.Max(last.Max(Math.Abs), 1e-12);
        output.WriteLine($"{name}, L = {length}: generated Step vs reference recurrence {stepErr:E2}; generated Forward {fwdErr:E2}; max |y| = {scale:E2}");
        Assert.True(stepErr < 1e-4, $"Step relative error {stepErr:E2}");
        Assert.True(fwdErr < 1e-4, $"Forward relative error {fwdErr:E2}");
    }

    [Fact]
    public void StepWithMeanPoolingGivesThePrefixOutput()
    {
        const int length = 300;
        var gen = new TinyRealMean(1, length);
        var reference = new ReferenceModel<double>(TestConfigs.RealMean);
        gen.Initialize(8);
        for (int i = 0; i < gen.Parameters.Length; i++) reference.Parameters[i] = gen.Parameters[i];
        var x = TestConfigs.RandomArray(length * 2, 9);
        var expected = reference.ForwardRecurrent(x, [], length);
        var state = gen.CreateState();
        var y = new float[3];
        double worst = 0, scale = expected.Max(Math.Abs);
        for (int t = 0; t < length; t++)
        {
            gen.Step(state, [(float)x[2 * t], (float)x[2 * t + 1]], y);
            for (int k = 0; k < 3; k++) worst = Math.Max(worst, Math.Abs(y[k] - expected[t * 3 + k]) / scale);
        }
        // the reference recurrence itself agrees with the reference Forward on a prefix
        var prefix = reference.Forward(x.AsSpan(0, 2 * 100), 1, 100);
        for (int k = 0; k < 3; k++) Assert.Equal(prefix[k], expected[99 * 3 + k], 1e-10);
        Assert.True(worst < 1e-5, $"Step relative error {worst:E2}");
        Assert.Equal(length, state.Position);
    }

    [Fact]
    public void StepRejectsAStateOfAnotherModel()
    {
        var a = new TinyRealMean(1, 4);
        var b = new VectorLast(1, 4);
        var twin = new TinyRealMean(1, 4);
        var y = new float[3];
        var state = b.CreateState();
        Assert.Throws<ArgumentException>(() => a.Step(state, [1f, 2f], y));
        var ofTwin = twin.CreateState();
        var e = Assert.Throws<ArgumentException>(() => a.Step(ofTwin, [1f, 2f], y));
        Assert.Contains("another model instance", e.Message);
        Assert.Equal(0, state.Position);
        Assert.Equal(0, ofTwin.Position);
    }

    [Fact]
    public void AForwardInTheMiddleOfAStreamDoesNotDisturbIt()
    {
        var m = new VectorTokens(2, 50);
        m.Initialize(4);
        var tokens = TestConfigs.RandomTokens(40, 7, 1);
        var plain = m.CreateState();
        var interrupted = m.CreateState();
        var y1 = new float[7]; var y2 = new float[7];
        for (int t = 0; t < 40; t++)
        {
            m.Step(plain, tokens[t], y1);
            m.Step(interrupted, tokens[t], y2);
            if (t == 20) m.Forward(TestConfigs.RandomTokens(100, 7, 2), 2, 50, new float[2 * 50 * 7], training: true);
        }
        Assert.Equal(y1, y2);
    }
}
