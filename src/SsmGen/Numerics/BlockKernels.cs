using System.Numerics.Tensors;

namespace SsmGen.Numerics;

/// <summary>Float kernels for the block around each mixer: LayerNorm, GELU (tanh form), GLU, transposes.</summary>
public static class BlockKernels
{
    private const float Eps = 1e-5f;

    /// <summary>LayerNorm over rows of width h; keeps mean and 1/std per row.</summary>
    public static void LayerNormForward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, Span<float> mean, Span<float> rstd, int rows, int h)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * h, h);
            var yr = y.Slice(r * h, h);
            float m = TensorPrimitives.Sum(xr) / h;
            TensorPrimitives.Subtract(xr, m, yr);
            float v = TensorPrimitives.Dot(yr, yr) / h;
            float rs = 1f / MathF.Sqrt(v + Eps);
            mean[r] = m; rstd[r] = rs;
            TensorPrimitives.Multiply(yr, rs, yr);
            TensorPrimitives.FusedMultiplyAdd(yr, w, b, yr);
        }
    }

    /// <summary>dx += LayerNorm backward; dw and db accumulate. <paramref name="scratch"/> holds h floats.</summary>
    public static void LayerNormBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, ReadOnlySpan<float> dy, Span<float> dx, Span<float> dw, Span<float> db, Span<float> scratch, int rows, int h)
    {
        var xhat = scratch.Slice(0, h);
        var g = scratch.Slice(h, h);
        for (int r = 0; r < rows; r++)
        {
            var dyr = dy.Slice(r * h, h);
            TensorPrimitives.Subtract(x.Slice(r * h, h), mean[r], xhat);
            TensorPrimitives.Multiply(xhat, rstd[r], xhat);
            TensorPrimitives.MultiplyAdd(dyr, xhat, dw, dw);
            TensorPrimitives.Add(db, dyr, db);
            TensorPrimitives.Multiply(dyr, w, g);
            float mG = TensorPrimitives.Sum(g) / h, mGX = TensorPrimitives.Dot(g, xhat) / h;
            var dxr = dx.Slice(r * h, h);
            float rs = rstd[r];
            for (int i = 0; i < h; i++) dxr[i] += rs * (g[i] - mG - xhat[i] * mGX);
        }
    }

    private const float GeluC = 0.7978845608028654f; // √(2/π)
    private const int Chunk = 256;                     // elements per stack scratch chunk

    /// <summary>t = tanh(√(2/π)(x + 0.044715x³)) for a chunk, vectorized by System.Numerics.Tensors.</summary>
    private static void GeluTanh(ReadOnlySpan<float> x, Span<float> t)
    {
        TensorPrimitives.Multiply(x, x, t);
        TensorPrimitives.Multiply(t, 0.044715f, t);
        TensorPrimitives.Add(t, 1f, t);
        TensorPrimitives.Multiply(t, x, t);
        TensorPrimitives.Multiply(t, GeluC, t);
        TensorPrimitives.Tanh(t, t);
    }

    /// <summary>y = GELU(x), tanh form: ½x(1 + t).</summary>
    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        Span<float> t = stackalloc float[Chunk];
        for (int i = 0; i < x.Length; i += Chunk)
        {
            int n = Math.Min(Chunk, x.Length - i);
            var xs = x.Slice(i, n); var ts = t.Slice(0, n);
            GeluTanh(xs, ts);
            TensorPrimitives.Multiply(ts, 0.5f, ts);
            TensorPrimitives.Add(ts, 0.5f, ts);
            TensorPrimitives.Multiply(xs, ts, y.Slice(i, n));
        }
    }

    /// <summary>dx = dy · GELU'(x) (overwrites; dx may alias dy): GELU' = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²).</summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        Span<float> t = stackalloc float[Chunk];
        Span<float> d = stackalloc float[Chunk];
        for (int i = 0; i < x.Length; i += Chunk)
        {
            int n = Math.Min(Chunk, x.Length - i);
            var xs = x.Slice(i, n); var ts = t.Slice(0, n); var ds = d.Slice(0, n);
            GeluTanh(xs, ts);
            TensorPrimitives.Multiply(xs, xs, ds);
            TensorPrimitives.Multiply(ds, 3 * 0.044715f * GeluC, ds);
            TensorPrimitives.Add(ds, GeluC, ds);                                   // √(2/π)(1 + 3·0.044715x²)
            TensorPrimitives.Multiply(ds, xs, ds);
            TensorPrimitives.Multiply(ds, 0.5f, ds);                               // ½x·√(2/π)(…)
            for (int j = 0; j < n; j++)
            {
                float tj = t[j];
                d[j] = 0.5f * (1f + tj) + d[j] * (1f - tj * tj);
            }
            TensorPrimitives.Multiply(dy.Slice(i, n), ds, dx.Slice(i, n));
        }
    }

    /// <summary>GLU over rows of width 2h: y = a·σ(g), a the first half.</summary>
    public static void GluForward(ReadOnlySpan<float> o, Span<float> y, int rows, int h)
    {
        Span<float> s = stackalloc float[Chunk];
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < h; i += Chunk)
            {
                int n = Math.Min(Chunk, h - i);
                var ss = s.Slice(0, n);
                TensorPrimitives.Sigmoid(o.Slice(r * 2 * h + h + i, n), ss);
                TensorPrimitives.Multiply(o.Slice(r * 2 * h + i, n), ss, y.Slice(r * h + i, n));
            }
    }

    /// <summary>dO = GLU backward (overwrites): da = dy·σ(g), dg = dy·a·σ(g)(1 − σ(g)).</summary>
    public static void GluBackward(ReadOnlySpan<float> o, ReadOnlySpan<float> dy, Span<float> dO, int rows, int h)
    {
        Span<float> s = stackalloc float[Chunk];
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < h; i += Chunk)
            {
                int n = Math.Min(Chunk, h - i);
                var ss = s.Slice(0, n);
                var a = o.Slice(r * 2 * h + i, n);
                var g = dy.Slice(r * h + i, n);
                var da = dO.Slice(r * 2 * h + i, n);
                var dg = dO.Slice(r * 2 * h + h + i, n);
                TensorPrimitives.Sigmoid(o.Slice(r * 2 * h + h + i, n), ss);
                TensorPrimitives.Multiply(g, ss, da);                 // dy·σ
                TensorPrimitives.Subtract(1f, ss, dg);                // 1 − σ
                TensorPrimitives.Multiply(dg, ss, dg);                // σ(1 − σ)
                TensorPrimitives.Multiply(dg, a, dg);
                TensorPrimitives.Multiply(dg, g, dg);
            }
    }

    /// <summary>(B, L, H) → (B, H, L).</summary>
    public static void ToChannelMajor(ReadOnlySpan<float> src, Span<float> dst, int batch, int length, int h)
    {
        for (int b = 0; b < batch; b++)
        {
            int o = b * length * h;
            for (int t = 0; t < length; t++)
                for (int c = 0; c < h; c++) dst[o + c * length + t] = src[o + t * h + c];
        }
    }

    /// <summary>(B, H, L) → (B, L, H).</summary>
    public static void ToTimeMajor(ReadOnlySpan<float> src, Span<float> dst, int batch, int length, int h)
    {
        for (int b = 0; b < batch; b++)
        {
            int o = b * length * h;
            for (int c = 0; c < h; c++)
                for (int t = 0; t < length; t++) dst[o + t * h + c] = src[o + c * length + t];
        }
    }
}
