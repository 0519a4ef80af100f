using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SsmGen.Numerics;

/// <summary>
/// Float exp, tanh and sigmoid for Vector512 lanes. exp reduces x = n·ln2 + r with |r| ≤ ln2/2, evaluates a
/// degree-6 polynomial for e^r and scales by 2^n through the exponent bits: relative error ≈ 2e-7 over the
/// float range, without widening to double.
/// </summary>
public static class FastMath
{
    private static readonly Vector512<float> Log2E = Vector512.Create(1.44269504088896341f);
    private static readonly Vector512<float> Ln2Hi = Vector512.Create(0.693359375f), Ln2Lo = Vector512.Create(-2.12194440e-4f);
    private static readonly Vector512<float> Hi = Vector512.Create(88.3762626647949f), Lo = Vector512.Create(-87.3365447504f);

    /// <summary>e^x per lane (inputs clamped to [−87.3, 88.4]).</summary>
    // inlined even into the long generated kernels, whose inlining budget would otherwise run out
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x) => ExpInRange(Vector512.Min(Vector512.Max(x, Lo), Hi));

    /// <summary>e^x for x already inside [−87.3, 88.4]: fused multiply-adds throughout.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ExpInRange(Vector512<float> x)
    {
        var n = Vector512.Round(x * Log2E);
        var r = Vector512.FusedMultiplyAdd(-n, Ln2Hi, x);
        r = Vector512.FusedMultiplyAdd(-n, Ln2Lo, r);
        // e^r ≈ 1 + r + r²/2! + … + r⁶/6!, Horner form
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(1.0f / 720), r, Vector512.Create(1.0f / 120));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.0f / 24));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.0f / 6));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(0.5f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        var scale = (Vector512.ConvertToInt32Native(n) + Vector512.Create(127)) << 23; // n is integral and in range: no saturation fix-ups needed
        return p * scale.AsSingle();
    }

    /// <summary>
    /// 2^x for a decay exponent in log₂ units: x clamped to [−150, <see cref="Stability.MaxLog2Decay"/>], so the
    /// result is in [0, 1) (underflowing to 0). With AVX-512 the scaling by 2^round(x) is one vscalefps, which
    /// also handles the underflow; the fraction's polynomial is Taylor to degree 6 on [−½, ½] (error ≈ 1e-7).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp2Decay(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(-150f)), Vector512.Create(Stability.MaxLog2Decay));
        var n = Vector512.Round(x);
        var f = x - n;
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(1.5403530393381606e-4f), f, Vector512.Create(1.3333558146428443e-3f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(9.618129107628477e-3f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(5.550410866482158e-2f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(0.2402265069591007f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(0.6931471805599453f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512<float>.One);
        if (Avx512F.IsSupported) return Avx512F.Scale(p, n);
        var m = Vector512.Max(n, Vector512.Create(-126f)); // below 2^-126 the decay is 0 for every purpose
        var scale = (Vector512.ConvertToInt32Native(m) + Vector512.Create(127)) << 23;
        return Vector512.ConditionalSelect(Vector512.LessThan(n, Vector512.Create(-126f)), Vector512<float>.Zero, p * scale.AsSingle());
    }

    /// <summary>tanh x = 1 − 2/(e^{2x} + 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Tanh(Vector512<float> x) => Vector512<float>.One - Vector512.Create(2f) / (Exp(x + x) + Vector512<float>.One);

    /// <summary>σ(x) = 1/(1 + e^{−x}).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Sigmoid(Vector512<float> x) => Vector512<float>.One / (Vector512<float>.One + Exp(-x));
}
