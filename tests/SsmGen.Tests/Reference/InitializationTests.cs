namespace SsmGen.Tests.Reference;

/// <summary>The initializations against the S4D paper's formulas, written out here independently.</summary>
public class InitializationTests
{
    private static (float[] LogRe, float[] Im) A(S4DInit init, int h, int n, ulong seed = 1)
    {
        var re = new float[h * n / 2]; var im = new float[h * n / 2];
        var rng = new Rng(seed);
        Initialization.S4DA(re, im, h, n, init, ref rng);
        return (re, im);
    }

    [Fact]
    public void LinIsMinusHalfPlusIPiN()
    {
        var (re, im) = A(S4DInit.Lin, 2, 64);
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 32; k++)
            {
                Assert.Equal(-0.5, -Math.Exp(re[c * 32 + k]), 6);
                Assert.Equal(Math.PI * k, im[c * 32 + k], 4);
            }
    }

    [Fact]
    public void InvImaginaryPartsFollowTheFormula()
    {
        const int n = 64;
        var (re, im) = A(S4DInit.Inv, 1, n);
        for (int k = 0; k < n / 2; k++)
        {
            Assert.Equal(-0.5, -Math.Exp(re[k]), 6);
            double expected = n / Math.PI * (n / (2.0 * k + 1) - 1);
            Assert.Equal(expected, im[k], Math.Abs(expected) * 1e-6 + 1e-5);
        }
        Assert.Equal(n / Math.PI * (n - 1), im[0], 1e-2);
    }

    [Fact]
    public void RealIsMinusNPlusOne()
    {
        var (re, im) = A(S4DInit.Real, 1, 16);
        for (int k = 0; k < 8; k++)
        {
            Assert.Equal(-(k + 1.0), -Math.Exp(re[k]), 5);
            Assert.Equal(0f, im[k]);
        }
    }

    [Theory]
    [InlineData(4)]
    [InlineData(16)]
    [InlineData(64)]
    public void LegSFrequenciesAreTheEigenvaluesOfTheNormalHippoPart(int n)
    {
        // The skew part T[i,j] = −½·sign(i−j)·√((2i+1)(2j+1)) has eigenvalues ±iω. Then
        // Σ ω² = ‖T‖²_F / 2 and Σ ω⁴ = tr(T⁴) / 2, both computable without any eigen-solver.
        var t = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                t[i, j] = i == j ? 0 : -0.5 * Math.Sign(i - j) * Math.Sqrt((2.0 * i + 1) * (2.0 * j + 1));
        var t2 = Dense.Multiply(t, t);
        double fro = 0, tr4 = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) { fro += t[i, j] * t[i, j]; tr4 += t2[i, j] * t2[j, i]; }
        var w = Initialization.LegSFrequencies(n);
        Assert.Equal(n / 2, w.Length);
        Assert.Equal(fro / 2, w.Sum(x => x * x), fro * 1e-9);
        Assert.Equal(tr4 / 2, w.Sum(x => Math.Pow(x, 4)), tr4 * 1e-9);
        Assert.True(w.Zip(w.Skip(1), (a, b) => a < b).All(x => x), "frequencies ascend and are distinct");
        var (re, im) = A(S4DInit.LegS, 1, n);
        Assert.All(re, r => Assert.Equal(-0.5, -Math.Exp(r), 6));
        for (int k = 0; k < n / 2; k++) Assert.Equal(w[k], im[k], w[k] * 1e-6);
    }

    [Fact]
    public void LegSOfSizeTwoIsKnownInClosedForm()
    {
        // N = 2: T = [[0, ½√3], [−½√3, 0]], so ω = √3/2.
        Assert.Equal(Math.Sqrt(3) / 2, Initialization.LegSFrequencies(2)[0], 12);
    }

    [Fact]
    public void RandomDrawsPerChannelWithinRange()
    {
        var (re, im) = A(S4DInit.Random, 4, 32, 5);
        Assert.All(im, v => Assert.InRange(v, 0, Math.PI * 16));
        Assert.NotEqual(im[0], im[16]);
        Assert.All(re, r => Assert.Equal(-0.5, -Math.Exp(r), 6));
        var (_, again) = A(S4DInit.Random, 4, 32, 5);
        Assert.Equal(im, again);
    }

    [Fact]
    public void LogDtIsUniformInTheLogRange()
    {
        var x = new float[20000];
        var rng = new Rng(3);
        Initialization.LogDt(x, 1e-3, 1e-1, ref rng);
        Assert.All(x, v => Assert.InRange(v, Math.Log(1e-3) - 1e-6, Math.Log(1e-1) + 1e-6));
        Assert.Equal((Math.Log(1e-3) + Math.Log(1e-1)) / 2, x.Average(), 2e-2);
    }

    [Fact]
    public void ComplexCHasVarianceOneHalfPerPart()
    {
        var x = new float[40000];
        var rng = new Rng(4);
        Initialization.ComplexNormal(x, ref rng);
        double re = 0, im = 0;
        for (int i = 0; i < x.Length; i += 2) { re += x[i] * x[i]; im += x[i + 1] * x[i + 1]; }
        Assert.Equal(0.5, re / (x.Length / 2), 2e-2);
        Assert.Equal(0.5, im / (x.Length / 2), 2e-2);
    }

    [Fact]
    public void GeneratedModelUsesTheDeclaredInit()
    {
        var m = new VectorTokens(1, 1);
        m.Initialize(1);
        var imag = m.ParameterTable.First(p => p.Name == "layers.1.mixer.log_A_real");
        // layer 1 is S4D-Real with N = 16
        for (int k = 0; k < 8; k++) Assert.Equal(-(k + 1.0), -Math.Exp(m.Parameters[imag.Offset + k]), 5);
        var b = m.ParameterTable.First(p => p.Name == "layers.0.mixer.B");
        for (int i = 0; i < b.Length; i += 2) { Assert.Equal(1f, m.Parameters[b.Offset + i]); Assert.Equal(0f, m.Parameters[b.Offset + i + 1]); }
    }
}
