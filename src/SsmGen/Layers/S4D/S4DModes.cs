using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using SsmGen.Numerics;

namespace SsmGen.Layers;

/// <summary>
/// S4D's modes from its parameters and back, for every channel and mode of a layer, in double: the discretization
/// (Ā, W = C·B̄ and the anchor Ā³² of each mode, stored as float in the mode table [Re Ā | Im Ā | Re W | Im W | Re Ā³² |
/// Im Ā³²], each (H, M)) and its chain rule (from the kernel backward's Horner sums p(Ā), p'(Ā) to the gradients of
/// log Δ, log(−Re A), Im A, B and C). The formulas are <see cref="Reference.S4DReference{T}"/>'s; here eight modes go
/// at a time on Vector512 lanes where the CPU has them (exp and sine/cosine in double through Vector512's own, about
/// an ulp from Math's), the rest one by one; channels go in parts over the worker pool (each channel's modes are
/// independent of the others', so the results do not depend on the parts).
/// </summary>
public static class S4DModes
{
    private const int Lanes = 8;

    /// <summary>The mode table of H channels of M modes each (6·H·M floats, overwritten).</summary>
    public static void Discretize(Discretization method, ReadOnlySpan<float> logDt, ReadOnlySpan<float> logAReal, ReadOnlySpan<float> aImag, ReadOnlySpan<float> bb, ReadOnlySpan<float> cc, Span<float> modes, int h, int m)
    {
        Check(logDt, logAReal, aImag, bb, cc, h, m);
        if (modes.Length < 6 * h * m) throw new ArgumentException($"The mode table holds {modes.Length} values; 6·H·M = {6 * h * m} are needed.", nameof(modes));
        if (Parallel(h, m)) { lock (s_job) s_job.RunDiscretize(method, logDt, logAReal, aImag, bb, cc, modes, h, m); return; }
        DiscretizeChannels(method, logDt, logAReal, aImag, bb, cc, modes, h, m, 0, h);
    }

    private static void DiscretizeChannels(Discretization method, ReadOnlySpan<float> logDt, ReadOnlySpan<float> logAReal, ReadOnlySpan<float> aImag, ReadOnlySpan<float> bb, ReadOnlySpan<float> cc, Span<float> modes, int h, int m, int c0, int c1)
    {
        int hm = h * m;
        for (int c = c0; c < c1; c++)
        {
            double dt = Math.Exp(Math.Clamp(logDt[c], -Stability.MaxLog, Stability.MaxLog));
            int n = 0;
            if (Vector512.IsHardwareAccelerated)
                for (; n + Lanes <= m; n += Lanes)
                {
                    int i = c * m + n;
                    var (a, _) = ModeA(logAReal, aImag, i);
                    var q = a * dt;
                    var cb = Weight(bb, cc, i);
                    VComplex z, wm;
                    if (method == Discretization.Zoh)
                    {
                        z = VComplex.Exp(q);
                        // (e^q − 1)/A = Δ·(e^q − 1)/q, by its series where q is tiny (A = 0 would give 0/0)
                        var series = cb * dt * new VComplex(Vector512<double>.One + q.Re * 0.5, q.Im * 0.5);
                        var tiny = Vector512.LessThan(q.Re * q.Re + q.Im * q.Im, Vector512.Create(1e-16));
                        wm = VComplex.Select(tiny, series, cb * ((z - 1) * a.Reciprocal()));
                    }
                    else
                    {
                        var r = (1 - q * 0.5).Reciprocal();
                        z = (1 + q * 0.5) * r;
                        wm = cb * dt * r;
                    }
                    z = Contract(z);
                    var anchor = z * z; anchor *= anchor; anchor *= anchor; anchor *= anchor; anchor *= anchor; // Ā^32 by five squarings
                    Store(z.Re, modes, i); Store(z.Im, modes, hm + i);
                    Store(wm.Re, modes, 2 * hm + i); Store(wm.Im, modes, 3 * hm + i);
                    Store(anchor.Re, modes, 4 * hm + i); Store(anchor.Im, modes, 5 * hm + i);
                }
            for (; n < m; n++)
            {
                int i = c * m + n;
                var a = new Complex(-Math.Exp(Math.Min(logAReal[i], Stability.MaxLog)), aImag[i]);
                var q = dt * a;
                var cb = new Complex(cc[2 * i], cc[2 * i + 1]) * B(bb, i);
                Complex z, wm;
                if (method == Discretization.Zoh)
                {
                    z = Complex.Exp(q);
                    wm = q.Real * q.Real + q.Imaginary * q.Imaginary < 1e-16 ? cb * dt * (1 + q / 2) : cb * (z - 1) / a;
                }
                else
                {
                    var r = 1 / (1 - q / 2);
                    z = (1 + q / 2) * r;
                    wm = cb * dt * r;
                }
                z = Stability.Contract(z);
                modes[i] = (float)z.Real; modes[hm + i] = (float)z.Imaginary;
                modes[2 * hm + i] = (float)wm.Real; modes[3 * hm + i] = (float)wm.Imaginary;
                var anchor = z * z; anchor *= anchor; anchor *= anchor; anchor *= anchor; anchor *= anchor;
                modes[4 * hm + i] = (float)anchor.Real; modes[5 * hm + i] = (float)anchor.Imaginary;
            }
        }
    }

    /// <summary>
    /// From the Horner sums [Re p | Im p | Re p' | Im p'] (4·H·M) to the parameter gradients, added to gLogDt (H),
    /// gLogAReal and gAImag (H·M), gB (2·H·M, when B is trained: bb not empty) and gC (2·H·M); gZPieces (2·H·M, or
    /// empty) is what the states crossing a rank's piece owe Ā. With gradients written ∂L/∂Re + i·∂L/∂Im: gW = 2·conj p(Ā),
    /// gĀ = 2·conj(W·p'(Ā)); a holomorphic step multiplies by the conjugate derivative, a real parameter takes
    /// Re(conj(g)·∂/∂θ).
    /// </summary>
    public static void ChainRule(Discretization method, ReadOnlySpan<float> logDt, ReadOnlySpan<float> logAReal, ReadOnlySpan<float> aImag, ReadOnlySpan<float> bb, ReadOnlySpan<float> cc,
        ReadOnlySpan<float> sums, ReadOnlySpan<float> gZPieces, Span<float> gLogDt, Span<float> gLogAReal, Span<float> gAImag, Span<float> gB, Span<float> gC, int h, int m)
    {
        Check(logDt, logAReal, aImag, bb, cc, h, m);
        int hm = h * m;
        if (sums.Length < 4 * hm) throw new ArgumentException($"The Horner sums hold {sums.Length} values; 4·H·M = {4 * hm} are needed.", nameof(sums));
        if (!gZPieces.IsEmpty && gZPieces.Length < 2 * hm) throw new ArgumentException($"The states' share holds {gZPieces.Length} values; 2·H·M = {2 * hm} are needed.", nameof(gZPieces));
        if (gLogDt.Length < h || gLogAReal.Length < hm || gAImag.Length < hm || gC.Length < 2 * hm || (!bb.IsEmpty && gB.Length < 2 * hm))
            throw new ArgumentException("A gradient span is shorter than its parameter.");
        if (Parallel(h, m)) { lock (s_job) s_job.RunChainRule(method, logDt, logAReal, aImag, bb, cc, sums, gZPieces, gLogDt, gLogAReal, gAImag, gB, gC, h, m); return; }
        ChainRuleChannels(method, logDt, logAReal, aImag, bb, cc, sums, gZPieces, gLogDt, gLogAReal, gAImag, gB, gC, h, m, 0, h);
    }

    private static void ChainRuleChannels(Discretization method, ReadOnlySpan<float> logDt, ReadOnlySpan<float> logAReal, ReadOnlySpan<float> aImag, ReadOnlySpan<float> bb, ReadOnlySpan<float> cc,
        ReadOnlySpan<float> sums, ReadOnlySpan<float> gZPieces, Span<float> gLogDt, Span<float> gLogAReal, Span<float> gAImag, Span<float> gB, Span<float> gC, int h, int m, int c0, int c1)
    {
        int hm = h * m;
        bool zoh = method == Discretization.Zoh, trainB = !bb.IsEmpty;
        for (int c = c0; c < c1; c++)
        {
            double dt = Math.Exp(Math.Clamp(logDt[c], -Stability.MaxLog, Stability.MaxLog)), gDt = 0;
            int n = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var gDtLanes = Vector512<double>.Zero;
                for (; n + Lanes <= m; n += Lanes)
                {
                    int i = c * m + n;
                    var (a, ea) = ModeA(logAReal, aImag, i);
                    var q = a * dt;
                    var cw = new VComplex(Gather(cc, 2 * i), Gather(cc, 2 * i + 1));
                    var b = trainB ? new VComplex(Gather(bb, 2 * i), Gather(bb, 2 * i + 1)) : VComplex.One;
                    var cb = trainB ? cw * b : cw;
                    var p = new VComplex(Widen(sums, i), Widen(sums, hm + i));
                    var dp = new VComplex(Widen(sums, 2 * hm + i), Widen(sums, 3 * hm + i));
                    var gW = p.Conjugate() * 2;
                    VComplex gA, gc, gb = default;
                    if (zoh)
                    {
                        var z = VComplex.Exp(q);
                        var inverseA = a.Reciprocal();
                        var e = (z - 1) * inverseA;
                        var gZ = (cb * e * dp).Conjugate() * 2;
                        if (!gZPieces.IsEmpty) gZ += new VComplex(Widen(gZPieces, i), Widen(gZPieces, hm + i));
                        gc = gW * (trainB ? b * e : e).Conjugate();
                        if (trainB) gb = gW * (cw * e).Conjugate();
                        var gZt = gZ + gW * (cb * inverseA).Conjugate(); // W depends on Ā too
                        gA = gW * (-(cb * e * inverseA)).Conjugate() + gZt * (z * dt).Conjugate();
                        gDtLanes += (gZt.Conjugate() * a * z).Re;
                    }
                    else
                    {
                        var r = (1 - q * 0.5).Reciprocal();
                        var gZ = (cb * dt * r * dp).Conjugate() * 2;
                        if (!gZPieces.IsEmpty) gZ += new VComplex(Widen(gZPieces, i), Widen(gZPieces, hm + i));
                        gc = gW * (trainB ? b * dt * r : r * dt).Conjugate();
                        if (trainB) gb = gW * (cw * dt * r).Conjugate();
                        var gQ = gZ * (r * r).Conjugate() + gW * (cb * (dt / 2) * r * r).Conjugate();
                        gDtLanes += (gW.Conjugate() * cb * r).Re + (gQ.Conjugate() * a).Re;
                        gA = gQ * dt;
                    }
                    AddInterleaved(gC, 2 * i, gc);
                    if (trainB) AddInterleaved(gB, 2 * i, gb);
                    Add(gLogAReal, i, -ea * gA.Re);
                    Add(gAImag, i, gA.Im);
                }
                gDt = Vector512.Sum(gDtLanes);
            }
            for (; n < m; n++)
            {
                int i = c * m + n;
                double ea = Math.Exp(Math.Min(logAReal[i], Stability.MaxLog));
                var a = new Complex(-ea, aImag[i]);
                var q = dt * a;
                var cw = new Complex(cc[2 * i], cc[2 * i + 1]);
                var b = B(bb, i);
                var cb = cw * b;
                var p = new Complex(sums[i], sums[hm + i]);
                var dp = new Complex(sums[2 * hm + i], sums[3 * hm + i]);
                var gW = 2 * Complex.Conjugate(p);
                Complex gA, gc, gb = default;
                if (zoh)
                {
                    var z = Complex.Exp(q);
                    var e = (z - 1) / a;
                    var gZ = 2 * Complex.Conjugate(cb * e * dp);
                    if (!gZPieces.IsEmpty) gZ += new Complex(gZPieces[i], gZPieces[hm + i]);
                    gc = gW * Complex.Conjugate(b * e);
                    gb = gW * Complex.Conjugate(cw * e);
                    var gZt = gZ + gW * Complex.Conjugate(cb / a);
                    gA = gW * Complex.Conjugate(-cb * e / a) + gZt * Complex.Conjugate(dt * z);
                    gDt += (Complex.Conjugate(gZt) * a * z).Real;
                }
                else
                {
                    var r = 1 / (1 - q / 2);
                    var gZ = 2 * Complex.Conjugate(cb * dt * r * dp);
                    if (!gZPieces.IsEmpty) gZ += new Complex(gZPieces[i], gZPieces[hm + i]);
                    gc = gW * Complex.Conjugate(b * dt * r);
                    gb = gW * Complex.Conjugate(cw * dt * r);
                    var gQ = gZ * Complex.Conjugate(r * r) + gW * Complex.Conjugate(cb * (dt / 2) * r * r);
                    gDt += (Complex.Conjugate(gW) * cb * r).Real + (Complex.Conjugate(gQ) * a).Real;
                    gA = dt * gQ;
                }
                gC[2 * i] += (float)gc.Real; gC[2 * i + 1] += (float)gc.Imaginary;
                if (trainB) { gB[2 * i] += (float)gb.Real; gB[2 * i + 1] += (float)gb.Imaginary; }
                gLogAReal[i] += (float)(-ea * gA.Real);
                gAImag[i] += (float)gA.Imaginary;
            }
            gLogDt[c] += (float)(gDt * dt);
        }
    }

    /// <summary>Whether the channels go in parts over the <see cref="WorkerPool"/>: each channel's modes are independent of the others'.</summary>
    private static bool Parallel(int h, int m) => h > 1 && h * m >= 1024 && WorkerPool.Shared.Concurrency > 1;

    // One job for every caller, held while it runs (the pool runs one job at a time anyway): made once, nothing allocated per call.
    private static readonly ChannelsJob s_job = new();

    /// <summary>
    /// The discretization or its chain rule over channel ranges on the pool: one by one on the calling thread they held
    /// ~0.4 ms of an sMNIST train step while the other core waited.
    /// </summary>
    private sealed unsafe class ChannelsJob : ParallelWork
    {
        private Discretization _method;
        private bool _chainRule;
        private int _h, _m;
        private float* _logDt, _logAReal, _aImag, _bb, _cc, _modes, _sums, _gZ, _gLogDt, _gLogAReal, _gAImag, _gB, _gC;
        private int _bbLength, _gZLength, _gBLength;

        public void RunDiscretize(Discretization method, ReadOnlySpan<float> logDt, ReadOnlySpan<float> logAReal, ReadOnlySpan<float> aImag, ReadOnlySpan<float> bb, ReadOnlySpan<float> cc, Span<float> modes, int h, int m)
        {
            fixed (float* a = logDt, b = logAReal, c = aImag, d = bb, e = cc, f = modes)
            {
                (_method, _chainRule, _h, _m) = (method, false, h, m);
                _logDt = a; _logAReal = b; _aImag = c; _bb = d; _cc = e; _modes = f; _bbLength = bb.Length;
                WorkerPool.Shared.Run(this, WorkerPool.Shared.PartsFor(h));
            }
        }

        public void RunChainRule(Discretization method, ReadOnlySpan<float> logDt, ReadOnlySpan<float> logAReal, ReadOnlySpan<float> aImag, ReadOnlySpan<float> bb, ReadOnlySpan<float> cc,
            ReadOnlySpan<float> sums, ReadOnlySpan<float> gZPieces, Span<float> gLogDt, Span<float> gLogAReal, Span<float> gAImag, Span<float> gB, Span<float> gC, int h, int m)
        {
            fixed (float* a = logDt, b = logAReal, c = aImag, d = bb, e = cc, f = sums, g = gZPieces, p = gLogDt, q = gLogAReal, r = gAImag, t = gB, u = gC)
            {
                (_method, _chainRule, _h, _m) = (method, true, h, m);
                _logDt = a; _logAReal = b; _aImag = c; _bb = d; _cc = e; _sums = f; _gZ = g; _bbLength = bb.Length; _gZLength = gZPieces.Length;
                _gLogDt = p; _gLogAReal = q; _gAImag = r; _gB = t; _gC = u; _gBLength = gB.Length;
                WorkerPool.Shared.Run(this, WorkerPool.Shared.PartsFor(h));
            }
        }

        public override void Execute(int part, int parts)
        {
            var (c0, c1) = WorkerPool.Share(_h, part, parts);
            if (c0 >= c1) return;
            int h = _h, m = _m, hm = h * m;
            var logDt = new ReadOnlySpan<float>(_logDt, h); var logAReal = new ReadOnlySpan<float>(_logAReal, hm);
            var aImag = new ReadOnlySpan<float>(_aImag, hm); var bb = new ReadOnlySpan<float>(_bb, _bbLength); var cc = new ReadOnlySpan<float>(_cc, 2 * hm);
            if (!_chainRule) { DiscretizeChannels(_method, logDt, logAReal, aImag, bb, cc, new Span<float>(_modes, 6 * hm), h, m, c0, c1); return; }
            ChainRuleChannels(_method, logDt, logAReal, aImag, bb, cc, new ReadOnlySpan<float>(_sums, 4 * hm), new ReadOnlySpan<float>(_gZ, _gZLength),
                new Span<float>(_gLogDt, h), new Span<float>(_gLogAReal, hm), new Span<float>(_gAImag, hm), new Span<float>(_gB, _gBLength), new Span<float>(_gC, 2 * hm), h, m, c0, c1);
        }
    }

    private static void Check(ReadOnlySpan<float> logDt, ReadOnlySpan<float> logAReal, ReadOnlySpan<float> aImag, ReadOnlySpan<float> bb, ReadOnlySpan<float> cc, int h, int m)
    {
        if (h < 1 || m < 1) throw new ArgumentOutOfRangeException(nameof(h), $"Channels ({h}) and modes ({m}) must be positive.");
        int hm = h * m;
        if (logDt.Length < h || logAReal.Length < hm || aImag.Length < hm || cc.Length < 2 * hm || (!bb.IsEmpty && bb.Length < 2 * hm))
            throw new ArgumentException($"S4D's parameters for H = {h}, M = {m}: log Δ needs {h} values, log(−Re A) and Im A {hm}, B (when trained) and C {2 * hm}.");
    }

    private static Complex B(ReadOnlySpan<float> bb, int i) => bb.IsEmpty ? Complex.One : new Complex(bb[2 * i], bb[2 * i + 1]); // B is fixed at 1 unless trained

    /// <summary>A = −exp(log(−Re A)) + i·Im A of eight modes, and exp(log(−Re A)) itself.</summary>
    private static (VComplex A, Vector512<double> Ea) ModeA(ReadOnlySpan<float> logAReal, ReadOnlySpan<float> aImag, int i)
    {
        var ea = Vector512.Exp(Vector512.Min(Widen(logAReal, i), Vector512.Create(Stability.MaxLog)));
        return (new VComplex(-ea, Widen(aImag, i)), ea);
    }

    /// <summary>C·B of eight modes (B = 1 unless trained), from interleaved (Re, Im) pairs.</summary>
    private static VComplex Weight(ReadOnlySpan<float> bb, ReadOnlySpan<float> cc, int i)
    {
        var c = new VComplex(Gather(cc, 2 * i), Gather(cc, 2 * i + 1));
        return bb.IsEmpty ? c : c * new VComplex(Gather(bb, 2 * i), Gather(bb, 2 * i + 1));
    }

    /// <summary>z scaled back to <see cref="Stability.MaxMagnitude"/> in the lanes whose |z| exceeds it (<see cref="Stability.Contract"/>).</summary>
    private static VComplex Contract(VComplex z)
    {
        var squared = z.Re * z.Re + z.Im * z.Im;
        var over = Vector512.GreaterThan(squared, Vector512.Create(Stability.MaxMagnitude * Stability.MaxMagnitude));
        if (over == Vector512<double>.Zero) return z;
        var scale = Vector512.ConditionalSelect(over, Vector512.Create(Stability.MaxMagnitude) / Vector512.Sqrt(squared), Vector512<double>.One);
        return new VComplex(z.Re * scale, z.Im * scale);
    }

    private static Vector512<double> Widen(ReadOnlySpan<float> s, int i)
    {
        var (lo, hi) = Vector256.Widen(Vector256.Create(s.Slice(i, Lanes)));
        return Vector512.Create(lo, hi);
    }

    /// <summary>Elements i, i + 2, …, i + 14 of s: one part of eight interleaved (Re, Im) pairs.</summary>
    private static Vector512<double> Gather(ReadOnlySpan<float> s, int i) =>
        Vector512.Create((double)s[i], s[i + 2], s[i + 4], s[i + 6], s[i + 8], s[i + 10], s[i + 12], s[i + 14]);

    /// <summary>s[i + k] += (float)v[k], as the scalar path adds each rounded term.</summary>
    private static void Add(Span<float> s, int i, Vector512<double> v)
    {
        var slice = s.Slice(i, Lanes);
        (Vector256.Create((ReadOnlySpan<float>)slice) + Vector256.Narrow(v.GetLower(), v.GetUpper())).CopyTo(slice);
    }

    /// <summary>The pairs s[i + 2k], s[i + 2k + 1] += (float)z.Re[k], (float)z.Im[k].</summary>
    private static void AddInterleaved(Span<float> s, int i, VComplex z)
    {
        var re = Vector256.Narrow(z.Re.GetLower(), z.Re.GetUpper());
        var im = Vector256.Narrow(z.Im.GetLower(), z.Im.GetUpper());
        var pairs = Vector512.Create(Vector256.Shuffle(re, Vector256.Create(0, 0, 1, 1, 2, 2, 3, 3)), Vector256.Shuffle(re, Vector256.Create(4, 4, 5, 5, 6, 6, 7, 7)));
        var imPairs = Vector512.Create(Vector256.Shuffle(im, Vector256.Create(0, 0, 1, 1, 2, 2, 3, 3)), Vector256.Shuffle(im, Vector256.Create(4, 4, 5, 5, 6, 6, 7, 7)));
        var odd = Vector512.Equals(Vector512<int>.Indices & Vector512<int>.One, Vector512<int>.One).AsSingle();
        var slice = s.Slice(i, 2 * Lanes);
        (Vector512.Create((ReadOnlySpan<float>)slice) + Vector512.ConditionalSelect(odd, imPairs, pairs)).CopyTo(slice);
    }

    private static void Store(Vector512<double> v, Span<float> s, int i) => Vector256.Narrow(v.GetLower(), v.GetUpper()).CopyTo(s.Slice(i, Lanes));

    /// <summary>Eight complex numbers in double: real parts in one vector, imaginary parts in another.</summary>
    private readonly struct VComplex(Vector512<double> re, Vector512<double> im)
    {
        public readonly Vector512<double> Re = re, Im = im;

        public static VComplex One => new(Vector512<double>.One, Vector512<double>.Zero);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static VComplex operator *(VComplex x, VComplex y) => new(x.Re * y.Re - x.Im * y.Im, x.Re * y.Im + x.Im * y.Re);
        public static VComplex operator *(VComplex x, double s) => new(x.Re * s, x.Im * s);
        public static VComplex operator +(VComplex x, VComplex y) => new(x.Re + y.Re, x.Im + y.Im);
        public static VComplex operator -(VComplex x, double s) => new(x.Re - Vector512.Create(s), x.Im);
        public static VComplex operator -(double s, VComplex x) => new(Vector512.Create(s) - x.Re, -x.Im);
        public static VComplex operator +(double s, VComplex x) => new(Vector512.Create(s) + x.Re, x.Im);
        public static VComplex operator -(VComplex x) => new(-x.Re, -x.Im);

        public VComplex Conjugate() => new(Re, -Im);

        /// <summary>1/z = conj z / |z|².</summary>
        public VComplex Reciprocal()
        {
            var inverse = Vector512<double>.One / (Re * Re + Im * Im);
            return new(Re * inverse, -Im * inverse);
        }

        /// <summary>e^z = e^Re·(cos Im + i·sin Im).</summary>
        public static VComplex Exp(VComplex z)
        {
            var magnitude = Vector512.Exp(z.Re);
            var (sin, cos) = Vector512.SinCos(z.Im);
            return new(magnitude * cos, magnitude * sin);
        }

        public static VComplex Select(Vector512<double> mask, VComplex yes, VComplex no) =>
            new(Vector512.ConditionalSelect(mask, yes.Re, no.Re), Vector512.ConditionalSelect(mask, yes.Im, no.Im));
    }
}
