namespace SsmGen;

// The dropout threshold, written once: the runtime compiles this file into Rng, and the generator compiles it as well
// (linked), so the thresholds it bakes into generated code are the runtime's own.
public partial struct Rng
{
    /// <summary>Elements whose bits fall below this are dropped: p·2³².</summary>
    public static uint DropoutThreshold(double p) => p <= 0 ? 0u : p >= 1 ? uint.MaxValue : (uint)(p * 4294967296.0);
}
