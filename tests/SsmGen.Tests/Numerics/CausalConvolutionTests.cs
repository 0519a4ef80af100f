using SsmGen.Numerics;

namespace SsmGen.Tests.Numerics;

/// <summary>The FFT convolutions (lane and per-channel paths) against the direct sums written out in double.</summary>
public class CausalConvolutionTests
{
    [Theory]
    [InlineData(32, 3, 70)]   // lanes (H % 16 == 0), odd batch, FFT size 256
    [InlineData(16, 1, 1)]    // lanes, a single step
    [InlineData(16, 2, 300)]  // lanes, FFT size 1024: one wide single stage
    [InlineData(16, 1, 784)]  // lanes, FFT size 2048 (sMNIST): stage pairs in and across blocks
    [InlineData(16, 2, 2)]    // lanes, FFT size 4: one single stage between the half-row ones
    [InlineData(16, 3, 3)]    // lanes, FFT size 8: a pair in the block
    [InlineData(16, 1, 1100)] // lanes, FFT size 4096: a wide pair and a wide single stage
    [InlineData(5, 3, 70)]    // per-channel FFT path
    [InlineData(5, 2, 20)]    // per-channel direct path
    public void ForwardAndBackwardMatchTheDirectSums(int h, int batch, int length)
    {
        foreach (bool skip in new[] { false, true })
            ForwardAndBackward(h, batch, length, skip, scaled: false);
        ForwardAndBackward(h, batch, length, skip: true, scaled: true);
        ForwardAndBackward(h, batch, length, skip: false, scaled: true);
    }

    /// <param name="skip">With the skip term: y = k ∗ u + D·u, du gains D·dy, and dD += Σ dy·u.</param>
    /// <param name="scaled"><see cref="CausalConvolution.BackwardScaled"/>: the gradient is dy ⊙ s.</param>
    private static void ForwardAndBackward(int h, int batch, int length, bool skip, bool scaled)
    {
        var conv = new CausalConvolution(h, batch + 1, length + 3);
        var k = TestConfigs.RandomArray(h * length, 1); var u = TestConfigs.RandomArray(batch * length * h, 2);
        var dy = TestConfigs.RandomArray(batch * length * h, 3);
        var d = skip ? TestConfigs.RandomArray(h, 4) : new double[h];
        float[] F(double[] a) => a.Select(v => (float)v).ToArray();
        var y = new float[batch * length * h];
        var du = Enumerable.Repeat(9f, batch * length * h).ToArray();   // overwritten, not added to
        var dk = Enumerable.Repeat(9f, h * length).ToArray();
        var gD = Enumerable.Repeat(0.5f, h).ToArray();                  // added to
        if (scaled)
        {
            conv.Forward(F(k), F(u), skip ? F(d) : [], y, batch, length);
            var s = TestConfigs.RandomArray(batch * length * h, 6);
            var given = F(dy);
            conv.BackwardScaled(F(k), F(u), skip ? F(d) : [], F(s), given, du, dk, skip ? gD : [], batch, length);
            Assert.Equal(F(dy), given); // dy is read, not written
            dy = dy.Select((g, at) => g * (double)(float)s[at]).ToArray(); // the reference takes the scaled gradient
        }
        else if (skip)
        {
            conv.Forward(F(k), F(u), F(d), y, batch, length);
            conv.Backward(F(k), F(u), F(d), F(dy), du, dk, gD, batch, length);
        }
        else
        {
            conv.Forward(F(k), F(u), y, batch, length);
            conv.Backward(F(k), F(u), F(dy), du, dk, batch, length);
        }

        double yErr = 0, duErr = 0, dkErr = 0, gDErr = 0;
        var dkRef = new double[h * length];
        var gDRef = Enumerable.Repeat(skip ? 0.5 : 0, h).ToArray();
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < h; c++)
                for (int t = 0; t < length; t++)
                {
                    int at = (b * length + t) * h + c;
                    double s = d[c] * u[at], g = d[c] * dy[at];
                    gDRef[c] += dy[at] * u[at];
                    for (int j = 0; j <= t; j++) s += k[c * length + j] * u[(b * length + t - j) * h + c];
                    for (int j = t; j < length; j++) g += dy[(b * length + j) * h + c] * k[c * length + j - t];
                    for (int j = 0; j <= t; j++) dkRef[c * length + j] += dy[(b * length + t) * h + c] * u[(b * length + t - j) * h + c];
                    yErr = Math.Max(yErr, Math.Abs(s - y[(b * length + t) * h + c]));
                    duErr = Math.Max(duErr, Math.Abs(g - du[(b * length + t) * h + c]));
                }
        for (int i = 0; i < dk.Length; i++) dkErr = Math.Max(dkErr, Math.Abs(dkRef[i] - dk[i]));
        if (skip) for (int c = 0; c < h; c++) gDErr = Math.Max(gDErr, Math.Abs(gDRef[c] - gD[c]));
        double tol = 2e-5 * length;
        Assert.True(yErr < tol, $"y (skip {skip}): {yErr:E2}");
        Assert.True(duErr < tol, $"du (skip {skip}): {duErr:E2}");
        Assert.True(dkErr < tol * batch, $"dk (skip {skip}): {dkErr:E2}");
        Assert.True(gDErr < tol * batch, $"dD: {gDErr:E2}");
    }

    /// <summary>
    /// GELU written by the forward as it makes y (on the lanes path by the inverse's last stage) equals the convolution
    /// followed by <see cref="BlockKernels.GeluForward"/>, bit for bit: GELU alone (inference), its slope in y's place
    /// (training) and its slope in a buffer of its own.
    /// </summary>
    [Theory]
    [InlineData(32, 3, 70)]   // lanes, odd batch: the last pair's second row is not written
    [InlineData(16, 2, 784)]  // lanes, FFT size 2048: the widest stage fused with the pair before it
    [InlineData(16, 2, 2)]    // lanes, FFT size 4: the plain widest stage
    [InlineData(5, 3, 70)]    // per-channel FFT path
    [InlineData(5, 2, 20)]    // per-channel direct path
    public void GeluFromTheForwardEqualsGelusPassAfterIt(int h, int batch, int length)
    {
        var conv = new CausalConvolution(h, batch, length);
        float[] F(double[] a) => a.Select(v => (float)v).ToArray();
        var k = F(TestConfigs.RandomArray(h * length, 1)); var u = F(TestConfigs.RandomArray(batch * length * h, 2)); var d = F(TestConfigs.RandomArray(h, 4));
        int n = batch * length * h;
        var y = new float[n];
        conv.Forward(k, u, d, y, batch, length);
        var gExpected = new float[n]; var slopeExpected = new float[n];
        BlockKernels.GeluForward(y, gExpected, slope: slopeExpected);

        var (y1, g1) = (new float[n], new float[n]);
        conv.Forward(k, u, d, y1, g1, batch, length);
        Assert.Equal(y, y1);
        Assert.Equal(gExpected, g1);

        var (y2, g2) = (new float[n], new float[n]);
        conv.Forward(k, u, d, y2, g2, batch, length, y2);
        Assert.Equal(slopeExpected, y2);
        Assert.Equal(gExpected, g2);

        var (y3, g3, s3) = (new float[n], new float[n], new float[n]);
        conv.Forward(k, u, d, y3, g3, batch, length, s3);
        Assert.Equal(y, y3);
        Assert.Equal(gExpected, g3);
        Assert.Equal(slopeExpected, s3);
    }

    [Fact]
    public void ShapesAreCheckedFirst()
    {
        var conv = new CausalConvolution(16, 2, 8);
        Assert.Throws<ArgumentOutOfRangeException>(() => conv.Forward(new float[16 * 9], new float[2 * 9 * 16], new float[2 * 9 * 16], 2, 9));
        Assert.Throws<ArgumentOutOfRangeException>(() => conv.Forward(new float[16 * 8], new float[3 * 8 * 16], new float[3 * 8 * 16], 3, 8));
        Assert.Throws<ArgumentException>(() => conv.Forward(new float[16 * 8], new float[10], new float[2 * 8 * 16], 2, 8));
        // the skip term: H values, and in the backward given with its gradient or not at all; nothing written first
        var y = new float[2 * 8 * 16];
        Assert.Throws<ArgumentException>(() => conv.Forward(new float[16 * 8], new float[2 * 8 * 16], new float[15], y, 2, 8));
        // GELU's output and slope: (B, L, H) values each, a slope only with GELU's output
        var g = new float[2 * 8 * 16];
        var one = Enumerable.Repeat(1f, 2 * 8 * 16).ToArray(); // inputs that would write nonzero outputs
        Assert.Throws<ArgumentException>(() => conv.Forward(one.AsSpan(0, 16 * 8), one, one.AsSpan(0, 16), y, new float[10], 2, 8));
        Assert.Throws<ArgumentException>(() => conv.Forward(one.AsSpan(0, 16 * 8), one, one.AsSpan(0, 16), y, g, 2, 8, new float[10]));
        Assert.Throws<ArgumentException>(() => conv.Forward(one.AsSpan(0, 16 * 8), one, one.AsSpan(0, 16), y, Span<float>.Empty, 2, 8, new float[2 * 8 * 16]));
        // GELU's output may not overlap u or y, and its slope is y itself or apart from u, y and g
        var uAndMore = Enumerable.Repeat(1f, 3 * 8 * 16).ToArray();
        Assert.Throws<ArgumentException>(() => conv.Forward(one.AsSpan(0, 16 * 8), uAndMore.AsSpan(0, 2 * 8 * 16), one.AsSpan(0, 16), y, uAndMore.AsSpan(16), 2, 8));
        var yAndMore = new float[3 * 8 * 16];
        Assert.Throws<ArgumentException>(() => conv.Forward(one.AsSpan(0, 16 * 8), one, one.AsSpan(0, 16), yAndMore.AsSpan(0, 2 * 8 * 16), g, 2, 8, yAndMore.AsSpan(16)));
        Assert.All(yAndMore, v => Assert.Equal(0f, v));
        Assert.All(g, v => Assert.Equal(0f, v));
        var du = new float[2 * 8 * 16]; var gD = new float[16];
        Assert.Throws<ArgumentException>(() => conv.Backward(new float[16 * 8], new float[2 * 8 * 16], new float[16], new float[2 * 8 * 16], du, new float[16 * 8], Span<float>.Empty, 2, 8));
        Assert.Throws<ArgumentException>(() => conv.Backward(new float[16 * 8], new float[2 * 8 * 16], new float[16], new float[2 * 8 * 16], du, new float[16 * 8], new float[8], 2, 8));
        // dy's scale: (B, L, H) values, or nothing is done
        var dk = new float[16 * 8];
        var ones = Enumerable.Repeat(1f, 2 * 8 * 16).ToArray(); // inputs that would write nonzero gradients
        Assert.Throws<ArgumentException>(() => conv.BackwardScaled(ones.AsSpan(0, 16 * 8), ones, ones.AsSpan(0, 16), ones.AsSpan(1), ones, du, dk, gD, 2, 8));
        Assert.All(dk, v => Assert.Equal(0f, v));
        Assert.All(gD, v => Assert.Equal(0f, v));
        Assert.All(y, v => Assert.Equal(0f, v));
        Assert.All(du, v => Assert.Equal(0f, v));
    }
}
