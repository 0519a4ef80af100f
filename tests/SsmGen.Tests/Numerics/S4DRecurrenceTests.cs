using System.Numerics;
using SsmGen.Layers;
using SsmGen.Numerics;
using Xunit.Abstractions;

namespace SsmGen.Tests.Numerics;

/// <summary>
/// The recurrent S4D path against its convolution view written out in double: K[h, l] = 2·Re Σ_m W·Ā^l, y = K ∗ u + D·u
/// by direct sums; GELU against the block kernel's own pass.
/// </summary>
public class S4DRecurrenceTests(ITestOutputHelper output)
{
    /// <summary>A mode table [Re Ā | Im Ā | Re W | Im W | anchors], each (H, M), with |Ā| in [0.5, 0.9995) as trained S4D modes have.</summary>
    private static float[] Modes(int h, int m, ulong seed)
    {
        var rng = new Rng(seed);
        var modes = new float[6 * h * m];
        for (int i = 0; i < h * m; i++)
        {
            var z = Complex.FromPolarCoordinates(0.9995 - 0.4995 * rng.NextDouble(), Math.PI * (2 * rng.NextDouble() - 1));
            (modes[i], modes[h * m + i]) = ((float)z.Real, (float)z.Imaginary);
            (modes[2 * h * m + i], modes[3 * h * m + i]) = ((float)(0.05 * rng.Normal()), (float)(0.05 * rng.Normal()));
        }
        return modes;
    }

    private bool Unsupported()
    {
        if (S4DRecurrence.Supports(16, 4)) return false;
        output.WriteLine("Skipped: this CPU has no AVX-512; the generated forward takes the FFT convolution here.");
        return true;
    }

    [Theory]
    [InlineData(16, 4, 1, 1)]      // one step
    [InlineData(16, 8, 2, 37)]     // two passes of four modes
    [InlineData(32, 32, 3, 130)]   // N = 64, two channel groups, odd batch
    public void MatchesTheConvolutionWrittenOutInDouble(int h, int m, int batch, int length)
    {
        if (Unsupported()) return;
        var modes = Modes(h, m, 11);
        var u = TestConfigs.RandomArray(batch * length * h, 12).Select(v => (float)v).ToArray();
        var d = TestConfigs.RandomArray(h, 13).Select(v => (float)v).ToArray();
        var y = Enumerable.Repeat(7f, u.Length).ToArray(); // overwritten
        var g = new float[u.Length];
        var recurrence = new S4DRecurrence(h, m + 4);
        var alone = new float[u.Length];
        recurrence.Forward(modes, m, d, u, alone, Span<float>.Empty, batch, length); // without GELU's output
        recurrence.Forward(modes, m, d, u, y, g, batch, length);

        var k = new double[h * length];
        for (int c = 0; c < h; c++)
            for (int n = 0; n < m; n++)
            {
                int i = c * m + n;
                var z = new Complex(modes[i], modes[h * m + i]);
                var p = new Complex(modes[2 * h * m + i], modes[3 * h * m + i]);
                for (int l = 0; l < length; l++, p *= z) k[c * length + l] += 2 * p.Real;
            }
        double err = 0, scale = 0;
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
                for (int c = 0; c < h; c++)
                {
                    int at = (b * length + t) * h + c;
                    double s = d[c] * u[at];
                    for (int j = 0; j <= t; j++) s += k[c * length + j] * u[(b * length + t - j) * h + c];
                    err = Math.Max(err, Math.Abs(s - y[at]));
                    scale = Math.Max(scale, Math.Abs(s));
                }
        Assert.True(err < 2e-6 * Math.Max(1, scale) * Math.Sqrt(length), $"max |y − direct sum| = {err:E2} (max |y| {scale:E2})");
        Assert.Equal(y, alone); // asking for GELU too leaves y as it is

        var gelu = new float[u.Length];
        var slope = new float[u.Length];
        BlockKernels.GeluForward(y, gelu, null, slope);
        Assert.Equal(gelu, g); // the fused GELU is the block kernel's, bit for bit

        // GELU's slope over y (as a training forward asks): the block kernel's slope, bit for bit, GELU unchanged
        var g2 = new float[u.Length];
        var over = Enumerable.Repeat(7f, u.Length).ToArray();
        recurrence.Forward(modes, m, d, u, over, g2, batch, length, over);
        Assert.Equal(slope, over);
        Assert.Equal(g, g2);
    }

    [Fact]
    public void BadArgumentsThrowBeforeAnythingIsWritten()
    {
        if (Unsupported()) return;
        Assert.Throws<ArgumentException>(() => new S4DRecurrence(24, 4));     // H not a multiple of 16
        var rec = new S4DRecurrence(16, 8);
        var modes = Modes(16, 8, 31);
        var u = new float[2 * 5 * 16]; var d = new float[16];
        var y = Enumerable.Repeat(3f, u.Length).ToArray();
        Assert.Throws<ArgumentOutOfRangeException>(() => rec.Forward(modes, 6, d, u, y, Span<float>.Empty, 2, 5));   // not four modes at a time
        Assert.Throws<ArgumentOutOfRangeException>(() => rec.Forward(modes, 12, d, u, y, Span<float>.Empty, 2, 5));  // more than it was made for
        Assert.Throws<ArgumentException>(() => rec.Forward(modes.AsSpan(0, 4 * 16 * 8 - 1), 8, d, u, y, Span<float>.Empty, 2, 5));
        Assert.Throws<ArgumentException>(() => rec.Forward(modes, 8, new float[15], u, y, Span<float>.Empty, 2, 5));
        Assert.Throws<ArgumentException>(() => rec.Forward(modes, 8, d, u, y.AsSpan(0, 10), Span<float>.Empty, 2, 5));
        Assert.Throws<ArgumentException>(() => rec.Forward(modes, 8, d, u, y, new float[10], 2, 5));
        Assert.Throws<ArgumentException>(() => rec.Forward(modes, 8, d, u, y, Span<float>.Empty, 2, 5, new float[u.Length])); // a slope without GELU
        Assert.Throws<ArgumentException>(() => rec.Forward(modes, 8, d, u, y, new float[u.Length], 2, 5, new float[10]));
        Assert.Throws<ArgumentOutOfRangeException>(() => rec.Forward(modes, 8, d, u, y, Span<float>.Empty, 0, 5));
        Assert.All(y, v => Assert.Equal(3f, v));
    }

    [Fact]
    public void TheRuleTakesTheFasterPathOfTheMeasuredOnes()
    {
        // --s4d-paths (FFT with GELU in its last stage against the recurrence, B, L, M): the faster path wherever they differ
        Assert.False(S4DRecurrence.Faster(32, 784, 16));  // sMNIST's N = 64 at batch 16
        Assert.True(S4DRecurrence.Faster(16, 784, 16));
        Assert.True(S4DRecurrence.Faster(32, 784, 1));    // one sequence: half of each packed transform is empty
        Assert.False(S4DRecurrence.Faster(64, 4096, 1));
        Assert.True(S4DRecurrence.Faster(16, 4096, 16));
        Assert.False(S4DRecurrence.Faster(32, 4096, 16));
        Assert.True(S4DRecurrence.Faster(8, 64, 16));
        Assert.False(S4DRecurrence.Faster(16, 64, 16));   // short sequences: the transforms stay in L1
        Assert.True(S4DRecurrence.Faster(4, 1, 1));
    }
}
