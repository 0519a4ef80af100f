using System.Numerics;
using System.Runtime.Intrinsics;

namespace SsmGen.Numerics;

/// <summary>
/// Guards that keep every discretized transition contractive in float ("Mathematical Formalism for Memory
/// Compression in Selective State Space Models": |Ā| &lt; 1 makes the state bounded for bounded input). In exact
/// arithmetic Re A &lt; 0 and Δ &gt; 0 already give |Ā| &lt; 1, but in float a tiny ΔA rounds Ā to exactly 1 and
/// overflowing parameters give inf·0 = NaN; these guards only act in those corners. The limits themselves are in
/// Stability.Limits.cs, which the generator compiles too, so the GPU kernels it writes use the same numbers.
/// </summary>
public static partial class Stability
{
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

    /// <summary>min(x, <see cref="MaxLog2Decay"/>): the base-2 exponent of a Mamba decay (as FastMath.Exp2Decay clamps it).</summary>
    public static float Log2Decay(float x) => MathF.Min(x, MaxLog2Decay);

    /// <summary>
    /// The transition with negative eigenvalues from its decay e (already below 1): 2·max(e, <see cref="MinNegativeDecay"/>) − 1,
    /// in (−1, 1). Its slope in Δ·A is 2e (the backward uses that; below the floor e is under 2⁻²³).
    /// </summary>
    public static float NegativeTransition(float decay) => 2 * MathF.Max(decay, MinNegativeDecay) - 1;

    /// <summary><see cref="NegativeTransition(float)"/> per lane.</summary>
    public static Vector512<float> NegativeTransition(Vector512<float> decay) =>
        Vector512.FusedMultiplyAdd(Vector512.Create(2f), Vector512.Max(decay, Vector512.Create(MinNegativeDecay)), Vector512.Create(-1f));
}
