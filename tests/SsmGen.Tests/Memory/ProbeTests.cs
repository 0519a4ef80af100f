using SsmGen.Memory;
using Xunit.Abstractions;

namespace SsmGen.Tests.Memory;

/// <summary>The linear probe and the memory curve against states whose memory is known in closed form.</summary>
public class ProbeTests(ITestOutputHelper output)
{
    [Fact]
    public void AShiftRegisterIsReadBackExactlyUpToItsLength()
    {
        // state = one-hot codes of the last 8 tokens: lags 0…7 are in it, lag 9 is not
        const int Sequences = 1200, Length = 16, Vocab = 4, Depth = 8, Train = 800;
        var tokens = TestConfigs.RandomTokens(Sequences * Length, Vocab, 3);
        var states = new float[Sequences * Depth * Vocab];
        for (int s = 0; s < Sequences; s++)
            for (int j = 0; j < Depth; j++) states[(s * Depth + j) * Vocab + tokens[s * Length + Length - 1 - j]] = 1;
        int[] lags = [0, 3, 7, 9, 12];
        var curve = MemoryCurve.Measure(states, Sequences, Depth * Vocab, tokens, Length, Vocab, lags, Train, ridge: 1e-3);
        for (int i = 0; i < lags.Length; i++) output.WriteLine($"lag {lags[i]}: accuracy {curve[i].Accuracy:F3}, R² {curve[i].R2:F3}, {curve[i].GaussianBits:F2} bits");
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(1.0, curve[i].Accuracy);
            Assert.True(curve[i].R2 > 0.999, $"lag {lags[i]}: R² {curve[i].R2}");
        }
        for (int i = 3; i < 5; i++)
        {
            Assert.InRange(curve[i].Accuracy, 0.15, 0.35);   // chance is 1/4
            Assert.InRange(curve[i].R2, -0.05, 0.02);
        }
    }

    [Fact]
    public void AScalarLeakyStateHasThePredictedMemoryCurve()
    {
        // h_t = a·h_(t−1) + u_t, u white with unit variance: corr(h, u_(t−τ))² = a^(2τ)·(1 − a²), so the best linear
        // read-out of u at lag τ from h has R² = a^(2τ)(1 − a²) and a Gaussian channel carries −½·log₂(1 − R²) bits.
        const int Sequences = 6000, Length = 40, Train = 4000;
        const double A = 0.7;
        var inputs = TestConfigs.RandomArray(Sequences * Length, 5).Select(v => (float)v).ToArray();
        var states = new float[Sequences];
        for (int s = 0; s < Sequences; s++)
        {
            double h = 0;
            for (int t = 0; t < Length; t++) h = A * h + inputs[s * Length + t];
            states[s] = (float)h;
        }
        int[] lags = [0, 1, 2, 4];
        var curve = MemoryCurve.Measure(states, Sequences, 1, inputs, Length, lags, Train, ridge: 1e-6);
        for (int i = 0; i < lags.Length; i++)
        {
            double r2 = Math.Pow(A, 2 * lags[i]) * (1 - A * A), bits = -0.5 * Math.Log2(1 - r2);
            output.WriteLine($"lag {lags[i]}: R² {curve[i].R2:F4} (predicted {r2:F4}), {curve[i].GaussianBits:F4} bits (predicted {bits:F4})");
            Assert.True(Math.Abs(curve[i].R2 - r2) < 0.03, $"lag {lags[i]}: R² {curve[i].R2:F4} against {r2:F4}");
            Assert.True(Math.Abs(curve[i].GaussianBits - bits) < 0.05, $"lag {lags[i]}: {curve[i].GaussianBits:F4} bits against {bits:F4}");
        }
    }

    [Fact]
    public void PrimalAndDualFormsAgree()
    {
        // 60 rows: 20 features solve in the primal form, 200 in the dual; the same data padded with 180 zero
        // (constant) features must give the same predictions
        const int Rows = 60, Narrow = 20, Wide = 200;
        var x = TestConfigs.RandomArray(Rows * Narrow, 7).Select(v => (float)v).ToArray();
        var y = x.Chunk(Narrow).Select(r => (float)(r[0] - 2 * r[3] + 0.5 * r[7])).ToArray();
        var wide = new float[Rows * Wide];
        for (int r = 0; r < Rows; r++) x.AsSpan(r * Narrow, Narrow).CopyTo(wide.AsSpan(r * Wide));
        var narrow = LinearProbe.Fit(x, y, Rows, Narrow, 1, 0.5).Predict(x, Rows);
        var dual = LinearProbe.Fit(wide, y, Rows, Wide, 1, 0.5).Predict(wide, Rows);
        Assert.All(narrow.Zip(dual), p => Assert.Equal(p.First, p.Second, 9));
    }

    [Fact]
    public void BadShapesAreRefusedByName()
    {
        Assert.Contains("state values", Assert.Throws<ArgumentException>(() => MemoryCurve.Measure(new float[10], 4, 3, new int[8], 2, 3, [0], 2)).Message);
        Assert.Contains("Lags must lie", Assert.Throws<ArgumentOutOfRangeException>(() => MemoryCurve.Measure(new float[12], 4, 3, new int[8], 2, 3, [2], 2)).Message);
        Assert.Contains("leaving 2 or more", Assert.Throws<ArgumentOutOfRangeException>(() => MemoryCurve.Measure(new float[12], 4, 3, new int[8], 2, 3, [0], 3)).Message);
        Assert.Contains("ridge", Assert.Throws<ArgumentOutOfRangeException>(() => LinearProbe.Fit(new float[6], new float[3], 3, 2, 1, 0)).Message);
    }
}
