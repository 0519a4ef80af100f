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
}
