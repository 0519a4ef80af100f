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

    /// <summary>A two-block model whose waves are scaled by <paramref name="waves"/> (C and D).</summary>
    private static TinyRealMean Scaled(int batch, int length, float waves)
    {
        var model = new TinyRealMean(batch, length);
        model.Initialize(3);
        foreach (var p in model.ParameterTable)
            if (p.Name.EndsWith("mixer.C") || p.Name.EndsWith("mixer.D"))
                for (int j = 0; j < p.Length; j++) model.Parameters[p.Offset + j] *= waves;
        return model;
    }

    [Fact]
    public void OneBlocksSeriesReplacesOnlyThatBlock()
    {
        const int Batch = 2, Length = 20;
        using var model = Scaled(Batch, Length, 1);
        var input = Input(model, Batch, Length, 5);
        var op = S4DOperator.FromModel(model);
        var point = op.MeanWaves(input, Batch, Length);
        var exact = op.Forward(input, Batch, Length);
        double Distance(double[] a, double[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
        var first = op.Forward(input, Batch, Length, new DecoderSeries(0, point, block: 0));
        var second = op.Forward(input, Batch, Length, new DecoderSeries(0, point, block: 1));
        var both = op.Forward(input, Batch, Length, new DecoderSeries(0, point));
        output.WriteLine($"order 0 in block 0: {Distance(first, exact):E2} from exact; block 1: {Distance(second, exact):E2}; both: {Distance(both, exact):E2}");
        Assert.True(Distance(first, exact) > 1e-4 && Distance(second, exact) > 1e-4, "a frozen decoder left the output unchanged");
        Assert.True(Distance(first, both) > 1e-4 && Distance(second, both) > 1e-4, "one block's series replaced both blocks");
        Assert.Contains("Block 2 is outside", Assert.Throws<ArgumentException>(() => op.Forward(input, Batch, Length, new DecoderSeries(1, point, block: 2))).Message);
    }

    [Fact]
    public void TheSeriesFitTellsConvergentFromDivergentWaves()
    {
        // Small waves stay inside the nonlinearities' radius of convergence: the order-16 series is the decoder to
        // rounding. Large waves reach past the sigmoid's and tanh's complex poles: there the series diverges.
        const int Batch = 2, Length = 30;
        DecoderSeriesFit[] FitFor(float waves)
        {
            using var model = Scaled(Batch, Length, waves);
            var input = Input(model, Batch, Length, 6);
            var op = S4DOperator.FromModel(model);
            return DecoderSeries.Fit(op, input, Batch, Length, op.MeanWaves(input, Batch, Length), 16);
        }
        var small = FitFor(0.1f);
        var large = FitFor(20f);
        foreach (var (name, fit) in new[] { ("small", small), ("large", large) })
            foreach (var f in fit)
                output.WriteLine($"{name} waves, block {f.Block}: errors by order 0/1/2/8/16 {f.RelativeError[0]:E2} {f.RelativeError[1]:E2} {f.RelativeError[2]:E2} {f.RelativeError[8]:E2} {f.RelativeError[16]:E2}; diverging {f.Diverging:P2}");
        Assert.All(small, f => Assert.Equal(0, f.Diverging));
        Assert.All(small, f => Assert.True(f.RelativeError[16] < 1e-9 && f.RelativeError[1] > f.RelativeError[16], $"block {f.Block}"));
        Assert.Contains(large, f => f.Diverging > 0.05 && f.RelativeError[16] > f.RelativeError[8]);
        using var model = Scaled(Batch, Length, 1f);
        var op = S4DOperator.FromModel(model);
        var input = Input(model, Batch, Length, 6);
        Assert.Contains("order 2 or more", Assert.Throws<ArgumentOutOfRangeException>(() => DecoderSeries.Fit(op, input, Batch, Length, op.MeanWaves(input, Batch, Length), 1)).Message);
    }

    [Fact]
    public void PolynomialDecodersConvergeToTheExactDecoder()
    {
        // Waves large enough that the Taylor series diverges over much of the input; the least-squares polynomials still converge.
        const int Batch = 3, Length = 30;
        using var model = Scaled(Batch, Length, 3f);
        var input = Input(model, Batch, Length, 7);
        var op = S4DOperator.FromModel(model);
        var taylor = DecoderSeries.Fit(op, input, Batch, Length, op.MeanWaves(input, Batch, Length), 16);
        output.WriteLine("Taylor series diverging at " + string.Join(", ", taylor.Select(f => f.Diverging.ToString("P1"))) + " of each block's evaluations");
        Assert.Contains(taylor, f => f.Diverging > 0.05);
        var exact = op.Forward(input, Batch, Length);
        double scale = exact.Max(Math.Abs);
        var errors = new List<double>();
        foreach (var (p, q) in new[] { (1, 0), (3, 3), (8, 8), (20, 20) })
        {
            var approximate = op.Forward(input, Batch, Length, PolynomialDecoder.Fit(op, input, Batch, Length, p, q));
            errors.Add(exact.Zip(approximate, (a, b) => Math.Abs(a - b)).Max() / scale);
        }
        output.WriteLine("max relative error with degrees (1, 0), (3, 3), (8, 8), (20, 20): " + string.Join(", ", errors.Select(e => e.ToString("E2"))));
        for (int i = 1; i < errors.Count; i++) Assert.True(errors[i] < errors[i - 1], $"error rose from {errors[i - 1]:E2} to {errors[i]:E2}");
        // the fits converge geometrically, at a rate set by the inputs' range against the nonlinearities' scale (≈ 8e-6 here)
        Assert.True(errors[^1] < 1e-4, $"degrees (20, 20) are {errors[^1]:E2} from the exact decoder");
        Assert.True(errors[0] > 1e-3, "the test's waves are too small to tell the linear wave model from the exact decoder");
    }

    [Fact]
    public void PolynomialDecodersHaveTheirDegreeInTheWaves()
    {
        // Along a line y(s) = y₁ + s·d the decoder output is a polynomial of degree p·(1 + q) in s: its finite
        // differences of that order are constant and of the next order vanish. (1, 0) is affine: the linear wave model.
        const int Batch = 2, Length = 16;
        using var model = Scaled(Batch, Length, 3f);
        var input = Input(model, Batch, Length, 8);
        var op = S4DOperator.FromModel(model);
        int h = model.Config.DModel;
        var (w, bias) = op.DecoderWeights(0);
        var y1 = TestConfigs.RandomArray(h, 9);
        var d = TestConfigs.RandomArray(h, 10, 0.3);
        foreach (var (p, q) in new[] { (1, 0), (1, 1), (2, 1) })
        {
            var decoder = PolynomialDecoder.Fit(op, input, Batch, Length, p, q);
            int degree = decoder.Degree, points = degree + 2;
            var y = new double[points * h];
            for (int s = 0; s < points; s++)
                for (int c = 0; c < h; c++) y[s * h + c] = y1[c] + s * d[c];
            var x = new double[points * h];
            decoder.Add(0, y, w, bias, x, points, h);
            for (int c = 0; c < h; c++)
            {
                // repeated differences of the values at s = 0 … degree + 1
                var column = Enumerable.Range(0, points).Select(s => x[s * h + c]).ToArray();
                for (int order = 1; order <= degree + 1; order++)
                    column = column.Zip(column.Skip(1), (a, b) => b - a).ToArray();
                Assert.True(Math.Abs(column[0]) < 1e-9, $"degrees ({p}, {q}), channel {c}: difference of order {degree + 1} is {column[0]:E2}");
            }
            output.WriteLine($"degrees ({p}, {q}): the decoder is a polynomial of degree ≤ {degree} along a line in the waves");
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
        Assert.Throws<ArgumentOutOfRangeException>(() => new DecoderSeries(1, [new double[4]], block: -1));
        Assert.Contains("Block 3 is outside", Assert.Throws<ArgumentException>(() => PolynomialDecoder.Fit(op, new float[20], 2, 5, 1, 1, block: 3)).Message);
    }
}
