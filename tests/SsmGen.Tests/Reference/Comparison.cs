using Xunit.Abstractions;

namespace SsmGen.Tests.Reference;

/// <summary>
/// Computed values against an independent expectation: the worst error relative to max(1, |expected|), and the
/// largest |expected|, so that a comparison of outputs too small to mean anything fails instead of passing.
/// </summary>
internal sealed class Comparison
{
    public double Worst { get; private set; }
    public double Largest { get; private set; }

    public void Add(double expected, double actual)
    {
        Largest = Math.Max(Largest, Math.Abs(expected));
        Worst = Math.Max(Worst, Math.Abs(expected - actual) / Math.Max(1, Math.Abs(expected)));
    }

    /// <summary>Reports the comparison as <paramref name="what"/>, then asserts its size and its worst error.</summary>
    public void Check(ITestOutputHelper output, string what, double smallest, double tolerance)
    {
        output.WriteLine($"{what}: worst error {Worst:E2} (max |y| {Largest:G3})");
        Assert.True(Largest > smallest, "outputs are too small for the comparison to mean anything");
        Assert.True(Worst < tolerance, $"worst error {Worst:E2}");
    }

    /// <summary>One token of a reference's step: x_t in, y_t out, the stream's state kept by the caller.</summary>
    public delegate void TokenStep(int t, ReadOnlySpan<double> xt, double[] yt);

    /// <summary>
    /// Step token by token from a zero state against Forward over one sequence <paramref name="x"/> (1, L, H), whose
    /// outputs must exceed <paramref name="smallest"/> for the comparison to mean anything; errors below 1e-12.
    /// </summary>
    public static void StepMatchesForward(ITestOutputHelper output, string label, double[] x, int h, double smallest,
        Action<double[], double[]> forward, TokenStep step)
    {
        var y = new double[x.Length];
        forward(x, y);
        var yt = new double[h];
        var compare = new Comparison();
        int length = x.Length / h;
        for (int t = 0; t < length; t++)
        {
            step(t, x.AsSpan(t * h, h), yt);
            for (int i = 0; i < h; i++) compare.Add(y[t * h + i], yt[i]);
        }
        compare.Check(output, $"{label}Step vs Forward over {length} tokens", smallest, tolerance: 1e-12);
    }

    /// <summary>
    /// A reference's float forward against its double forward on the same parameters and input, rounded to float:
    /// the worst error relative to max(1, |y|) stays below 1e-5.
    /// </summary>
    public static void FloatTracksDouble(ITestOutputHelper output, string label, double[] parameters, double[] x,
        Action<double[], double[], double[]> forwardDouble, Action<float[], float[], float[]> forwardFloat)
    {
        var yd = new double[x.Length];
        var yf = new float[x.Length];
        forwardDouble(parameters, x, yd);
        forwardFloat(Array.ConvertAll(parameters, v => (float)v), Array.ConvertAll(x, v => (float)v), yf);
        var compare = new Comparison();
        for (int i = 0; i < yd.Length; i++) compare.Add(yd[i], yf[i]);
        compare.Check(output, $"{label}float vs double Forward", smallest: 0, tolerance: 1e-5);
    }
}
