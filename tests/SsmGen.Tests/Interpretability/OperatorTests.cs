using SsmGen.Interpretability;
using SsmGen.Reference;
using Xunit.Abstractions;

namespace SsmGen.Tests.Interpretability;

/// <summary>
/// The exact operator's evaluator (written from the closed form) against the generated model's Forward and the
/// float64 reference; its decoder series against the exact decoder.
/// </summary>
public class OperatorTests(ITestOutputHelper output)
{
    private static double MaxRelative(ReadOnlySpan<float> expected, ReadOnlySpan<double> actual)
    {
        double scale = 0, diff = 0;
        for (int i = 0; i < expected.Length; i++) { scale = Math.Max(scale, Math.Abs(expected[i])); diff = Math.Max(diff, Math.Abs(expected[i] - actual[i])); }
        return diff / scale;
    }

    private static ISsmModel Make(string name, int batch, int length) => name switch
    {
        "TinyRealMean" => new TinyRealMean(batch, length),
        "VectorTokens" => new VectorTokens(batch, length),
        "VectorLast" => new VectorLast(batch, length),
        "SeqClassifier" => new SeqClassifier(batch, length),
        _ => throw new ArgumentException(name),
    };

    /// <summary>Inputs the model reads: token ids as values, or unit normal features.</summary>
    private static float[] Input(ISsmModel m, int batch, int length, ulong seed) => m.Config.TokenInput
        ? TestConfigs.RandomTokens(batch * length, m.Config.Vocab, seed).Select(t => (float)t).ToArray()
        : TestConfigs.RandomArray(batch * length * m.Config.Input, seed).Select(v => (float)v).ToArray();

    private static float[] Forward(ISsmModel m, float[] input, int batch, int length)
    {
        var y = new float[(m.Config.Pooling == Pooling.None ? batch * length : batch) * m.Config.Output];
        if (m.Config.TokenInput) m.Forward(input.Select(v => (int)v).ToArray(), batch, length, y);
        else m.Forward(input, batch, length, y);
        return y;
    }

    [Theory]
    [InlineData("TinyRealMean", 40)]
    [InlineData("VectorTokens", 33)]
    [InlineData("VectorLast", 50)]
    [InlineData("SeqClassifier", 30)]
    public void TheOperatorReproducesForward(string name, int length)
    {
        const int Batch = 3;
        using var model = Make(name, Batch, length);
        model.Initialize(11);
        var rng = new Rng(4);
        foreach (var p in model.ParameterTable)
            if (p.Name.EndsWith("log_dt")) for (int j = 0; j < p.Length; j++) model.Parameters[p.Offset + j] = (float)rng.Uniform(-3, -1);
        var input = Input(model, Batch, length, 8);
        var y = Forward(model, input, Batch, length);

        var op = S4DOperator.FromModel(model);
        var exact = op.Forward(input, Batch, length);
        double vsModel = MaxRelative(y, exact);

        var reference = new ReferenceModel<double>(model.Config);
        for (int i = 0; i < model.Parameters.Length; i++) reference.Parameters[i] = model.Parameters[i];
        var yRef = model.Config.TokenInput
            ? reference.Forward(input.Select(v => (int)v).ToArray(), Batch, length)
            : reference.Forward(input.Select(v => (double)v).ToArray(), Batch, length);
        double vsReference = yRef.Zip(exact, (a, b) => Math.Abs(a - b)).Max() / yRef.Max(Math.Abs);
        output.WriteLine($"{name}: operator vs Forward {vsModel:E2}, vs the float64 reference {vsReference:E2}");
        Assert.True(vsModel < 1e-5, $"operator vs Forward {vsModel:E2}");
        Assert.True(vsReference < 1e-10, $"operator vs reference {vsReference:E2}");
    }

    [Fact]
    public void TheDecoderSeriesConvergesToTheExactDecoder()
    {
        const int Batch = 2, Length = 24;
        using var model = new TinyRealMean(Batch, Length);
        model.Initialize(3);
        // small waves: C and D scaled down keep y near its operating point, inside the sigmoid's radius of convergence
        foreach (var p in model.ParameterTable)
            if (p.Name.EndsWith("mixer.C") || p.Name.EndsWith("mixer.D"))
                for (int j = 0; j < p.Length; j++) model.Parameters[p.Offset + j] *= 0.1f;
        var input = Input(model, Batch, Length, 2);
        var op = S4DOperator.FromModel(model);
        var exact = op.Forward(input, Batch, Length);
        var point = op.MeanWaves(input, Batch, Length);
        double previous = double.PositiveInfinity;
        var errors = new List<double>();
        foreach (int order in new[] { 0, 1, 2, 4, 8, 14 })
        {
            var truncated = op.Forward(input, Batch, Length, new DecoderSeries(order, point));
            double e = exact.Zip(truncated, (a, b) => Math.Abs(a - b)).Max() / exact.Max(Math.Abs);
            errors.Add(e);
            Assert.True(e < previous || e < 1e-13, $"order {order}: error {e:E2} did not fall below {previous:E2}");
            previous = e;
        }
        output.WriteLine("max relative error by order 0, 1, 2, 4, 8, 14: " + string.Join(", ", errors.Select(e => e.ToString("E2"))));
        Assert.True(errors[^1] < 1e-12, $"order 14 is {errors[^1]:E2} from the exact decoder");
        Assert.True(errors[1] > 1e-6, "the test's waves are too small to tell order 1 from the exact decoder");
    }

    [Fact]
    public void SeriesCoefficientsAreTheDecodersDirectionalDerivatives()
    {
        // Coefficient m of the series is (1/m!)·dᵐ/dsᵐ f(y₀ + s·d) at s = 0, f the exact decoder: checked against
        // central differences of f for m = 0…3.
        const int H = 4;
        var w = TestConfigs.RandomArray(2 * H * H, 1, 0.5);
        var bias = TestConfigs.RandomArray(2 * H, 2, 0.3);
        var y0 = TestConfigs.RandomArray(H, 3);
        var y = TestConfigs.RandomArray(H, 4);
        var coefficients = new double[H * 4];
        DecoderSeries.Coefficients(3, y0, y, w, bias, coefficients);
        double[] F(double s)
        {
            var point = y0.Zip(y, (a, b) => a + s * (b - a)).ToArray();
            var o = new double[H];
            S4DOperator.Decoder(point, w, bias, new double[H], o);
            return o;
        }
        const double E = 1e-3;
        double[] f0 = F(0), p1 = F(E), m1 = F(-E), p2 = F(2 * E), m2 = F(-2 * E);
        for (int c = 0; c < H; c++)
        {
            double d1 = (p1[c] - m1[c]) / (2 * E);
            double d2 = (p1[c] - 2 * f0[c] + m1[c]) / (E * E);
            double d3 = (p2[c] - 2 * p1[c] + 2 * m1[c] - m2[c]) / (2 * E * E * E);
            output.WriteLine($"channel {c}: series {coefficients[c * 4]:F6} {coefficients[c * 4 + 1]:F6} {coefficients[c * 4 + 2]:F6} {coefficients[c * 4 + 3]:F6}; differences {f0[c]:F6} {d1:F6} {d2 / 2:F6} {d3 / 6:F6}");
            Assert.Equal(f0[c], coefficients[c * 4], 12);
            // the differences' own error is O(E²) times higher derivatives: ≈ 1e-6 here, against coefficients of 0.01–1
            Assert.True(Math.Abs(d1 - coefficients[c * 4 + 1]) < 1e-5, $"channel {c}: first-order coefficient");
            Assert.True(Math.Abs(d2 / 2 - coefficients[c * 4 + 2]) < 1e-5, $"channel {c}: second-order coefficient");
            Assert.True(Math.Abs(d3 / 6 - coefficients[c * 4 + 3]) < 1e-4, $"channel {c}: third-order coefficient");
        }
    }

    [Fact]
    public void TheOperatorRefusesMixedStacksAndBadInput()
    {
        var hybrid = GeneratedConfigs.Hybrid;
        var e = Assert.Throws<ArgumentException>(() => S4DOperator.FromParameters(hybrid, new float[ParameterLayout.Count(ParameterLayout.Build(hybrid))]));
        Assert.Contains("Block 1 is a MambaLayer", e.Message);
        using var model = new TinyRealMean(2, 5);
        model.Initialize(1);
        var op = S4DOperator.FromModel(model);
        Assert.Contains("input values", Assert.Throws<ArgumentException>(() => op.Forward(new float[7], 2, 5)).Message);
        Assert.Contains("operating point", Assert.Throws<ArgumentException>(() => op.Forward(new float[20], 2, 5, new DecoderSeries(1, [new double[4]]))).Message);
    }
}
