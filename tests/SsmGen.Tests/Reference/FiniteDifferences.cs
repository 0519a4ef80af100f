using Xunit.Abstractions;

namespace SsmGen.Tests.Reference;

/// <summary>
/// The gradient check the reference tests share: the scalar loss L = Σ dy·y of a forward pass,
/// differentiated by the backward pass under test into buffers that start non-zero (so a backward that
/// overwrites instead of accumulating fails), against central differences of L (ε = 1e-6) for every
/// parameter element and every input element.
/// </summary>
internal static class FiniteDifferences
{
    public const double Eps = 1e-6;

    /// <summary>Forward pass: parameters and input to the output (any buffer; read before the next call).</summary>
    public delegate double[] Forward(double[] parameters, double[] x);

    /// <summary>Backward pass after a forward at the same point: accumulates into grads and dx.</summary>
    public delegate void Backward(double[] parameters, double[] grads, double[] dy, double[] dx);

    /// <summary>One checked tensor: worst |fd − analytic| / max(1, |fd|) (NaN if any was) and the largest |fd|.</summary>
    public readonly record struct TensorError(string Name, double Worst, double MaxGradient);

    /// <summary>Names over consecutive blocks of a flat parameter array: (name, offset, length).</summary>
    public static (string Name, int Offset, int Length)[] Tensors(string[] names, int[] sizes)
    {
        Assert.Equal(names.Length, sizes.Length);
        var tensors = new (string, int, int)[sizes.Length];
        for (int i = 0, o = 0; i < sizes.Length; o += sizes[i], i++) tensors[i] = (names[i], o, sizes[i]);
        return tensors;
    }

    /// <summary>
    /// The check for a sequence mixer, <paramref name="rows"/> rows of width <paramref name="h"/> in and out: x and
    /// dL/dy drawn with the seeds <paramref name="seed"/> and seed + 1, the initial gradient buffers with seed + 2 and
    /// seed + 3; <paramref name="forward"/> writes the output of (parameters, x) into its third argument.
    /// </summary>
    public static TensorError[] CheckMixerGradients(double[] parameters, string[] names, int[] sizes, int rows, int h, ulong seed,
        Action<double[], double[], double[]> forward, Backward backward, double tolerance, ITestOutputHelper output)
    {
        var x = TestConfigs.RandomArray(rows * h, seed);
        var dy = TestConfigs.RandomArray(rows * h, seed + 1);
        var y = new double[x.Length];
        return CheckGradients(parameters, x, dy, (p, xs) => { forward(p, xs, y); return y; }, backward, Tensors(names, sizes), tolerance, output,
            gradientSeed: seed + 2, dxSeed: seed + 3);
    }

    /// <summary>
    /// Checks every element of <paramref name="parameters"/> (which <paramref name="tensors"/> must cover
    /// exactly) and of <paramref name="x"/>; prints the worst error of each tensor and of dx, asserts that
    /// none reaches <paramref name="tolerance"/>, and returns them (dx last). The initial gradient buffers
    /// are drawn with the two seeds.
    /// </summary>
    public static TensorError[] CheckGradients(double[] parameters, double[] x, double[] dy, Forward forward, Backward backward,
        IReadOnlyList<(string Name, int Offset, int Length)> tensors, double tolerance, ITestOutputHelper output,
        ulong gradientSeed, ulong dxSeed)
    {
        int covered = 0;
        foreach (var (_, offset, length) in tensors)
        {
            Assert.Equal(covered, offset);
            covered += length;
        }
        Assert.Equal(parameters.Length, covered);

        double Loss()
        {
            var y = forward(parameters, x);
            double s = 0;
            for (int i = 0; i < y.Length; i++) s += dy[i] * y[i];
            return s;
        }

        var g0 = TestConfigs.RandomArray(parameters.Length, gradientSeed);
        var dx0 = TestConfigs.RandomArray(x.Length, dxSeed);
        var grads = (double[])g0.Clone();
        var dx = (double[])dx0.Clone();
        Loss();
        backward(parameters, grads, dy, dx);

        TensorError Check(string name, double[] values, int offset, int count, double[] analytic, double[] initial)
        {
            double worst = 0, largest = 0; string at = "";
            for (int j = 0; j < count; j++)
            {
                int k = offset + j;
                double keep = values[k];
                values[k] = keep + Eps; double lp = Loss();
                values[k] = keep - Eps; double lm = Loss();
                values[k] = keep;
                double fd = (lp - lm) / (2 * Eps);
                double an = analytic[k] - initial[k];
                largest = Math.Max(largest, Math.Abs(fd));
                double err = Math.Abs(fd - an) / Math.Max(1, Math.Abs(fd));
                if (err > worst || double.IsNaN(err)) { worst = err; at = $"[{j}] fd={fd:G10} analytic={an:G10}"; }
            }
            output.WriteLine($"{name,-16} worst error {worst:E2} (max |grad| {largest:G3}) {at}");
            return new TensorError(name, worst, largest);
        }

        var errors = new TensorError[tensors.Count + 1];
        for (int i = 0; i < tensors.Count; i++) errors[i] = Check(tensors[i].Name, parameters, tensors[i].Offset, tensors[i].Length, grads, g0);
        errors[^1] = Check("dx", x, 0, x.Length, dx, dx0);
        var failing = errors.Where(e => !(e.Worst < tolerance)).Select(e => $"{e.Name} {e.Worst:E2}");
        Assert.True(!failing.Any(), $"worst error not below {tolerance:E0}: {string.Join(", ", failing)}");
        return errors;
    }
}
