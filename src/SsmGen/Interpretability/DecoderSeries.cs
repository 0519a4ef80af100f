namespace SsmGen.Interpretability;

/// <summary>
/// Each S4D block's decoder, x ← x + GLU(W·GELU(y) + b), replaced by its Taylor series in the waves y around an
/// operating point y₀ (one value per block and channel), cut at total order <see cref="Order"/>: the terms of degree
/// m in (y − y₀) are the products of m waves, so order 1 is the linear wave model and order 2 adds pairwise wave
/// interactions. Computed by truncated Taylor arithmetic in one variable ε along y₀ + ε·(y − y₀) — the coefficient of
/// εᵐ collects exactly the degree-m terms — and summed at ε = 1. The LayerNorms, pooling and read-out stay exact.
/// The sigmoid (poles at ±iπ) and GELU's tanh have complex poles, so the series converges only near y₀: where a wave
/// reaches farther, higher orders are worse than lower ones. <see cref="Fit"/> measures where that happens;
/// <see cref="PolynomialDecoder"/> is the approximation that converges on every trained model.
/// </summary>
public sealed class DecoderSeries : DecoderApproximation
{
    /// <param name="order">The highest total degree in the waves kept.</param>
    /// <param name="operatingPoint">y₀ per block and channel.</param>
    /// <param name="block">Replace only this block's decoder, the others exact; null: every block's.</param>
    public DecoderSeries(int order, double[][] operatingPoint, int? block = null) : base(block)
    {
        if (order < 0) throw new ArgumentOutOfRangeException(nameof(order), $"The order must be 0 or more; got {order}.");
        ArgumentNullException.ThrowIfNull(operatingPoint);
        (Order, OperatingPoint) = (order, operatingPoint);
    }

    /// <summary>The highest total degree in the waves kept.</summary>
    public int Order { get; }

    /// <summary>y₀ per block and channel.</summary>
    public double[][] OperatingPoint { get; }

    internal override void Check(S4DOperator op)
    {
        base.Check(op);
        int blocks = op.Config.Layers.Count, h = op.Config.DModel;
        if (OperatingPoint.Length != blocks || OperatingPoint.Any(p => p is null || p.Length != h))
            throw new ArgumentException($"The operating point needs {blocks} blocks of {h} channels.");
    }

    /// <summary>x += the series of GLU(W·GELU(y) + b) per time step.</summary>
    internal override void Add(int block, ReadOnlySpan<double> y, ReadOnlySpan<double> w, ReadOnlySpan<double> bias, Span<double> x, int length, int h)
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
    /// How well each block's series stands for its decoder where the exact model actually runs: every block's
    /// series evaluated on the waves y of the exact forward pass (so errors do not compound across blocks), against the
    /// exact decoder at the same y. One <see cref="DecoderSeriesFit"/> per block.
    /// </summary>
    public static DecoderSeriesFit[] Fit(S4DOperator op, ReadOnlySpan<float> input, int batch, int length, double[][] operatingPoint, int order)
    {
        ArgumentNullException.ThrowIfNull(op);
        if (order < 2) throw new ArgumentOutOfRangeException(nameof(order), $"The fit needs order 2 or more to tell convergence; got {order}.");
        new DecoderSeries(order, operatingPoint).Check(op);
        int width = op.Config.InputWidth, h = op.Config.DModel, blocks = op.Config.Layers.Count, k = order + 1;
        if (batch <= 0 || length <= 0 || input.Length != (long)batch * length * width)
            throw new ArgumentException($"Expected {batch}·{length}·{width} input values; got {input.Length}.", nameof(input));
        var weights = Enumerable.Range(0, blocks).Select(op.DecoderWeights).ToArray();
        var errors = new double[batch][][];       // per sequence and block: Σ|S_m − f| for m = 0..order, then Σ|f|
        var diverging = new long[batch][];
        var inputs = input.ToArray();
        Parallel.For(0, batch, b =>
        {
            errors[b] = new double[blocks][];
            diverging[b] = new long[blocks];
            var trace = op.Trace(inputs.AsSpan(b * length * width, length * width), length);
            var jets = new Jets(k, h);
            var coefficients = new double[h * k];
            var (g, exact) = (new double[h], new double[h]);
            for (int i = 0; i < blocks; i++)
            {
                var e = errors[b][i] = new double[k + 1];
                var (w, bias) = weights[i];
                for (int t = 0; t < length; t++)
                {
                    var y = trace[i].Y.AsSpan(t * h, h);
                    S4DOperator.Decoder(y, w, bias, g, exact);
                    jets.Decoder(operatingPoint[i], y, w, bias, coefficients);
                    for (int c = 0; c < h; c++)
                    {
                        double sum = 0, half = 0;
                        for (int m = 0; m < k; m++)
                        {
                            sum += coefficients[c * k + m];
                            e[m] += Math.Abs(sum - exact[c]);
                            if (m == order / 2) half = Math.Abs(sum - exact[c]);
                        }
                        e[k] += Math.Abs(exact[c]);
                        double last = Math.Abs(sum - exact[c]);
                        if (last > half && last > DivergenceFloor) diverging[b][i]++;
                    }
                }
            }
        });
        return Enumerable.Range(0, blocks).Select(i =>
        {
            double scale = errors.Sum(s => s[i][k]);
            var relative = Enumerable.Range(0, k).Select(m => errors.Sum(s => s[i][m]) / scale).ToArray();
            return new DecoderSeriesFit(i, relative, diverging.Sum(d => d[i]) / ((double)batch * length * h));
        }).ToArray();
    }

    /// <summary>An error below this is rounding, not divergence.</summary>
    private const double DivergenceFloor = 1e-9;

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

/// <summary>
/// One block's decoder series against its exact decoder on the exact model's waves. RelativeError[m]: Σ|S_m − f| / Σ|f|
/// over sequences, steps and channels, S_m the series cut at order m, f the exact decoder output. Diverging: the
/// fraction of (step, channel) evaluations where the highest-order partial sum is farther from f than the one at half
/// that order — there the series does not converge, whatever the order (the sigmoid's and tanh's complex poles lie
/// closer to the operating point than the wave does).
/// </summary>
public sealed record DecoderSeriesFit(int Block, double[] RelativeError, double Diverging);
