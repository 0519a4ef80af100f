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

    /// <summary>y = GELU(x), tanh form.</summary>
    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            y[i] = 0.5f * v * (1f + MathF.Tanh(GeluC * (v + 0.044715f * v * v * v)));
        }
    }

    /// <summary>dx = dy · GELU'(x) (overwrites).</summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            float t = MathF.Tanh(GeluC * (v + 0.044715f * v * v * v));
            dx[i] = dy[i] * (0.5f * (1f + t) + 0.5f * v * (1f - t * t) * GeluC * (1f + 3f * 0.044715f * v * v));
        }
    }

    /// <summary>GLU over rows of width 2h: y = a·σ(g), a the first half.</summary>
    public static void GluForward(ReadOnlySpan<float> o, Span<float> y, int rows, int h)
    {
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < h; i++)
                y[r * h + i] = o[r * 2 * h + i] * Sigmoid(o[r * 2 * h + h + i]);
    }

    /// <summary>dO = GLU backward (overwrites).</summary>
    public static void GluBackward(ReadOnlySpan<float> o, ReadOnlySpan<float> dy, Span<float> dO, int rows, int h)
    {
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < h; i++)
            {
                float a = o[r * 2 * h + i], s = Sigmoid(o[r * 2 * h + h + i]), g = dy[r * h + i];
                dO[r * 2 * h + i] = g * s;
                dO[r * 2 * h + h + i] = g * a * s * (1f - s);
            }
    }

    private static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));

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
