namespace SsmGen.Memory;

/// <summary>What a probe decodes on held-out rows: R² per output (mean over outputs), arg-max accuracy, and bits.</summary>
/// <param name="R2">Mean over outputs of 1 − Σ(y − ŷ)² / Σ(y − ȳ)², ȳ the training mean; can be negative.</param>
/// <param name="Accuracy">Fraction of rows whose arg-max output is the arg-max target (for one-hot targets).</param>
/// <param name="GaussianBits">−½·Σ_k log₂(1 − R²_k) over outputs with R²_k clipped to [0, 1 − 1e-9]: the mutual information
/// a Gaussian channel with that explained variance carries (an estimate, exact only for jointly Gaussian data).</param>
public readonly record struct ProbeScore(double R2, double Accuracy, double GaussianBits)
{
    /// <summary>
    /// A lower bound, by Fano's inequality, on the bits the features hold about a target uniform over
    /// <paramref name="classes"/> classes, from the probe's accuracy: log₂K − h(Pₑ) − Pₑ·log₂(K − 1), Pₑ = 1 − accuracy,
    /// h the binary entropy; 0 at chance or below. Any decoder's error bounds the information, so unlike
    /// <see cref="GaussianBits"/> it assumes nothing about the distribution of the features.
    /// </summary>
    public double FanoBits(int classes)
    {
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), classes, "Fano's bound needs 2 or more classes.");
        double error = Math.Clamp(1 - Accuracy, 0, 1);
        if (error >= 1 - 1.0 / classes) return 0;
        double binaryEntropy = error is 0 or 1 ? 0 : -error * Math.Log2(error) - (1 - error) * Math.Log2(1 - error);
        return Math.Max(0, Math.Log2(classes) - binaryEntropy - error * Math.Log2(classes - 1));
    }
}

/// <summary>
/// Ridge regression from features X (rows, D) to targets Y (rows, K), with an intercept and features standardized by
/// their training mean and deviation (constant features drop out): the linear probe that asks how much of a target
/// a hidden state holds in linearly readable form. Solved in the primal (D × D) or dual (rows × rows) form, whichever
/// is smaller, in double precision.
/// </summary>
public sealed class LinearProbe
{
    private readonly double[] _mean, _scale, _weights;   // weights (D, K) on standardized features
    private readonly double[] _targetMean;              // the intercept: features are centred, so it is the targets' mean

    private LinearProbe(double[] mean, double[] scale, double[] weights, double[] targetMean, int d, int k)
    {
        (_mean, _scale, _weights, _targetMean, Features, Outputs) = (mean, scale, weights, targetMean, d, k);
    }

    public int Features { get; }
    public int Outputs { get; }

    /// <summary>Fits the probe on <paramref name="rows"/> rows; <paramref name="ridge"/> is λ on standardized features.</summary>
    public static LinearProbe Fit(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int rows, int features, int outputs, double ridge)
    {
        if (rows < 2 || features < 1 || outputs < 1) throw new ArgumentException($"A probe needs 2 or more rows, features and outputs; got {rows}, {features}, {outputs}.");
        if (x.Length != (long)rows * features) throw new ArgumentException($"Expected {rows}·{features} feature values; got {x.Length}.", nameof(x));
        if (y.Length != (long)rows * outputs) throw new ArgumentException($"Expected {rows}·{outputs} target values; got {y.Length}.", nameof(y));
        if (!(ridge > 0)) throw new ArgumentOutOfRangeException(nameof(ridge), ridge, "The ridge must be positive.");
        int d = features, k = outputs;
        var mean = new double[d];
        var scale = new double[d];
        for (int r = 0; r < rows; r++) for (int j = 0; j < d; j++) mean[j] += x[r * d + j];
        for (int j = 0; j < d; j++) mean[j] /= rows;
        for (int r = 0; r < rows; r++) for (int j = 0; j < d; j++) { double v = x[r * d + j] - mean[j]; scale[j] += v * v; }
        for (int j = 0; j < d; j++)
        {
            double sd = Math.Sqrt(scale[j] / rows);
            scale[j] = sd > 1e-12 * (1 + Math.Abs(mean[j])) ? 1 / sd : 0;   // a constant feature carries nothing
        }
        var targetMean = new double[k];
        for (int r = 0; r < rows; r++) for (int c = 0; c < k; c++) targetMean[c] += y[r * k + c];
        for (int c = 0; c < k; c++) targetMean[c] /= rows;

        var z = new double[rows * d];
        for (int r = 0; r < rows; r++) for (int j = 0; j < d; j++) z[r * d + j] = (x[r * d + j] - mean[j]) * scale[j];
        var t = new double[rows * k];
        for (int r = 0; r < rows; r++) for (int c = 0; c < k; c++) t[r * k + c] = y[r * k + c] - targetMean[c];

        var weights = new double[d * k];
        if (d <= rows)
        {
            // primal: (ZᵀZ + λI)·W = ZᵀT
            var gram = new double[d * d];
            var rhs = new double[d * k];
            Parallel.For(0, d, a =>
            {
                for (int b = 0; b <= a; b++)
                {
                    double s = 0;
                    for (int r = 0; r < rows; r++) s += z[r * d + a] * z[r * d + b];
                    gram[a * d + b] = gram[b * d + a] = s;
                }
                for (int c = 0; c < k; c++)
                {
                    double s = 0;
                    for (int r = 0; r < rows; r++) s += z[r * d + a] * t[r * k + c];
                    rhs[a * k + c] = s;
                }
            });
            for (int a = 0; a < d; a++) gram[a * d + a] += ridge;
            CholeskySolve(gram, rhs, d, k);
            rhs.CopyTo(weights, 0);
        }
        else
        {
            // dual: W = Zᵀ·(ZZᵀ + λI)⁻¹·T
            var kernel = new double[rows * rows];
            Parallel.For(0, rows, a =>
            {
                for (int b = 0; b <= a; b++)
                {
                    double s = 0;
                    for (int j = 0; j < d; j++) s += z[a * d + j] * z[b * d + j];
                    kernel[a * rows + b] = kernel[b * rows + a] = s;
                }
            });
            for (int a = 0; a < rows; a++) kernel[a * rows + a] += ridge;
            var alpha = (double[])t.Clone();
            CholeskySolve(kernel, alpha, rows, k);
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < d; j++)
                    for (int c = 0; c < k; c++) weights[j * k + c] += z[r * d + j] * alpha[r * k + c];
        }
        return new LinearProbe(mean, scale, weights, targetMean, d, k);
    }

    /// <summary>Predictions (rows, K) for features (rows, D).</summary>
    public double[] Predict(ReadOnlySpan<float> x, int rows)
    {
        if (x.Length != (long)rows * Features) throw new ArgumentException($"Expected {rows}·{Features} feature values; got {x.Length}.", nameof(x));
        var p = new double[rows * Outputs];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < Outputs; c++)
            {
                double s = _targetMean[c];
                for (int j = 0; j < Features; j++) s += (x[r * Features + j] - _mean[j]) * _scale[j] * _weights[j * Outputs + c];
                p[r * Outputs + c] = s;
            }
        return p;
    }

    /// <summary>The probe's R², accuracy and Gaussian bits on held-out rows.</summary>
    public ProbeScore Score(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int rows)
    {
        if (y.Length != (long)rows * Outputs) throw new ArgumentException($"Expected {rows}·{Outputs} target values; got {y.Length}.", nameof(y));
        var p = Predict(x, rows);
        int k = Outputs, correct = 0;
        var residual = new double[k];
        var total = new double[k];
        for (int r = 0; r < rows; r++)
        {
            int best = 0, truth = 0;
            for (int c = 0; c < k; c++)
            {
                double e = y[r * k + c] - p[r * k + c], v = y[r * k + c] - _targetMean[c];
                residual[c] += e * e;
                total[c] += v * v;
                if (p[r * k + c] > p[r * k + best]) best = c;
                if (y[r * k + c] > y[r * k + truth]) truth = c;
            }
            if (best == truth) correct++;
        }
        double r2Sum = 0, bits = 0;
        for (int c = 0; c < k; c++)
        {
            double r2 = total[c] > 0 ? 1 - residual[c] / total[c] : 0;
            r2Sum += r2;
            bits += -0.5 * Math.Log2(1 - Math.Clamp(r2, 0, 1 - 1e-9));
        }
        return new ProbeScore(r2Sum / k, (double)correct / rows, bits);
    }

    /// <summary>Solves A·X = B in place (B becomes X) for symmetric positive definite A (n, n) and B (n, k).</summary>
    private static void CholeskySolve(double[] a, double[] b, int n, int k)
    {
        for (int j = 0; j < n; j++)
        {
            double diagonal = a[j * n + j];
            for (int m = 0; m < j; m++) diagonal -= a[j * n + m] * a[j * n + m];
            double l = Math.Sqrt(Math.Max(diagonal, 1e-300));
            a[j * n + j] = l;
            int column = j;
            Parallel.For(j + 1, n, i =>
            {
                double s = a[i * n + column];
                for (int m = 0; m < column; m++) s -= a[i * n + m] * a[column * n + m];
                a[i * n + column] = s / l;
            });
        }
        for (int c = 0; c < k; c++)
        {
            for (int i = 0; i < n; i++)
            {
                double s = b[i * k + c];
                for (int m = 0; m < i; m++) s -= a[i * n + m] * b[m * k + c];
                b[i * k + c] = s / a[i * n + i];
            }
            for (int i = n - 1; i >= 0; i--)
            {
                double s = b[i * k + c];
                for (int m = i + 1; m < n; m++) s -= a[m * n + i] * b[m * k + c];
                b[i * k + c] = s / a[i * n + i];
            }
        }
    }
}
