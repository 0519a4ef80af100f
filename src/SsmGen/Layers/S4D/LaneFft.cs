using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SsmGen.Numerics;

/// <summary>
/// Sixteen complex FFTs at once, one per Vector512 lane: element t of sequence c sits at [t·16 + c] of
/// split real/imaginary arrays. Every butterfly is then a plain vertical vector operation with a broadcast
/// twiddle: no shuffles. Built for the zero-padded transforms of a causal convolution, where only the first half of a
/// sequence is ever nonzero and only the first half of an inverse is ever read: the forward transform takes its input in
/// rows [0, n/2) and leaves the spectrum in bit-reversed order (decimation in frequency); the inverse takes a spectrum in
/// that order and gives rows [0, n/2) back (decimation in time). A pointwise product does not care about the order, so no
/// bit-reversal pass is made, and each transform's widest stage does half its work (the forward's reads one half and
/// writes the other; the inverse's writes the first half only). Stages go two at a time as radix-4 butterflies (three
/// twiddle products per four rows where two radix-2 stages make four), complex products with fused multiply-adds.
/// </summary>
public sealed class LaneFft
{
    public const int Lanes = 16;
    private readonly float[] _cos, _sin;
    /// <summary>
    /// The radix-4 twiddles: for each span len (4 ≤ len ≤ max) from <see cref="QuadAt"/>, for k &lt; len/4 the six values
    /// Re, Im of W_len^k, W_len^2k, W_len^3k side by side, so a butterfly reads them from one line without index arithmetic.
    /// </summary>
    private readonly float[] _quad;
    private readonly int _maxSize;

    public LaneFft(int maxSize)
    {
        _maxSize = maxSize;
        (_cos, _sin) = Fft.Twiddles(maxSize);
        _quad = new float[Math.Max(6, QuadAt(2 * maxSize))];
        for (int len = 4; len <= maxSize; len <<= 1)
            for (int k = 0; k < len / 4; k++)
                for (int j = 1; j <= 3; j++)
                {
                    double angle = 2 * Math.PI * j * k / len;
                    _quad[QuadAt(len) + 6 * k + 2 * (j - 1)] = (float)Math.Cos(angle);
                    _quad[QuadAt(len) + 6 * k + 2 * (j - 1) + 1] = (float)-Math.Sin(angle);
                }
    }

    /// <summary>Where span len's radix-4 twiddles start in <see cref="_quad"/>: after 6·s/4 values for each span s &lt; len.</summary>
    private static int QuadAt(int len) => 6 * (len / 4 - 1);

    /// <summary>
    /// Floating-point operations of one <see cref="Forward"/> (or <see cref="UnscaledInverse"/>) of size n per lane, as
    /// executed: 34 per four rows for each radix-4 pair of stages (eight complex sums and three complex products), 5 per
    /// row for each single radix-2 stage, 16 per four rows for the pair holding the span-2 stage (sums only) or 2 per row
    /// for that stage alone, and the widest stage 3 per row (forward: one product per row pair against the zero half) or 4
    /// (inverse: a product and a sum per kept row).
    /// </summary>
    public static double Flops(int n, bool inverse)
    {
        if (n < 2 || (n & (n - 1)) != 0) throw new ArgumentException($"FFT size {n} is not a power of two ≥ 2.");
        // the plan of Forward and InverseFirstHalf: spans wider than a block in pairs and one single if their count is
        // odd; the spans inside a block the same way, the forward's single last (at span 2), the inverse's last (at the
        // top) unless it is the only stage there
        int stages = BitOperations.Log2((uint)n) - 1;
        int wide = Math.Max(0, stages - BitOperations.Log2(Block)), inside = stages - wide;
        int pairs = wide / 2 + inside / 2, singles = wide % 2 + inside % 2;
        double flops = 34.0 / 4 * n * pairs + 5.0 * n * singles + (inverse ? 4.0 : 3.0) * n;
        bool smallestAlone = inverse ? inside == 1 : inside % 2 == 1;
        if (inside > 0) flops -= smallestAlone ? 3.0 * n : (34.0 - 16.0) / 4 * n;
        return flops;
    }

    /// <summary>
    /// X[j] = Σ_t x[t]·e^{−2πijt/n} in every lane, for x in rows [0, n/2) and zero after (rows [n/2, n) are not read);
    /// row p then holds X[rev(p)], rev reversing log₂n bits (<see cref="Partner"/> finds X[−j]).
    /// </summary>
    public void Forward(Span<float> re, Span<float> im, int n)
    {
        Check(re, im, n);
        ForwardChecked(re, im, n);
    }

    private void ForwardChecked(Span<float> re, Span<float> im, int n)
    {
        ref float r0 = ref re[0];
        ref float i0 = ref im[0];
        int half = n >> 1;
        // the widest stage against a zero second half: x[k + n/2] = x[k]·W_n^k, x[k] as it is
        for (int k = 0, step = _maxSize / n; k < half; k++)
        {
            nuint a = (nuint)(k * Lanes), b = a + (nuint)(half * Lanes);
            Product(Vector512.LoadUnsafe(ref r0, a), Vector512.LoadUnsafe(ref i0, a), Twiddle(_cos, k * step), Twiddle(_sin, k * step), ref r0, ref i0, b);
        }
        ForwardAfterWidest(re, im, n, half);
    }

    /// <summary>
    /// <see cref="Forward"/> of rows read straight from sequences: row t &lt; <paramref name="length"/> holds, in its real
    /// part, the sixteen floats at <paramref name="real"/> + t·<paramref name="stride"/> (times those at
    /// <paramref name="realScale"/> + t·stride, when given) and in its imaginary part those at <paramref name="imag"/> (zero
    /// when null; scaled likewise); rows [length, n/2) are zero. Unscaled, the widest stage writes both halves as it reads
    /// — with the radix-4 pair after it in the same pass where that pair spans the whole array — so no packed copy is made
    /// and read back; scaled, the rows are packed first (see the body for why). The spectrum is bit for bit what packing
    /// the rows and calling Forward gives.
    /// </summary>
    public unsafe void Forward(Span<float> re, Span<float> im, int n, float* real, float* imag, float* realScale, float* imagScale, long stride, int length)
    {
        Check(re, im, n);
        CheckRows(real, stride, length, n >> 1);
        if (imag is null && imagScale is not null) throw new ArgumentException("A scale for the imaginary rows needs imaginary rows.", nameof(imagScale));
        var rows = new SourceRows(real, imag, realScale, imagScale, stride, length);
        // Scaled rows are four sequences read at once: the fused first pass, taking rows n/8 apart four at a time, then
        // follows sixteen strided streams, more than the prefetchers keep up with when the rows come from memory; packed
        // row by row first, they are four (dy ⊙ GELU' at sMNIST's size: 27.6 → 20.0 µs a transform; a block's backward
        // 3.56 → 3.17 ms). Unscaled, the fused pass's eight streams are the faster way (16.5 against 19.0 µs packed first).
        if (realScale is not null || imagScale is not null)
        {
            rows.Pack(re, im, n >> 1);
            ForwardChecked(re, im, n);
            return;
        }
        ForwardAfterWidest(re, im, n, ForwardFromRows(re, im, n, rows));
    }

    /// <summary>The strided forward's first pass (the widest stage, and the pair after it where the plan allows); returns the span the stages after it start from.</summary>
    private int ForwardFromRows(Span<float> re, Span<float> im, int n, SourceRows rows)
    {
        int half = n >> 1;
        ref float r0 = ref re[0];
        ref float i0 = ref im[0];
        int step = _maxSize / n;
        if (StartsWithWidePair(n))
        {
            // the widest stage and the pair after it (spans n, n/2, n/4) in one pass: rows k + j·q of the first half are
            // the rows as read, of the second half the rows times W_n^(k + j·q); each half then takes the radix-4 butterfly
            int q = n >> 3;
            ref float quad = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_quad), QuadAt(half));
            for (int k = 0; k < q; k++)
            {
                ref float w = ref Unsafe.Add(ref quad, 6 * k);
                var (x0r, x0i) = rows.At(k); var (x1r, x1i) = rows.At(k + q); var (x2r, x2i) = rows.At(k + 2 * q); var (x3r, x3i) = rows.At(k + 3 * q);
                nuint p0 = (nuint)(k * Lanes), p1 = p0 + (nuint)(q * Lanes), p2 = p1 + (nuint)(q * Lanes), p3 = p2 + (nuint)(q * Lanes), second = (nuint)(half * Lanes);
                FrequencyButterfly(ref r0, ref i0, p0, p1, p2, p3, ref w, x0r, x0i, x1r, x1i, x2r, x2i, x3r, x3i);
                var (b0r, b0i) = Product(x0r, x0i, Twiddle(_cos, k * step), Twiddle(_sin, k * step));
                var (b1r, b1i) = Product(x1r, x1i, Twiddle(_cos, (k + q) * step), Twiddle(_sin, (k + q) * step));
                var (b2r, b2i) = Product(x2r, x2i, Twiddle(_cos, (k + 2 * q) * step), Twiddle(_sin, (k + 2 * q) * step));
                var (b3r, b3i) = Product(x3r, x3i, Twiddle(_cos, (k + 3 * q) * step), Twiddle(_sin, (k + 3 * q) * step));
                FrequencyButterfly(ref r0, ref i0, p0 + second, p1 + second, p2 + second, p3 + second, ref w, b0r, b0i, b1r, b1i, b2r, b2i, b3r, b3i);
            }
            return half >> 2;
        }
        for (int k = 0; k < half; k++)
        {
            var (xr, xi) = rows.At(k);
            nuint a = (nuint)(k * Lanes), b = a + (nuint)(half * Lanes);
            xr.StoreUnsafe(ref r0, a); xi.StoreUnsafe(ref i0, a);
            Product(xr, xi, Twiddle(_cos, k * step), Twiddle(_sin, k * step), ref r0, ref i0, b);
        }
        return half;
    }

    /// <summary>
    /// A causal convolution's transforms for one set of rows: <see cref="Forward(Span{float}, Span{float}, int, float*, float*, float*, float*, long, int)"/>
    /// of the rows at <paramref name="real"/> and <paramref name="imag"/>, the spectrum times the one in
    /// <paramref name="kRe"/>, <paramref name="kIm"/> (n·16 values each, in the order Forward leaves), then
    /// <see cref="UnscaledInverse(Span{float}, Span{float}, int, float*, float*, long, int, GeluOut)"/> into the rows at
    /// <paramref name="outReal"/> and <paramref name="outImag"/> (the same stride). Where a block of rows holds the
    /// forward's last stages and the inverse's first (n ≥ 512), each block is multiplied between the two while it sits in
    /// L1, instead of in a pass over the whole spectrum of its own; the values are those of the three calls, bit for bit.
    /// </summary>
    public unsafe void Convolve(Span<float> re, Span<float> im, int n, float* real, float* imag, long stride, int length, float* kRe, float* kIm, float* outReal, float* outImag, GeluOut gelu = default)
    {
        Check(re, im, n);
        CheckRows(real, stride, length, n >> 1);
        CheckRows(outReal, stride, length, n >> 1, nameof(outReal));
        if (kRe is null || kIm is null) throw new ArgumentNullException(kRe is null ? nameof(kRe) : nameof(kIm));
        int len = ForwardFromRows(re, im, n, new SourceRows(real, imag, null, null, stride, length));
        if (n >> 1 < Block)
        {
            ForwardAfterWidest(re, im, n, len);
            MultiplySpectra(re, im, kRe, kIm, 0, n);
            InverseWidestToRows(im, re, n, InverseBeforeWidest(im, re, n, stopBeforeWidePair: true), outReal, outImag, stride, length, gelu);
            return;
        }
        len = ForwardWide(re, im, n, len);
        int inverseLen = 2;
        for (int start = 0; start < n; start += Block)
        {
            ForwardBlock(re, im, start, start + Block, len);
            MultiplySpectra(re, im, kRe, kIm, start, start + Block);
            inverseLen = InverseBlock(im, re, start, start + Block); // Re and Im swapped, as in UnscaledInverse
        }
        InverseWidestToRows(im, re, n, InverseWide(im, re, n, inverseLen, stopBeforeWidePair: true), outReal, outImag, stride, length, gelu);
    }

    /// <summary>Rows [from, to) of the spectrum times those of K, complex product by complex product.</summary>
    private static unsafe void MultiplySpectra(Span<float> re, Span<float> im, float* kRe, float* kIm, int from, int to)
    {
        ref float r0 = ref re[0];
        ref float i0 = ref im[0];
        for (nuint i = (nuint)(from * Lanes), end = (nuint)(to * Lanes); i < end; i += Lanes)
        {
            var xr = Vector512.LoadUnsafe(ref r0, i); var xi = Vector512.LoadUnsafe(ref i0, i);
            var wr = Vector512.Load(kRe + i); var wi = Vector512.Load(kIm + i);
            (xr * wr - xi * wi).StoreUnsafe(ref r0, i);
            (xr * wi + xi * wr).StoreUnsafe(ref i0, i);
        }
    }

    /// <summary>Rows of sequences for the strided entry points: a first row given, rows at least 16 floats apart (or they overlap), at most n/2 of them.</summary>
    private static unsafe void CheckRows(float* real, long stride, int length, int half, string name = "real")
    {
        if (real is null) throw new ArgumentNullException(name);
        if (stride < Lanes) throw new ArgumentOutOfRangeException(nameof(stride), stride, $"Rows must be at least {Lanes} floats apart.");
        if (length < 0 || length > half) throw new ArgumentOutOfRangeException(nameof(length), length, $"Rows must number between 0 and {half}.");
    }

    /// <summary>Whether the forward's plan takes the spans n/2 and n/4 as one pair over the whole array right after the widest stage.</summary>
    private static bool StartsWithWidePair(int n) => n >> 1 > Block && n >> 2 > Block;

    /// <summary>Rows of sixteen lanes read from strided sequences, scaled where a scale is given; zero past the length.</summary>
    private readonly unsafe struct SourceRows(float* real, float* imag, float* realScale, float* imagScale, long stride, int length)
    {
        /// <summary>Rows [0, half) into the arrays as <see cref="At"/> gives them, one after the other.</summary>
        public void Pack(Span<float> re, Span<float> im, int half)
        {
            ref float r0 = ref re[0];
            ref float i0 = ref im[0];
            for (int t = 0; t < half; t++)
            {
                var (xr, xi) = At(t);
                xr.StoreUnsafe(ref r0, (nuint)(t * Lanes)); xi.StoreUnsafe(ref i0, (nuint)(t * Lanes));
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public (Vector512<float> Re, Vector512<float> Im) At(int t)
        {
            if (t >= length) return (Vector512<float>.Zero, Vector512<float>.Zero);
            long at = t * stride;
            var xr = Vector512.Load(real + at);
            if (realScale is not null) xr *= Vector512.Load(realScale + at);
            var xi = Vector512<float>.Zero;
            if (imag is not null)
            {
                xi = Vector512.Load(imag + at);
                if (imagScale is not null) xi *= Vector512.Load(imagScale + at);
            }
            return (xr, xi);
        }
    }

    /// <summary>The forward's stages from span <paramref name="len"/> down (after the widest one, and the first pair where it ran fused).</summary>
    private void ForwardAfterWidest(Span<float> re, Span<float> im, int n, int len)
    {
        // Spans wider than a block run over the whole array, then each block of rows takes its own stages while it
        // sits in L1. Stages go two at a time (radix 4): every row is loaded and stored once per pair. Flops follows this plan.
        len = ForwardWide(re, im, n, len);
        for (int start = 0; start < n; start += Math.Min(n, Block)) ForwardBlock(re, im, start, start + Math.Min(n, Block), len);
    }

    /// <summary>The forward's whole-array stages from span <paramref name="len"/> down to a block's; returns the span a block's stages start from.</summary>
    private int ForwardWide(Span<float> re, Span<float> im, int n, int len)
    {
        for (; len > Block && len >> 1 > Block; len >>= 2) FrequencyPair(re, im, 0, n, len);
        if (len > Block) { FrequencyStage(re, im, 0, n, len); len >>= 1; }
        return len;
    }

    /// <summary>The forward's stages inside the block of rows [start, end), from span <paramref name="len"/> down to 2.</summary>
    private void ForwardBlock(Span<float> re, Span<float> im, int start, int end, int len)
    {
        for (; len >= 4; len >>= 2) FrequencyPair(re, im, start, end, len);
        if (len == 2) FrequencyStage(re, im, start, end, 2);
    }

    /// <summary>
    /// n times the inverse transform, x[t] = Σ_j X[j]·e^{2πijt/n} for t in [0, n/2), in every lane, from a spectrum in the
    /// order <see cref="Forward"/> leaves it; rows [n/2, n) are left undefined. The 1/n is left to the caller, who folds
    /// it into a product it makes anyway instead of a pass of its own.
    /// </summary>
    public void UnscaledInverse(Span<float> re, Span<float> im, int n) =>
        InverseFirstHalf(im, re, n); // conj(FFT(conj x)) by swapping the roles of Re and Im

    /// <summary>
    /// <see cref="UnscaledInverse"/> with its rows t &lt; <paramref name="length"/> written straight into sequences: the real
    /// part of row t to <paramref name="real"/> + t·<paramref name="stride"/>, the imaginary part to <paramref name="imag"/>
    /// + t·stride (not written when null). The widest stage stores them as it makes them — with the radix-4 pair before it
    /// in the same pass where the plan ends in a whole-array pair at spans n/4 and n/2, as at 2,048 points — so the rows
    /// are not put back in <paramref name="re"/> and <paramref name="im"/> to be copied out after; the values are bit for
    /// bit UnscaledInverse's. <paramref name="re"/> and <paramref name="im"/> are left undefined. With <paramref name="gelu"/>,
    /// GELU of each value (and its slope) is stored beside it as it is made (<see cref="GeluOut"/>).
    /// </summary>
    public unsafe void UnscaledInverse(Span<float> re, Span<float> im, int n, float* real, float* imag, long stride, int length, GeluOut gelu = default)
    {
        Check(re, im, n);
        CheckRows(real, stride, length, n >> 1);
        // Re and Im swapped, as in UnscaledInverse: its first array holds Im
        InverseWidestToRows(im, re, n, InverseBeforeWidest(im, re, n, stopBeforeWidePair: true), real, imag, stride, length, gelu);
    }

    /// <summary>
    /// The strided inverse's last pass, on arrays already swapped (<paramref name="re"/> holds Im): the widest stage, with
    /// the whole-array pair before it when <paramref name="pairLeft"/>, writing rows [0, length) out.
    /// </summary>
    private unsafe void InverseWidestToRows(Span<float> re, Span<float> im, int n, bool pairLeft, float* real, float* imag, long stride, int length, GeluOut gelu)
    {
        int h = n >> 1;
        ref float r0 = ref re[0];
        ref float i0 = ref im[0];
        if (pairLeft)
        {
            // the last pair (spans n/4, n/2) on both halves and the widest stage in one pass: rows k, k + e, k + 2e,
            // k + 3e (e = n/8) of each half from the radix-4 butterfly, then first half + W_n^row · second half
            int len = n >> 2, e = len >> 1, step = _maxSize / n;
            ref float quad = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_quad), QuadAt(2 * len));
            for (int k = 0; k < e && k < length; k++)
            {
                ref float w = ref Unsafe.Add(ref quad, 6 * k);
                nuint p0 = (nuint)(k * Lanes), p1 = p0 + (nuint)(e * Lanes), p2 = p0 + (nuint)(len * Lanes), p3 = p2 + (nuint)(e * Lanes), second = (nuint)(h * Lanes);
                TimeButterfly(ref r0, ref i0, p0, p1, p2, p3, ref w, out var a0r, out var a0i, out var a1r, out var a1i, out var a2r, out var a2i, out var a3r, out var a3i);
                TimeButterfly(ref r0, ref i0, p0 + second, p1 + second, p2 + second, p3 + second, ref w, out var b0r, out var b0i, out var b1r, out var b1i, out var b2r, out var b2i, out var b3r, out var b3i);
                // TimePair leaves y0, y1, y2, y3 at rows k, k + len, k + e, k + len + e
                WidestOut(k, a0r, a0i, b0r, b0i);
                WidestOut(k + len, a1r, a1i, b1r, b1i);
                WidestOut(k + e, a2r, a2i, b2r, b2i);
                WidestOut(k + len + e, a3r, a3i, b3r, b3i);
            }

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            void WidestOut(int row, Vector512<float> ar, Vector512<float> ai, Vector512<float> br, Vector512<float> bi)
            {
                if (row >= length) return;
                var (tr, ti) = Product(br, bi, Twiddle(_cos, row * step), Twiddle(_sin, row * step));
                long at = row * stride;
                gelu.Store(ai + ti, real + at);
                if (imag is not null) gelu.Store(ar + tr, imag + at);
            }
            return;
        }
        for (int k = 0, step = _maxSize / n; k < length; k++)
        {
            nuint a = (nuint)(k * Lanes), b = a + (nuint)(h * Lanes);
            var (tr, ti) = Product(Vector512.LoadUnsafe(ref r0, b), Vector512.LoadUnsafe(ref i0, b), Twiddle(_cos, k * step), Twiddle(_sin, k * step));
            long at = k * stride;
            gelu.Store(Vector512.LoadUnsafe(ref i0, a) + ti, real + at);
            if (imag is not null) gelu.Store(Vector512.LoadUnsafe(ref r0, a) + tr, imag + at);
        }
    }

    /// <summary>
    /// What an inverse writes for each row of values v besides v (<see cref="UnscaledInverse(Span{float}, Span{float}, int, float*, float*, long, int, GeluOut)"/>):
    /// when <see cref="On"/>, GELU(v) at <see cref="ToGelu"/> floats past v's place and, with <see cref="Slope"/>, GELU'(v)
    /// at <see cref="ToSlope"/> floats past it — 0 puts the slope in v's place, as a training forward keeps it (the
    /// arithmetic of <see cref="BlockKernels.GeluForward"/>, so the values are its own, bit for bit). The default writes v alone.
    /// </summary>
    public readonly record struct GeluOut(bool On, long ToGelu, bool Slope = false, long ToSlope = 0)
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal unsafe void Store(Vector512<float> v, float* at)
        {
            if (!On) { v.Store(at); return; }
            var t = BlockKernels.GeluTanh(v);
            BlockKernels.Gelu(v, t).Store(at + ToGelu);
            if (Slope) BlockKernels.GeluSlope(v, t).Store(at + ToSlope);
            if (!Slope || ToSlope != 0) v.Store(at);
        }
    }

    private void InverseFirstHalf(Span<float> re, Span<float> im, int n)
    {
        Check(re, im, n);
        InverseBeforeWidest(re, im, n);
        // the widest stage, first half only: x[k] + W_n^k·x[k + n/2]
        ref float r0 = ref re[0];
        ref float i0 = ref im[0];
        int h = n >> 1;
        for (int k = 0, step = _maxSize / n; k < h; k++)
        {
            nuint a = (nuint)(k * Lanes), b = a + (nuint)(h * Lanes);
            var (tr, ti) = Product(Vector512.LoadUnsafe(ref r0, b), Vector512.LoadUnsafe(ref i0, b), Twiddle(_cos, k * step), Twiddle(_sin, k * step));
            (Vector512.LoadUnsafe(ref r0, a) + tr).StoreUnsafe(ref r0, a);
            (Vector512.LoadUnsafe(ref i0, a) + ti).StoreUnsafe(ref i0, a);
        }
    }

    /// <summary>
    /// The inverse's stages before the widest one (decimation in time); with <paramref name="stopBeforeWidePair"/>, all
    /// but a last pair at spans n/4 and n/2 over the whole array, which the caller then runs with the widest stage —
    /// returning whether it stopped there.
    /// </summary>
    private bool InverseBeforeWidest(Span<float> re, Span<float> im, int n, bool stopBeforeWidePair = false)
    {
        int small = Math.Min(n >> 1, Block), len = 2;
        if (n > 2)
            for (int start = 0; start < n; start += small) len = InverseBlock(re, im, start, start + small);
        return InverseWide(re, im, n, len, stopBeforeWidePair);
    }

    /// <summary>The inverse's stages inside the block of rows [start, end) (spans 2 up to the block's size); returns the span the whole-array stages start from.</summary>
    private int InverseBlock(Span<float> re, Span<float> im, int start, int end)
    {
        int small = end - start, len = 2;
        for (; 2 * len <= small; len <<= 2) TimePair(re, im, start, end, len);
        if (len <= small) { TimeStage(re, im, start, end, len); len <<= 1; }
        return len;
    }

    /// <summary><see cref="InverseBeforeWidest"/>'s whole-array stages from span <paramref name="len"/> on.</summary>
    private bool InverseWide(Span<float> re, Span<float> im, int n, int len, bool stopBeforeWidePair)
    {
        for (; 2 * len < n; len <<= 2)
        {
            if (stopBeforeWidePair && 4 * len == n) return true;
            TimePair(re, im, 0, n, len);
        }
        if (len < n) TimeStage(re, im, 0, n, len);
        return false;
    }

    /// <summary>
    /// The row of the spectrum left by <see cref="Forward"/> that holds X[−j] when row p holds X[j]: rows 0 and 1 hold
    /// X[0] and X[n/2], their own partners; rows [2^q, 2^(q+1)) hold frequencies that pair up mirrored in that range.
    /// </summary>
    public static int Partner(int p) => p < 2 ? p : 3 * (int)BitOperations.RoundUpToPowerOf2((uint)p + 1) / 2 - 1 - p;

    private void Check(Span<float> re, Span<float> im, int n)
    {
        if (n < 2 || n > _maxSize || (n & (n - 1)) != 0) throw new ArgumentException($"FFT size {n} is not a power of two in [2, {_maxSize}].");
        if (re.Length < n * Lanes || im.Length < n * Lanes) throw new ArgumentException("Buffers hold fewer than n·16 values.");
    }

    private const int Block = 256; // rows: 256 × 16 lanes × (Re, Im) × 4 bytes = 32 KB

    /// <summary>
    /// Decimation in frequency, the stages of spans <paramref name="len"/> and len/2 at once over rows [from, to) as one
    /// radix-4 butterfly: in each group, rows k, k+q, k+2q, k+3q (q = len/4) become the sum of all four, then
    /// (x0 + x2 − x1 − x3)·W_len^2k, (x0 − x2 − i(x1 − x3))·W_len^k and (x0 − x2 + i(x1 − x3))·W_len^3k — what two radix-2
    /// stages leave in those rows, with one twiddle product fewer.
    /// </summary>
    private void FrequencyPair(Span<float> re, Span<float> im, int from, int to, int len)
    {
        if (len == 4) { SmallestPair(re, im, from, to, inverse: false); return; }
        int q = len >> 2;
        ref float r0 = ref re[0];
        ref float i0 = ref im[0];
        ref float quad = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_quad), QuadAt(len));
        for (int start = from; start < to; start += len)
            for (int k = 0; k < q; k++)
            {
                nuint p0 = (nuint)((start + k) * Lanes), p1 = p0 + (nuint)(q * Lanes), p2 = p1 + (nuint)(q * Lanes), p3 = p2 + (nuint)(q * Lanes);
                FrequencyButterfly(ref r0, ref i0, p0, p1, p2, p3, ref Unsafe.Add(ref quad, 6 * k),
                    Vector512.LoadUnsafe(ref r0, p0), Vector512.LoadUnsafe(ref i0, p0), Vector512.LoadUnsafe(ref r0, p1), Vector512.LoadUnsafe(ref i0, p1),
                    Vector512.LoadUnsafe(ref r0, p2), Vector512.LoadUnsafe(ref i0, p2), Vector512.LoadUnsafe(ref r0, p3), Vector512.LoadUnsafe(ref i0, p3));
            }
    }

    /// <summary>
    /// <see cref="FrequencyPair"/>'s butterfly on the values x0…x3 of rows p0…p3 (offsets in floats: k, k + q, k + 2q, k + 3q),
    /// stored back to those rows; w points at the group's three twiddles (W_len^k, W_len^2k, W_len^3k).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FrequencyButterfly(ref float r0, ref float i0, nuint p0, nuint p1, nuint p2, nuint p3, ref float w, Vector512<float> x0r, Vector512<float> x0i, Vector512<float> x1r, Vector512<float> x1i,
        Vector512<float> x2r, Vector512<float> x2i, Vector512<float> x3r, Vector512<float> x3i)
    {
        Butterfly(x0r, x0i, x2r, x2i, x1r, x1i, x3r, x3i, out var y0r, out var y0i, out var y1r, out var y1i, out var y2r, out var y2i, out var y3r, out var y3i);
        y0r.StoreUnsafe(ref r0, p0); y0i.StoreUnsafe(ref i0, p0);
        Product(y1r, y1i, ref Unsafe.Add(ref w, 2), ref r0, ref i0, p1);
        Product(y2r, y2i, ref w, ref r0, ref i0, p2);
        Product(y3r, y3i, ref Unsafe.Add(ref w, 4), ref r0, ref i0, p3);
    }

    /// <summary>One decimation-in-frequency stage of span <paramref name="len"/> over rows [from, to): a + b, (a − b)·W_len^k.</summary>
    private void FrequencyStage(Span<float> re, Span<float> im, int from, int to, int len)
    {
        if (len == 2) { SmallestStage(re, im, from, to); return; }
        int half = len >> 1, step = _maxSize / len;
        ref float r0 = ref re[0];
        ref float i0 = ref im[0];
        for (int start = from; start < to; start += len)
            for (int k = 0; k < half; k++)
            {
                nuint a = (nuint)((start + k) * Lanes), b = a + (nuint)(half * Lanes);
                var ar = Vector512.LoadUnsafe(ref r0, a); var ai = Vector512.LoadUnsafe(ref i0, a);
                var br = Vector512.LoadUnsafe(ref r0, b); var bi = Vector512.LoadUnsafe(ref i0, b);
                (ar + br).StoreUnsafe(ref r0, a); (ai + bi).StoreUnsafe(ref i0, a);
                Product(ar - br, ai - bi, Twiddle(_cos, k * step), Twiddle(_sin, k * step), ref r0, ref i0, b);
            }
    }

    /// <summary>
    /// Decimation in time, the stages of spans <paramref name="len"/> and 2·len at once over rows [from, to) as one radix-4
    /// butterfly: in each group of 2·len rows, rows k, k+h, k+len, k+len+h (h = len/2) with b1 = x1·w², b2 = x2·w,
    /// b3 = x3·w³ (w = W_2len^k) become x0 + b1 ± (b2 + b3) and x0 − b1 ∓ i(b2 − b3) — what two radix-2 stages make of
    /// them, with one twiddle product fewer.
    /// </summary>
    private void TimePair(Span<float> re, Span<float> im, int from, int to, int len)
    {
        if (len == 2) { SmallestPair(re, im, from, to, inverse: true); return; }
        int h = len >> 1;
        ref float r0 = ref re[0];
        ref float i0 = ref im[0];
        ref float quad = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_quad), QuadAt(2 * len));
        for (int start = from; start < to; start += 2 * len)
            for (int k = 0; k < h; k++)
            {
                nuint p0 = (nuint)((start + k) * Lanes), p1 = p0 + (nuint)(h * Lanes), p2 = p0 + (nuint)(len * Lanes), p3 = p2 + (nuint)(h * Lanes);
                TimeButterfly(ref r0, ref i0, p0, p1, p2, p3, ref Unsafe.Add(ref quad, 6 * k),
                    out var y0r, out var y0i, out var y1r, out var y1i, out var y2r, out var y2i, out var y3r, out var y3i);
                Store(ref r0, ref i0, p0, p2, p1, p3, y0r, y0i, y1r, y1i, y2r, y2i, y3r, y3i);
            }
    }

    /// <summary>
    /// <see cref="TimePair"/>'s butterfly on rows p0…p3 (offsets in floats: k, k + h, k + len, k + len + h), its outputs
    /// y0…y3 returned (TimePair stores them at rows p0, p2, p1, p3); w points at the group's three twiddles.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TimeButterfly(ref float r0, ref float i0, nuint p0, nuint p1, nuint p2, nuint p3, ref float w,
        out Vector512<float> y0r, out Vector512<float> y0i, out Vector512<float> y1r, out Vector512<float> y1i, out Vector512<float> y2r, out Vector512<float> y2i, out Vector512<float> y3r, out Vector512<float> y3i)
    {
        var (b1r, b1i) = Product(Vector512.LoadUnsafe(ref r0, p1), Vector512.LoadUnsafe(ref i0, p1), Vector512.Create(Unsafe.Add(ref w, 2)), Vector512.Create(Unsafe.Add(ref w, 3)));
        var (b2r, b2i) = Product(Vector512.LoadUnsafe(ref r0, p2), Vector512.LoadUnsafe(ref i0, p2), Vector512.Create(w), Vector512.Create(Unsafe.Add(ref w, 1)));
        var (b3r, b3i) = Product(Vector512.LoadUnsafe(ref r0, p3), Vector512.LoadUnsafe(ref i0, p3), Vector512.Create(Unsafe.Add(ref w, 4)), Vector512.Create(Unsafe.Add(ref w, 5)));
        Butterfly(Vector512.LoadUnsafe(ref r0, p0), Vector512.LoadUnsafe(ref i0, p0), b1r, b1i, b2r, b2i, b3r, b3i, out y0r, out y0i, out y1r, out y1i, out y2r, out y2i, out y3r, out y3i);
    }

    /// <summary>One decimation-in-time stage of span <paramref name="len"/> over rows [from, to): a ± W_len^k·b.</summary>
    private void TimeStage(Span<float> re, Span<float> im, int from, int to, int len)
    {
        if (len == 2) { SmallestStage(re, im, from, to); return; }
        int half = len >> 1, step = _maxSize / len;
        ref float r0 = ref re[0];
        ref float i0 = ref im[0];
        // Groups outside, butterflies inside: consecutive iterations touch neighbouring rows, which keeps
        // loads from waiting on stores to addresses 4 KB apart (the rows of a and b are half·64 bytes apart).
        for (int start = from; start < to; start += len)
            for (int k = 0; k < half; k++)
            {
                nuint a = (nuint)((start + k) * Lanes), b = a + (nuint)(half * Lanes);
                var (tr, ti) = Product(Vector512.LoadUnsafe(ref r0, b), Vector512.LoadUnsafe(ref i0, b), Twiddle(_cos, k * step), Twiddle(_sin, k * step));
                var ar = Vector512.LoadUnsafe(ref r0, a); var ai = Vector512.LoadUnsafe(ref i0, a);
                (ar - tr).StoreUnsafe(ref r0, b); (ai - ti).StoreUnsafe(ref i0, b);
                (ar + tr).StoreUnsafe(ref r0, a); (ai + ti).StoreUnsafe(ref i0, a);
            }
    }

    /// <summary>
    /// The two narrowest stages (spans 4 and 2) over rows [from, to), whose twiddles are 1 and −i: the radix-4 butterfly
    /// without products. Decimation in frequency combines rows (0, 2) and (1, 3) first and leaves the outputs in rows 0–3;
    /// decimation in time combines (0, 1) and (2, 3) and leaves the second and third outputs in rows 2 and 1.
    /// </summary>
    private static void SmallestPair(Span<float> re, Span<float> im, int from, int to, bool inverse)
    {
        ref float r0 = ref re[0];
        ref float i0 = ref im[0];
        for (int start = from; start < to; start += 4)
        {
            nuint p0 = (nuint)(start * Lanes), p1 = p0 + Lanes, p2 = p1 + Lanes, p3 = p2 + Lanes;
            nuint b = inverse ? p1 : p2, c = inverse ? p2 : p1;
            Butterfly(Vector512.LoadUnsafe(ref r0, p0), Vector512.LoadUnsafe(ref i0, p0), Vector512.LoadUnsafe(ref r0, b), Vector512.LoadUnsafe(ref i0, b),
                Vector512.LoadUnsafe(ref r0, c), Vector512.LoadUnsafe(ref i0, c), Vector512.LoadUnsafe(ref r0, p3), Vector512.LoadUnsafe(ref i0, p3),
                out var y0r, out var y0i, out var y1r, out var y1i, out var y2r, out var y2i, out var y3r, out var y3i);
            Store(ref r0, ref i0, p0, c, b, p3, y0r, y0i, y1r, y1i, y2r, y2i, y3r, y3i);
        }
    }

    /// <summary>
    /// The radix-4 butterfly on a, b, c, d (pairs (a, b) and (c, d) combined first): y0 = a + b + c + d, y1 = a + b − c − d,
    /// y2 = a − b − i(c − d), y3 = a − b + i(c − d); eight complex sums, the ±i free.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Butterfly(Vector512<float> ar, Vector512<float> ai, Vector512<float> br, Vector512<float> bi, Vector512<float> cr, Vector512<float> ci, Vector512<float> dr, Vector512<float> di,
        out Vector512<float> y0r, out Vector512<float> y0i, out Vector512<float> y1r, out Vector512<float> y1i, out Vector512<float> y2r, out Vector512<float> y2i, out Vector512<float> y3r, out Vector512<float> y3i)
    {
        var sr = ar + br; var si = ai + bi; var er = ar - br; var ei = ai - bi;
        var tr = cr + dr; var ti = ci + di; var fr = cr - dr; var fi = ci - di;
        y0r = sr + tr; y0i = si + ti; y1r = sr - tr; y1i = si - ti;
        y2r = er + fi; y2i = ei - fr; y3r = er - fi; y3i = ei + fr;
    }

    /// <summary>Stores the butterfly's y0…y3 at rows q0…q3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(ref float r0, ref float i0, nuint q0, nuint q1, nuint q2, nuint q3, Vector512<float> y0r, Vector512<float> y0i, Vector512<float> y1r, Vector512<float> y1i,
        Vector512<float> y2r, Vector512<float> y2i, Vector512<float> y3r, Vector512<float> y3i)
    {
        y0r.StoreUnsafe(ref r0, q0); y0i.StoreUnsafe(ref i0, q0); y1r.StoreUnsafe(ref r0, q1); y1i.StoreUnsafe(ref i0, q1);
        y2r.StoreUnsafe(ref r0, q2); y2i.StoreUnsafe(ref i0, q2); y3r.StoreUnsafe(ref r0, q3); y3i.StoreUnsafe(ref i0, q3);
    }

    /// <summary>The narrowest stage alone (span 2, twiddle 1) over rows [from, to): a + b, a − b, in either direction.</summary>
    private static void SmallestStage(Span<float> re, Span<float> im, int from, int to)
    {
        ref float r0 = ref re[0];
        ref float i0 = ref im[0];
        for (int start = from; start < to; start += 2)
        {
            nuint a = (nuint)(start * Lanes), b = a + Lanes;
            var ar = Vector512.LoadUnsafe(ref r0, a); var ai = Vector512.LoadUnsafe(ref i0, a);
            var br = Vector512.LoadUnsafe(ref r0, b); var bi = Vector512.LoadUnsafe(ref i0, b);
            (ar + br).StoreUnsafe(ref r0, a); (ai + bi).StoreUnsafe(ref i0, a);
            (ar - br).StoreUnsafe(ref r0, b); (ai - bi).StoreUnsafe(ref i0, b);
        }
    }

    /// <summary>Entry i of a twiddle table, broadcast; i is below the table's length by construction (no bounds check).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Twiddle(float[] table, int i) => Vector512.Create(Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(table), i));

    /// <summary>(a · w) for a = ar + i·ai, w = wr + i·wi: two products and two fused multiply-adds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float> Re, Vector512<float> Im) Product(Vector512<float> ar, Vector512<float> ai, Vector512<float> wr, Vector512<float> wi) =>
        Avx512F.IsSupported
            ? (Avx512F.FusedMultiplySubtract(ar, wr, ai * wi), Avx512F.FusedMultiplyAdd(ar, wi, ai * wr))
            : (ar * wr - ai * wi, ar * wi + ai * wr);

    /// <summary>Stores (a · w) at row p, w read as Re, Im from <paramref name="w"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Product(Vector512<float> ar, Vector512<float> ai, ref float w, ref float r0, ref float i0, nuint p)
    {
        var (pr, pi) = Product(ar, ai, Vector512.Create(w), Vector512.Create(Unsafe.Add(ref w, 1)));
        pr.StoreUnsafe(ref r0, p); pi.StoreUnsafe(ref i0, p);
    }

    /// <summary>Stores (a · w) at row p.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Product(Vector512<float> ar, Vector512<float> ai, Vector512<float> wr, Vector512<float> wi, ref float r0, ref float i0, nuint p)
    {
        var (pr, pi) = Product(ar, ai, wr, wi);
        pr.StoreUnsafe(ref r0, p); pi.StoreUnsafe(ref i0, p);
    }
}
