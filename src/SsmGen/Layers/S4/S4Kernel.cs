using System.Numerics;
using SsmGen.Reference;

namespace SsmGen.Numerics;

/// <summary>Where an S4 block's SSM tensors start in a flat parameter buffer (and, at the same offsets, in its gradients).</summary>
public readonly record struct S4Tensors(int LogDt, int LogAReal, int AImag, int P, int B, int C);

/// <summary>
/// The float core of S4 blocks (see <see cref="S4Reference{T}"/> for the map): the convolution kernel (H, L) from the
/// DPLR parameters by the generating function at the Lk-th roots of unity (Cauchy sums and the Woodbury identity, in
/// double per root; the kernel is real, so only the roots j ≤ Lk/2 are evaluated and the rest are their conjugates)
/// and one inverse FFT of size Lk per channel; its backward, from dL/dK to the parameters; and the recurrent step,
/// O(N) per channel with the bilinear DPLR transition applied through the Woodbury identity. Channels run in parallel
/// on the <see cref="WorkerPool"/>, each part with its own scratch. Buffers are allocated once: Kernel,
/// KernelBackward and Step allocate nothing. <see cref="Prepare"/> (a stream's start) converts C̃ back to C with one
/// dense N × N solve per channel, in double, and allocates.
/// </summary>
public sealed unsafe class S4Kernel : ParallelWork
{
    /// <summary>Floats per mode in a stream's step tables: λ, p, D = 1/(1 − Δ/2·λ), Δ·B and C, each complex.</summary>
    public const int ModeTables = 10;

    /// <summary>Floats per channel after the mode tables: Δ/2 and Δ/2 / (1 + Δ/2·p*·D·p).</summary>
    public const int ChannelTables = 2;

    private readonly int _h, _m, _kernelLength;
    private readonly Fft _fft;
    private readonly double[] _rootRe, _rootIm;
    // Per worker part: the spectrum (re, im; Lk each) and, for the backward, the α and β of w₀₀, w₀₁, w₁₀, w₁₁ and λ
    // per mode (complex, as re/im pairs).
    private readonly float[][] _re, _im;
    private readonly double[][] _alpha, _beta;
    // Per worker part, per mode of the channel at hand: λ, w₀₀ = C̃·B, w₀₁ = C̃·P, w₁₀ = P̄·B (re, im each) and w₁₁ = |P|²;
    // and the Cauchy factors s = 1/(d − σλ), t = 1/(d − σλ̄) at the root at hand (re, im each).
    private readonly double[][] _modes, _factors;
    private const int ModeValues = 9;
    // The call the parts run.
    private float[] _p = [], _g = [];
    private float* _k; // K or dK (H, length), pinned for the call
    private S4Tensors _at;
    private int _length;
    private bool _backward;

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
        (_rootRe, _rootIm) = (new double[kernelLength], new double[kernelLength]);
        for (int j = 0; j < kernelLength; j++)
        {
            double angle = -2 * Math.PI * j / kernelLength;
            (_rootRe[j], _rootIm[j]) = (Math.Cos(angle), Math.Sin(angle));
        }
        int parts = WorkerPool.Shared.Concurrency;
        _re = Enumerable.Range(0, parts).Select(_ => new float[kernelLength]).ToArray();
        _im = Enumerable.Range(0, parts).Select(_ => new float[kernelLength]).ToArray();
        _alpha = Enumerable.Range(0, parts).Select(_ => new double[10 * _m]).ToArray();
        _beta = Enumerable.Range(0, parts).Select(_ => new double[10 * _m]).ToArray();
        _modes = Enumerable.Range(0, parts).Select(_ => new double[ModeValues * _m]).ToArray();
        _factors = Enumerable.Range(0, parts).Select(_ => new double[4 * _m]).ToArray();
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

    /// <summary>
    /// The kernel K (H, L) into <paramref name="k"/> for L ≤ Lk, from log Δ (H), log(−Re λ), Im λ (H, m) and P, B, C̃
    /// (H, m, 2) in <paramref name="parameters"/> at <paramref name="at"/>.
    /// </summary>
    public void Kernel(float[] parameters, S4Tensors at, Span<float> k, int length)
    {
        CheckLength(length);
        if (k.Length < _h * length) throw new ArgumentException($"The kernel buffer holds {k.Length} values; {_h * length} are needed.", nameof(k));
        (_p, _at, _length, _backward) = (parameters, at, length, false);
        fixed (float* pk = k) Run(pk);
    }

    /// <summary>
    /// Adds the parameters' gradients into <paramref name="gradients"/> (at the same offsets) from dL/dK (H, L) in
    /// <paramref name="dk"/>: Ĝ = the inverse FFT of dK (zero-padded to Lk), then per root and mode the same sums as
    /// <see cref="S4Reference{T}.KernelBackward"/>, the roots past Lk/2 counted through their conjugates.
    /// </summary>
    public void KernelBackward(float[] parameters, float[] gradients, S4Tensors at, ReadOnlySpan<float> dk, int length)
    {
        CheckLength(length);
        if (dk.Length < _h * length) throw new ArgumentException($"dK holds {dk.Length} values; {_h * length} are needed.", nameof(dk));
        (_p, _g, _at, _length, _backward) = (parameters, gradients, at, length, true);
        fixed (float* pk = dk) Run(pk);
    }

    private void Run(float* k)
    {
        _k = k;
        var pool = WorkerPool.Shared;
        int parts = Math.Min(_h, pool.Concurrency);
        try
        {
            if (parts <= 1) Execute(0, 1);
            else pool.Run(this, parts);
        }
        finally { _k = null; } // the pin ends with the call
    }

    /// <summary>Part <paramref name="part"/> of the channels of the current call.</summary>
    public override void Execute(int part, int parts)
    {
        var (start, end) = WorkerPool.Share(_h, part, parts);
        for (int h = start; h < end; h++)
            if (_backward) ChannelBackward(h, part); else ChannelKernel(h, part);
    }

    private ReadOnlySpan<float> P(int offset, int length) => _p.AsSpan(offset, length);

    private void ChannelKernel(int h, int part)
    {
        var (re, im) = (_re[part], _im[part]);
        int half = _kernelLength / 2;
        LoadModes(h, part);
        for (int j = 0; j <= half; j++)
        {
            var point = Point(h, j, part);
            var value = point.Q00 - point.Sigma * point.Q01 * point.Q10 / (C.One + point.Sigma * point.Q11);
            (re[j], im[j]) = ((float)value.Re, (float)value.Im);
            if (j > 0 && j < half) (re[_kernelLength - j], im[_kernelLength - j]) = ((float)value.Re, (float)-value.Im);
        }
        _fft.Inverse(re, im, _kernelLength);
        re.AsSpan(0, _length).CopyTo(new Span<float>(_k + (long)h * _length, _length));
    }

    private void CheckLength(int length)
    {
        if (length < 1 || length > _kernelLength)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"An S4 block with kernel length {_kernelLength} takes sequences of 1 to {_kernelLength} steps.");
    }

    /// <summary>Channel h's per-mode values into the part's scratch (<see cref="_modes"/>), once per channel and call.</summary>
    private void LoadModes(int h, int part)
    {
        int hm = _h * _m;
        ReadOnlySpan<float> logAReal = P(_at.LogAReal, hm), aImag = P(_at.AImag, hm), p = P(_at.P, 2 * hm), b = P(_at.B, 2 * hm), c = P(_at.C, 2 * hm);
        var modes = _modes[part];
        for (int n = 0; n < _m; n++)
        {
            int i = h * _m + n;
            var (cc, bb, pp) = (At(c, i), At(b, i), At(p, i));
            C w00 = cc * bb, w01 = cc * pp, w10 = pp.Conj * bb;
            Span<double> v = [-Math.Exp(logAReal[i]), aImag[i], w00.Re, w00.Im, w01.Re, w01.Im, w10.Re, w10.Im, pp.Re * pp.Re + pp.Im * pp.Im];
            for (int k = 0; k < ModeValues; k++) modes[k * _m + n] = v[k];
        }
    }

    /// <summary>
    /// The Cauchy sums of channel h (its modes loaded) at root j, with σ = (1 + z)/2 and d = (1 − z)/Δ; the factors s
    /// and t of every mode stay in the part's scratch (<see cref="_factors"/>) for the backward.
    /// </summary>
    private (C Q00, C Q01, C Q10, C Q11, C Sigma, C D) Point(int h, int j, int part)
    {
        var (modes, f) = (_modes[part], _factors[part]);
        int m = _m, lanes = Vector<double>.Count, n = 0;
        double zr = _rootRe[j], zi = _rootIm[j], rate = Math.Exp(-_p[_at.LogDt + h]);
        double dr = rate * (1 - zr), di = -rate * zi, sr = 0.5 * (1 + zr), si = 0.5 * zi;
        // The modes in vector lanes (the sums' lanes added at the end), then the rest one by one.
        Vector<double> vdr = new(dr), vdi = new(di), vsr = new(sr), vsi = new(si), one = Vector<double>.One;
        Vector<double> a00r = default, a00i = default, a01r = default, a01i = default, a10r = default, a10i = default, a11r = default, a11i = default;
        for (; n <= m - lanes; n += lanes)
        {
            Vector<double> lr = Load(modes, n), li = Load(modes, m + n);
            var ar = vdr - (vsr * lr - vsi * li);
            var ai = vdi - (vsr * li + vsi * lr);
            var br = vdr - (vsr * lr + vsi * li);
            var bi = vdi - (vsi * lr - vsr * li);
            var an = one / (ar * ar + ai * ai);
            var bn = one / (br * br + bi * bi);
            Vector<double> s1 = ar * an, s2 = -ai * an, t1 = br * bn, t2 = -bi * bn;
            s1.CopyTo(f, n); s2.CopyTo(f, m + n); t1.CopyTo(f, 2 * m + n); t2.CopyTo(f, 3 * m + n);
            Vector<double> w0r = Load(modes, 2 * m + n), w0i = Load(modes, 3 * m + n), w1r = Load(modes, 4 * m + n), w1i = Load(modes, 5 * m + n);
            Vector<double> w2r = Load(modes, 6 * m + n), w2i = Load(modes, 7 * m + n), w3 = Load(modes, 8 * m + n);
            Vector<double> st = s1 + t1, sd = s2 - t2, sp = s2 + t2, td = s1 - t1;
            // w·s + w̄·t = (wr·(s1 + t1) − wi·(s2 − t2)) + i·(wr·(s2 + t2) + wi·(s1 − t1))
            a00r += w0r * st - w0i * sd; a00i += w0r * sp + w0i * td;
            a01r += w1r * st - w1i * sd; a01i += w1r * sp + w1i * td;
            a10r += w2r * st - w2i * sd; a10i += w2r * sp + w2i * td;
            a11r += w3 * st; a11i += w3 * sp;
        }
        double q00r = Vector.Sum(a00r), q00i = Vector.Sum(a00i), q01r = Vector.Sum(a01r), q01i = Vector.Sum(a01i);
        double q10r = Vector.Sum(a10r), q10i = Vector.Sum(a10i), q11r = Vector.Sum(a11r), q11i = Vector.Sum(a11i);
        for (; n < m; n++)
        {
            double lr = modes[n], li = modes[m + n];
            // d − σλ and d − σλ̄
            double ar = dr - (sr * lr - si * li), ai = di - (sr * li + si * lr);
            double br = dr - (sr * lr + si * li), bi = di - (si * lr - sr * li);
            double an = 1 / (ar * ar + ai * ai), bn = 1 / (br * br + bi * bi);
            double s1 = ar * an, s2 = -ai * an, t1 = br * bn, t2 = -bi * bn;
            (f[n], f[m + n], f[2 * m + n], f[3 * m + n]) = (s1, s2, t1, t2);
            // w·s + w̄·t for each w
            double w0r = modes[2 * m + n], w0i = modes[3 * m + n], w1r = modes[4 * m + n], w1i = modes[5 * m + n], w2r = modes[6 * m + n], w2i = modes[7 * m + n], w3 = modes[8 * m + n];
            q00r += w0r * s1 - w0i * s2 + w0r * t1 + w0i * t2; q00i += w0r * s2 + w0i * s1 + w0r * t2 - w0i * t1;
            q01r += w1r * s1 - w1i * s2 + w1r * t1 + w1i * t2; q01i += w1r * s2 + w1i * s1 + w1r * t2 - w1i * t1;
            q10r += w2r * s1 - w2i * s2 + w2r * t1 + w2i * t2; q10i += w2r * s2 + w2i * s1 + w2r * t2 - w2i * t1;
            q11r += w3 * (s1 + t1); q11i += w3 * (s2 + t2);
        }
        return (new C(q00r, q00i), new C(q01r, q01i), new C(q10r, q10i), new C(q11r, q11i), new C(sr, si), new C(dr, di));
    }

    private static Vector<double> Load(double[] a, int at) => new(a.AsSpan(at, Vector<double>.Count));

    private void ChannelBackward(int h, int part)
    {
        var (re, im, alpha, beta, modes, f) = (_re[part], _im[part], _alpha[part], _beta[part], _modes[part], _factors[part]);
        int m = _m, hm = _h * m, half = _kernelLength / 2;
        ReadOnlySpan<float> logAReal = P(_at.LogAReal, hm), p = P(_at.P, 2 * hm), b = P(_at.B, 2 * hm), c = P(_at.C, 2 * hm);
        Array.Clear(re);
        Array.Clear(im);
        new ReadOnlySpan<float>(_k + (long)h * _length, _length).CopyTo(re);
        _fft.Inverse(re, im, _kernelLength); // Ĝ_j = (1/Lk)·Σ_l dK_l·z_j^(−l)
        Array.Clear(alpha);
        Array.Clear(beta);
        LoadModes(h, part);
        C logDtSum = default;
        for (int j = 0; j <= half; j++)
        {
            // dL = Re Σ_j Ĝ_j·dK̂_j, and root Lk − j contributes what root j does (both conjugated)
            var g = (j == 0 || j == half ? 1.0 : 2.0) * new C(re[j], im[j]);
            var (_, q01, q10, q11, sigma, d) = Point(h, j, part);
            var e = C.One + sigma * q11;
            C k00 = g, k01 = new C(0, 0) - g * sigma * q10 / e, k10 = new C(0, 0) - g * sigma * q01 / e, k11 = g * sigma * sigma * q01 * q10 / (e * e);
            logDtSum = logDtSum + ModeSums(alpha, beta, modes, f, k00, k01, k10, k11, sigma) * d;
        }
        var gr = _g.AsSpan();
        gr[_at.LogDt + h] += (float)logDtSum.Re;
        for (int n = 0; n < m; n++)
        {
            int i = h * m + n;
            var (cc, bb, pp) = (At(c, i), At(b, i), At(p, i));
            C a00 = Read(alpha, 0, n), a01 = Read(alpha, 1, n), a10 = Read(alpha, 2, n), a11 = Read(alpha, 3, n);
            C b00 = Read(beta, 0, n), b01 = Read(beta, 1, n), b10 = Read(beta, 2, n), b11 = Read(beta, 3, n);
            AddGradient(gr.Slice(_at.C), i, a00 * bb + a01 * pp, b00 * bb.Conj + b01 * pp.Conj);
            AddGradient(gr.Slice(_at.B), i, a00 * cc + a10 * pp.Conj, b00 * cc.Conj + b10 * pp);
            AddGradient(gr.Slice(_at.P), i, a01 * cc + b10 * bb.Conj + (a11 + b11) * pp.Conj, b01 * cc.Conj + a10 * bb + (a11 + b11) * pp);
            var al = Read(alpha, 4, n);
            var bl = Read(beta, 4, n);
            gr[_at.LogAReal + i] += (float)((al + bl).Re * -Math.Exp(logAReal[i]));
            gr[_at.AImag + i] += (float)(bl - al).Im;
        }
    }

    /// <summary>
    /// One root's share of the sums over the roots, for every mode: α_ab += k_ab·s, β_ab += k_ab·t, α_λ += σ·ws·s²,
    /// β_λ += σ·wt·t² with ws = Σ_ab k_ab·w_ab and wt = Σ_ab k_ab·w̄_ab (planar: re at 2·which·m + n, im at
    /// (2·which + 1)·m + n); returns Σ_n (ws·s² + wt·t²), the root's d log Δ factor. Modes in vector lanes, then the rest.
    /// </summary>
    private C ModeSums(double[] alpha, double[] beta, double[] modes, double[] f, C k00, C k01, C k10, C k11, C sigma)
    {
        int m = _m, lanes = Vector<double>.Count, n = 0;
        Vector<double> k00r = new(k00.Re), k00i = new(k00.Im), k01r = new(k01.Re), k01i = new(k01.Im);
        Vector<double> k10r = new(k10.Re), k10i = new(k10.Im), k11r = new(k11.Re), k11i = new(k11.Im), sgr = new(sigma.Re), sgi = new(sigma.Im);
        Vector<double> ddr = default, ddi = default;
        for (; n <= m - lanes; n += lanes)
        {
            Vector<double> s1 = Load(f, n), s2 = Load(f, m + n), t1 = Load(f, 2 * m + n), t2 = Load(f, 3 * m + n);
            AddProduct(alpha, 0, n, k00r, k00i, s1, s2); AddProduct(beta, 0, n, k00r, k00i, t1, t2);
            AddProduct(alpha, 1, n, k01r, k01i, s1, s2); AddProduct(beta, 1, n, k01r, k01i, t1, t2);
            AddProduct(alpha, 2, n, k10r, k10i, s1, s2); AddProduct(beta, 2, n, k10r, k10i, t1, t2);
            AddProduct(alpha, 3, n, k11r, k11i, s1, s2); AddProduct(beta, 3, n, k11r, k11i, t1, t2);
            Vector<double> w0r = Load(modes, 2 * m + n), w0i = Load(modes, 3 * m + n), w1r = Load(modes, 4 * m + n), w1i = Load(modes, 5 * m + n);
            Vector<double> w2r = Load(modes, 6 * m + n), w2i = Load(modes, 7 * m + n), w3 = Load(modes, 8 * m + n);
            // the parts of Σ k·w without w's imaginary parts (shared by ws and wt), and with them
            var pr = k00r * w0r + k01r * w1r + k10r * w2r + w3 * k11r;
            var pi = k00i * w0r + k01i * w1r + k10i * w2r + w3 * k11i;
            var qr = k00i * w0i + k01i * w1i + k10i * w2i;
            var qi = k00r * w0i + k01r * w1i + k10r * w2i;
            Vector<double> wsr = pr - qr, wsi = pi + qi, wtr = pr + qr, wti = pi - qi;
            // ws·s² and wt·t²
            Vector<double> s2r = s1 * s1 - s2 * s2, s2i = 2 * s1 * s2, t2r = t1 * t1 - t2 * t2, t2i = 2 * t1 * t2;
            Vector<double> xr = wsr * s2r - wsi * s2i, xi = wsr * s2i + wsi * s2r, yr = wtr * t2r - wti * t2i, yi = wtr * t2i + wti * t2r;
            AddProduct(alpha, 4, n, sgr, sgi, xr, xi); AddProduct(beta, 4, n, sgr, sgi, yr, yi);
            ddr += xr + yr; ddi += xi + yi;
        }
        C dd = new(Vector.Sum(ddr), Vector.Sum(ddi));
        for (; n < m; n++)
        {
            C s = new(f[n], f[m + n]), t = new(f[2 * m + n], f[3 * m + n]);
            C w00 = new(modes[2 * m + n], modes[3 * m + n]), w01 = new(modes[4 * m + n], modes[5 * m + n]), w10 = new(modes[6 * m + n], modes[7 * m + n]);
            double w11 = modes[8 * m + n];
            Accumulate(alpha, 0, n, k00 * s); Accumulate(beta, 0, n, k00 * t);
            Accumulate(alpha, 1, n, k01 * s); Accumulate(beta, 1, n, k01 * t);
            Accumulate(alpha, 2, n, k10 * s); Accumulate(beta, 2, n, k10 * t);
            Accumulate(alpha, 3, n, k11 * s); Accumulate(beta, 3, n, k11 * t);
            var ws = k00 * w00 + k01 * w01 + k10 * w10 + w11 * k11;
            var wt = k00 * w00.Conj + k01 * w01.Conj + k10 * w10.Conj + w11 * k11;
            var x = ws * (s * s);
            var y = wt * (t * t);
            Accumulate(alpha, 4, n, sigma * x);
            Accumulate(beta, 4, n, sigma * y);
            dd = dd + x + y;
        }
        return dd;
    }

    /// <summary>a[which] += k·v over a vector of modes from n (k broadcast; planar re/im rows).</summary>
    private void AddProduct(double[] a, int which, int n, Vector<double> kr, Vector<double> ki, Vector<double> vr, Vector<double> vi)
    {
        int re = 2 * which * _m + n, im = re + _m;
        (Load(a, re) + kr * vr - ki * vi).CopyTo(a, re);
        (Load(a, im) + kr * vi + ki * vr).CopyTo(a, im);
    }

    private void Accumulate(double[] a, int which, int n, C v) { a[2 * which * _m + n] += v.Re; a[(2 * which + 1) * _m + n] += v.Im; }

    private C Read(double[] a, int which, int n) => new(a[2 * which * _m + n], a[(2 * which + 1) * _m + n]);

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
        Span<float> tables) => Prepare(_h, 2 * _m, _kernelLength, logDt, logAReal, aImag, p, b, c, tables);

    /// <summary>The step tables of <paramref name="channels"/> channels of state size <paramref name="stateSize"/> (the GPU path prepares them on the host too).</summary>
    public static void Prepare(int channels, int stateSize, int kernelLength, ReadOnlySpan<float> logDt, ReadOnlySpan<float> logAReal, ReadOnlySpan<float> aImag,
        ReadOnlySpan<float> p, ReadOnlySpan<float> b, ReadOnlySpan<float> c, Span<float> tables)
    {
        int m = stateSize / 2, n = stateSize;
        // The full system (modes m..n − 1 are the conjugates of 0..m − 1) as planar re/im n × n matrices.
        var dense = new DenseComplex(n);
        for (int h = 0; h < channels; h++)
        {
            double delta = Math.Exp(logDt[h]), half = delta / 2, pdp = 0;
            C Lambda(ReadOnlySpan<float> re, ReadOnlySpan<float> im, int r) { int i = h * m + r % m; var l = new C(-Math.Exp(re[i]), im[i]); return r < m ? l : l.Conj; }
            C Full(ReadOnlySpan<float> s, int r) { var v = At(s, h * m + r % m); return r < m ? v : v.Conj; }
            // Ā = (I − Δ/2·A)⁻¹(I + Δ/2·A) and B̄ = (I − Δ/2·A)⁻¹·Δ·B with A = Λ − p·p*: one solve with n + 1 right-hand sides
            for (int r = 0; r < n; r++)
            {
                var pr = Full(p, r);
                for (int col = 0; col < n; col++)
                {
                    var a = (r == col ? Lambda(logAReal, aImag, r) : default) - pr * Full(p, col).Conj;
                    double identity = r == col ? 1 : 0;
                    dense.Set(dense.Left, r, col, new C(identity, 0) - half * a);
                    dense.Set(dense.Right, r, col, new C(identity, 0) + half * a);
                }
                dense.Set(dense.Right, r, n, delta * Full(b, r));
            }
            dense.Solve(n + 1);
            // C = C̃·(I − Ā^Lk)⁻¹: Ā^Lk by squaring (Lk is a power of two), then (I − Ā^Lk)ᵀ·Cᵀ = C̃ᵀ
            dense.TransitionToPower(kernelLength);
            for (int r = 0; r < n; r++)
            {
                for (int col = 0; col < n; col++) dense.Set(dense.Left, r, col, new C(r == col ? 1 : 0, 0) - dense.Get(dense.Power, col, r));
                dense.Set(dense.Right, r, 0, Full(c, r));
            }
            dense.Solve(1);
            var at = tables.Slice(h * (ModeTables * m + ChannelTables), ModeTables * m + ChannelTables);
            for (int k = 0; k < m; k++)
            {
                var lambda = Lambda(logAReal, aImag, k);
                var pn = At(p, h * m + k);
                var dn = C.One / (C.One - half * lambda);
                var bn = delta * At(b, h * m + k);
                var row = dense.Get(dense.Right, k, 0);
                ReadOnlySpan<C> values = [lambda, pn, dn, bn, row];
                for (int v = 0; v < 5; v++) (at[(2 * v) * m + k], at[(2 * v + 1) * m + k]) = ((float)values[v].Re, (float)values[v].Im);
                pdp += 2 * (pn.Re * pn.Re + pn.Im * pn.Im) * dn.Re;
            }
            at[ModeTables * m] = (float)half;
            at[ModeTables * m + 1] = (float)(half / (1 + half * pdp));
        }
    }

    /// <summary>
    /// Dense complex n × n work for a stream's step tables, in double, re and im planar (row-major): a linear solve
    /// with partial pivoting, and the transition's power by squaring with the inner loop in vector lanes.
    /// </summary>
    private sealed class DenseComplex(int n)
    {
        public readonly double[] Left = new double[2 * n * n], Right = new double[2 * n * (n + 1)], Power = new double[2 * n * n];
        private readonly double[] _product = new double[2 * n * n];

        private int Width(double[] a) => ReferenceEquals(a, Right) ? n + 1 : n;
        public void Set(double[] a, int r, int c, C v) { int w = Width(a), i = r * w + c; a[i] = v.Re; a[a.Length / 2 + i] = v.Im; }
        public C Get(double[] a, int r, int c) { int w = Width(a), i = r * w + c; return new(a[i], a[a.Length / 2 + i]); }

        /// <summary>Left·X = Right for the first <paramref name="columns"/> columns of Right (overwritten by X; Left destroyed).</summary>
        public void Solve(int columns)
        {
            var (a, x) = (Left, Right);
            int w = n + 1, ai = n * n, xi = Right.Length / 2;
            for (int col = 0; col < n; col++)
            {
                int pivot = col;
                double best = -1;
                for (int r = col; r < n; r++)
                {
                    double mag = a[r * n + col] * a[r * n + col] + a[ai + r * n + col] * a[ai + r * n + col];
                    if (mag > best) (best, pivot) = (mag, r);
                }
                if (pivot != col)
                {
                    for (int c = 0; c < n; c++) { Swap(a, col * n + c, pivot * n + c); Swap(a, ai + col * n + c, ai + pivot * n + c); }
                    for (int c = 0; c < columns; c++) { Swap(x, col * w + c, pivot * w + c); Swap(x, xi + col * w + c, xi + pivot * w + c); }
                }
                var inv = C.One / new C(a[col * n + col], a[ai + col * n + col]);
                for (int r = col + 1; r < n; r++)
                {
                    var f = new C(a[r * n + col], a[ai + r * n + col]) * inv;
                    if (f.Re == 0 && f.Im == 0) continue;
                    for (int c = col; c < n; c++) Subtract(a, ai, r * n + c, col * n + c, f);
                    for (int c = 0; c < columns; c++) Subtract(x, xi, r * w + c, col * w + c, f);
                }
            }
            for (int r = n - 1; r >= 0; r--)
            {
                var inv = C.One / new C(a[r * n + r], a[ai + r * n + r]);
                for (int c = 0; c < columns; c++)
                {
                    var v = new C(x[r * w + c], x[xi + r * w + c]);
                    for (int k = r + 1; k < n; k++) v = v - new C(a[r * n + k], a[ai + r * n + k]) * new C(x[k * w + c], x[xi + k * w + c]);
                    v = v * inv;
                    (x[r * w + c], x[xi + r * w + c]) = (v.Re, v.Im);
                }
            }
        }

        private static void Swap(double[] a, int i, int j) => (a[i], a[j]) = (a[j], a[i]);

        private static void Subtract(double[] a, int im, int target, int source, C f)
        {
            double sr = a[source], si = a[im + source];
            a[target] -= f.Re * sr - f.Im * si;
            a[im + target] -= f.Re * si + f.Im * sr;
        }

        /// <summary>Power = Ā^e from the transition in the first n columns of Right (after the first solve); e a power of two.</summary>
        public void TransitionToPower(int e)
        {
            int w = n + 1, nn = n * n, xi = Right.Length / 2;
            for (int r = 0; r < n; r++)
                for (int c = 0; c < n; c++) (Power[r * n + c], Power[nn + r * n + c]) = (Right[r * w + c], Right[xi + r * w + c]);
            for (int k = 1; k < e; k *= 2) Square();
        }

        /// <summary>Power ← Power·Power, row by row, the columns in vector lanes.</summary>
        private void Square()
        {
            int nn = n * n, lanes = Vector<double>.Count;
            var (p, q) = (Power, _product);
            Array.Clear(q);
            for (int r = 0; r < n; r++)
                for (int k = 0; k < n; k++)
                {
                    double ar = p[r * n + k], ai = p[nn + r * n + k];
                    Vector<double> vr = new(ar), vi = new(ai);
                    int c = 0;
                    for (; c <= n - lanes; c += lanes)
                    {
                        Vector<double> br = Load(p, k * n + c), bi = Load(p, nn + k * n + c);
                        (Load(q, r * n + c) + vr * br - vi * bi).CopyTo(q, r * n + c);
                        (Load(q, nn + r * n + c) + vr * bi + vi * br).CopyTo(q, nn + r * n + c);
                    }
                    for (; c < n; c++)
                    {
                        double br = p[k * n + c], bi = p[nn + k * n + c];
                        q[r * n + c] += ar * br - ai * bi;
                        q[nn + r * n + c] += ar * bi + ai * br;
                    }
                }
            Array.Copy(q, p, q.Length);
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
