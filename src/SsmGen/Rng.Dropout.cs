namespace SsmGen;

// The dropout mask rule, written once: the runtime compiles this file into Rng, and the generator compiles it as well
// (linked), so the thresholds and hash constants it bakes into generated C# and CUDA are the runtime's own.
public partial struct Rng
{
    /// <summary>Elements whose bits fall below this are dropped: p·2³².</summary>
    public static uint DropoutThreshold(double p) => p <= 0 ? 0u : p >= 1 ? uint.MaxValue : (uint)(p * 4294967296.0);

    /// <summary>The mask hash's constants: index·φ·2³² + key, then murmur3's finalizer (xor-shifts 16, 13, 16 around two multiplies).</summary>
    public const uint DropoutGolden = 0x9E3779B1u, DropoutMix1 = 0x85EBCA6Bu, DropoutMix2 = 0xC2B2AE35u;

    /// <summary>32 well-mixed bits for element <paramref name="index"/> of the layer whose key is <paramref name="key"/>.</summary>
    public static uint DropoutBits(uint key, uint index)
    {
        uint h = index * DropoutGolden + key;
        h ^= h >> 16; h *= DropoutMix1;
        h ^= h >> 13; h *= DropoutMix2;
        return h ^ (h >> 16);
    }
}
