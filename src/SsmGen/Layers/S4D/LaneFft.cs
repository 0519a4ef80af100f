using System.Runtime.Intrinsics;

namespace SsmGen.Numerics;

/// <summary>
/// Sixteen complex FFTs at once, one per Vector512 lane: element t of sequence c sits at [t·16 + c] of
/// split real/imaginary arrays. Every butterfly is then a plain vertical vector operation with a broadcast
/// twiddle: no shuffles. Radix-2, in place, any power-of-two size up to the one it was built for.
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

    /// <summary>Inverse transform with the 1/n scale, in every lane.</summary>
    public void Inverse(Span<float> re, Span<float> im, int n)
    {
        Transform(im, re, n); // conj(FFT(conj x)) by swapping the roles of Re and Im
        var s = Vector512.Create(1f / n);
        for (int i = 0; i < n * Lanes; i += Lanes)
        {
            (Vector512.LoadUnsafe(ref re[i]) * s).StoreUnsafe(ref re[i]);
            (Vector512.LoadUnsafe(ref im[i]) * s).StoreUnsafe(ref im[i]);
        }
    }

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
        // block sits in L1, then the wide stages over the whole array.
        int small = Math.Min(n, Block);
        for (int start = 0; start < n; start += small)
            for (int len = 2; len <= small; len <<= 1) Stage(re, im, start, start + small, len);
        for (int len = small << 1; len <= n; len <<= 1) Stage(re, im, 0, n, len);
    }

    private const int Block = 128; // rows: 128 × 16 lanes × (Re, Im) × 4 bytes = 16 KB

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
