using System.Numerics;

namespace SsmGen.Reference;

/// <summary>
/// One S4 layer in its diagonal-plus-low-rank (DPLR) form ("Efficiently Modeling Long Sequences with Structured
/// State Spaces"), per channel h with m = N/2 modes (the conjugate half implied: every sum over modes runs over both
/// halves, the second with conjugated values):
/// <code>
///   Δ = exp(log_dt[h]),  λ_n = −exp(log_A_real[h,n]) + i·A_imag[h,n],  A = Λ − P·P*  (rank 1)
///   bilinear:  Ā = (I − Δ/2·A)⁻¹(I + Δ/2·A),  B̄ = (I − Δ/2·A)⁻¹·Δ·B,  K_l = C·Āˡ·B̄,  y = K ∗ u + D·u
/// </code>
/// The parameter C is S4's C̃ = C·(I − Ā^Lk) for the layer's kernel length Lk, so that the truncated generating
/// function Σ_(l&lt;Lk) K_l·zˡ at the Lk-th roots of unity z is C̃·(I − Ā·z)⁻¹·B̄ with no power of Ā. With
/// d = (1 − z)/Δ and σ = (1 + z)/2 it is, by the Woodbury identity,
/// <code>
///   K̂(z) = q₀₀ − σ·q₀₁·q₁₀ / (1 + σ·q₁₁),   q_ab = Σ_n w_ab,n / (d − σ·λ_n)  (Cauchy sums)
///   w₀₀ = C̃·B,  w₀₁ = C̃·P,  w₁₀ = P̄·B,  w₁₁ = |P|²
/// </code>
/// finite at z = −1 (σ = 0), and K = the inverse DFT of K̂. Calls of length L ≤ Lk use the first L taps. Written for
/// clarity (a direct DFT, dense matrices for the recurrence): this is the oracle, not the fast path.
/// </summary>
public sealed class S4Reference<T> : LongConvolutionReference<T, S4Reference<T>.Params> where T : IFloatingPointIeee754<T>
{
    /// <summary>Views of one layer's parameters (or of their gradients) inside a flat buffer; P, B, C complex (re, im).</summary>
    public readonly ref struct Params
    {
        public readonly Span<T> LogDt, LogAReal, AImag, P, B, C, D;
        public Params(Span<T> logDt, Span<T> logAReal, Span<T> aImag, Span<T> p, Span<T> b, Span<T> c, Span<T> d)
        { LogDt = logDt; LogAReal = logAReal; AImag = aImag; P = p; B = b; C = c; D = d; }
    }

    private readonly int _h, _half, _kernelLength;

    public S4Reference(int h, int n, int kernelLength) : base(h)
    {
        if (h < 1 || n < 2 || n % 2 != 0 || kernelLength < 1)
            throw new ArgumentOutOfRangeException(nameof(n), "S4 needs H ≥ 1, an even N ≥ 2 and a kernel length ≥ 1.");
        (_h, _half, _kernelLength) = (h, n / 2, kernelLength);
    }

    public int KernelLength => _kernelLength;

    protected override Span<T> Skip(Params p) => p.D;

    private static Complex<T> At(ReadOnlySpan<T> s, int i) => new(s[2 * i], s[2 * i + 1]);

    private static void Add(Span<T> s, int i, Complex<T> v) { s[2 * i] += v.Re; s[2 * i + 1] += v.Im; }

    private static T C(double v) => T.CreateChecked(v);

    private Complex<T> Lambda(Params p, int i) => new(-T.Exp(p.LogAReal[i]), p.AImag[i]);

    /// <summary>The Lk-th roots of unity exp(−2πi·j/Lk), j &lt; Lk.</summary>
    private Complex<T>[] Roots()
    {
        var z = new Complex<T>[_kernelLength];
        for (int j = 0; j < _kernelLength; j++)
        {
            T angle = C(-2 * Math.PI * j / _kernelLength);
            z[j] = new Complex<T>(T.Cos(angle), T.Sin(angle));
        }
        return z;
    }

    /// <summary>
    /// Mode i at a root (d, σ): its Cauchy factors s = 1/(d − σλ) and t = 1/(d − σλ̄), and into <paramref name="w"/> the
    /// products w₀₀ = C̃·B, w₀₁ = C̃·P, w₁₀ = P̄·B and w₁₁ = |P|² the four sums weigh them by.
    /// </summary>
    private (Complex<T> S, Complex<T> T) Terms(Params p, int i, Complex<T> d, Complex<T> sigma, Span<Complex<T>> w)
    {
        var lambda = Lambda(p, i);
        var (cc, bb, pp) = (At(p.C, i), At(p.B, i), At(p.P, i));
        (w[0], w[1], w[2], w[3]) = (cc * bb, cc * pp, pp.Conj * bb, (pp.Re * pp.Re + pp.Im * pp.Im) * Complex<T>.One);
        return (Complex<T>.One / (d - sigma * lambda), Complex<T>.One / (d - sigma * lambda.Conj));
    }

    /// <summary>The generating function of channel h at z: K̂ and the Cauchy sums it is made of.</summary>
    private (Complex<T> Value, Complex<T> Q00, Complex<T> Q01, Complex<T> Q10, Complex<T> Q11, Complex<T> Sigma, Complex<T> D) Spectrum(Params p, int h, Complex<T> z)
    {
        T dt = T.Exp(p.LogDt[h]);
        var d = (T.One / dt) * (Complex<T>.One - z);
        var sigma = C(0.5) * (Complex<T>.One + z);
        Complex<T> q00 = default, q01 = default, q10 = default, q11 = default;
        var w = new Complex<T>[4];
        for (int n = 0; n < _half; n++)
        {
            var (s, t) = Terms(p, h * _half + n, d, sigma, w);
            q00 += w[0] * s + w[0].Conj * t;
            q01 += w[1] * s + w[1].Conj * t;
            q10 += w[2] * s + w[2].Conj * t;
            q11 += w[3] * s + w[3].Conj * t;
        }
        var value = q00 - sigma * q01 * q10 / (Complex<T>.One + sigma * q11);
        return (value, q00, q01, q10, q11, sigma, d);
    }

    /// <summary>The convolution kernel K (H, L) for L ≤ Lk: the first L taps of the inverse DFT of K̂.</summary>
    public override T[] Kernel(Params p, int length)
    {
        CheckLength(length);
        var roots = Roots();
        var k = new T[_h * length];
        var spectrum = new Complex<T>[_kernelLength];
        for (int h = 0; h < _h; h++)
        {
            for (int j = 0; j < _kernelLength; j++) spectrum[j] = Spectrum(p, h, roots[j]).Value;
            for (int l = 0; l < length; l++)
            {
                T s = T.Zero;
                for (int j = 0; j < _kernelLength; j++) s += (spectrum[j] * roots[(int)((long)j * l % _kernelLength)].Conj).Re;
                k[h * length + l] = s / C(_kernelLength);
            }
        }
        return k;
    }

    private void CheckLength(int length)
    {
        if (length < 1 || length > _kernelLength)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"An S4 layer with kernel length {_kernelLength} takes sequences of 1 to {_kernelLength} steps.");
    }

    /// <summary>
    /// Channel h in the diagonal basis with the conjugate half written out (modes n and m + n are conjugates):
    /// the bilinear Ā (N × N, dense) and B̄ (N).
    /// </summary>
    public (Complex<T>[,] Transition, Complex<T>[] Input) Discretize(Params p, int h)
    {
        int n = 2 * _half;
        T dt = T.Exp(p.LogDt[h]), half = C(0.5) * dt;
        var a = new Complex<T>[n, n];
        var b = new Complex<T>[n];
        for (int r = 0; r < n; r++)
        {
            var (lr, pr) = Mode(p, h, r);
            b[r] = r < _half ? At(p.B, h * _half + r) : At(p.B, h * _half + r - _half).Conj;
            for (int c = 0; c < n; c++)
            {
                var (_, pc) = Mode(p, h, c);
                a[r, c] = -(pr * pc.Conj) + (r == c ? lr : default);
            }
        }
        // Ā = (I − Δ/2·A)⁻¹(I + Δ/2·A), B̄ = (I − Δ/2·A)⁻¹·Δ·B: one solve with N + 1 right-hand sides
        var left = new Complex<T>[n, n];
        var right = new Complex<T>[n, n + 1];
        for (int r = 0; r < n; r++)
        {
            for (int c = 0; c < n; c++)
            {
                var identity = r == c ? Complex<T>.One : default;
                left[r, c] = identity - half * a[r, c];
                right[r, c] = identity + half * a[r, c];
            }
            right[r, n] = dt * b[r];
        }
        var x = Solve(left, right);
        var transition = new Complex<T>[n, n];
        var input = new Complex<T>[n];
        for (int r = 0; r < n; r++)
        {
            for (int c = 0; c < n; c++) transition[r, c] = x[r, c];
            input[r] = x[r, n];
        }
        return (transition, input);
    }

    /// <summary>λ and p of row r of the full (N-mode) system.</summary>
    private (Complex<T> Lambda, Complex<T> P) Mode(Params p, int h, int r) =>
        r < _half ? (Lambda(p, h * _half + r), At(p.P, h * _half + r)) : (Lambda(p, h * _half + r - _half).Conj, At(p.P, h * _half + r - _half).Conj);

    /// <summary>The output row C = C̃·(I − Ā^Lk)⁻¹ of channel h (N, conjugate half written out): what the recurrence reads.</summary>
    public Complex<T>[] OutputRow(Params p, int h)
    {
        int n = 2 * _half;
        var (a, _) = Discretize(p, h);
        var power = Power(a, _kernelLength);
        // C·(I − Ā^Lk) = C̃  ⇔  (I − Ā^Lk)ᵀ·Cᵀ = C̃ᵀ
        var m = new Complex<T>[n, n];
        var rhs = new Complex<T>[n, 1];
        for (int r = 0; r < n; r++)
        {
            for (int c = 0; c < n; c++) m[r, c] = (r == c ? Complex<T>.One : default) - power[c, r];
            rhs[r, 0] = r < _half ? At(p.C, h * _half + r) : At(p.C, h * _half + r - _half).Conj;
        }
        var x = Solve(m, rhs);
        var row = new Complex<T>[n];
        for (int r = 0; r < n; r++) row[r] = x[r, 0];
        return row;
    }

    /// <summary>Recurrent mode, one step at a time with the dense Ā: x ← Ā·x + B̄·u, y = Re(C·x) + D·u (C from <see cref="OutputRow"/>).</summary>
    public void Recurrent(Params p, ReadOnlySpan<T> u, Span<T> y, int batch, int length)
    {
        int n = 2 * _half;
        for (int h = 0; h < _h; h++)
        {
            var (a, bb) = Discretize(p, h);
            var c = OutputRow(p, h);
            var x = new Complex<T>[n];
            var next = new Complex<T>[n];
            for (int b = 0; b < batch; b++)
            {
                Array.Clear(x);
                for (int t = 0; t < length; t++)
                {
                    T ut = u[(b * length + t) * _h + h], s = p.D[h] * ut;
                    for (int r = 0; r < n; r++)
                    {
                        Complex<T> acc = ut * bb[r];
                        for (int q = 0; q < n; q++) acc += a[r, q] * x[q];
                        next[r] = acc;
                    }
                    (x, next) = (next, x);
                    for (int r = 0; r < n; r++) s += (c[r] * x[r]).Re;
                    y[(b * length + t) * _h + h] = s;
                }
            }
        }
    }

    /// <summary>
    /// From dL/dK (H, L) to the parameters (gradients of complex parameters written as ∂L/∂Re + i·∂L/∂Im). With
    /// Ĝ_j = (1/Lk)·Σ_l dK_l·z_j^(−l), dL = Re Σ_j Ĝ_j·dK̂(z_j). K̂ depends on each mode's w and λ through the term
    /// w/(d − σλ) and on their conjugates through the partner term; for a complex x with dL = Re(α·dx + β·dx̄),
    /// ∂L/∂Re x = Re(α + β) and ∂L/∂Im x = Im(β − α).
    /// </summary>
    public override void KernelBackward(Params p, Params g, ReadOnlySpan<T> dk, int length)
    {
        CheckLength(length);
        var roots = Roots();
        int m = _half;
        // per mode: α and β of each w_ab (4·m each), of λ (m)
        var alphaW = new Complex<T>[4 * m];
        var betaW = new Complex<T>[4 * m];
        var alphaL = new Complex<T>[m];
        var betaL = new Complex<T>[m];
        var w = new Complex<T>[4];
        for (int h = 0; h < _h; h++)
        {
            Array.Clear(alphaW); Array.Clear(betaW); Array.Clear(alphaL); Array.Clear(betaL);
            Complex<T> logDt = default;
            for (int j = 0; j < _kernelLength; j++)
            {
                Complex<T> gj = default;
                for (int l = 0; l < length; l++) gj += dk[h * length + l] * roots[(int)((long)j * l % _kernelLength)].Conj;
                gj = (T.One / C(_kernelLength)) * gj;
                var (_, _, q01, q10, q11, sigma, d) = Spectrum(p, h, roots[j]);
                var e = Complex<T>.One + sigma * q11;
                // ∂K̂/∂q_ab, each times Ĝ
                Span<Complex<T>> kq = [gj, -(gj * sigma * q10 / e), -(gj * sigma * q01 / e), gj * sigma * sigma * q01 * q10 / (e * e)];
                Complex<T> dd = default; // ∂K̂/∂d, times Ĝ
                for (int n = 0; n < m; n++)
                {
                    var (s, t) = Terms(p, h * m + n, d, sigma, w);
                    Complex<T> ws = default, wt = default;
                    for (int ab = 0; ab < 4; ab++)
                    {
                        alphaW[ab * m + n] += kq[ab] * s;
                        betaW[ab * m + n] += kq[ab] * t;
                        ws += kq[ab] * w[ab];
                        wt += kq[ab] * w[ab].Conj;
                    }
                    alphaL[n] += sigma * ws * s * s;
                    betaL[n] += sigma * wt * t * t;
                    dd -= ws * s * s + wt * t * t;
                }
                logDt += -(dd * d); // d = (1 − z)·exp(−log_dt)
            }
            g.LogDt[h] += logDt.Re;
            for (int n = 0; n < m; n++)
            {
                int i = h * m + n;
                var (cc, bb, pp) = (At(p.C, i), At(p.B, i), At(p.P, i));
                Complex<T> a00 = alphaW[n], a01 = alphaW[m + n], a10 = alphaW[2 * m + n], a11 = alphaW[3 * m + n];
                Complex<T> b00 = betaW[n], b01 = betaW[m + n], b10 = betaW[2 * m + n], b11 = betaW[3 * m + n];
                // w₀₀ = C̃·B, w₀₁ = C̃·P, w₁₀ = P̄·B (holomorphic in B, in P̄), w₁₁ = P·P̄ (real: dw̄₁₁ = dw₁₁)
                Add(g.C, i, Gradient(a00 * bb + a01 * pp, b00 * bb.Conj + b01 * pp.Conj));
                Add(g.B, i, Gradient(a00 * cc + a10 * pp.Conj, b00 * cc.Conj + b10 * pp));
                Add(g.P, i, Gradient(a01 * cc + b10 * bb.Conj + (a11 + b11) * pp.Conj, b01 * cc.Conj + a10 * bb + (a11 + b11) * pp));
                var gl = Gradient(alphaL[n], betaL[n]);
                g.LogAReal[i] += gl.Re * -T.Exp(p.LogAReal[i]);
                g.AImag[i] += gl.Im;
            }
        }
    }

    /// <summary>∂L/∂Re + i·∂L/∂Im of a complex x with dL = Re(α·dx + β·dx̄).</summary>
    private static Complex<T> Gradient(Complex<T> alpha, Complex<T> beta) => new((alpha + beta).Re, (beta - alpha).Im);

    /// <summary>X = M⁻¹·R by Gaussian elimination with partial pivoting (M is n × n, R is n × k).</summary>
    private static Complex<T>[,] Solve(Complex<T>[,] matrix, Complex<T>[,] rhs)
    {
        int n = matrix.GetLength(0), k = rhs.GetLength(1);
        var a = (Complex<T>[,])matrix.Clone();
        var x = (Complex<T>[,])rhs.Clone();
        for (int col = 0; col < n; col++)
        {
            int pivot = col;
            for (int r = col + 1; r < n; r++)
                if (Abs(a[r, col]) > Abs(a[pivot, col])) pivot = r;
            for (int c = 0; c < n; c++) (a[col, c], a[pivot, c]) = (a[pivot, c], a[col, c]);
            for (int c = 0; c < k; c++) (x[col, c], x[pivot, c]) = (x[pivot, c], x[col, c]);
            var inv = Complex<T>.One / a[col, col];
            for (int r = 0; r < n; r++)
            {
                if (r == col) continue;
                var f = a[r, col] * inv;
                if (f == default) continue;
                for (int c = col; c < n; c++) a[r, c] -= f * a[col, c];
                for (int c = 0; c < k; c++) x[r, c] -= f * x[col, c];
            }
        }
        for (int r = 0; r < n; r++)
        {
            var inv = Complex<T>.One / a[r, r];
            for (int c = 0; c < k; c++) x[r, c] = x[r, c] * inv;
        }
        return x;
    }

    private static T Abs(Complex<T> z) => T.Abs(z.Re) + T.Abs(z.Im);

    /// <summary>Mᵉ by repeated squaring.</summary>
    private static Complex<T>[,] Power(Complex<T>[,] m, int e)
    {
        int n = m.GetLength(0);
        var result = new Complex<T>[n, n];
        for (int i = 0; i < n; i++) result[i, i] = Complex<T>.One;
        var b = m;
        while (e > 0)
        {
            if ((e & 1) == 1) result = Multiply(result, b);
            e >>= 1;
            if (e > 0) b = Multiply(b, b);
        }
        return result;
    }

    private static Complex<T>[,] Multiply(Complex<T>[,] x, Complex<T>[,] y)
    {
        int n = x.GetLength(0);
        var z = new Complex<T>[n, n];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < n; k++)
            {
                var xik = x[i, k];
                if (xik == default) continue;
                for (int j = 0; j < n; j++) z[i, j] += xik * y[k, j];
            }
        return z;
    }
}
