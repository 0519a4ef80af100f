using SsmGen.Numerics;
using SsmGen.Reference;

namespace SsmGen.Tests.Numerics;

/// <summary>The float GEMM kernels against the double-precision reference Linear, tiles and tails alike.</summary>
public class GemmTests
{
    [Theory]
    [InlineData(13, 40, 70, true)]     // row and column tails
    [InlineData(100, 128, 256, true)]  // whole tiles, shared over the worker pool
    [InlineData(7, 1, 128, true)]      // an encoder: in = 1
    [InlineData(600, 1, 128, true)]    // ... over enough rows for the vector kernels: dW as (xᵀ·dy)ᵀ
    [InlineData(64, 8, 40, true)]      // in < 16 beside out ≥ 16: the same, and dx 8 columns wide
    [InlineData(5000, 3, 40, true)]    // ... over many rows: dW and db summed in four chunks of rows in parallel, a column tail
    [InlineData(3000, 64, 40, true)]   // db alone summed in two chunks beside a product split over k
    [InlineData(600, 64, 10, true)]    // a decoder: out < 16, long k in the dW product
    [InlineData(30, 16, 48, true)]     // 16 columns after a 32-wide tile (x_proj's shape) and 16 alone (dx: dt_proj's)
    [InlineData(14, 56, 56, true)]     // a 32-wide tile, a 16-wide one and an 8-column tail
    [InlineData(20, 300, 48, true)]    // k past one 256-long block: the tiles start from the bias only in the first
    [InlineData(401, 200, 53, true)]   // twelve-row tiles (B's block past L1; rows enough for them on up to 32 cores) beside 16 columns and a 5-column tail
    [InlineData(40, 300, 401, true)]   // twelve-row tiles in dW too (300 columns of x, 401 rows of dW), a 12-column tail
    [InlineData(4100, 40, 53, true)]   // dW split over k: four chunks of 1,025 rows, their partial products added in order; row and column tails
    [InlineData(9000, 24, 20, true)]   // ... eight chunks (the most), 20 rows of dW: three six-row tiles and two clamped rows
    [InlineData(13, 40, 70, false)]    // the dot-product path (eight outputs at a time with AVX-512, System.Numerics.Tensors without)
    [InlineData(3, 128, 256, true)]    // fewer rows than a tile: the portable path through the public API
    [InlineData(1, 128, 256, true)]    // a streaming step's matrix–vector product: eight outputs at a time
    [InlineData(1, 40, 70, true)]      // ... with a tail of the input (40 = 2·16 + 8) and of the outputs (70 = 8·8 + 6)
    [InlineData(2, 8, 20, true)]       // inputs shorter than a vector: plain dot products
    public void LinearForwardAndBackwardMatchTheReference(int rows, int inF, int outF, bool vector)
    {
        var x = TestConfigs.RandomArray(rows * inF, 1); var w = TestConfigs.RandomArray(outF * inF, 2);
        var b = TestConfigs.RandomArray(outF, 3); var dy = TestConfigs.RandomArray(rows * outF, 4);
        var dx0 = TestConfigs.RandomArray(rows * inF, 5); var dw0 = TestConfigs.RandomArray(outF * inF, 6);
        var db0 = TestConfigs.RandomArray(outF, 7);
        float[] F(double[] a) => a.Select(v => (float)v).ToArray();

        var y = new float[rows * outF];
        if (vector) Gemm.LinearForward(F(x), F(w), F(b), y, rows, inF, outF, new Workspace());
        else Gemm.StepForward(F(x), F(w), F(b), y, rows, inF, outF);
        var yRef = new double[rows * outF];
        BlockReference<double>.LinearForward(x, w, b, yRef, rows, inF, outF);
        AssertClose(yRef, y, Math.Sqrt(inF), "y");

        float[] dx = F(dx0), dw = F(dw0), db = F(db0);
        if (vector) Gemm.LinearBackward(F(x), F(w), F(dy), dx, dw, db, rows, inF, outF);
        else
        {
            Gemm.PortableBackward(F(x), F(w), F(dy), dx, dw, rows, inF, outF);
            for (int r = 0; r < rows; r++) for (int o = 0; o < outF; o++) db[o] += (float)dy[r * outF + o];
        }
        double[] dxRef = (double[])dx0.Clone(), dwRef = (double[])dw0.Clone(), dbRef = (double[])db0.Clone();
        BlockReference<double>.LinearBackward(x, w, dy, dxRef, dwRef, dbRef, rows, inF, outF);
        AssertClose(dxRef, dx, Math.Sqrt(outF), "dx");
        AssertClose(dwRef, dw, Math.Sqrt(rows), "dW");
        AssertClose(dbRef, db, Math.Sqrt(rows), "db");

        if (!vector) return;
        // dx overwritten: whatever dx held before is not read
        var dxOver = Enumerable.Repeat(float.NaN, rows * inF).ToArray();
        Gemm.LinearBackward(F(x), F(w), F(dy), dxOver, F(dw0), Span<float>.Empty, rows, inF, outF, new Workspace(), overwriteDx: true);
        var dxFresh = new double[rows * inF];
        BlockReference<double>.LinearBackward(x, w, dy, dxFresh, new double[outF * inF], new double[outF], rows, inF, outF);
        AssertClose(dxFresh, dxOver, Math.Sqrt(outF), "dx overwritten");
    }

    [Theory]
    [InlineData(12, 128, 16)]    // two six-row tiles
    [InlineData(100, 128, 128)]  // sMNIST's block tail, rows shared over the worker pool with one-row tails
    [InlineData(37, 300, 48)]    // k past the unfused product's 256-long blocks
    public void FusedGluTailMatchesTheLinearThenTheGluBitForBit(int rows, int inF, int h)
    {
        if (!Gemm.FusesGlu(rows, inF, h)) return; // no AVX-512: the generated block takes the unfused pair
        var x = TestConfigs.RandomArray(rows * inF, 11); var w = TestConfigs.RandomArray(2 * h * inF, 12);
        var b = TestConfigs.RandomArray(2 * h, 13); var res = TestConfigs.RandomArray(rows * h, 14);
        float[] F(double[] a) => a.Select(v => (float)v).ToArray();
        var o = new float[rows * 2 * h]; var unfused = new float[rows * h];
        Gemm.LinearForward(F(x), F(w), F(b), o, rows, inF, 2 * h, new Workspace());
        BlockKernels.GluResidual(o, F(res), unfused, rows, h, 0u, 0u, 1f);
        var fused = new float[rows * h];
        Gemm.LinearGluResidual(F(x), F(w), F(b), F(res), fused, rows, inF, h, new Workspace());
        Assert.Equal(unfused, fused);

        // and against the formula in double: residual + a·σ(g), (a | g) = x·Wᵀ + b
        var oRef = new double[rows * 2 * h];
        BlockReference<double>.LinearForward(x, w, b, oRef, rows, inF, 2 * h);
        var expected = new double[rows * h];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < h; c++)
                expected[r * h + c] = res[r * h + c] + oRef[r * 2 * h + c] / (1 + Math.Exp(-oRef[r * 2 * h + h + c]));
        AssertClose(expected, fused, Math.Sqrt(inF), "next");
    }

    [Fact]
    public void FusedGluTailRefusesWhatItCannotRunBeforeWriting()
    {
        if (!Gemm.FusesGlu(12, 16, 16)) return;
        var next = Enumerable.Repeat(5f, 12 * 16).ToArray();
        Assert.Throws<NotSupportedException>(() => Gemm.LinearGluResidual(new float[12 * 16], new float[2 * 24 * 16], new float[48], new float[12 * 24], new float[12 * 24], 12, 16, 24)); // H not a multiple of 16
        Assert.Throws<ArgumentException>(() => Gemm.LinearGluResidual(new float[12 * 16], new float[2 * 16 * 16 - 1], new float[32], new float[12 * 16], next, 12, 16, 16));
        Assert.Throws<ArgumentException>(() => Gemm.LinearGluResidual(new float[12 * 16], new float[2 * 16 * 16], new float[31], new float[12 * 16], next, 12, 16, 16));
        Assert.Throws<ArgumentException>(() => Gemm.LinearGluResidual(new float[12 * 16], new float[2 * 16 * 16], new float[32], new float[12 * 16 - 1], next, 12, 16, 16));
        Assert.All(next, v => Assert.Equal(5f, v));
    }

    [Fact]
    public void LinearForwardRefusesAShortBiasBeforeWriting()
    {
        // 12 rows × 16 → 32 runs the vector tiles, which start from the bias; the step's dot products check it the same way
        foreach (int rows in new[] { 12, 2 })
        {
            var y = Enumerable.Repeat(5f, rows * 32).ToArray();
            var e = Assert.Throws<ArgumentException>(() => Gemm.LinearForward(new float[rows * 16], new float[32 * 16], new float[31], y, rows, 16, 32));
            Assert.Contains("b has 31 values", e.Message);
            Assert.All(y, v => Assert.Equal(5f, v));
        }
    }

    [Theory]
    [InlineData(3000, 1, 128)]   // the narrow path: the bias and dW summed in chunks of rows through pointers
    [InlineData(3000, 64, 40)]   // the bias summed beside a product split over k
    public void LinearBackwardRefusesAShortBiasGradientBeforeWriting(int rows, int inF, int outF)
    {
        var dw = Enumerable.Repeat(5f, outF * inF).ToArray(); var db = Enumerable.Repeat(5f, outF - 1).ToArray();
        var e = Assert.Throws<ArgumentException>(() => Gemm.LinearBackward(new float[rows * inF], new float[outF * inF], new float[rows * outF], Span<float>.Empty, dw, db, rows, inF, outF));
        Assert.Contains($"db has {outF - 1} values", e.Message);
        Assert.All(dw, v => Assert.Equal(5f, v));
        Assert.All(db, v => Assert.Equal(5f, v));
    }

    /// <summary>
    /// The block tail's backward in one call: dx, dW and db against the double formulas (the GLU's backward of dL/d(next)
    /// under the dropout mask, then the linear's), and dx and dW bit for bit against the two separate passes, which sum
    /// every element in the same order (db's sums are grouped differently there). 4,100 rows run the fused blocks over
    /// four chunks; 50 rows the separate passes inside the call.
    /// </summary>
    [Theory]
    [InlineData(4100, 40, 32)]
    [InlineData(50, 40, 32)]
    public void GluTailBackwardMatchesTheFormulasAndTheSeparatePasses(int rows, int inF, int h)
    {
        const double p = 0.2;
        const ulong seed = 5, step = 2;
        const int layer = 1;
        uint key = Rng.DropoutKey(seed, step, layer), threshold = Rng.DropoutThreshold(p);
        float scale = (float)(1 / (1 - p));
        double[] o = TestConfigs.RandomArray(rows * 2 * h, 1), dNext = TestConfigs.RandomArray(rows * h, 2), g = TestConfigs.RandomArray(rows * inF, 3);
        double[] w = TestConfigs.RandomArray(2 * h * inF, 4), dw0 = TestConfigs.RandomArray(2 * h * inF, 5), db0 = TestConfigs.RandomArray(2 * h, 6);
        float[] F(double[] a) => a.Select(v => (float)v).ToArray();

        float[] dx = Enumerable.Repeat(float.NaN, rows * inF).ToArray(), dw = F(dw0), db = F(db0);
        var workspace = new Workspace();
        Gemm.GluResidualLinearBackward(F(o), F(dNext), F(g), F(w), dx, dw, db, rows, inF, h, key, threshold, scale, workspace);
        // a second call on the same workspace starts its partial sums afresh
        float[] dx2 = new float[rows * inF], dw2 = F(dw0), db2 = F(db0);
        Gemm.GluResidualLinearBackward(F(o), F(dNext), F(g), F(w), dx2, dw2, db2, rows, inF, h, key, threshold, scale, workspace);
        Assert.Equal(dx, dx2); Assert.Equal(dw, dw2); Assert.Equal(db, db2);

        var masked = dNext.Select((v, i) => v * BlockReference<double>.DropoutScale(p, seed, step, layer, i)).ToArray();
        var dORef = new double[rows * 2 * h];
        BlockReference<double>.GluBackward(o, masked, dORef, rows, h);
        double[] dxRef = new double[rows * inF], dwRef = (double[])dw0.Clone(), dbRef = (double[])db0.Clone();
        BlockReference<double>.LinearBackward(g, w, dORef, dxRef, dwRef, dbRef, rows, inF, 2 * h);
        AssertClose(dxRef, dx, Math.Sqrt(2 * h), "dx");
        AssertClose(dwRef, dw, Math.Sqrt(rows), "dW");
        AssertClose(dbRef, db, Math.Sqrt(rows), "db");

        var dO = new float[rows * 2 * h];
        float[] dxApart = new float[rows * inF], dwApart = F(dw0), dbApart = F(db0);
        BlockKernels.GluResidualBackward(F(o), F(dNext), dO, rows, h, key, threshold, scale, new Workspace(), dbApart);
        Gemm.LinearBackward(F(g), F(w), dO, dxApart, dwApart, Span<float>.Empty, rows, inF, 2 * h, new Workspace(), overwriteDx: true);
        Assert.Equal(dxApart, dx);
        Assert.Equal(dwApart, dw);
    }

    [Fact]
    public void GluTailBackwardRefusesBadSizesBeforeWriting()
    {
        const int rows = 4100, inF = 40, h = 32;
        float[] dx = new float[rows * inF], dw = new float[2 * h * inF], db = new float[2 * h];
        void Call(int r, int o, int dxLength, int dbLength) => Gemm.GluResidualLinearBackward(new float[rows * 2 * h], Enumerable.Repeat(1f, rows * h).ToArray(),
            Enumerable.Repeat(1f, rows * inF).ToArray(), Enumerable.Repeat(1f, 2 * h * inF).ToArray(), dx.AsSpan(0, dxLength), dw, db.AsSpan(0, dbLength), r, inF, o, 0u, 0u, 1f);
        Assert.Contains("dx", Assert.Throws<ArgumentException>(() => Call(rows, h, rows * inF - 1, 2 * h)).Message);
        Assert.Contains("db", Assert.Throws<ArgumentException>(() => Call(rows, h, rows * inF, 2 * h - 1)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Call(-1, h, rows * inF, 2 * h));
        Assert.Throws<ArgumentOutOfRangeException>(() => Call(rows, 0, rows * inF, 2 * h));
        Assert.All(dx, v => Assert.Equal(0f, v)); Assert.All(dw, v => Assert.Equal(0f, v)); Assert.All(db, v => Assert.Equal(0f, v));
    }

    /// <summary>
    /// The masked last columns of a row (70 = 2·32 + 6 outputs, 40 = 32 + 8 inputs) write nothing past the product:
    /// the outputs sit at the start of longer arrays whose remainder must come back untouched, in the forward (y) and
    /// in both backward products (dx, and dW: split over k at 2,100 rows, its tiles writing dW itself at 100).
    /// </summary>
    [Theory]
    [InlineData(2100)]
    [InlineData(100)]
    public void ColumnTailsWriteNothingPastTheirRows(int rows)
    {
        const int inF = 40, outF = 70, spare = 37;
        float[] Filled(int n, float v) => Enumerable.Repeat(v, n).ToArray();
        var x = TestConfigs.RandomArray(rows * inF, 1).Select(v => (float)v).ToArray();
        var w = TestConfigs.RandomArray(outF * inF, 2).Select(v => (float)v).ToArray();
        var dy = TestConfigs.RandomArray(rows * outF, 3).Select(v => (float)v).ToArray();
        float[] y = Filled(rows * outF + spare, -7f), dx = Filled(rows * inF + spare, -7f), dw = Filled(outF * inF + spare, -7f);
        Gemm.LinearForward(x, w, new float[outF], y, rows, inF, outF, new Workspace());
        Gemm.LinearBackward(x, w, dy, dx, dw, Span<float>.Empty, rows, inF, outF, new Workspace(), overwriteDx: true);
        foreach (var (a, n, name) in new[] { (y, rows * outF, "y"), (dx, rows * inF, "dx"), (dw, outF * inF, "dW") })
        {
            Assert.All(a.Skip(n), v => Assert.Equal(-7f, v));
            Assert.Contains(a.Take(n), v => v != -7f); // and the product itself was written
        }
    }

    private static void AssertClose(double[] expected, float[] actual, double typical, string what)
    {
        // float32 sums of n unit-variance products: error grows like √n·ε·√n; 1e-5·typical is generous and strict enough to catch a wrong element.
        double worst = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        Assert.True(worst < 1e-5 * typical * typical + 1e-5, $"{what}: max |Δ| = {worst:E2}");
    }
}
