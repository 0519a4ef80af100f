namespace SsmGen.Interpretability;

/// <summary>
/// Each S4D block's decoder, x ← x + GLU(W·GELU(y) + b), replaced by its Taylor series in the waves y around an
/// operating point y₀ (one value per block and channel), cut at total order <see cref="Order"/>: the terms of degree
/// m in (y − y₀) are the products of m waves, so order 1 is the linear wave model and order 2 adds pairwise wave
/// interactions. Computed by truncated Taylor arithmetic in one variable ε along y₀ + ε·(y − y₀) — the coefficient of
/// εᵐ collects exactly the degree-m terms — and summed at ε = 1. The LayerNorms, pooling and read-out stay exact.
/// The GLU's sigmoid has poles at ±iπ, so the series converges only where the gate moves less than π from its value
/// at y₀: far from the operating point, higher orders can be worse than lower ones.
/// </summary>
public sealed class DecoderSeries
{
    public DecoderSeries(int order, double[][] operatingPoint)
    {
        if (order < 0) throw new ArgumentOutOfRangeException(nameof(order), $"The order must be 0 or more; got {order}.");
        ArgumentNullException.ThrowIfNull(operatingPoint);
        (Order, OperatingPoint) = (order, operatingPoint);
    }

    /// <summary>The highest total degree in the waves kept.</summary>
    public int Order { get; }

    /// <summary>y₀ per block and channel.</summary>
    public double[][] OperatingPoint { get; }

    internal void Check(S4DOperator op)
    {
        int blocks = op.Config.Layers.Count, h = op.Config.DModel;
        if (OperatingPoint.Length != blocks || OperatingPoint.Any(p => p is null || p.Length != h))
            throw new ArgumentException($"The operating point needs {blocks} blocks of {h} channels.");
    }

    /// <summary>x += the series of GLU(W·GELU(y) + b) per time step.</summary>
    internal void Add(int block, ReadOnlySpan<double> y, ReadOnlySpan<double> w, ReadOnlySpan<double> bias, Span<double> x, int length, int h)
    {
        int k = Order + 1;
        var coefficients = new double[h * k];
        var jets = new Jets(k, h);
        for (int t = 0; t < length; t++)
        {
            jets.Decoder(OperatingPoint[block], y.Slice(t * h, h), w, bias, coefficients);
            for (int c = 0; c < h; c++)
            {
                double sum = 0;
                for (int m = 0; m < k; m++) sum += coefficients[c * k + m];
                x[t * h + c] += sum;
            }
        }
    }

    /// <summary>
    /// The decoder's output along y₀ + ε·(y − y₀) as Taylor coefficients in ε, (h, Order + 1) row-major: coefficient m
    /// is (1/m!)·dᵐ/dεᵐ GLU(W·GELU(y₀ + ε·(y − y₀)) + b) at ε = 0.
    /// </summary>
    internal static void Coefficients(int order, ReadOnlySpan<double> y0, ReadOnlySpan<double> y, ReadOnlySpan<double> w, ReadOnlySpan<double> bias, Span<double> coefficients)
    {
        int h = y0.Length;
        new Jets(order + 1, h).Decoder(y0, y, w, bias, coefficients);
    }

    /// <summary>Truncated Taylor arithmetic: a jet holds the coefficients of ε⁰ … ε^(k−1).</summary>
    private sealed class Jets(int k, int h)
    {
        private readonly double[] _cube = new double[k], _square = new double[k], _inner = new double[k], _t = new double[k], _s = new double[k];
        private readonly double[] _y = new double[k], _g = new double[h * k], _a = new double[k], _gate = new double[k];

        /// <summary>GLU(W·GELU(y₀ + ε·(y − y₀)) + b) per channel as jets, (h, k) row-major.</summary>
        public void Decoder(ReadOnlySpan<double> y0, ReadOnlySpan<double> y, ReadOnlySpan<double> w, ReadOnlySpan<double> bias, Span<double> result)
        {
            for (int c = 0; c < h; c++)
            {
                Array.Clear(_y);
                _y[0] = y0[c];
                if (k > 1) _y[1] = y[c] - y0[c];
                Gelu(_y, _g.AsSpan(c * k, k));
            }
            for (int c = 0; c < h; c++)
            {
                for (int m = 0; m < k; m++)
                {
                    double sa = 0, sg = 0;
                    for (int j = 0; j < h; j++) { sa += w[c * h + j] * _g[j * k + m]; sg += w[(h + c) * h + j] * _g[j * k + m]; }
                    _a[m] = sa;
                    _gate[m] = sg;
                }
                _a[0] += bias[c];
                _gate[0] += bias[h + c];
                Sigmoid(_gate, _gate);
                Multiply(_a, _gate, result.Slice(c * k, k));
            }
        }

        public static void Multiply(ReadOnlySpan<double> a, ReadOnlySpan<double> b, Span<double> result)
        {
            int k = result.Length;
            Span<double> r = stackalloc double[k];
            for (int m = 0; m < k; m++)
            {
                double v = 0;
                for (int i = 0; i <= m; i++) v += a[i] * b[m - i];
                r[m] = v;
            }
            r.CopyTo(result);
        }

        /// <summary>t = tanh(a): from t′ = a′·(1 − t²), m·t_m = Σ_{j=1..m} j·a_j·s_(m−j) with s = 1 − t².</summary>
        private void Tanh(ReadOnlySpan<double> a, Span<double> t)
        {
            t[0] = Math.Tanh(a[0]);
            for (int m = 1; m < t.Length; m++)
            {
                // s_(m−1) needs t up to m − 1, all known
                int q = m - 1;
                double sq = q == 0 ? 1 : 0;
                for (int i = 0; i <= q; i++) sq -= t[i] * t[q - i];
                _s[q] = sq;
                double v = 0;
                for (int j = 1; j <= m; j++) v += j * a[j] * _s[m - j];
                t[m] = v / m;
            }
        }

        /// <summary>GELU(y) = ½·y·(1 + tanh(√(2/π)·(y + 0.044715·y³))).</summary>
        public void Gelu(ReadOnlySpan<double> y, Span<double> result)
        {
            Multiply(y, y, _square);
            Multiply(_square, y, _cube);
            double c = Math.Sqrt(2 / Math.PI);
            for (int m = 0; m < _inner.Length; m++) _inner[m] = c * (y[m] + 0.044715 * _cube[m]);
            Tanh(_inner, _t);
            _t[0] += 1;
            Multiply(y, _t, result);
            for (int m = 0; m < result.Length; m++) result[m] *= 0.5;
        }

        /// <summary>σ(g) = ½·(1 + tanh(g/2)); <paramref name="result"/> may be <paramref name="g"/>.</summary>
        public void Sigmoid(ReadOnlySpan<double> g, Span<double> result)
        {
            for (int m = 0; m < _inner.Length; m++) _inner[m] = 0.5 * g[m];
            Tanh(_inner, _t);
            for (int m = 0; m < result.Length; m++) result[m] = 0.5 * _t[m];
            result[0] += 0.5;
        }
    }
}
