using System.Numerics;
using System.Runtime.Intrinsics;

namespace SsmGen.Numerics;

/// <summary>
/// Guards that keep every discretized transition contractive in float ("Mathematical Formalism for Memory
/// Compression in Selective State Space Models": |Ā| &lt; 1 makes the state bounded for bounded input). In exact
/// arithmetic Re A &lt; 0 and Δ &gt; 0 already give |Ā| &lt; 1, but in float a tiny ΔA rounds Ā to exactly 1 and
/// overflowing parameters give inf·0 = NaN; these guards only act in those corners.
/// </summary>
public static class Stability
{
    /// <summary>Largest |Ā| an S4D mode is stored with: its float components then have magnitude below 1.</summary>
    public const double MaxMagnitude = 1 - 1.0 / (1 << 22);

    /// <summary>Largest Δ·A a Mamba decay exp(Δ·A) is evaluated at: exp(−2⁻²³) rounds to 1 − 2⁻²³ in float, not to 1.</summary>
    public const float MaxLogDecay = -1f / (1 << 23);

    /// <summary>The same guard in log₂ units, for decays computed as 2^(Δ·A·log₂e): 2^(−2⁻²³) rounds to 1 − 2⁻²⁴.</summary>
    public const float MaxLog2Decay = -1f / (1 << 23);

    /// <summary>Bound on log-parameters before exponentiation (e^80 ≈ 5.5e34), so exp never overflows to inf.</summary>
    public const double MaxLog = 80;

    /// <summary>z itself when |z| ≤ <see cref="MaxMagnitude"/>, else z scaled back to that magnitude.</summary>
    public static Complex Contract(Complex z)
    {
        double m = z.Magnitude;
        return m <= MaxMagnitude ? z : z * (MaxMagnitude / m);
    }

    /// <summary>min(x, <see cref="MaxLogDecay"/>) per lane: the exponent of a Mamba decay.</summary>
    public static Vector512<float> LogDecay(Vector512<float> x) => Vector512.Min(x, Vector512.Create(MaxLogDecay));

    /// <summary>min(x, <see cref="MaxLogDecay"/>).</summary>
    public static float LogDecay(float x) => MathF.Min(x, MaxLogDecay);
}
