using SsmGen.Numerics;

namespace SsmGen.Tests.Numerics;

/// <summary>The lane FFT against the DFT written out in double, in the bit-reversed order its forward transform leaves.</summary>
public class LaneFftTests
{
    private const int Lanes = LaneFft.Lanes;

    private static int Reverse(int p, int n)
    {
        int r = 0;
        for (int bit = 1; bit < n; bit <<= 1) r = r << 1 | ((p & bit) != 0 ? 1 : 0);
        return r;
    }

    [Theory]
    [InlineData(2, 2)]
    [InlineData(4, 64)]        // a smaller transform than the twiddle table was built for
    [InlineData(8, 8)]
    [InlineData(16, 16)]       // an odd count of stages in the block (3): the forward ends in the span-2 stage alone,
    [InlineData(64, 256)]      // the inverse starts with the twiddle-free pair and ends in a single stage
    [InlineData(256, 256)]     // ... 7 of them
    [InlineData(512, 512)]     // one block: pairs only
    [InlineData(1024, 2048)]   // a wide single stage
    [InlineData(2048, 2048)]   // a wide pair
    [InlineData(4096, 4096)]   // a wide pair and a wide single stage
    public void ForwardIsTheDftInBitReversedOrderAndTheInverseReturnsTheFirstHalf(int n, int maxSize)
    {
        var fft = new LaneFft(maxSize);
        var rng = new Random(n);
        var xr = new double[n / 2 * Lanes]; var xi = new double[n / 2 * Lanes];
        for (int i = 0; i < xr.Length; i++) { xr[i] = rng.NextDouble() - 0.5; xi[i] = rng.NextDouble() - 0.5; }
        var re = new float[n * Lanes]; var im = new float[n * Lanes];
        for (int i = 0; i < xr.Length; i++) { re[i] = (float)xr[i]; im[i] = (float)xi[i]; }
        Array.Fill(re, float.NaN, n / 2 * Lanes, n / 2 * Lanes); // the second half is not read
        Array.Fill(im, float.NaN, n / 2 * Lanes, n / 2 * Lanes);
        fft.Forward(re, im, n);

        double err = 0, scale = 0;
        for (int p = 0; p < n; p++)
        {
            int j = Reverse(p, n);
            for (int c = 0; c < Lanes; c++)
            {
                double sr = 0, si = 0;
                for (int t = 0; t < n / 2; t++)
                {
                    double a = -2 * Math.PI * ((long)j * t % n) / n, cr = Math.Cos(a), ci = Math.Sin(a);
                    sr += xr[t * Lanes + c] * cr - xi[t * Lanes + c] * ci;
                    si += xr[t * Lanes + c] * ci + xi[t * Lanes + c] * cr;
                }
                err = Math.Max(err, Math.Max(Math.Abs(sr - re[p * Lanes + c]), Math.Abs(si - im[p * Lanes + c])));
                scale = Math.Max(scale, Math.Abs(sr));
            }
        }
        Assert.True(err < 1e-5 * Math.Log2(n) * Math.Max(1, scale), $"forward: {err:E2} (largest {scale:F2})");

        fft.UnscaledInverse(re, im, n); // n·x back in rows [0, n/2)
        double back = 0;
        for (int i = 0; i < xr.Length; i++)
            back = Math.Max(back, Math.Max(Math.Abs(re[i] / n - xr[i]), Math.Abs(im[i] / n - xi[i])));
        Assert.True(back < 1e-6 * Math.Log2(n) * 4, $"round trip: {back:E2}");
    }

    [Fact]
    public void PartnerHoldsTheNegatedFrequency()
    {
        foreach (int n in new[] { 2, 4, 16, 2048 })
            for (int p = 0; p < n; p++)
                Assert.Equal((n - Reverse(p, n)) % n, Reverse(LaneFft.Partner(p), n));
    }

    /// <summary>
    /// The counts worked by hand from the stage plan. n = 4: the forward's widest stage makes two complex products (12),
    /// the span-2 stage two sums and two differences (8); the inverse's span-2 stage (8) and its widest stage a product
    /// and a sum for each of two kept rows (16). n = 2048: spans 1024 and 512 as one radix-4 pass (34 per four rows),
    /// the eight spans inside a 256-row block as three such passes and the twiddle-free one at spans 4 and 2 (16 per
    /// four rows), plus the widest stage (3 or 4 per row).
    /// </summary>
    [Fact]
    public void FlopsCountWhatTheStagesExecute()
    {
        Assert.Equal(12 + 8, LaneFft.Flops(4, inverse: false));
        Assert.Equal(8 + 16, LaneFft.Flops(4, inverse: true));
        Assert.Equal(4 * 2048 / 4 * 34.0 + 2048 / 4 * 16 + 3 * 2048, LaneFft.Flops(2048, inverse: false));
        Assert.Equal(4 * 2048 / 4 * 34.0 + 2048 / 4 * 16 + 4 * 2048, LaneFft.Flops(2048, inverse: true));
        Assert.Throws<ArgumentException>(() => LaneFft.Flops(48, inverse: false));
    }

    [Fact]
    public void SizesAreChecked()
    {
        var fft = new LaneFft(64);
        Assert.Throws<ArgumentException>(() => fft.Forward(new float[128 * Lanes], new float[128 * Lanes], 128));
        Assert.Throws<ArgumentException>(() => fft.Forward(new float[48 * Lanes], new float[48 * Lanes], 48));
        Assert.Throws<ArgumentException>(() => fft.UnscaledInverse(new float[16 * Lanes], new float[15 * Lanes], 16));
    }

    /// <summary>
    /// The forward reading rows straight from (B, L, H)-strided sequences, scaled or not, with or without an imaginary
    /// row, equals packing them and calling Forward bit for bit; the inverse writing its rows out equals UnscaledInverse
    /// then copying them out, and writes nothing else.
    /// </summary>
    [Theory]
    [InlineData(2048, 784, true, true)]  // sMNIST's transform: 784 rows of 2,048, the pair scaled (dy ⊙ GELU'); the first pair fused
    [InlineData(2048, 600, true, false)]  // fused both ways, no imaginary row (the odd row of an odd batch)
    [InlineData(2048, 100, false, true)]  // fewer rows than the fused passes' groups (n/8): the cut-off inside them
    [InlineData(4096, 1500, false, true)] // the forward's first pair fused, then a wide single stage; the inverse unfused
    [InlineData(1024, 300, true, true)]   // the widest stage alone before the blocks (no pair wide enough to fuse)
    [InlineData(2048, 1024, false, true)] // every row of the first half read
    [InlineData(64, 5, false, false)]     // the odd row of an odd batch: no imaginary part
    [InlineData(16, 0, false, false)]     // nothing read: all zero
    public unsafe void ForwardAndInverseThroughStridedRowsEqualPackingAndUnpacking(int n, int length, bool scaled, bool imaginary)
    {
        const int channels = 48, h0 = 16; // the lanes' sixteen channels of three, row stride 48
        var fft = new LaneFft(n);
        var rng = new Random(n + length);
        float[] R(int count) => Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        int rows = Math.Max(1, length);
        var a = R(rows * channels); var b = R(rows * channels); var sa = R(rows * channels); var sb = R(rows * channels);
        var re = new float[n * Lanes]; var im = new float[n * Lanes];
        for (int t = 0; t < length; t++)
            for (int c = 0; c < Lanes; c++)
            {
                int at = t * channels + h0 + c;
                re[t * Lanes + c] = scaled ? a[at] * sa[at] : a[at];
                im[t * Lanes + c] = imaginary ? (scaled ? b[at] * sb[at] : b[at]) : 0;
            }
        fft.Forward(re, im, n);
        var re2 = Enumerable.Repeat(float.NaN, n * Lanes).ToArray(); var im2 = Enumerable.Repeat(float.NaN, n * Lanes).ToArray(); // every row written
        fixed (float* pa = a, pb = b, psa = sa, psb = sb)
            fft.Forward(re2, im2, n, pa + h0, imaginary ? pb + h0 : null, scaled ? psa + h0 : null, scaled && imaginary ? psb + h0 : null, channels, length);
        Assert.Equal(re, re2);
        Assert.Equal(im, im2);

        var outRe = Enumerable.Repeat(-7f, rows * channels).ToArray(); var outIm = Enumerable.Repeat(-7f, rows * channels).ToArray();
        fixed (float* pr = outRe, pi = outIm)
            fft.UnscaledInverse(re2, im2, n, pr + h0, imaginary ? pi + h0 : null, channels, length);
        fft.UnscaledInverse(re, im, n);
        for (int t = 0; t < rows; t++)
            for (int c = 0; c < channels; c++)
            {
                bool lane = t < length && c >= h0 && c < h0 + Lanes;
                Assert.Equal(lane ? re[t * Lanes + c - h0] : -7f, outRe[t * channels + c]);
                Assert.Equal(lane && imaginary ? im[t * Lanes + c - h0] : -7f, outIm[t * channels + c]);
            }
        Assert.Throws<ArgumentOutOfRangeException>(() => { fixed (float* pa = a) fft.Forward(re2, im2, n, pa, null, null, null, channels, n / 2 + 1); });
        Assert.Throws<ArgumentNullException>(() => fft.Forward(re2, im2, n, null, null, null, null, channels, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => { fixed (float* pa = a) fft.Forward(re2, im2, n, pa, null, null, null, Lanes - 1, 0); }); // rows would overlap
        Assert.Throws<ArgumentException>(() => { fixed (float* pa = a) fft.Forward(re2, im2, n, pa, null, null, pa, channels, 0); }); // a scale without its rows
        Assert.Throws<ArgumentOutOfRangeException>(() => { fixed (float* pa = a) fft.UnscaledInverse(re2, im2, n, pa, null, channels, n / 2 + 1); });
        Assert.Throws<ArgumentOutOfRangeException>(() => { fixed (float* pa = a) fft.UnscaledInverse(re2, im2, n, pa, null, Lanes - 1, 0); });
        Assert.Throws<ArgumentNullException>(() => fft.UnscaledInverse(re2, im2, n, null, null, channels, 0));
    }

    /// <summary>
    /// Convolve — the product made block by block between the forward's last stages and the inverse's first — equals the
    /// strided Forward, a product over the whole spectrum and the strided UnscaledInverse bit for bit, GELU and its slope
    /// included; below 512 points (no block holds both ends) it runs those three steps.
    /// </summary>
    [Theory]
    [InlineData(2048, 784, true)]  // sMNIST's: eight blocks of 256 rows
    [InlineData(2048, 600, false)] // no imaginary row
    [InlineData(4096, 1500, true)] // a wide single stage on each side of the blocks
    [InlineData(512, 256, true)]   // two blocks, the first half read whole
    [InlineData(256, 100, true)]   // too small to fuse
    [InlineData(16, 0, false)]     // nothing read
    public unsafe void ConvolveEqualsForwardProductAndInverse(int n, int length, bool imaginary)
    {
        const int channels = 48, h0 = 16;
        var fft = new LaneFft(n);
        var rng = new Random(n + 3 * length);
        float[] R(int count) => Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        int rows = Math.Max(1, length);
        var a = R(rows * channels); var b = R(rows * channels); var kRe = R(n * Lanes); var kIm = R(n * Lanes);
        foreach (bool gelu in new[] { false, true })
        {
            var re = new float[n * Lanes]; var im = new float[n * Lanes];
            var outRe = Enumerable.Repeat(-7f, 2 * rows * channels).ToArray(); var outIm = Enumerable.Repeat(-7f, 2 * rows * channels).ToArray();
            var expectRe = (float[])outRe.Clone(); var expectIm = (float[])outIm.Clone();
            long toGelu = rows * channels; // GELU of each value half the array further on, its slope in the value's place
            var geluOut = gelu ? new LaneFft.GeluOut(true, toGelu, Slope: true, ToSlope: 0) : default;
            fixed (float* pa = a, pb = b, pkr = kRe, pki = kIm, pr = outRe, pi = outIm, qr = expectRe, qi = expectIm)
            {
                fft.Convolve(re, im, n, pa + h0, imaginary ? pb + h0 : null, channels, length, pkr, pki, pr + h0, imaginary ? pi + h0 : null, geluOut);
                fft.Forward(re, im, n, pa + h0, imaginary ? pb + h0 : null, null, null, channels, length);
                for (int i = 0; i < n * Lanes; i++)
                {
                    float xr = re[i], xi = im[i];
                    re[i] = xr * kRe[i] - xi * kIm[i];
                    im[i] = xr * kIm[i] + xi * kRe[i];
                }
                fft.UnscaledInverse(re, im, n, qr + h0, imaginary ? qi + h0 : null, channels, length, geluOut);
            }
            Assert.Equal(expectRe, outRe);
            Assert.Equal(expectIm, outIm);
            if (length > 0) Assert.NotEqual(-7f, outRe[h0]);
        }
        Assert.Equal("kRe", Assert.Throws<ArgumentNullException>(() => { fixed (float* pa = a) fft.Convolve(new float[n * Lanes], new float[n * Lanes], n, pa, null, channels, length, null, null, pa, null); }).ParamName);
        Assert.Equal("outReal", Assert.Throws<ArgumentNullException>(() => { fixed (float* pa = a, pk = kRe) fft.Convolve(new float[n * Lanes], new float[n * Lanes], n, pa, null, channels, length, pk, pk, null, null); }).ParamName);
    }
}
