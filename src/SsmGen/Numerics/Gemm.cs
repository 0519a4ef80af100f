using System.Numerics.Tensors;

namespace SsmGen.Numerics;

/// <summary>
/// Linear-layer products over row-major float matrices, PyTorch layout W (out, in). Built on
/// System.Numerics.Tensors primitives, which vectorize to the widest width the CPU offers.
/// </summary>
public static class Gemm
{
    /// <summary>y (rows, out) = x (rows, in) · Wᵀ + b; b may be empty.</summary>
    public static void LinearForward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, int rows, int inF, int outF)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * inF, inF);
            var yr = y.Slice(r * outF, outF);
            for (int o = 0; o < outF; o++) yr[o] = TensorPrimitives.Dot(xr, w.Slice(o * inF, inF));
            if (!b.IsEmpty) TensorPrimitives.Add(yr, b, yr);
        }
    }

    /// <summary>dx (rows, in) += dy · W (dx may be empty), dW += dyᵀ · x, db += Σ_rows dy (db may be empty).</summary>
    public static void LinearBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> dy, Span<float> dx, Span<float> dw, Span<float> db, int rows, int inF, int outF)
    {
        for (int r = 0; r < rows; r++)
        {
            var dyr = dy.Slice(r * outF, outF);
            var xr = x.Slice(r * inF, inF);
            if (!db.IsEmpty) TensorPrimitives.Add(db, dyr, db);
            for (int o = 0; o < outF; o++)
            {
                float g = dyr[o];
                if (g == 0) continue;
                var dwo = dw.Slice(o * inF, inF);
                TensorPrimitives.MultiplyAdd(xr, g, dwo, dwo);
                if (!dx.IsEmpty)
                {
                    var dxr = dx.Slice(r * inF, inF);
                    TensorPrimitives.MultiplyAdd(w.Slice(o * inF, inF), g, dxr, dxr);
                }
            }
        }
    }
}
