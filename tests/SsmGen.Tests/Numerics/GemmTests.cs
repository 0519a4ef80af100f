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
    [InlineData(600, 64, 10, true)]    // a decoder: out < 16, long k in the dW product
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
    }

    private static void AssertClose(double[] expected, float[] actual, double typical, string what)
    {
        // float32 sums of n unit-variance products: error grows like √n·ε·√n; 1e-5·typical is generous and strict enough to catch a wrong element.
        double worst = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        Assert.True(worst < 1e-5 * typical * typical + 1e-5, $"{what}: max |Δ| = {worst:E2}");
    }
}
