using System.Numerics;

namespace SsmGen.Reference;

/// <summary>
/// One S4D layer ("On the Parameterization and Initialization of Diagonal State Space Models"),
/// per channel h and mode n (n &lt; N/2; the conjugate half is implied by taking 2·Re):
/// <code>
///   Δ = exp(log_dt[h]),  A = −exp(log_A_real[h,n]) + i·A_imag[h,n]
///   ZOH:      Ā = exp(ΔA),                 B̄ = (exp(ΔA) − 1)/A · B
///   bilinear: Ā = (1 + ΔA/2)/(1 − ΔA/2),   B̄ = Δ/(1 − ΔA/2) · B
///   W = C·B̄,  K[l] = 2·Re Σ_n W_n Ā_n^l                  kernel (H, L)
///   y[t] = Σ_{s≤t} K[s]·u[t−s] + D·u[t]                   convolution mode
///   x[t] = Ā x[t−1] + u[t],  y[t] = 2·Re Σ_n W_n x_n[t] + D·u[t]   recurrent mode (same map)
/// </code>
/// Sequences are (B, L, H) row-major. Written for clarity: direct O(L²) convolution.
/// </summary>
public sealed class S4DReference<T> : LongConvolutionReference<T, S4DReference<T>.Params> where T : IFloatingPointIeee754<T>
{
    /// <summary>Views of one layer's parameters (or of their gradients) inside a flat buffer.</summary>
    public readonly ref struct Params
    {
        public readonly Span<T> LogDt, LogAReal, AImag, B, C, D;
        public Params(Span<T> logDt, Span<T> logAReal, Span<T> aImag, Span<T> b, Span<T> c, Span<T> d)
        { LogDt = logDt; LogAReal = logAReal; AImag = aImag; B = b; C = c; D = d; }
    }

    private readonly int _h, _half;
    private readonly Discretization _disc;

    public S4DReference(int h, int n, Discretization disc) : base(h) { _h = h; _half = n / 2; _disc = disc; }

    protected override Span<T> Skip(Params p) => p.D;

    private Complex<T> Bp(Params p, int i) => p.B.IsEmpty ? Complex<T>.One : new(p.B[2 * i], p.B[2 * i + 1]);

    /// <summary>Ā and W = C·B̄ of mode (h, n).</summary>
    public (Complex<T> Z, Complex<T> W) Discretize(Params p, int h, int n)
    {
        int i = h * _half + n;
        T dt = T.Exp(p.LogDt[h]);
        var a = new Complex<T>(-T.Exp(p.LogAReal[i]), p.AImag[i]);
        var q = dt * a;
        var c = new Complex<T>(p.C[2 * i], p.C[2 * i + 1]);
        if (_disc == Discretization.Zoh)
        {
            var z = Complex<T>.Exp(q);
            return (z, c * Bp(p, i) * ((z - Complex<T>.One) / a));
        }
        var half = T.CreateChecked(0.5);
        var r = Complex<T>.One / (Complex<T>.One - half * q);
        return ((Complex<T>.One + half * q) * r, c * Bp(p, i) * (dt * r));
    }

    /// <summary>The convolution kernel K (H, L).</summary>
    public override T[] Kernel(Params p, int length)
    {
        var k = new T[_h * length];
        for (int h = 0; h < _h; h++)
            for (int n = 0; n < _half; n++)
            {
                var (z, w) = Discretize(p, h, n);
                var pw = w;
                for (int l = 0; l < length; l++) { k[h * length + l] += T.CreateChecked(2) * pw.Re; pw *= z; }
            }
        return k;
    }

    /// <summary>Recurrent mode over a whole sequence, one step at a time: must equal <see cref="Forward"/>.</summary>
    public void Recurrent(Params p, ReadOnlySpan<T> u, Span<T> y, int batch, int length)
    {
        var modes = new (Complex<T> Z, Complex<T> W)[_h * _half];
        for (int h = 0; h < _h; h++)
            for (int n = 0; n < _half; n++) modes[h * _half + n] = Discretize(p, h, n);
        var x = new Complex<T>[_h * _half];
        for (int b = 0; b < batch; b++)
        {
            Array.Clear(x);
            for (int t = 0; t < length; t++)
                for (int h = 0; h < _h; h++)
                {
                    T ut = u[(b * length + t) * _h + h], s = p.D[h] * ut;
                    for (int n = 0; n < _half; n++)
                    {
                        int i = h * _half + n;
                        x[i] = modes[i].Z * x[i] + Complex<T>.Real(ut);
                        s += T.CreateChecked(2) * (modes[i].W * x[i]).Re;
                    }
                    y[(b * length + t) * _h + h] = s;
                }
        }
    }

    /// <summary>
    /// From dL/dK to the parameters. With K[l] = 2·Re(W·Z^l) and gradients written as
    /// ∂L/∂Re + i·∂L/∂Im: gW = 2·Σ dK[l]·conj(Z^l), gZ = 2·conj(W·Σ l·dK[l]·Z^(l−1)); then the chain
    /// rule through the discretization (holomorphic steps multiply by the conjugate derivative).
    /// </summary>
    public override void KernelBackward(Params p, Params g, ReadOnlySpan<T> dk, int length)
    {
        T two = T.CreateChecked(2), half = T.CreateChecked(0.5);
        for (int h = 0; h < _h; h++)
        {
            T dt = T.Exp(p.LogDt[h]);
            T gDt = T.Zero;
            for (int n = 0; n < _half; n++)
            {
                int i = h * _half + n;
                var (z, w) = Discretize(p, h, n);
                Complex<T> s0 = default, s1 = default, pw = Complex<T>.One;
                for (int l = 0; l < length; l++)
                {
                    T d = dk[h * length + l];
                    s0 += d * pw.Conj;
                    if (l + 1 < length) s1 += (T.CreateChecked(l + 1) * dk[h * length + l + 1]) * pw;
                    pw *= z;
                }
                var gW = two * s0;
                var gZ = two * (w * s1).Conj;
                var a = new Complex<T>(-T.Exp(p.LogAReal[i]), p.AImag[i]);
                var c = new Complex<T>(p.C[2 * i], p.C[2 * i + 1]);
                var bb = Bp(p, i);
                Complex<T> gA;
                if (_disc == Discretization.Zoh)
                {
                    var e = (z - Complex<T>.One) / a;
                    AddComplex(g.C, i, gW * (bb * e).Conj);
                    if (!g.B.IsEmpty) AddComplex(g.B, i, gW * (c * e).Conj);
                    var gZt = gZ + gW * (c * bb / a).Conj;
                    gA = gW * (-(c * bb * e / a)).Conj + gZt * (dt * z).Conj;
                    gDt += (gZt.Conj * a * z).Re;
                }
                else
                {
                    var q = dt * a;
                    var r = Complex<T>.One / (Complex<T>.One - half * q);
                    AddComplex(g.C, i, gW * (bb * (dt * r)).Conj);
                    if (!g.B.IsEmpty) AddComplex(g.B, i, gW * (c * (dt * r)).Conj);
                    var gQ = gZ * (r * r).Conj + gW * ((half * dt) * (c * bb * r * r)).Conj;
                    gDt += (gW.Conj * c * bb * r).Re + (gQ.Conj * a).Re;
                    gA = dt * gQ;
                }
                g.LogAReal[i] += -T.Exp(p.LogAReal[i]) * gA.Re;
                g.AImag[i] += gA.Im;
            }
            g.LogDt[h] += gDt * dt;
        }
    }

    private static void AddComplex(Span<T> dst, int i, Complex<T> v) { dst[2 * i] += v.Re; dst[2 * i + 1] += v.Im; }
}
