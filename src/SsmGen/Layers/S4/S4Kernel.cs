using SsmGen.Reference;

namespace SsmGen.Numerics;

/// <summary>
/// The float core of S4 blocks (see <see cref="S4Reference{T}"/> for the map): the convolution kernel (H, L) from the
/// DPLR parameters by the generating function at the Lk-th roots of unity (Cauchy sums and the Woodbury identity, in
/// double per root) and one inverse FFT of size Lk per channel; its backward, from dL/dK to the parameters; and the
/// recurrent step, O(N) per channel with the bilinear DPLR transition applied through the Woodbury identity. Buffers
/// are allocated once: Kernel, KernelBackward and Step allocate nothing. <see cref="Prepare"/> (a stream's start)
/// converts C̃ back to C with one dense N × N solve per channel, in double, and allocates.
/// </summary>
public sealed class S4Kernel
{
    /// <summary>Floats per mode in a stream's step tables: λ, p, D = 1/(1 − Δ/2·λ), Δ·B and C, each complex.</summary>
    public const int ModeTables = 10;

    /// <summary>Floats per channel after the mode tables: Δ/2 and Δ/2 / (1 + Δ/2·p*·D·p).</summary>
    public const int ChannelTables = 2;

    private readonly int _h, _m, _kernelLength;
    private readonly Fft _fft;
    private readonly float[] _re, _im;
    private readonly double[] _rootRe, _rootIm;
    // per mode, the kernel backward's α and β of w₀₀, w₀₁, w₁₀, w₁₁ and of λ (complex, as re/im pairs)
    private readonly double[] _alpha, _beta;

    public S4Kernel(int channels, int stateSize, int kernelLength, int maxLength)
    {
        if (channels < 1 || stateSize < 2 || stateSize % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(stateSize), "S4 needs H ≥ 1 and an even N ≥ 2.");
        if (kernelLength < 2 || (kernelLength & (kernelLength - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(kernelLength), kernelLength, "The S4 kernel length must be a power of two ≥ 2.");
        if (maxLength < 1 || maxLength > kernelLength)
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, $"An S4 block with kernel length {kernelLength} takes sequences of at most {kernelLength} steps; maxLength is {maxLength}.");
        (_h, _m, _kernelLength) = (channels, stateSize / 2, kernelLength);
        _fft = new Fft(kernelLength);
        (_re, _im) = (new float[kernelLength], new float[kernelLength]);
        (_rootRe, _rootIm) = (new double[kernelLength], new double[kernelLength]);
        for (int j = 0; j < kernelLength; j++)
        {
            double angle = -2 * Math.PI * j / kernelLength;
            (_rootRe[j], _rootIm[j]) = (Math.Cos(angle), Math.Sin(angle));
        }
        (_alpha, _beta) = (new double[10 * _m], new double[10 * _m]);
    }

    public int KernelLength => _kernelLength;

    /// <summary>Floats of a stream's step tables for all channels.</summary>
    public int StepTableSize => _h * (ModeTables * _m + ChannelTables);

    private readonly record struct C(double Re, double Im)
    {
        public static C operator +(C a, C b) => new(a.Re + b.Re, a.Im + b.Im);
        public static C operator -(C a, C b) => new(a.Re - b.Re, a.Im - b.Im);
        public static C operator *(C a, C b) => new(a.Re * b.Re - a.Im * b.Im, a.Re * b.Im + a.Im * b.Re);
        public static C operator *(double s, C a) => new(s * a.Re, s * a.Im);
        public static C operator /(C a, C b)
        {
            double d = b.Re * b.Re + b.Im * b.Im;
            return new((a.Re * b.Re + a.Im * b.Im) / d, (a.Im * b.Re - a.Re * b.Im) / d);
        }
        public C Conj => new(Re, -Im);
        public static readonly C One = new(1, 0);
    }

    private static C At(ReadOnlySpan<float> s, int i) => new(s[2 * i], s[2 * i + 1]);

    /// <summary>The kernel K (H, L) for L ≤ Lk from log Δ (H), log(−Re λ), Im λ (H, m) and P, B, C̃ (H, m, 2).</summary>
    public void Kernel(ReadOnlySpan<float> logDt, ReadOnlySpan<float> logAReal, ReadOnlySpan<float> aImag, ReadOnlySpan<float> p, ReadOnlySpan<float> b, ReadOnlySpan<float> c,
        Span<float> k, int length)
    {
        CheckLength(length);
        for (int h = 0; h < _h; h++)
        {
            for (int j = 0; j < _kernelLength; j++)
            {
                var point = Point(logDt, logAReal, aImag, p, b, c, h, j);
                var value = point.Q00 - point.Sigma * point.Q01 * point.Q10 / (C.One + point.Sigma * point.Q11);
                (_re[j], _im[j]) = ((float)value.Re, (float)value.Im);
            }
            _fft.Inverse(_re, _im, _kernelLength);
            _re.AsSpan(0, length).CopyTo(k.Slice(h * length, length));
        }
    }

    private void CheckLength(int length)
    {
        if (length < 1 || length > _kernelLength)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"An S4 block with kernel length {_kernelLength} takes sequences of 1 to {_kernelLength} steps.");
    }

    /// <summary>The Cauchy sums of channel h at root j, with σ = (1 + z)/2 and d = (1 − z)/Δ.</summary>
    private (C Q00, C Q01, C Q10, C Q11, C Sigma, C D) Point(ReadOnlySpan<float> logDt, ReadOnlySpan<float> logAReal, ReadOnlySpan<float> aImag,
        ReadOnlySpan<float> p, ReadOnlySpan<float> b, ReadOnlySpan<float> c, int h, int j)
    {
        var z = new C(_rootRe[j], _rootIm[j]);
        var d = Math.Exp(-logDt[h]) * (C.One - z);
        var sigma = 0.5 * (C.One + z);
        C q00 = default, q01 = default, q10 = default, q11 = default;
        for (int n = 0; n < _m; n++)
        {
            int i = h * _m + n;
            var lambda = new C(-Math.Exp(logAReal[i]), aImag[i]);
            var s = C.One / (d - sigma * lambda);
            var t = C.One / (d - sigma * lambda.Conj);
            var (cc, bb, pp) = (At(c, i), At(b, i), At(p, i));
            C w00 = cc * bb, w01 = cc * pp, w10 = pp.Conj * bb;
            double w11 = pp.Re * pp.Re + pp.Im * pp.Im;
            q00 += w00 * s + w00.Conj * t;
            q01 += w01 * s + w01.Conj * t;
            q10 += w10 * s + w10.Conj * t;
            q11 += w11 * (s + t);
        }
        return (q00, q01, q10, q11, sigma, d);
    }

    /// <summary>
    /// Adds the parameters' gradients from dL/dK (H, L): Ĝ = the inverse FFT of dK (zero-padded to Lk), then per root
    /// and mode the same sums as <see cref="S4Reference{T}.KernelBackward"/>.
    /// </summary>
    public void KernelBackward(ReadOnlySpan<float> logDt, ReadOnlySpan<float> logAReal, ReadOnlySpan<float> aImag, ReadOnlySpan<float> p, ReadOnlySpan<float> b, ReadOnlySpan<float> c,
        ReadOnlySpan<float> dk, Span<float> gLogDt, Span<float> gLogAReal, Span<float> gAImag, Span<float> gP, Span<float> gB, Span<float> gC, int length)
    {
        CheckLength(length);
        int m = _m;
        for (int h = 0; h < _h; h++)
        {
            Array.Clear(_re);
            Array.Clear(_im);
            dk.Slice(h * length, length).CopyTo(_re);
            _fft.Inverse(_re, _im, _kernelLength); // Ĝ_j = (1/Lk)·Σ_l dK_l·z_j^(−l)
            Array.Clear(_alpha);
            Array.Clear(_beta);
            C logDtSum = default;
            for (int j = 0; j < _kernelLength; j++)
            {
                var g = new C(_re[j], _im[j]);
                var (_, q01, q10, q11, sigma, d) = Point(logDt, logAReal, aImag, p, b, c, h, j);
                var e = C.One + sigma * q11;
                C k00 = g, k01 = new C(0, 0) - g * sigma * q10 / e, k10 = new C(0, 0) - g * sigma * q01 / e, k11 = g * sigma * sigma * q01 * q10 / (e * e);
                C dd = default;
                for (int n = 0; n < m; n++)
                {
                    int i = h * m + n;
                    var lambda = new C(-Math.Exp(logAReal[i]), aImag[i]);
                    var s = C.One / (d - sigma * lambda);
                    var t = C.One / (d - sigma * lambda.Conj);
                    var (cc, bb, pp) = (At(c, i), At(b, i), At(p, i));
                    C w00 = cc * bb, w01 = cc * pp, w10 = pp.Conj * bb, w11 = new(pp.Re * pp.Re + pp.Im * pp.Im, 0);
                    Accumulate(_alpha, 0, n, k00 * s); Accumulate(_beta, 0, n, k00 * t);
                    Accumulate(_alpha, 1, n, k01 * s); Accumulate(_beta, 1, n, k01 * t);
                    Accumulate(_alpha, 2, n, k10 * s); Accumulate(_beta, 2, n, k10 * t);
                    Accumulate(_alpha, 3, n, k11 * s); Accumulate(_beta, 3, n, k11 * t);
                    var ws = k00 * w00 + k01 * w01 + k10 * w10 + k11 * w11;
                    var wt = k00 * w00.Conj + k01 * w01.Conj + k10 * w10.Conj + k11 * w11;
                    Accumulate(_alpha, 4, n, sigma * ws * s * s);
                    Accumulate(_beta, 4, n, sigma * wt * t * t);
                    dd = dd - (ws * s * s + wt * t * t);
                }
                logDtSum = logDtSum - dd * d;
            }
            gLogDt[h] += (float)logDtSum.Re;
            for (int n = 0; n < m; n++)
            {
                int i = h * m + n;
                var (cc, bb, pp) = (At(c, i), At(b, i), At(p, i));
                C a00 = Read(_alpha, 0, n), a01 = Read(_alpha, 1, n), a10 = Read(_alpha, 2, n), a11 = Read(_alpha, 3, n);
                C b00 = Read(_beta, 0, n), b01 = Read(_beta, 1, n), b10 = Read(_beta, 2, n), b11 = Read(_beta, 3, n);
                AddGradient(gC, i, a00 * bb + a01 * pp, b00 * bb.Conj + b01 * pp.Conj);
                AddGradient(gB, i, a00 * cc + a10 * pp.Conj, b00 * cc.Conj + b10 * pp);
                AddGradient(gP, i, a01 * cc + b10 * bb.Conj + (a11 + b11) * pp.Conj, b01 * cc.Conj + a10 * bb + (a11 + b11) * pp);
                var al = Read(_alpha, 4, n);
                var bl = Read(_beta, 4, n);
                gLogAReal[i] += (float)((al + bl).Re * -Math.Exp(logAReal[i]));
                gAImag[i] += (float)(bl - al).Im;
            }
        }
    }

    private void Accumulate(double[] a, int which, int n, C v) { a[2 * (which * _m + n)] += v.Re; a[2 * (which * _m + n) + 1] += v.Im; }

    private C Read(double[] a, int which, int n) => new(a[2 * (which * _m + n)], a[2 * (which * _m + n) + 1]);

    /// <summary>∂L/∂Re + i·∂L/∂Im of a complex x with dL = Re(α·dx + β·dx̄), added to x's gradient.</summary>
    private static void AddGradient(Span<float> g, int i, C alpha, C beta)
    {
        g[2 * i] += (float)(alpha + beta).Re;
        g[2 * i + 1] += (float)(beta - alpha).Im;
    }

    /// <summary>
    /// A stream's step tables (<see cref="StepTableSize"/> floats) from the current parameters: per mode λ, p,
    /// D = 1/(1 − Δ/2·λ), Δ·B and the output row C = C̃·(I − Ā^Lk)⁻¹ (a dense solve per channel, in double), then per
    /// channel Δ/2 and Δ/2 / (1 + Δ/2·p*·D·p). Allocates.
    /// </summary>
    public void Prepare(ReadOnlySpan<float> logDt, ReadOnlySpan<float> logAReal, ReadOnlySpan<float> aImag, ReadOnlySpan<float> p, ReadOnlySpan<float> b, ReadOnlySpan<float> c,
        Span<float> tables)
    {
        int m = _m;
        var reference = new S4Reference<double>(1, 2 * m, _kernelLength);
        double[] Of(ReadOnlySpan<float> s, int h, int per) { var a = new double[per]; for (int i = 0; i < per; i++) a[i] = s[h * per + i]; return a; }
        for (int h = 0; h < _h; h++)
        {
            var (dt, re, im, pp, bb, cc) = (new[] { (double)logDt[h] }, Of(logAReal, h, m), Of(aImag, h, m), Of(p, h, 2 * m), Of(b, h, 2 * m), Of(c, h, 2 * m));
            var row = reference.OutputRow(new S4Reference<double>.Params(dt, re, im, pp, bb, cc, new double[1]), 0);
            double delta = Math.Exp(logDt[h]), half = delta / 2, pdp = 0;
            var at = tables.Slice(h * (ModeTables * m + ChannelTables), ModeTables * m + ChannelTables);
            for (int n = 0; n < m; n++)
            {
                var lambda = new C(-Math.Exp(re[n]), im[n]);
                var pn = new C(pp[2 * n], pp[2 * n + 1]);
                var dn = C.One / (C.One - half * lambda);
                var bn = delta * new C(bb[2 * n], bb[2 * n + 1]);
                var values = new[] { lambda, pn, dn, bn, new C(row[n].Re, row[n].Im) };
                for (int v = 0; v < 5; v++) (at[(2 * v) * m + n], at[(2 * v + 1) * m + n]) = ((float)values[v].Re, (float)values[v].Im);
                pdp += 2 * (pn.Re * pn.Re + pn.Im * pn.Im) * dn.Re;
            }
            at[ModeTables * m] = (float)half;
            at[ModeTables * m + 1] = (float)(half / (1 + half * pdp));
        }
    }

    /// <summary>
    /// One step of every channel: with s = p*·x, v = x + Δ/2·(Λx − p·s) + Δ·B·u, x ← D·v − D·p·(Δ/2)·(p*·D·v)/(1 + Δ/2·p*·D·p),
    /// y = 2·Re(C·x) + D_skip·u; the state x is [Re | Im] (H, m), every p*· sum over both conjugate halves (2·Re).
    /// </summary>
    public void Step(ReadOnlySpan<float> tables, ReadOnlySpan<float> skip, Span<float> state, ReadOnlySpan<float> u, Span<float> y)
    {
        int m = _m;
        for (int h = 0; h < _h; h++)
        {
            var at = tables.Slice(h * (ModeTables * m + ChannelTables), ModeTables * m + ChannelTables);
            var xr = state.Slice(2 * h * m, m);
            var xi = state.Slice(2 * h * m + m, m);
            float half = at[ModeTables * m], gain = at[ModeTables * m + 1], uh = u[h];
            float s = 0;
            for (int n = 0; n < m; n++) s += 2 * (at[2 * m + n] * xr[n] + at[3 * m + n] * xi[n]); // 2·Re(p̄·x)
            float t = 0;
            for (int n = 0; n < m; n++)
            {
                float lr = at[n], li = at[m + n], pr = at[2 * m + n], pi = at[3 * m + n];
                // v = x + Δ/2·(λx − p·s) + Δ·B·u
                float vr = xr[n] + half * (lr * xr[n] - li * xi[n] - pr * s) + at[6 * m + n] * uh;
                float vi = xi[n] + half * (lr * xi[n] + li * xr[n] - pi * s) + at[7 * m + n] * uh;
                // D·v into x for now
                float dr = at[4 * m + n], di = at[5 * m + n];
                xr[n] = dr * vr - di * vi;
                xi[n] = dr * vi + di * vr;
                t += 2 * (pr * xr[n] + pi * xi[n]);
            }
            float acc = skip[h] * uh, f = gain * t;
            for (int n = 0; n < m; n++)
            {
                float pr = at[2 * m + n], pi = at[3 * m + n], dr = at[4 * m + n], di = at[5 * m + n];
                // x ← D·v − D·p·(Δ/2·t/(1 + Δ/2·p*Dp))
                xr[n] -= f * (dr * pr - di * pi);
                xi[n] -= f * (dr * pi + di * pr);
                acc += 2 * (at[8 * m + n] * xr[n] - at[9 * m + n] * xi[n]);
            }
            y[h] = acc;
        }
    }
}
