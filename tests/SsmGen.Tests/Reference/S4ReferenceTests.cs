using SsmGen.Reference;
using Xunit.Abstractions;
using NComplex = System.Numerics.Complex;

namespace SsmGen.Tests.Reference;

/// <summary>
/// S4's DPLR layer: HiPPO-LegS's NPLR form against the matrix it came from; the kernel by the generating function,
/// Woodbury and Cauchy sums against K_l = C·Āˡ·B̄ computed with dense matrix powers; the convolution against the
/// dense recurrence; every gradient against finite differences; all in double precision.
/// </summary>
public class S4ReferenceTests(ITestOutputHelper output)
{
    private static readonly string[] Names = ["log_dt", "log_A_real", "A_imag", "P", "B", "C", "D"];

    internal static int[] Sizes(int h, int m) => [h, h * m, h * m, 2 * h * m, 2 * h * m, 2 * h * m, h];

    internal static S4Reference<double>.Params View(double[] a, int h, int m)
    {
        var s = Sizes(h, m);
        int[] at = new int[8];
        for (int i = 0; i < 7; i++) at[i + 1] = at[i] + s[i];
        Span<double> Part(int i) => a.AsSpan(at[i], s[i]);
        return new(Part(0), Part(1), Part(2), Part(3), Part(4), Part(5), Part(6));
    }

    /// <summary>Stable random parameters: Δ in [0.05, 0.3], Re λ in [−1, −0.2], Im λ in [0, 6], P, B, C, D normal.</summary>
    internal static double[] RandomParameters(int h, int m, ulong seed)
    {
        var rng = new Rng(seed);
        var a = new double[Sizes(h, m).Sum()];
        var p = View(a, h, m);
        for (int i = 0; i < h; i++) { p.LogDt[i] = Math.Log(rng.Uniform(0.05, 0.3)); p.D[i] = rng.Normal(); }
        for (int i = 0; i < h * m; i++) { p.LogAReal[i] = Math.Log(rng.Uniform(0.2, 1)); p.AImag[i] = rng.Uniform(0, 6); }
        for (int i = 0; i < 2 * h * m; i++) { p.P[i] = 0.7 * rng.Normal(); p.B[i] = rng.Normal(); p.C[i] = rng.Normal(); }
        return a;
    }

    private static NComplex N(Complex<double> z) => new(z.Re, z.Im);

    /// <summary>Aᵉ by e − 1 plain multiplications.</summary>
    private static NComplex[,] PowerByRepetition(NComplex[,] a, int e)
    {
        int n = a.GetLength(0);
        var r = new NComplex[n, n];
        for (int i = 0; i < n; i++) r[i, i] = 1;
        for (int s = 0; s < e; s++)
        {
            var next = new NComplex[n, n];
            for (int i = 0; i < n; i++)
                for (int k = 0; k < n; k++)
                    for (int j = 0; j < n; j++) next[i, j] += r[i, k] * a[k, j];
            r = next;
        }
        return r;
    }

    [Theory]
    [InlineData(8)]
    [InlineData(16)]
    public void TheNplrFormRebuildsHippoLegS(int n)
    {
        var (a, b, p) = HippoLegS.Dense(n);
        var nplr = HippoLegS.Diagonalize(n);
        int m = n / 2;
        // Full basis [V, V̄] with eigenvalues −½ ± iω: A = V·(Λ − p̃·p̃*)·V*, B = V·b̃ (both halves)
        var v = new NComplex[n, n];
        var lambda = new NComplex[n];
        var pt = new NComplex[n];
        var bt = new NComplex[n];
        for (int k = 0; k < m; k++)
        {
            lambda[k] = new(-0.5, nplr.Frequencies[k]);
            lambda[m + k] = NComplex.Conjugate(lambda[k]);
            (pt[k], pt[m + k]) = (nplr.P[k], NComplex.Conjugate(nplr.P[k]));
            (bt[k], bt[m + k]) = (nplr.B[k], NComplex.Conjugate(nplr.B[k]));
            for (int i = 0; i < n; i++) (v[i, k], v[i, m + k]) = (nplr.Vectors[i, k], NComplex.Conjugate(nplr.Vectors[i, k]));
        }
        double worst = 0, worstB = 0, worstP = 0, unitary = 0;
        for (int i = 0; i < n; i++)
        {
            NComplex bi = 0, pi = 0;
            for (int k = 0; k < n; k++) { bi += v[i, k] * bt[k]; pi += v[i, k] * pt[k]; }
            worstB = Math.Max(worstB, (bi - b[i]).Magnitude);
            worstP = Math.Max(worstP, (pi - p[i]).Magnitude);
            for (int j = 0; j < n; j++)
            {
                NComplex s = 0, g = 0;
                for (int k = 0; k < n; k++)
                {
                    g += NComplex.Conjugate(v[k, i]) * v[k, j];
                    for (int l = 0; l < n; l++)
                        s += v[i, k] * ((k == l ? lambda[k] : 0) - pt[k] * NComplex.Conjugate(pt[l])) * NComplex.Conjugate(v[j, l]);
                }
                worst = Math.Max(worst, (s - a[i, j]).Magnitude);
                unitary = Math.Max(unitary, (g - (i == j ? 1 : 0)).Magnitude);
            }
        }
        output.WriteLine($"N = {n}: |A − V(Λ − p̃p̃*)V*| {worst:E1}, |B − V·b̃| {worstB:E1}, |P − V·p̃| {worstP:E1}, |V*V − I| {unitary:E1}");
        Assert.True(worst < 1e-9 * n && worstB < 1e-9 * n && worstP < 1e-9 * n && unitary < 1e-9, "the NPLR form does not rebuild HiPPO-LegS");
        Assert.Equal(Initialization.LegSFrequencies(n), nplr.Frequencies);
    }

    [Theory]
    [InlineData(64, 64)]
    [InlineData(64, 23)]   // a call shorter than the kernel length takes its first taps
    [InlineData(15, 15)]   // odd: no root of unity at −1
    public void TheKernelFromTheGeneratingFunctionIsCTimesPowersOfATimesB(int kernelLength, int length)
    {
        const int h = 2, m = 4;
        var a = RandomParameters(h, m, 11);
        var s4 = new S4Reference<double>(h, 2 * m, kernelLength);
        // choose the true C (the parameter's first half), then set the parameter to C̃ = C·(I − Ā^Lk)
        var c = new NComplex[h][];
        for (int ch = 0; ch < h; ch++)
        {
            var p = View(a, h, m);
            var (transition, _) = s4.Discretize(p, ch);
            int n = 2 * m;
            var abar = new NComplex[n, n];
            for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) abar[i, j] = N(transition[i, j]);
            var power = PowerByRepetition(abar, kernelLength);
            c[ch] = new NComplex[n];
            for (int k = 0; k < m; k++) (c[ch][k], c[ch][m + k]) = (new(p.C[2 * (ch * m + k)], p.C[2 * (ch * m + k) + 1]), new(p.C[2 * (ch * m + k)], -p.C[2 * (ch * m + k) + 1]));
            for (int k = 0; k < n; k++)
            {
                NComplex t = c[ch][k];
                for (int i = 0; i < n; i++) t -= c[ch][i] * power[i, k];
                if (k < m) (p.C[2 * (ch * m + k)], p.C[2 * (ch * m + k) + 1]) = (t.Real, t.Imaginary);
            }
        }
        var kernel = s4.Kernel(View(a, h, m), length);
        double worst = 0, scale = 0;
        for (int ch = 0; ch < h; ch++)
        {
            var (transition, input) = s4.Discretize(View(a, h, m), ch);
            int n = 2 * m;
            var x = input.Select(N).ToArray();
            for (int l = 0; l < length; l++)
            {
                NComplex kl = 0;
                for (int i = 0; i < n; i++) kl += c[ch][i] * x[i];
                Assert.True(Math.Abs(kl.Imaginary) < 1e-9 * (1 + kl.Magnitude), "the dense kernel is not real");
                worst = Math.Max(worst, Math.Abs(kl.Real - kernel[ch * length + l]));
                scale = Math.Max(scale, Math.Abs(kl.Real));
                var next = new NComplex[n];
                for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) next[i] += N(transition[i, j]) * x[j];
                x = next;
            }
            // the output row the recurrence reads is the C we started from
            var row = s4.OutputRow(View(a, h, m), ch);
            for (int i = 0; i < n; i++) Assert.True((N(row[i]) - c[ch][i]).Magnitude < 1e-9, $"OutputRow differs at {i}");
        }
        output.WriteLine($"Lk = {kernelLength}, L = {length}: |K(Cauchy, Woodbury, DFT) − C·Āˡ·B̄| ≤ {worst:E2} (max |K| {scale:E2})");
        Assert.True(worst < 1e-11 * Math.Max(1, scale), $"kernel error {worst:E2}");
    }

    [Fact]
    public void WithTheLegSInitTheKernelIsTheHippoMatrixKernel()
    {
        const int n = 8, lk = 32;
        const double dt = 0.1;
        var nplr = HippoLegS.Diagonalize(n);
        int m = n / 2;
        var a = new double[Sizes(1, m).Sum()];
        var p = View(a, 1, m);
        p.LogDt[0] = Math.Log(dt);
        for (int k = 0; k < m; k++)
        {
            p.LogAReal[k] = Math.Log(0.5);
            p.AImag[k] = nplr.Frequencies[k];
            (p.P[2 * k], p.P[2 * k + 1]) = (nplr.P[k].Real, nplr.P[k].Imaginary);
            (p.B[2 * k], p.B[2 * k + 1]) = (nplr.B[k].Real, nplr.B[k].Imaginary);
        }
        // in the original basis (real): Ā = (I − Δ/2·A)⁻¹(I + Δ/2·A), B̄ = (I − Δ/2·A)⁻¹·Δ·B, C random, C̃ = C·(I − Ā^Lk)
        var (dense, b, _) = HippoLegS.Dense(n);
        var left = new double[n, n + n + 1];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                left[i, j] = (i == j ? 1 : 0) - dt / 2 * dense[i, j];
                left[i, n + j] = (i == j ? 1 : 0) + dt / 2 * dense[i, j];
            }
            left[i, 2 * n] = dt * b[i];
        }
        GaussJordan(left, n);
        var rng = new Rng(5);
        var c = Enumerable.Range(0, n).Select(_ => rng.Normal()).ToArray();
        var row = (double[])c.Clone();
        var power = Dense.Identity(n);
        var abar = new double[n, n];
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) abar[i, j] = left[i, n + j];
        for (int s = 0; s < lk; s++) power = Dense.Multiply(power, abar);
        var ctilde = new double[n];
        for (int k = 0; k < n; k++) { ctilde[k] = c[k]; for (int i = 0; i < n; i++) ctilde[k] -= c[i] * power[i, k]; }
        // C̃ in the diagonal basis: C̃·V (first half)
        for (int k = 0; k < m; k++)
        {
            NComplex t = 0;
            for (int i = 0; i < n; i++) t += ctilde[i] * nplr.Vectors[i, k];
            (p.C[2 * k], p.C[2 * k + 1]) = (t.Real, t.Imaginary);
        }
        var kernel = new S4Reference<double>(1, n, lk).Kernel(View(a, 1, m), lk);
        var x = Enumerable.Range(0, n).Select(i => left[i, 2 * n]).ToArray();
        double worst = 0;
        for (int l = 0; l < lk; l++)
        {
            double kl = 0;
            for (int i = 0; i < n; i++) kl += c[i] * x[i];
            worst = Math.Max(worst, Math.Abs(kl - kernel[l]));
            var next = new double[n];
            for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) next[i] += abar[i, j] * x[j];
            x = next;
        }
        output.WriteLine($"S4-LegS kernel vs HiPPO-LegS's dense kernel: {worst:E2}");
        Assert.True(worst < 1e-10, $"LegS kernel error {worst:E2}");
    }

    /// <summary>
    /// Theorem 3 of the S4D paper at small sizes: the step responses (running sums of the basis functions) of
    /// (A + P·Pᵀ, B/2) approach those of HiPPO-LegS's (A, B) as N grows, about as 1/N.
    /// </summary>
    [Fact]
    public void TheNormalPartsBasisApproachesHippoLegSAsNGrows()
    {
        const double dt = 0.01;
        const int length = 400, functions = 4;
        double Distance(int n)
        {
            var s4 = HippoLegS.Basis(n, dt, length, normalPart: false);
            var s4d = HippoLegS.Basis(n, dt, length, normalPart: true);
            double num = 0, den = 0;
            for (int f = 0; f < functions; f++)
            {
                double a = 0, b = 0;
                for (int l = 0; l < length; l++)
                {
                    a += s4[l, f];
                    b += s4d[l, f];
                    num += (a - b) * (a - b);
                    den += a * a;
                }
            }
            return Math.Sqrt(num / den);
        }
        double d16 = Distance(16), d32 = Distance(32), d64 = Distance(64);
        output.WriteLine($"step-response distance: N = 16 {d16:E2}, 32 {d32:E2}, 64 {d64:E2}");
        Assert.InRange(d32 / d16, 0.35, 0.65);
        Assert.InRange(d64 / d32, 0.35, 0.65);
    }

    /// <summary>Gauss-Jordan on [M | R] in place (M the first n columns), leaving [I | M⁻¹R].</summary>
    private static void GaussJordan(double[,] a, int n)
    {
        int cols = a.GetLength(1);
        for (int col = 0; col < n; col++)
        {
            int pivot = col;
            for (int r = col + 1; r < n; r++) if (Math.Abs(a[r, col]) > Math.Abs(a[pivot, col])) pivot = r;
            for (int c = 0; c < cols; c++) (a[col, c], a[pivot, c]) = (a[pivot, c], a[col, c]);
            double inv = 1 / a[col, col];
            for (int c = 0; c < cols; c++) a[col, c] *= inv;
            for (int r = 0; r < n; r++)
            {
                if (r == col) continue;
                double f = a[r, col];
                for (int c = 0; c < cols; c++) a[r, c] -= f * a[col, c];
            }
        }
    }

    [Fact]
    public void ConvolutionAndRecurrenceAgreeOver4096Steps()
    {
        const int h = 2, m = 4, length = 4096;
        var a = RandomParameters(h, m, 3);
        var s4 = new S4Reference<double>(h, 2 * m, length);
        var u = TestConfigs.RandomArray(length * h, 9);
        var conv = new double[u.Length];
        var rec = new double[u.Length];
        s4.Forward(View(a, h, m), u, conv, 1, length);
        s4.Recurrent(View(a, h, m), u, rec, 1, length);
        double worst = conv.Zip(rec, (x, y) => Math.Abs(x - y)).Max(), scale = conv.Max(Math.Abs);
        output.WriteLine($"L = {length}: |convolution − recurrence| ≤ {worst:E2} (max |y| {scale:E2})");
        Assert.True(worst < 1e-9 * scale, $"modes disagree by {worst:E2}");
    }

    [Theory]
    [InlineData(16, 12)]
    [InlineData(9, 9)]
    public void GradientsMatchFiniteDifferences(int kernelLength, int length)
    {
        const int h = 2, m = 2, batch = 2;
        var a = RandomParameters(h, m, 21);
        var s4 = new S4Reference<double>(h, 2 * m, kernelLength);
        double[] input = [];
        var errors = FiniteDifferences.CheckMixerGradients(a, Names, Sizes(h, m), batch * length, h, 31,
            (p, x, y) => { input = (double[])x.Clone(); s4.Forward(View(p, h, m), x, y, batch, length); },
            (p, g, dy, dx) => s4.Backward(View(p, h, m), View(g, h, m), input, dy, dx, batch, length),
            1e-6, output);
        foreach (var e in errors)
            Assert.True(e.MaxGradient > 1e-3, $"{e.Name}: gradients too small for the comparison to mean anything");
    }

    [Theory]
    [InlineData(3, 64, "positive and even")]
    [InlineData(8, 100, "power of two")]
    public void ABadRuntimeConfigIsRefusedWithTheReason(int n, int kernelLength, string reason) =>
        Assert.Contains(reason, Assert.Throws<ArgumentException>(() => new S4LayerConfig(n, kernelLength).Validate(4)).Message);

    [Fact]
    public void ASequenceLongerThanTheKernelIsRefused()
    {
        var s4 = new S4Reference<double>(1, 2, 8);
        var a = RandomParameters(1, 1, 1);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => s4.Kernel(View(a, 1, 1), 9));
        Assert.Contains("kernel length 8", e.Message);
    }
}
