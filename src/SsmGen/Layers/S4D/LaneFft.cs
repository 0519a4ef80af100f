using System.Runtime.Intrinsics;

namespace SsmGen.Numerics;

/// <summary>
/// Sixteen complex FFTs at once, one per Vector512 lane: element t of sequence c sits at [t·16 + c] of
/// split real/imaginary arrays. Every butterfly is then a plain vertical vector operation with a broadcast
/// twiddle: no shuffles. Radix-2 stages taken two at a time, in place, any power-of-two size up to the one it was built for.
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

    /// <summary>X[j] = Σ_t x[t]·e^{−2πijt/n} in every lane.</summary>
    public void Forward(Span<float> re, Span<float> im, int n) => Transform(re, im, n);

    /// <summary>
    /// n times the inverse transform, x[t] = Σ_j X[j]·e^{2πijt/n} in every lane: the 1/n is left to the caller, who
    /// folds it into a product it makes anyway instead of a pass of its own.
    /// </summary>
    public void UnscaledInverse(Span<float> re, Span<float> im, int n) =>
        Transform(im, re, n); // conj(FFT(conj x)) by swapping the roles of Re and Im

    private void Transform(Span<float> re, Span<float> im, int n)
    {
        if (n > _maxSize || (n & (n - 1)) != 0) throw new ArgumentException($"FFT size {n} is not a power of two ≤ {_maxSize}.");
        if (re.Length < n * Lanes || im.Length < n * Lanes) throw new ArgumentException("Buffers hold fewer than n·16 values.");
        for (int i = 1, j = 0; i < n; i++)
        {
            int bit = n >> 1;
            for (; (j & bit) != 0; bit >>= 1) j ^= bit;
            j ^= bit;
            if (i < j)
            {
                Swap(re, i, j);
                Swap(im, i, j);
            }
        }
        // Stages up to Block rows combine only rows inside one block: run them block by block while the
        // block sits in L1, then the wide stages over the whole array. Stages go two at a time (radix 4): every
        // row is loaded and stored once per pair, half the passes over memory of single stages.
        int small = Math.Min(n, Block);
        for (int start = 0; start < n; start += small)
            Stages(re, im, start, start + small, 2, small);
        Stages(re, im, 0, n, small << 1, n);
    }

    private const int Block = 256; // rows: 256 × 16 lanes × (Re, Im) × 4 bytes = 32 KB

    /// <summary>The stages of spans <paramref name="first"/>, 2·first, …, <paramref name="last"/> over rows [from, to), in pairs.</summary>
    private void Stages(Span<float> re, Span<float> im, int from, int to, int first, int last)
    {
        int len = first;
        for (; 2 * len <= last; len <<= 2) StagePair(re, im, from, to, len);
        if (len <= last) Stage(re, im, from, to, len);
    }

    /// <summary>
    /// The stages of spans <paramref name="len"/> and 2·len at once over rows [from, to): in each group of 2·len rows,
    /// rows k, k+h, k+len, k+len+h (h = len/2) go through the first stage's two butterflies (twiddle W_len^k) and then
    /// the second's (W_2len^k and W_2len^(k+h)), the same arithmetic as two calls of <see cref="Stage"/>.
    /// </summary>
    private void StagePair(Span<float> re, Span<float> im, int from, int to, int len)
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

    /// <summary>One radix-2 stage of butterflies of span <paramref name="len"/> over rows [from, to).</summary>
    private void Stage(Span<float> re, Span<float> im, int from, int to, int len)
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

    private static void Swap(Span<float> x, int i, int j)
    {
        var a = Vector512.LoadUnsafe(ref x[i * Lanes]);
        Vector512.LoadUnsafe(ref x[j * Lanes]).StoreUnsafe(ref x[i * Lanes]);
        a.StoreUnsafe(ref x[j * Lanes]);
    }
}
