namespace SsmGen.Numerics;

/// <summary>
/// In-place radix-2 complex FFT on split real/imaginary arrays, for every power-of-two size up to the
/// one it was built for. Twiddles are computed once (in double) at construction; transforms allocate nothing.
/// </summary>
public sealed class Fft
{
    private readonly float[] _cos, _sin; // e^{-2πik/Max} for k < Max/2
    public int MaxSize { get; }

    public Fft(int maxSize)
    {
        MaxSize = maxSize;
        (_cos, _sin) = Twiddles(maxSize);
    }

    /// <summary>cos and −sin of 2πk/size for k &lt; size/2, computed in double: the twiddles of every power-of-two size up to <paramref name="size"/>.</summary>
    internal static (float[] Cos, float[] Sin) Twiddles(int size)
    {
        if (size < 2 || (size & (size - 1)) != 0) throw new ArgumentException($"FFT size must be a power of two ≥ 2, got {size}.");
        var c = new float[size / 2];
        var s = new float[size / 2];
        for (int k = 0; k < size / 2; k++)
        {
            c[k] = (float)Math.Cos(2 * Math.PI * k / size);
            s[k] = (float)-Math.Sin(2 * Math.PI * k / size);
        }
        return (c, s);
    }

    /// <summary>Smallest power of two ≥ n.</summary>
    public static int NextPowerOfTwo(int n)
    {
        if (n > 1 << 30) throw new ArgumentOutOfRangeException(nameof(n), n, "FFT lengths above 2^30 are not supported.");
        int m = 2;
        while (m < n) m <<= 1;
        return m;
    }

    /// <summary>Forward transform X[j] = Σ x[t]·e^{−2πijt/n} of the first n entries.</summary>
    public void Forward(Span<float> re, Span<float> im, int n) => Transform(re, im, n);

    /// <summary>Inverse transform including the 1/n scale.</summary>
    public void Inverse(Span<float> re, Span<float> im, int n)
    {
        // conj(FFT(conj(x)))/n: run the forward transform with the imaginary parts swapped in sign.
        Transform(im, re, n);
        float s = 1f / n;
        for (int i = 0; i < n; i++) { re[i] *= s; im[i] *= s; }
    }

    private void Transform(Span<float> re, Span<float> im, int n)
    {
        if (n > MaxSize || (n & (n - 1)) != 0) throw new ArgumentException($"FFT size {n} is not a power of two ≤ {MaxSize}.");
        re = re.Slice(0, n); im = im.Slice(0, n);
        for (int i = 1, j = 0; i < n; i++)
        {
            int bit = n >> 1;
            for (; (j & bit) != 0; bit >>= 1) j ^= bit;
            j ^= bit;
            if (i < j) { (re[i], re[j]) = (re[j], re[i]); (im[i], im[j]) = (im[j], im[i]); }
        }
        for (int len = 2; len <= n; len <<= 1)
        {
            int half = len >> 1, step = MaxSize / len;
            for (int start = 0; start < n; start += len)
                for (int k = 0; k < half; k++)
                {
                    float wr = _cos[k * step], wi = _sin[k * step];
                    int a = start + k, b = a + half;
                    float tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr;
                    re[b] = re[a] - tr; im[b] = im[a] - ti;
                    re[a] += tr; im[a] += ti;
                }
        }
    }
}
