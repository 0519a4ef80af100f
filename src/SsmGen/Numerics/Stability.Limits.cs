namespace SsmGen.Numerics;

// The stability limits, written once: the runtime compiles this file into Stability, and the generator compiles it
// as well (linked), so the CUDA kernels it emits carry the same numbers as the CPU code that names them.
public static partial class Stability
{
    /// <summary>Largest |Ā| an S4D mode is stored with: its float components then have magnitude below 1.</summary>
    public const double MaxMagnitude = 1 - 1.0 / (1 << 22);

    /// <summary>Largest Δ·A a Mamba decay exp(Δ·A) is evaluated at: exp(−2⁻²³) rounds to 1 − 2⁻²³ in float, not to 1.</summary>
    public const float MaxLogDecay = -1f / (1 << 23);

    /// <summary>The same guard in log₂ units, for decays computed as 2^(Δ·A·log₂e): 2^(−2⁻²³) rounds to 1 − 2⁻²⁴.</summary>
    public const float MaxLog2Decay = -1f / (1 << 23);

    /// <summary>
    /// Smallest decay e = exp(Δ·A) a Mamba transition with negative eigenvalues, Ā = 2e − 1, is taken at: Ā stays at or
    /// above −1 + 2⁻²², so |Ā| &lt; 1 however large Δ·|A| grows (at e = 0, Ā would be exactly −1).
    /// </summary>
    public const float MinNegativeDecay = 1f / (1 << 23);

    /// <summary>Bound on log-parameters before exponentiation (e^80 ≈ 5.5e34), so exp never overflows to inf.</summary>
    public const double MaxLog = 80;
}
