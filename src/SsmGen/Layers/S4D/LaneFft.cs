using System.Numerics;
using System.Runtime.Intrinsics;

namespace SsmGen.Numerics;

/// <summary>
/// Sixteen complex FFTs at once, one per Vector512 lane: element t of sequence c sits at [t·16 + c] of
/// split real/imaginary arrays. Every butterfly is then a plain vertical vector operation with a broadcast
/// twiddle: no shuffles. Built for the zero-padded transforms of a causal convolution, where only the first half of a
/// sequence is ever nonzero and only the first half of an inverse is ever read: the forward transform takes its input in
/// rows [0, n/2) and leaves the spectrum in bit-reversed order (decimation in frequency); the inverse takes a spectrum in
/// that order and gives rows [0, n/2) back (decimation in time). A pointwise product does not care about the order, so no
/// bit-reversal pass is made, and each transform's widest stage does half its work (the forward's reads one half and
/// writes the other; the inverse's writes the first half only).
/// </summary>
public sealed class LaneFft
{
    public const int Lanes = 16;
    private readonly float[] _cos, _sin;
    private readonly int _maxSize;

    public LaneFft(int maxSize)
    {
        _maxSize = maxSize;
        (_cos, _sin) = Fft.Twiddles(maxSize);
    }

    /// <summary>
    /// X[j] = Σ_t x[t]·e^{−2πijt/n} in every lane, for x in rows [0, n/2) and zero after (rows [n/2, n) are not read);
    /// row p then holds X[rev(p)], rev reversing log₂n bits (<see cref="Partner"/> finds X[−j]).
    /// </summary>
    public void Forward(Span<float> re, Span<float> im, int n)
    {
        Check(re, im, n);
        ref float r0 = ref re[0];
        ref float i0 = ref im[0];
        int half = n >> 1;
        // the widest stage against a zero second half: x[k + n/2] = x[k]·W_n^k, x[k] as it is
        for (int k = 0, step = _maxSize / n; k < half; k++)
        {
            var wr = Vector512.Create(_cos[k * step]); var wi = Vector512.Create(_sin[k * step]);
            nuint a = (nuint)(k * Lanes), b = a + (nuint)(half * Lanes);
            var xr = Vector512.LoadUnsafe(ref r0, a); var xi = Vector512.LoadUnsafe(ref i0, a);
            (xr * wr - xi * wi).StoreUnsafe(ref r0, b); (xr * wi + xi * wr).StoreUnsafe(ref i0, b);
        }
        // Spans wider than a block run over the whole array, then each block of rows takes its own stages while it
        // sits in L1. Stages go two at a time (radix 4): every row is loaded and stored once per pair.
        int len = half;
        for (; len > Block && len >> 1 > Block; len >>= 2) FrequencyPair(re, im, 0, n, len);
        if (len > Block) { FrequencyStage(re, im, 0, n, len); len >>= 1; }
        for (int start = 0; start < n; start += Math.Min(n, Block))
        {
            int l = len;
            for (; l >= 4; l >>= 2) FrequencyPair(re, im, start, start + Math.Min(n, Block), l);
            if (l == 2) FrequencyStage(re, im, start, start + Math.Min(n, Block), 2);
        }
    }

    /// <summary>
    /// n times the inverse transform, x[t] = Σ_j X[j]·e^{2πijt/n} for t in [0, n/2), in every lane, from a spectrum in the
    /// order <see cref="Forward"/> leaves it; rows [n/2, n) are left undefined. The 1/n is left to the caller, who folds
    /// it into a product it makes anyway instead of a pass of its own.
    /// </summary>
    public void UnscaledInverse(Span<float> re, Span<float> im, int n) =>
        InverseFirstHalf(im, re, n); // conj(FFT(conj x)) by swapping the roles of Re and Im

    private void InverseFirstHalf(Span<float> re, Span<float> im, int n)
    {
        Check(re, im, n);
        int small = Math.Min(n >> 1, Block), len = 2;
        if (n > 2)
            for (int start = 0; start < n; start += small)
            {
                len = 2;
                for (; 2 * len <= small; len <<= 2) TimePair(re, im, start, start + small, len);
                if (len <= small) { TimeStage(re, im, start, start + small, len); len <<= 1; }
            }
        for (; 2 * len < n; len <<= 2) TimePair(re, im, 0, n, len);
        if (len < n) { TimeStage(re, im, 0, n, len); len <<= 1; }
        // the widest stage, first half only: x[k] + W_n^k·x[k + n/2]
        ref float r0 = ref re[0];
        ref float i0 = ref im[0];
        int h = n >> 1;
        for (int k = 0, step = _maxSize / n; k < h; k++)
        {
            var wr = Vector512.Create(_cos[k * step]); var wi = Vector512.Create(_sin[k * step]);
            nuint a = (nuint)(k * Lanes), b = a + (nuint)(h * Lanes);
            var br = Vector512.LoadUnsafe(ref r0, b); var bi = Vector512.LoadUnsafe(ref i0, b);
            (Vector512.LoadUnsafe(ref r0, a) + br * wr - bi * wi).StoreUnsafe(ref r0, a);
            (Vector512.LoadUnsafe(ref i0, a) + br * wi + bi * wr).StoreUnsafe(ref i0, a);
        }
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
    /// Decimation in frequency, the stages of spans <paramref name="len"/> and len/2 at once over rows [from, to): in each
    /// group, rows k, k+q, k+2q, k+3q (q = len/4) go through the first stage's two butterflies (twiddles W_len^k and
    /// W_len^(k+q)) and then the second's (W_(len/2)^k for both).
    /// </summary>
    private void FrequencyPair(Span<float> re, Span<float> im, int from, int to, int len)
    {
        int q = len >> 2, step1 = _maxSize / len, step2 = step1 << 1;
        ref float r0 = ref re[0];
        ref float i0 = ref im[0];
        for (int start = from; start < to; start += len)
            for (int k = 0; k < q; k++)
            {
                var w1r = Vector512.Create(_cos[k * step1]); var w1i = Vector512.Create(_sin[k * step1]);
                var w3r = Vector512.Create(_cos[(k + q) * step1]); var w3i = Vector512.Create(_sin[(k + q) * step1]);
                var w2r = Vector512.Create(_cos[k * step2]); var w2i = Vector512.Create(_sin[k * step2]);
                nuint p0 = (nuint)((start + k) * Lanes), p1 = p0 + (nuint)(q * Lanes), p2 = p1 + (nuint)(q * Lanes), p3 = p2 + (nuint)(q * Lanes);
                var x0r = Vector512.LoadUnsafe(ref r0, p0); var x0i = Vector512.LoadUnsafe(ref i0, p0);
                var x2r = Vector512.LoadUnsafe(ref r0, p2); var x2i = Vector512.LoadUnsafe(ref i0, p2);
                var a0r = x0r + x2r; var a0i = x0i + x2i; var dr = x0r - x2r; var di = x0i - x2i;
                var a2r = dr * w1r - di * w1i; var a2i = dr * w1i + di * w1r;
                var x1r = Vector512.LoadUnsafe(ref r0, p1); var x1i = Vector512.LoadUnsafe(ref i0, p1);
                var x3r = Vector512.LoadUnsafe(ref r0, p3); var x3i = Vector512.LoadUnsafe(ref i0, p3);
                var a1r = x1r + x3r; var a1i = x1i + x3i; dr = x1r - x3r; di = x1i - x3i;
                var a3r = dr * w3r - di * w3i; var a3i = dr * w3i + di * w3r;
                (a0r + a1r).StoreUnsafe(ref r0, p0); (a0i + a1i).StoreUnsafe(ref i0, p0);
                dr = a0r - a1r; di = a0i - a1i;
                (dr * w2r - di * w2i).StoreUnsafe(ref r0, p1); (dr * w2i + di * w2r).StoreUnsafe(ref i0, p1);
                (a2r + a3r).StoreUnsafe(ref r0, p2); (a2i + a3i).StoreUnsafe(ref i0, p2);
                dr = a2r - a3r; di = a2i - a3i;
                (dr * w2r - di * w2i).StoreUnsafe(ref r0, p3); (dr * w2i + di * w2r).StoreUnsafe(ref i0, p3);
            }
    }

    /// <summary>One decimation-in-frequency stage of span <paramref name="len"/> over rows [from, to): a + b, (a − b)·W_len^k.</summary>
    private void FrequencyStage(Span<float> re, Span<float> im, int from, int to, int len)
    {
        int half = len >> 1, step = _maxSize / len;
        ref float r0 = ref re[0];
        ref float i0 = ref im[0];
        for (int start = from; start < to; start += len)
            for (int k = 0; k < half; k++)
            {
                var wr = Vector512.Create(_cos[k * step]); var wi = Vector512.Create(_sin[k * step]);
                nuint a = (nuint)((start + k) * Lanes), b = a + (nuint)(half * Lanes);
                var ar = Vector512.LoadUnsafe(ref r0, a); var ai = Vector512.LoadUnsafe(ref i0, a);
                var br = Vector512.LoadUnsafe(ref r0, b); var bi = Vector512.LoadUnsafe(ref i0, b);
                (ar + br).StoreUnsafe(ref r0, a); (ai + bi).StoreUnsafe(ref i0, a);
                var dr = ar - br; var di = ai - bi;
                (dr * wr - di * wi).StoreUnsafe(ref r0, b); (dr * wi + di * wr).StoreUnsafe(ref i0, b);
            }
    }

    /// <summary>
    /// Decimation in time, the stages of spans <paramref name="len"/> and 2·len at once over rows [from, to): in each group
    /// of 2·len rows, rows k, k+h, k+len, k+len+h (h = len/2) go through the first stage's two butterflies (twiddle
    /// W_len^k) and then the second's (W_2len^k and W_2len^(k+h)).
    /// </summary>
    private void TimePair(Span<float> re, Span<float> im, int from, int to, int len)
    {
        int h = len >> 1, step1 = _maxSize / len, step2 = step1 >> 1;
        ref float r0 = ref re[0];
        ref float i0 = ref im[0];
        for (int start = from; start < to; start += 2 * len)
            for (int k = 0; k < h; k++)
            {
                var w1r = Vector512.Create(_cos[k * step1]); var w1i = Vector512.Create(_sin[k * step1]);
                var w2r = Vector512.Create(_cos[k * step2]); var w2i = Vector512.Create(_sin[k * step2]);
                var w3r = Vector512.Create(_cos[(k + h) * step2]); var w3i = Vector512.Create(_sin[(k + h) * step2]);
                nuint p0 = (nuint)((start + k) * Lanes), p1 = p0 + (nuint)(h * Lanes), p2 = p0 + (nuint)(len * Lanes), p3 = p2 + (nuint)(h * Lanes);
                // first stage: (p0, p1) and (p2, p3), both with W_len^k
                var x1r = Vector512.LoadUnsafe(ref r0, p1); var x1i = Vector512.LoadUnsafe(ref i0, p1);
                var tr = x1r * w1r - x1i * w1i; var ti = x1r * w1i + x1i * w1r;
                var x0r = Vector512.LoadUnsafe(ref r0, p0); var x0i = Vector512.LoadUnsafe(ref i0, p0);
                var a0r = x0r + tr; var a0i = x0i + ti; var a1r = x0r - tr; var a1i = x0i - ti;
                var x3r = Vector512.LoadUnsafe(ref r0, p3); var x3i = Vector512.LoadUnsafe(ref i0, p3);
                tr = x3r * w1r - x3i * w1i; ti = x3r * w1i + x3i * w1r;
                var x2r = Vector512.LoadUnsafe(ref r0, p2); var x2i = Vector512.LoadUnsafe(ref i0, p2);
                var a2r = x2r + tr; var a2i = x2i + ti; var a3r = x2r - tr; var a3i = x2i - ti;
                // second stage: (p0, p2) with W_2len^k, (p1, p3) with W_2len^(k+h)
                tr = a2r * w2r - a2i * w2i; ti = a2r * w2i + a2i * w2r;
                (a0r + tr).StoreUnsafe(ref r0, p0); (a0i + ti).StoreUnsafe(ref i0, p0);
                (a0r - tr).StoreUnsafe(ref r0, p2); (a0i - ti).StoreUnsafe(ref i0, p2);
                tr = a3r * w3r - a3i * w3i; ti = a3r * w3i + a3i * w3r;
                (a1r + tr).StoreUnsafe(ref r0, p1); (a1i + ti).StoreUnsafe(ref i0, p1);
                (a1r - tr).StoreUnsafe(ref r0, p3); (a1i - ti).StoreUnsafe(ref i0, p3);
            }
    }

    /// <summary>One decimation-in-time stage of span <paramref name="len"/> over rows [from, to): a ± W_len^k·b.</summary>
    private void TimeStage(Span<float> re, Span<float> im, int from, int to, int len)
    {
        int half = len >> 1, step = _maxSize / len;
        ref float r0 = ref re[0];
        ref float i0 = ref im[0];
        // Groups outside, butterflies inside: consecutive iterations touch neighbouring rows, which keeps
        // loads from waiting on stores to addresses 4 KB apart (the rows of a and b are half·64 bytes apart).
        for (int start = from; start < to; start += len)
            for (int k = 0; k < half; k++)
            {
                var wr = Vector512.Create(_cos[k * step]);
                var wi = Vector512.Create(_sin[k * step]);
                nuint a = (nuint)((start + k) * Lanes), b = a + (nuint)(half * Lanes);
                var br = Vector512.LoadUnsafe(ref r0, b); var bi = Vector512.LoadUnsafe(ref i0, b);
                var tr = br * wr - bi * wi;
                var ti = br * wi + bi * wr;
                var ar = Vector512.LoadUnsafe(ref r0, a); var ai = Vector512.LoadUnsafe(ref i0, a);
                (ar - tr).StoreUnsafe(ref r0, b); (ai - ti).StoreUnsafe(ref i0, b);
                (ar + tr).StoreUnsafe(ref r0, a); (ai + ti).StoreUnsafe(ref i0, a);
            }
    }
}
