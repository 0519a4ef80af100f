namespace SsmGen;

/// <summary>
/// Small deterministic generator (xoshiro256**, seeded through SplitMix64) so that a seed gives the
/// same model on every machine and .NET version. A struct: copying it forks the stream.
/// </summary>
public partial struct Rng
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>Seeds the four words of state from one 64-bit seed.</summary>
    public Rng(ulong seed)
    {
        _s0 = SplitMix(ref seed); _s1 = SplitMix(ref seed); _s2 = SplitMix(ref seed); _s3 = SplitMix(ref seed);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3; _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [lo, hi).</summary>
    public double Uniform(double lo, double hi) => lo + (hi - lo) * NextDouble();

    /// <summary>Uniform integer in [0, n).</summary>
    public int NextInt(int n) => (int)((NextUInt64() >> 33) % (ulong)n);

    /// <summary>Standard normal by Box–Muller (one value per call; simple beats clever here).</summary>
    public double Normal()
    {
        double u1 = 1.0 - NextDouble();
        double u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>
    /// The dropout key of one layer in one training step: masks are <see cref="DropoutBits"/> of (key, index),
    /// so any implementation (generated code, reference, backward) recomputes them exactly without storing them.
    /// </summary>
    public static uint DropoutKey(ulong seed, ulong step, int layer)
    {
        ulong x = seed ^ (step + 1) * 0x9E3779B97F4A7C15UL ^ ((ulong)layer + 1) * 0xC2B2AE3D27D4EB4FUL;
        return (uint)(SplitMix(ref x) >> 32);
    }

    // DropoutThreshold, DropoutBits and the hash's constants live in Rng.Dropout.cs, which the generator compiles too.
}
