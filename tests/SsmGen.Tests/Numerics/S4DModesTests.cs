using SsmGen.Layers;
using SsmGen.Reference;
using Xunit;

namespace SsmGen.Tests.Numerics;

/// <summary>
/// S4DModes' discretization against the double reference's formulas, and its eight-lane path against its one-by-one path
/// (the same modes laid out one per channel, so that every mode takes the scalar path), for both discretizations, with
/// and without a trained B, M = 12 (a vector of eight and a tail of four).
/// </summary>
public class S4DModesTests
{
    private const int H = 3, M = 12;

    private sealed record Layer(float[] LogDt, float[] LogAReal, float[] AImag, float[] B, float[] C)
    {
        /// <summary>The same modes, one per channel: Δ repeated for each of a channel's modes.</summary>
        public Layer OnePerChannel() => this with { LogDt = Enumerable.Range(0, H * M).Select(i => LogDt[i / M]).ToArray() };
    }

    private static Layer Random(int seed, bool trainB)
    {
        var rng = new Random(seed);
        float U(double lo, double hi) => (float)(lo + (hi - lo) * rng.NextDouble());
        var logAReal = Enumerable.Range(0, H * M).Select(_ => U(-1.5, 0.7)).ToArray();
        var aImag = Enumerable.Range(0, H * M).Select(_ => U(0, 40)).ToArray();
        logAReal[5] = -40; aImag[5] = 0; // |q| ≈ Δ·e^-40: ZOH's series branch
        return new Layer(Enumerable.Range(0, H).Select(_ => U(-7, -1)).ToArray(), logAReal, aImag,
            trainB ? Enumerable.Range(0, 2 * H * M).Select(_ => U(-1, 1)).ToArray() : [], Enumerable.Range(0, 2 * H * M).Select(_ => U(-1, 1)).ToArray());
    }

    /// <summary>Both discretizations, with B fixed at 1 and trained.</summary>
    public static TheoryData<Discretization, bool> Variants => new()
    {
        { Discretization.Zoh, false }, { Discretization.Zoh, true }, { Discretization.Bilinear, false }, { Discretization.Bilinear, true },
    };

    private static float[] Discretize(Discretization method, Layer l, int h, int m)
    {
        var modes = new float[6 * h * m];
        S4DModes.Discretize(method, l.LogDt, l.LogAReal, l.AImag, l.B, l.C, modes, h, m);
        return modes;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void ModesMatchTheReferenceFormulas(Discretization method, bool trainB)
    {
        var l = Random(1, trainB);
        var modes = Discretize(method, l, H, M);
        var reference = new S4DReference<double>(H, 2 * M, method);
        double[] D(float[] x) => x.Select(v => (double)v).ToArray();
        var p = new S4DReference<double>.Params(D(l.LogDt), D(l.LogAReal), D(l.AImag), D(l.B), D(l.C), new double[H]);
        int hm = H * M;
        for (int h = 0; h < H; h++)
            for (int n = 0; n < M; n++)
            {
                int i = h * M + n;
                var (z, w) = reference.Discretize(p, h, n);
                double dt = Math.Exp(l.LogDt[h]);
                var q = new Complex<double>(-dt * Math.Exp(l.LogAReal[i]), dt * l.AImag[i]);
                if (method == Discretization.Zoh && Math.Abs(q.Re) + Math.Abs(q.Im) < 1e-8)
                {
                    // the reference's (e^q − 1)/A cancels to 0 in double here; its limit is Δ·(1 + q/2 + …)
                    var cb = new Complex<double>(l.C[2 * i], l.C[2 * i + 1]) * (trainB ? new Complex<double>(l.B[2 * i], l.B[2 * i + 1]) : Complex<double>.One);
                    w = cb * new Complex<double>(dt * (1 + q.Re / 2), dt * q.Im / 2);
                }
                // |Ā| that would round to 1 in float is pulled back (Stability.Contract); W keeps the unscaled Ā
                double magnitude = Math.Sqrt(z.Re * z.Re + z.Im * z.Im);
                if (magnitude > SsmGen.Numerics.Stability.MaxMagnitude) z = new Complex<double>(z.Re * SsmGen.Numerics.Stability.MaxMagnitude / magnitude, z.Im * SsmGen.Numerics.Stability.MaxMagnitude / magnitude);
                var anchor = z;
                for (int k = 1; k < 32; k++) anchor *= z;
                Near(z.Re, modes[i]); Near(z.Im, modes[hm + i]);
                Near(w.Re, modes[2 * hm + i]); Near(w.Im, modes[3 * hm + i]);
                Near(anchor.Re, modes[4 * hm + i]); Near(anchor.Im, modes[5 * hm + i]);
            }

        static void Near(double expected, float actual) =>
            Assert.True(Math.Abs(expected - actual) <= 2e-7 * Math.Max(1, Math.Abs(expected)), $"expected {expected}, got {actual}");
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void EightLanesMatchOneByOne(Discretization method, bool trainB)
    {
        var l = Random(2, trainB);
        var single = l.OnePerChannel();
        Close(Discretize(method, single, H * M, 1), Discretize(method, l, H, M), 1e-7);

        var rng = new Random(3);
        var sums = Enumerable.Range(0, 4 * H * M).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var pieces = Enumerable.Range(0, 2 * H * M).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        (float[] Dt, float[] LogA, float[] AIm, float[] B, float[] C) Grads(Layer x, int h, int m)
        {
            var g = (new float[h], new float[H * M], new float[H * M], new float[trainB ? 2 * H * M : 0], new float[2 * H * M]);
            S4DModes.ChainRule(method, x.LogDt, x.LogAReal, x.AImag, x.B, x.C, sums, pieces, g.Item1, g.Item2, g.Item3, g.Item4, g.Item5, h, m);
            return g;
        }
        var one = Grads(single, H * M, 1);
        var lanes = Grads(l, H, M);
        Close(one.LogA, lanes.LogA, 1e-6); Close(one.AIm, lanes.AIm, 1e-6); Close(one.B, lanes.B, 1e-6); Close(one.C, lanes.C, 1e-6);
        var dtPerChannel = Enumerable.Range(0, H).Select(h => Enumerable.Range(0, M).Sum(n => (double)one.Dt[h * M + n])).Select(v => (float)v).ToArray();
        Close(dtPerChannel, lanes.Dt, 1e-5);

        static void Close(float[] expected, float[] actual, double tolerance)
        {
            Assert.Equal(expected.Length, actual.Length);
            double scale = expected.Select(Math.Abs).DefaultIfEmpty(0f).Max();
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance * Math.Max(1, scale), $"[{i}] expected {expected[i]}, got {actual[i]}");
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void ChannelsSharedOverThePoolEqualEachChannelAlone(Discretization method, bool trainB)
    {
        const int h = 128, m = 12, hm = h * m; // enough modes for the worker pool's parts
        var rng = new Random(4);
        float[] U(int n, double lo, double hi) => Enumerable.Range(0, n).Select(_ => (float)(lo + (hi - lo) * rng.NextDouble())).ToArray();
        float[] logDt = U(h, -7, -1), logA = U(hm, -1.5, 0.7), aIm = U(hm, 0, 40), b = trainB ? U(2 * hm, -1, 1) : [], c = U(2 * hm, -1, 1);
        float[] sums = U(4 * hm, -0.5, 0.5), pieces = U(2 * hm, -0.5, 0.5);
        var modes = new float[6 * hm];
        S4DModes.Discretize(method, logDt, logA, aIm, b, c, modes, h, m);
        float[] gDt = new float[h], gA = new float[hm], gAIm = new float[hm], gB = new float[trainB ? 2 * hm : 0], gC = new float[2 * hm];
        S4DModes.ChainRule(method, logDt, logA, aIm, b, c, sums, pieces, gDt, gA, gAIm, gB, gC, h, m);
        float[] Planes(float[] x, int planes, int ch) => Enumerable.Range(0, planes).SelectMany(k => x.AsSpan(k * hm + ch * m, m).ToArray()).ToArray();
        for (int ch = 0; ch < h; ch++)
        {
            float[] bc = trainB ? b.AsSpan(2 * ch * m, 2 * m).ToArray() : [], cc = c.AsSpan(2 * ch * m, 2 * m).ToArray();
            var one = new float[6 * m];
            S4DModes.Discretize(method, logDt.AsSpan(ch, 1), logA.AsSpan(ch * m, m), aIm.AsSpan(ch * m, m), bc, cc, one, 1, m);
            Assert.Equal(one, Planes(modes, 6, ch));
            float[] oDt = new float[1], oA = new float[m], oAIm = new float[m], oB = new float[trainB ? 2 * m : 0], oC = new float[2 * m];
            S4DModes.ChainRule(method, logDt.AsSpan(ch, 1), logA.AsSpan(ch * m, m), aIm.AsSpan(ch * m, m), bc, cc, Planes(sums, 4, ch), Planes(pieces, 2, ch), oDt, oA, oAIm, oB, oC, 1, m);
            Assert.Equal(oDt[0], gDt[ch]);
            Assert.Equal(oA, gA.AsSpan(ch * m, m).ToArray()); Assert.Equal(oAIm, gAIm.AsSpan(ch * m, m).ToArray());
            Assert.Equal(oC, gC.AsSpan(2 * ch * m, 2 * m).ToArray());
            if (trainB) Assert.Equal(oB, gB.AsSpan(2 * ch * m, 2 * m).ToArray());
        }
    }

    [Fact]
    public void ShortSpansAreRefusedBeforeAnythingIsWritten()
    {
        var l = Random(4, trainB: false);
        var modes = new float[6 * H * M - 1];
        Assert.Throws<ArgumentException>(() => S4DModes.Discretize(Discretization.Zoh, l.LogDt, l.LogAReal, l.AImag, l.B, l.C, modes, H, M));
        Assert.All(modes, v => Assert.Equal(0f, v));
        Assert.Throws<ArgumentException>(() => S4DModes.Discretize(Discretization.Zoh, l.LogDt, l.LogAReal.AsSpan(1).ToArray(), l.AImag, l.B, l.C, new float[6 * H * M], H, M));
        var gC = new float[2 * H * M];
        Assert.Throws<ArgumentException>(() => S4DModes.ChainRule(Discretization.Zoh, l.LogDt, l.LogAReal, l.AImag, l.B, l.C, new float[4 * H * M - 1], [], new float[H], new float[H * M], new float[H * M], [], gC, H, M));
        Assert.Throws<ArgumentException>(() => S4DModes.ChainRule(Discretization.Zoh, l.LogDt, l.LogAReal, l.AImag, l.B, l.C, new float[4 * H * M], [], new float[H], new float[H * M], new float[H * M], [], new float[2 * H * M - 1], H, M));
        Assert.Throws<ArgumentException>(() => S4DModes.ChainRule(Discretization.Zoh, l.LogDt, l.LogAReal, l.AImag, l.B, l.C, new float[4 * H * M], new float[2 * H * M - 1], new float[H], new float[H * M], new float[H * M], [], gC, H, M));
        var trained = Random(5, trainB: true);
        Assert.Throws<ArgumentException>(() => S4DModes.ChainRule(Discretization.Zoh, trained.LogDt, trained.LogAReal, trained.AImag, trained.B, trained.C, new float[4 * H * M], [], new float[H], new float[H * M], new float[H * M], new float[2 * H * M - 1], gC, H, M));
        Assert.All(gC, v => Assert.Equal(0f, v));
        Assert.Throws<ArgumentOutOfRangeException>(() => S4DModes.Discretize(Discretization.Zoh, l.LogDt, l.LogAReal, l.AImag, l.B, l.C, new float[6 * H * M], 0, M));
    }
}
