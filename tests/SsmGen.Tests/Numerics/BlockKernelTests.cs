using SsmGen.Numerics;
using System.Runtime.Intrinsics;
using SsmGen.Reference;

namespace SsmGen.Tests.Numerics;

/// <summary>The float block kernels (vector and scalar-tail paths, parallel rows) against the double reference.</summary>
public class BlockKernelTests
{
    [Theory]
    [InlineData(3, 20)]      // a tail of 4 after one vector
    [InlineData(700, 128)]   // enough work to split across the worker pool
    public void KernelsMatchTheReference(int rows, int h)
    {
        var x = TestConfigs.RandomArray(rows * h, 1, 2); var w = TestConfigs.RandomArray(h, 2); var b = TestConfigs.RandomArray(h, 3);
        var dy = TestConfigs.RandomArray(rows * h, 4); var o = TestConfigs.RandomArray(rows * 2 * h, 5, 3);
        float[] F(double[] a) => a.Select(v => (float)v).ToArray();
        void Close(double[] e, float[] a, double tol, string what) =>
            Assert.True(e.Zip(a, (p, q) => Math.Abs(p - q)).Max() < tol, $"{what}: {e.Zip(a, (p, q) => Math.Abs(p - q)).Max():E2}");

        var y = new float[rows * h]; var mean = new float[rows]; var rstd = new float[rows];
        BlockKernels.LayerNormForward(F(x), F(w), F(b), y, mean, rstd, rows, h);
        var yRef = new double[rows * h]; var mRef = new double[rows]; var rRef = new double[rows];
        BlockReference<double>.LayerNormForward(x, w, b, yRef, mRef, rRef, rows, h);
        Close(yRef, y, 1e-5, "LayerNorm");

        var dx = F(dy); var dw = new float[h]; var db = new float[h];
        BlockKernels.LayerNormBackward(F(x), F(w), mean, rstd, F(dy), dx, dw, db, rows, h);
        var dxRef = (double[])dy.Clone(); var dwRef = new double[h]; var dbRef = new double[h];
        BlockReference<double>.LayerNormBackward(x, w, mRef, rRef, dy, dxRef, dwRef, dbRef, rows, h);
        Close(dxRef, dx, 1e-4, "LayerNorm dx");
        Close(dwRef, dw, 1e-5 * rows, "LayerNorm dw");
        Close(dbRef, db, 1e-5 * rows, "LayerNorm db");

        // overwriting dx (not read: NaN before) gives what clearing it and adding gives; dw and db still accumulate
        var dxOver = Enumerable.Repeat(float.NaN, rows * h).ToArray(); var dxCleared = new float[rows * h];
        var dw2 = new float[h]; var db2 = new float[h]; var dw3 = new float[h]; var db3 = new float[h];
        BlockKernels.LayerNormBackward(F(x), F(w), mean, rstd, F(dy), dxOver, dw2, db2, rows, h, overwriteDx: true);
        BlockKernels.LayerNormBackward(F(x), F(w), mean, rstd, F(dy), dxCleared, dw3, db3, rows, h);
        Assert.Equal(dxCleared, dxOver); Assert.Equal(dw3, dw2); Assert.Equal(db3, db2);
        var dxRms = Enumerable.Repeat(float.NaN, rows * h).ToArray(); var dxRmsCleared = new float[rows * h];
        BlockKernels.RmsNormBackward(F(x), F(w), rstd, F(dy), dxRms, new float[h], rows, h, overwriteDx: true);
        BlockKernels.RmsNormBackward(F(x), F(w), rstd, F(dy), dxRmsCleared, new float[h], rows, h);
        Assert.Equal(dxRmsCleared, dxRms);

        var g = new float[rows * h];
        BlockKernels.GeluForward(F(x), g);
        Close(x.Select(BlockReference<double>.Gelu).ToArray(), g, 1e-6 * 4, "GELU");
        var slope = F(x); // over its input, as a training forward keeps it
        var g2 = new float[rows * h];
        BlockKernels.GeluForward(slope, g2, null, slope);
        Assert.Equal(g, g2);
        Close(x.Select(BlockReference<double>.GeluDerivative).ToArray(), slope, 1e-5, "GELU' kept by the forward");
        var dg = F(dy);
        BlockKernels.GeluBackward(F(x), dg, dg);   // in place, as the generated code calls it
        Close(x.Zip(dy, (v, d) => d * BlockReference<double>.GeluDerivative(v)).ToArray(), dg, 1e-5, "GELU'");

        var glu = new float[rows * h];
        BlockKernels.GluForward(F(o), glu, rows, h);
        var gluRef = new double[rows * h];
        BlockReference<double>.GluForward(o, gluRef, rows, h);
        Close(gluRef, glu, 1e-5, "GLU");
        var next = new float[rows * h];   // the block's tail without dropout: x + GLU(o)
        BlockKernels.GluResidual(F(o), F(x), next, rows, h, 0u, 0u, 1f);
        Close(gluRef.Zip(x, (g, v) => g + v).ToArray(), next, 1e-5, "GLU + residual");
        var dO = new float[rows * 2 * h];
        BlockKernels.GluResidualBackward(F(o), F(dy), dO, rows, h, 0u, 0u, 1f);
        var dORef = new double[rows * 2 * h];
        BlockReference<double>.GluBackward(o, dy, dORef, rows, h);
        Close(dORef, dO, 1e-5, "GLU backward");
        // with the bias gradient summed as the rows are written (added to what it held)
        var dBias = Enumerable.Repeat(0.5f, 2 * h).ToArray();
        var dO2 = new float[rows * 2 * h];
        BlockKernels.GluResidualBackward(F(o), F(dy), dO2, rows, h, 0u, 0u, 1f, null, dBias);
        Assert.Equal(dO, dO2);
        var dBiasRef = Enumerable.Range(0, 2 * h).Select(c => 0.5 + Enumerable.Range(0, rows).Sum(r => dORef[r * 2 * h + c])).ToArray();
        Close(dBiasRef, dBias, 1e-5 * rows, "GLU backward's bias sums");
    }

    [Fact]
    public void FastExpIsAccurateOverTheFloatRange()
    {
        double worst = 0;
        for (double v = -87; v <= 88; v += 0.0137)
        {
            float e = FastMath.Exp(Vector512.Create((float)v))[3];
            worst = Math.Max(worst, Math.Abs(e - Math.Exp((float)v)) / Math.Exp((float)v));
        }
        Assert.True(worst < 5e-7, $"relative error {worst:E2}");
        Assert.Equal(1f, FastMath.Tanh(Vector512.Create(50f))[0]);
        Assert.InRange(FastMath.Sigmoid(Vector512.Create(-120f))[0], 0f, 1e-37f);
    }

    [Fact]
    public void DropoutDropsTheRequestedFractionAndMatchesTheScalarRule()
    {
        const int rows = 781, h = 128;   // 99,968 values over the worker pool; h = 20 below takes the scalar tail too
        foreach (int width in new[] { h, 20 })
        {
            int n = rows * width;
            uint key = Rng.DropoutKey(7, 3, 1), th = Rng.DropoutThreshold(0.3);
            // GLU(1, 100) = σ(100) = 1 in float, x = 0: next holds the mask itself, and so does the backward's dL/da
            var o = new float[rows * 2 * width];
            for (int r = 0; r < rows; r++) { o.AsSpan(r * 2 * width, width).Fill(1f); o.AsSpan(r * 2 * width + width, width).Fill(100f); }
            var y = new float[n];
            BlockKernels.GluResidual(o, new float[n], y, rows, width, key, th, 1 / 0.7f);
            Assert.InRange(y.Count(v => v == 0) / (double)n, 0.29, 0.31);
            var dO = new float[rows * 2 * width];
            BlockKernels.GluResidualBackward(o, Enumerable.Repeat(1f, n).ToArray(), dO, rows, width, key, th, 1 / 0.7f);
            for (int i = 0; i < n; i++)
            {
                Assert.Equal(BlockReference<double>.DropoutScale(0.3, 7, 3, 1, i), y[i], 1e-6);
                Assert.Equal(y[i], dO[i / width * 2 * width + i % width]);
            }
        }
        // another step or layer draws another mask
        Assert.NotEqual(Rng.DropoutKey(7, 3, 1), Rng.DropoutKey(7, 4, 1));
        Assert.NotEqual(Rng.DropoutKey(7, 3, 1), Rng.DropoutKey(7, 3, 2));
    }

    [Fact]
    public void TheBlockTailRefusesShortBuffersBeforeWriting()
    {
        const int rows = 4, h = 16;
        var next = new float[rows * h]; var dO = new float[rows * 2 * h];
        Assert.Throws<ArgumentException>(() => BlockKernels.GluResidual(new float[rows * 2 * h - 1], new float[rows * h], next, rows, h, 0u, 0u, 1f));
        Assert.Throws<ArgumentException>(() => BlockKernels.GluResidual(new float[rows * 2 * h], new float[rows * h - 1], next, rows, h, 0u, 0u, 1f));
        Assert.Throws<ArgumentException>(() => BlockKernels.GluResidualBackward(new float[rows * 2 * h], new float[rows * h], new float[rows * 2 * h - 1], rows, h, 0u, 0u, 1f));
        Assert.Throws<ArgumentException>(() => BlockKernels.GluResidualBackward(new float[rows * 2 * h], new float[rows * h - 1], dO, rows, h, 0u, 0u, 1f));
        var dBias = new float[2 * h - 1];
        Assert.Throws<ArgumentException>(() => BlockKernels.GluResidualBackward(new float[rows * 2 * h], new float[rows * h], dO, rows, h, 0u, 0u, 1f, null, dBias));
        Assert.All(dBias, v => Assert.Equal(0f, v));
        var gelu = new float[rows * h];
        Assert.Throws<ArgumentException>(() => BlockKernels.GeluForward(Enumerable.Repeat(1f, rows * h).ToArray(), gelu, null, new float[rows * h - 1])); // a short slope
        Assert.All(gelu, v => Assert.Equal(0f, v));
        Assert.All(next, v => Assert.Equal(0f, v));
        Assert.All(dO, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void GatesAndSoftplusSplitAcrossThePoolMatchTheFormulasAndEachElementAlone()
    {
        const int n = 70_001;   // past the pool's threshold, with a partial last vector
        var x = TestConfigs.RandomArray(n, 11, 4); var z = TestConfigs.RandomArray(n, 12, 4); var dg = TestConfigs.RandomArray(n, 13);
        float[] F(double[] a) => a.Select(v => (float)v).ToArray();
        static double Sig(double v) => 1 / (1 + Math.Exp(-v));
        void Close(Func<int, double> expected, float[] actual, double tol, string what)
        {
            double worst = 0;
            for (int i = 0; i < n; i++) worst = Math.Max(worst, Math.Abs(expected(i) - actual[i]));
            Assert.True(worst < tol, $"{what}: {worst:E2}");
        }
        var silu = new float[n]; BlockKernels.SiluForward(F(x), silu);
        Close(i => x[i] * Sig(x[i]), silu, 1e-5, "SiLU");
        var dSilu = new float[n]; BlockKernels.SiluBackward(F(x), F(dg), dSilu);
        Close(i => dg[i] * Sig(x[i]) * (1 + x[i] * (1 - Sig(x[i]))), dSilu, 1e-5, "SiLU'");
        var gate = new float[n]; BlockKernels.SiluGateForward(F(x), F(z), gate);
        Close(i => x[i] * z[i] * Sig(z[i]), gate, 1e-4, "gate");
        var dy = new float[n]; var dz = new float[n]; BlockKernels.SiluGateBackward(F(x), F(z), F(dg), dy, dz);
        Close(i => dg[i] * z[i] * Sig(z[i]), dy, 1e-4, "gate dy");
        Close(i => dg[i] * x[i] * Sig(z[i]) * (1 + z[i] * (1 - Sig(z[i]))), dz, 1e-4, "gate dz");
        var sp = F(x); MambaKernels.Softplus(sp);
        Close(i => Math.Log(1 + Math.Exp(x[i])), sp, 1e-5, "softplus");
        var dPre = new float[n]; MambaKernels.SoftplusBackward(sp, F(dg), dPre);
        Close(i => dg[i] * Sig(x[i]), dPre, 1e-5, "softplus'");
        // the same bits for an element whatever its neighbours: a row of 17 alone, as a streaming step computes it
        var alone = new float[17]; BlockKernels.SiluGateForward(F(x).AsSpan(32, 17), F(z).AsSpan(32, 17), alone);
        Assert.Equal(gate.AsSpan(32, 17).ToArray(), alone);
    }

    [Theory]
    [InlineData(16, 784, 128)] // sMNIST's shape: batch rows shared over the pool
    [InlineData(3, 5, 20)]     // small, odd width: one thread, the vectors' tails
    public void MeanPoolIsTheMeanOverTimeAndItsBackwardSpreadsItBack(int batch, int length, int h)
    {
        var rng = new Random(7);
        var x = Enumerable.Range(0, batch * length * h).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var pooled = new float[batch * h];
        BlockKernels.MeanPool(x, pooled, batch, length, h, new Workspace());
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < h; c++)
            {
                double sum = 0;
                for (int t = 0; t < length; t++) sum += x[(b * length + t) * h + c];
                Assert.Equal(sum / length, pooled[b * h + c], 1e-5 * Math.Max(1, Math.Abs(sum / length)));
            }
        var dPooled = Enumerable.Range(0, batch * h).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var dx = Enumerable.Repeat(float.NaN, batch * length * h).ToArray(); // overwritten, not added to
        BlockKernels.MeanPoolBackward(dPooled, dx, batch, length, h, new Workspace());
        for (int r = 0; r < batch * length; r++)
            for (int c = 0; c < h; c++) Assert.Equal(dPooled[r / length * h + c] / length, dx[r * h + c], 1e-7);
    }

    [Fact]
    public void MeanPoolRefusesShortBuffersBeforeWriting()
    {
        var pooled = new float[2 * 4];
        Assert.Throws<ArgumentException>(() => BlockKernels.MeanPool(new float[2 * 3 * 4 - 1], pooled, 2, 3, 4));
        Assert.Throws<ArgumentException>(() => BlockKernels.MeanPool(new float[2 * 3 * 4], new float[2 * 4 - 1], 2, 3, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => BlockKernels.MeanPool(new float[24], pooled, 2, 0, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => BlockKernels.MeanPool(new float[24], pooled, 1 << 16, 1 << 16, 1)); // B·L·H past int: refused, not wrapped
        Assert.Throws<ArgumentOutOfRangeException>(() => BlockKernels.MeanPoolBackward(new float[8], new float[24], 1 << 16, 1 << 16, 1));
        var dx = new float[2 * 3 * 4];
        Assert.Throws<ArgumentException>(() => BlockKernels.MeanPoolBackward(new float[2 * 4 - 1], dx, 2, 3, 4));
        Assert.Throws<ArgumentException>(() => BlockKernels.MeanPoolBackward(new float[2 * 4], new float[2 * 3 * 4 - 1], 2, 3, 4));
        Assert.All(pooled, v => Assert.Equal(0f, v));
        Assert.All(dx, v => Assert.Equal(0f, v));
    }
}

