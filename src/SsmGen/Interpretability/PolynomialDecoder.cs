namespace SsmGen.Interpretability;

/// <summary>
/// Each S4D block's decoder x ← x + a ⊙ σ(g), a = W_a·GELU(y) + b_a, g = W_g·GELU(y) + b_g, with GELU replaced per
/// channel by a polynomial of degree <see cref="GeluDegree"/> in y and σ per gate by one of degree
/// <see cref="GateDegree"/> in g: each the least-squares fit to the nonlinearity over the values its input takes on
/// calibration sequences under the exact model (the best polynomial where the model actually runs). The decoder is
/// then a polynomial of total degree GeluDegree·(1 + GateDegree) in the waves y: degrees (1, 0) give the best linear
/// wave model (a constant gate), (1, 1) the waves and the pairwise products the gate forms, and so on. Unlike the
/// Taylor series of <see cref="DecoderSeries"/>, which diverges where a wave reaches past the nonlinearities' complex
/// poles, these fits converge to the decoder as the degrees grow (GELU and σ are smooth on the inputs' range).
/// </summary>
public sealed class PolynomialDecoder : DecoderApproximation
{
    private readonly double[][] _gelu, _gate;          // per block: (H, degree + 1) coefficients in the Chebyshev basis of the range
    private readonly (double Low, double High)[][] _geluRange, _gateRange;

    private PolynomialDecoder(int geluDegree, int gateDegree, int? block, double[][] gelu, double[][] gate,
        (double, double)[][] geluRange, (double, double)[][] gateRange) : base(block)
    {
        (GeluDegree, GateDegree) = (geluDegree, gateDegree);
        (_gelu, _gate, _geluRange, _gateRange) = (gelu, gate, geluRange, gateRange);
    }

    public int GeluDegree { get; }
    public int GateDegree { get; }

    /// <summary>The total degree of the decoder's output as a polynomial in the waves.</summary>
    public int Degree => GeluDegree * (1 + GateDegree);

    /// <summary>
    /// The least-squares fits for the operator's decoders over the values their inputs take on the given sequences
    /// (B, L, Input) under the exact model.
    /// </summary>
    public static PolynomialDecoder Fit(S4DOperator op, ReadOnlySpan<float> input, int batch, int length, int geluDegree, int gateDegree, int? block = null)
    {
        ArgumentNullException.ThrowIfNull(op);
        if (geluDegree < 0 || gateDegree < 0) throw new ArgumentOutOfRangeException(nameof(geluDegree), $"Degrees must be 0 or more; got {geluDegree} and {gateDegree}.");
        int width = op.Config.InputWidth, h = op.Config.DModel, blocks = op.Config.Layers.Count;
        if (batch <= 0 || length <= 0 || input.Length != (long)batch * length * width)
            throw new ArgumentException($"Expected {batch}·{length}·{width} input values; got {input.Length}.", nameof(input));
        if (block >= blocks) throw new ArgumentException($"Block {block} is outside 0..{blocks - 1}.");
        var inputs = input.ToArray();
        var (yRange, gRange) = Ranges(op, inputs, batch, length);
        var (gelu, gate) = LeastSquares(op, inputs, batch, length, yRange, gRange, geluDegree, gateDegree);
        return new PolynomialDecoder(geluDegree, gateDegree, block, gelu, gate, yRange, gRange);
    }

    /// <summary>Every step of every sequence under the exact model: per block, y and the gate's input g (both H wide).</summary>
    private static void Walk(S4DOperator op, float[] inputs, int batch, int length, Func<object> local, Action<object, int, double[], double[]> visit, Action<object> merge)
    {
        int width = op.Config.InputWidth, h = op.Config.DModel, blocks = op.Config.Layers.Count;
        var weights = Enumerable.Range(0, blocks).Select(op.DecoderWeights).ToArray();
        var sync = new object();
        Parallel.For(0, batch, b =>
        {
            var trace = op.Trace(inputs.AsSpan(b * length * width, length * width), length);
            var state = local();
            var (g, y, z) = (new double[h], new double[h], new double[h]);
            for (int i = 0; i < blocks; i++)
            {
                var (w, bias) = weights[i];
                for (int t = 0; t < length; t++)
                {
                    trace[i].Y.AsSpan(t * h, h).CopyTo(y);
                    for (int c = 0; c < h; c++) g[c] = S4DOperator.Gelu(y[c]);
                    for (int c = 0; c < h; c++)
                    {
                        double v = bias[h + c];
                        for (int j = 0; j < h; j++) v += w[(h + c) * h + j] * g[j];
                        z[c] = v;
                    }
                    visit(state, i, y, z);
                }
            }
            lock (sync) merge(state);
        });
    }

    /// <summary>Per block and channel, the range of y and of the gate's input g over the sequences.</summary>
    private static ((double, double)[][], (double, double)[][]) Ranges(S4DOperator op, float[] inputs, int batch, int length)
    {
        int h = op.Config.DModel, blocks = op.Config.Layers.Count;
        double[] Fill(double v) => Enumerable.Repeat(v, 2 * blocks * h).ToArray();
        var (low, high) = (Fill(double.PositiveInfinity), Fill(double.NegativeInfinity));
        Walk(op, inputs, batch, length, () => (Fill(double.PositiveInfinity), Fill(double.NegativeInfinity)), (s, i, y, z) =>
        {
            var (lo, hi) = ((double[], double[]))s;
            for (int c = 0; c < h; c++)
            {
                int a = i * h + c, b = (blocks + i) * h + c;
                (lo[a], hi[a]) = (Math.Min(lo[a], y[c]), Math.Max(hi[a], y[c]));
                (lo[b], hi[b]) = (Math.Min(lo[b], z[c]), Math.Max(hi[b], z[c]));
            }
        }, s =>
        {
            var (lo, hi) = ((double[], double[]))s;
            for (int k = 0; k < low.Length; k++) (low[k], high[k]) = (Math.Min(low[k], lo[k]), Math.Max(high[k], hi[k]));
        });
        (double, double)[][] Of(int q) => Enumerable.Range(0, blocks).Select(i => Enumerable.Range(0, h).Select(c =>
        {
            int k = (q * blocks + i) * h + c;
            return high[k] > low[k] ? (low[k], high[k]) : (low[k] - 1e-3, low[k] + 1e-3);
        }).ToArray()).ToArray();
        return (Of(0), Of(1));
    }

    /// <summary>
    /// Per block and channel, the least-squares coefficients of GELU in y and of σ in g in the Chebyshev basis of their
    /// ranges: normal equations summed over every step, solved by Cholesky with a tiny ridge for degrees the data
    /// cannot tell apart.
    /// </summary>
    private static (double[][], double[][]) LeastSquares(S4DOperator op, float[] inputs, int batch, int length,
        (double, double)[][] yRange, (double, double)[][] gRange, int geluDegree, int gateDegree)
    {
        int h = op.Config.DModel, blocks = op.Config.Layers.Count, p = geluDegree + 1, q = gateDegree + 1;
        int geluSize = p * (p + 1), gateSize = q * (q + 1);   // per channel: the Gram matrix, then the right-hand side
        var sums = new double[blocks * h * (geluSize + gateSize)];
        Walk(op, inputs, batch, length, () => new double[sums.Length], (s, i, y, z) =>
        {
            var acc = (double[])s;
            Span<double> basis = stackalloc double[Math.Max(p, q)];
            for (int c = 0; c < h; c++)
            {
                int at = (i * h + c) * (geluSize + gateSize);
                Accumulate(acc.AsSpan(at, geluSize), Chebyshev(yRange[i][c], y[c], basis[..p]), S4DOperator.Gelu(y[c]));
                Accumulate(acc.AsSpan(at + geluSize, gateSize), Chebyshev(gRange[i][c], z[c], basis[..q]), S4DOperator.Sigmoid(z[c]));
            }
        }, s =>
        {
            var acc = (double[])s;
            for (int k = 0; k < sums.Length; k++) sums[k] += acc[k];
        });
        var gelu = new double[blocks][];
        var gate = new double[blocks][];
        for (int i = 0; i < blocks; i++)
        {
            (gelu[i], gate[i]) = (new double[h * p], new double[h * q]);
            for (int c = 0; c < h; c++)
            {
                int at = (i * h + c) * (geluSize + gateSize);
                Solve(sums.AsSpan(at, geluSize), gelu[i].AsSpan(c * p, p));
                Solve(sums.AsSpan(at + geluSize, gateSize), gate[i].AsSpan(c * q, q));
            }
        }
        return (gelu, gate);
    }

    /// <summary>T_0…T_(n−1) at x mapped from the range onto [−1, 1].</summary>
    private static Span<double> Chebyshev((double Low, double High) range, double x, Span<double> basis)
    {
        double s = (2 * x - range.Low - range.High) / (range.High - range.Low);
        basis[0] = 1;
        if (basis.Length > 1) basis[1] = s;
        for (int k = 2; k < basis.Length; k++) basis[k] = 2 * s * basis[k - 1] - basis[k - 2];
        return basis;
    }

    /// <summary>Gram += φφᵀ, rhs += φ·f; <paramref name="sums"/> holds the n×n Gram matrix then the n right-hand sides.</summary>
    private static void Accumulate(Span<double> sums, ReadOnlySpan<double> phi, double f)
    {
        int n = phi.Length;
        for (int a = 0; a < n; a++)
        {
            for (int b = 0; b < n; b++) sums[a * n + b] += phi[a] * phi[b];
            sums[n * n + a] += phi[a] * f;
        }
    }

    /// <summary>Solves (G + λI)·c = r by Cholesky, λ = 1e-12·trace(G)/n.</summary>
    private static void Solve(ReadOnlySpan<double> sums, Span<double> coefficients)
    {
        int n = coefficients.Length;
        var l = new double[n * n];
        double ridge = 0;
        for (int a = 0; a < n; a++) ridge += sums[a * n + a];
        ridge *= 1e-12 / n;
        for (int a = 0; a < n; a++)
            for (int b = 0; b <= a; b++)
            {
                double v = sums[a * n + b] + (a == b ? ridge : 0);
                for (int k = 0; k < b; k++) v -= l[a * n + k] * l[b * n + k];
                l[a * n + b] = a == b ? Math.Sqrt(Math.Max(v, 1e-300)) : v / l[b * n + b];
            }
        Span<double> forward = stackalloc double[n];
        for (int a = 0; a < n; a++)
        {
            double v = sums[n * n + a];
            for (int k = 0; k < a; k++) v -= l[a * n + k] * forward[k];
            forward[a] = v / l[a * n + a];
        }
        for (int a = n - 1; a >= 0; a--)
        {
            double v = forward[a];
            for (int k = a + 1; k < n; k++) v -= l[k * n + a] * coefficients[k];
            coefficients[a] = v / l[a * n + a];
        }
    }

    /// <summary>Σ_k c_k·T_k(s), s the point mapped from [low, high] onto [−1, 1] (Clenshaw's recurrence).</summary>
    internal static double Evaluate(ReadOnlySpan<double> coefficients, (double Low, double High) range, double x)
    {
        double s = (2 * x - range.Low - range.High) / (range.High - range.Low), b1 = 0, b2 = 0;
        for (int k = coefficients.Length - 1; k >= 1; k--) (b1, b2) = (2 * s * b1 - b2 + coefficients[k], b1);
        return s * b1 - b2 + coefficients[0];
    }

    internal override void Check(S4DOperator op)
    {
        base.Check(op);
        if (_gelu.Length != op.Config.Layers.Count || _gelu[0].Length != op.Config.DModel * (GeluDegree + 1))
            throw new ArgumentException($"This polynomial decoder was fitted to another model ({_gelu.Length} blocks of {_gelu[0].Length / (GeluDegree + 1)} channels).");
    }

    internal override void Add(int block, ReadOnlySpan<double> y, ReadOnlySpan<double> w, ReadOnlySpan<double> bias, Span<double> x, int length, int h)
    {
        int p = GeluDegree + 1, q = GateDegree + 1;
        var g = new double[h];
        for (int t = 0; t < length; t++)
        {
            for (int c = 0; c < h; c++) g[c] = Evaluate(_gelu[block].AsSpan(c * p, p), _geluRange[block][c], y[t * h + c]);
            for (int c = 0; c < h; c++)
            {
                double a = bias[c], z = bias[h + c];
                for (int j = 0; j < h; j++) { a += w[c * h + j] * g[j]; z += w[(h + c) * h + j] * g[j]; }
                x[t * h + c] += a * Evaluate(_gate[block].AsSpan(c * q, q), _gateRange[block][c], z);
            }
        }
    }
}
