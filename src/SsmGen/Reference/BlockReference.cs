using System.Numerics;

namespace SsmGen.Reference;

/// <summary>
/// The pieces around each mixer, written for clarity over rows of a (rows, width) matrix:
/// Linear, Embedding, LayerNorm, RMSNorm, GELU, SiLU, softplus, GLU and dropout. Backward passes accumulate (+=) into
/// parameter gradients and into input gradients.
/// </summary>
public static class BlockReference<T> where T : IFloatingPointIeee754<T>
{
    static T C(double x) => T.CreateChecked(x);

    /// <summary>y (rows, out) = x (rows, in) · Wᵀ + b, W (out, in); b may be empty.</summary>
    public static void LinearForward(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b, Span<T> y, int rows, int inF, int outF)
    {
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outF; o++)
            {
                T s = b.IsEmpty ? T.Zero : b[o];
                for (int i = 0; i < inF; i++) s += x[r * inF + i] * w[o * inF + i];
                y[r * outF + o] = s;
            }
    }

    /// <summary>dx += dy·W, dW += dyᵀ·x, db += Σ dy; dx may be empty when the input needs no gradient.</summary>
    public static void LinearBackward(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> dy, Span<T> dx, Span<T> dw, Span<T> db, int rows, int inF, int outF)
    {
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outF; o++)
            {
                T g = dy[r * outF + o];
                if (!db.IsEmpty) db[o] += g;
                for (int i = 0; i < inF; i++)
                {
                    dw[o * inF + i] += g * x[r * inF + i];
                    if (!dx.IsEmpty) dx[r * inF + i] += g * w[o * inF + i];
                }
            }
    }

    /// <summary>LayerNorm over the last axis (eps 1e-5); keeps mean and 1/std per row for the backward.</summary>
    public static void LayerNormForward(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b, Span<T> y, Span<T> mean, Span<T> rstd, int rows, int h)
    {
        for (int r = 0; r < rows; r++)
        {
            T m = T.Zero;
            for (int i = 0; i < h; i++) m += x[r * h + i];
            m /= C(h);
            T v = T.Zero;
            for (int i = 0; i < h; i++) { T d = x[r * h + i] - m; v += d * d; }
            v /= C(h);
            T rs = T.One / T.Sqrt(v + C(1e-5));
            mean[r] = m; rstd[r] = rs;
            for (int i = 0; i < h; i++) y[r * h + i] = (x[r * h + i] - m) * rs * w[i] + b[i];
        }
    }

    /// <summary>dx += LayerNorm backward; dw, db accumulate.</summary>
    public static void LayerNormBackward(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd, ReadOnlySpan<T> dy, Span<T> dx, Span<T> dw, Span<T> db, int rows, int h)
    {
        for (int r = 0; r < rows; r++)
        {
            T sumG = T.Zero, sumGX = T.Zero;
            for (int i = 0; i < h; i++)
            {
                T xhat = (x[r * h + i] - mean[r]) * rstd[r];
                T g = dy[r * h + i] * w[i];
                sumG += g; sumGX += g * xhat;
                dw[i] += dy[r * h + i] * xhat;
                db[i] += dy[r * h + i];
            }
            T mG = sumG / C(h), mGX = sumGX / C(h);
            for (int i = 0; i < h; i++)
            {
                T xhat = (x[r * h + i] - mean[r]) * rstd[r];
                dx[r * h + i] += rstd[r] * (dy[r * h + i] * w[i] - mG - xhat * mGX);
            }
        }
    }

    /// <summary>
    /// RMSNorm over the last axis: y = x · rstd · w with rstd = 1/√(mean(x²) + 1e-5) per row; keeps rstd
    /// (rows) for the backward.
    /// </summary>
    public static void RmsNormForward(ReadOnlySpan<T> x, ReadOnlySpan<T> w, Span<T> y, Span<T> rstd, int rows, int h)
    {
        for (int r = 0; r < rows; r++)
        {
            T ms = T.Zero;
            for (int i = 0; i < h; i++) ms += x[r * h + i] * x[r * h + i];
            ms /= C(h);
            T rs = T.One / T.Sqrt(ms + C(1e-5));
            rstd[r] = rs;
            for (int i = 0; i < h; i++) y[r * h + i] = x[r * h + i] * rs * w[i];
        }
    }

    /// <summary>
    /// RMSNorm backward: dx += rstd·(dy⊙w − x·rstd²·mean(dy⊙w⊙x)), dw += Σ_rows dy⊙x·rstd.
    /// </summary>
    public static void RmsNormBackward(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> rstd, ReadOnlySpan<T> dy, Span<T> dx, Span<T> dw, int rows, int h)
    {
        for (int r = 0; r < rows; r++)
        {
            T rs = rstd[r], sumGX = T.Zero;
            for (int i = 0; i < h; i++)
            {
                T xi = x[r * h + i], g = dy[r * h + i];
                sumGX += g * w[i] * xi;
                dw[i] += g * xi * rs;
            }
            T k = rs * rs * sumGX / C(h);
            for (int i = 0; i < h; i++)
                dx[r * h + i] += rs * (dy[r * h + i] * w[i] - x[r * h + i] * k);
        }
    }

    /// <summary>y = K ∗ u + D·u per channel over (B, L, H), causal; K is (H, L). Direct O(L²): written for clarity.</summary>
    public static void CausalConvolution(ReadOnlySpan<T> k, ReadOnlySpan<T> d, ReadOnlySpan<T> u, Span<T> y, int h, int batch, int length)
    {
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < h; c++)
                for (int t = 0; t < length; t++)
                {
                    T s = d[c] * u[(b * length + t) * h + c];
                    for (int j = 0; j <= t; j++) s += k[c * length + j] * u[(b * length + t - j) * h + c];
                    y[(b * length + t) * h + c] = s;
                }
    }

    /// <summary>Its backward: du, dK (H, L) and dD accumulate.</summary>
    public static void CausalConvolutionBackward(ReadOnlySpan<T> k, ReadOnlySpan<T> d, ReadOnlySpan<T> u, ReadOnlySpan<T> dy, Span<T> du, Span<T> dk, Span<T> dd, int h, int batch, int length)
    {
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < h; c++)
                for (int t = 0; t < length; t++)
                {
                    T gy = dy[(b * length + t) * h + c];
                    dd[c] += gy * u[(b * length + t) * h + c];
                    du[(b * length + t) * h + c] += d[c] * gy;
                    for (int j = 0; j <= t; j++)
                    {
                        dk[c * length + j] += gy * u[(b * length + t - j) * h + c];
                        du[(b * length + t - j) * h + c] += gy * k[c * length + j];
                    }
                }
    }

    /// <summary>GELU, tanh form: ½x(1 + tanh(√(2/π)(x + 0.044715x³))).</summary>
    public static T Gelu(T x)
    {
        T u = C(Math.Sqrt(2 / Math.PI)) * (x + C(0.044715) * x * x * x);
        return C(0.5) * x * (T.One + T.Tanh(u));
    }

    /// <summary>d GELU / dx for the tanh form.</summary>
    public static T GeluDerivative(T x)
    {
        T c = C(Math.Sqrt(2 / Math.PI));
        T t = T.Tanh(c * (x + C(0.044715) * x * x * x));
        return C(0.5) * (T.One + t) + C(0.5) * x * (T.One - t * t) * c * (T.One + C(3 * 0.044715) * x * x);
    }

    /// <summary>SiLU (swish): x·σ(x).</summary>
    public static T Silu(T x) => x * Sigmoid(x);

    /// <summary>d SiLU / dx = σ(x)·(1 + x·(1 − σ(x))).</summary>
    public static T SiluDerivative(T x)
    {
        T s = Sigmoid(x);
        return s * (T.One + x * (T.One - s));
    }

    /// <summary>Softplus log(1 + eˣ), returning x itself above 20; its derivative is <see cref="Sigmoid"/>(x).</summary>
    public static T Softplus(T x) => x > C(20) ? x : T.LogP1(T.Exp(x));

    /// <summary>GLU over rows of width 2h: out = a·σ(g) with a the first half, g the second.</summary>
    public static void GluForward(ReadOnlySpan<T> o, Span<T> y, int rows, int h)
    {
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < h; i++)
                y[r * h + i] = o[r * 2 * h + i] * Sigmoid(o[r * 2 * h + h + i]);
    }

    /// <summary>do = GLU backward (overwrites).</summary>
    public static void GluBackward(ReadOnlySpan<T> o, ReadOnlySpan<T> dy, Span<T> dO, int rows, int h)
    {
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < h; i++)
            {
                T a = o[r * 2 * h + i], s = Sigmoid(o[r * 2 * h + h + i]), g = dy[r * h + i];
                dO[r * 2 * h + i] = g * s;
                dO[r * 2 * h + h + i] = g * a * s * (T.One - s);
            }
    }

    /// <summary>Logistic sigmoid.</summary>
    public static T Sigmoid(T x) => T.One / (T.One + T.Exp(-x));

    /// <summary>
    /// Inverted-dropout factor of element <paramref name="index"/>: 0 when dropped, 1/(1−p) when kept, from
    /// the hash bits of (seed, step, layer, index) (<see cref="Rng.DropoutBits"/>).
    /// </summary>
    public static T DropoutScale(double p, ulong seed, ulong step, int layer, long index)
        => Rng.DropoutBits(Rng.DropoutKey(seed, step, layer), (uint)index) < Rng.DropoutThreshold(p) ? T.Zero : C(1 / (1 - p));
}
