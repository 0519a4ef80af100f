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
    // Constants as properties, not static readonly fields: Native AOT reads such a field through the class's
    // initialization check, a call that made the register allocator keep a caller's accumulators on the stack
    // (the fused GLU tile ran 2.7× slower under AOT than under the JIT); Vector512.Create of a constant is a constant.
    private static Vector512<float> Log2E => Vector512.Create(1.44269504088896341f);
    private static Vector512<float> Ln2Hi => Vector512.Create(0.693359375f);
    private static Vector512<float> Ln2Lo => Vector512.Create(-2.12194440e-4f);
    private static Vector512<float> Hi => Vector512.Create(88.3762626647949f);
    private static Vector512<float> Lo => Vector512.Create(-87.3365447504f);

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

    private static Vector512<int> BlockMajor => Vector512.Create(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);

    /// <summary>
    /// The sums of sixteen vectors at once: lane c of the result is the sum of p[c]'s sixteen lanes. A tree of
    /// 128-bit-block, 64-bit and 32-bit shuffles (30 shuffles and 15 adds for all sixteen, where sixteen separate
    /// horizontal sums take about 130 operations); needs AVX-512F. Each vector's lanes are added in the same order
    /// whatever its place, the order <see cref="TreeSum"/> uses for one vector.
    /// </summary>
    public static Vector512<float> SumEach16(ReadOnlySpan<Vector512<float>> p)
    {
        if (p.Length < 16) throw new ArgumentException($"SumEach16 sums 16 vectors; {p.Length} were given.", nameof(p));
        return SumEach16(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15]);
    }

    /// <inheritdoc cref="SumEach16(ReadOnlySpan{Vector512{float}})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> SumEach16(
        Vector512<float> p0, Vector512<float> p1, Vector512<float> p2, Vector512<float> p3, Vector512<float> p4, Vector512<float> p5, Vector512<float> p6, Vector512<float> p7,
        Vector512<float> p8, Vector512<float> p9, Vector512<float> p10, Vector512<float> p11, Vector512<float> p12, Vector512<float> p13, Vector512<float> p14, Vector512<float> p15)
    {
        // Pairs: vectors 2k, 2k+1 → 8 lanes each (lane j: a[j] + a[j+8]).
        var q0 = Pair(p0, p1); var q1 = Pair(p2, p3); var q2 = Pair(p4, p5); var q3 = Pair(p6, p7);
        var q4 = Pair(p8, p9); var q5 = Pair(p10, p11); var q6 = Pair(p12, p13); var q7 = Pair(p14, p15);
        // Quads: vectors 4m … 4m+3 → one 128-bit block each (lane m: P[m] + P[m+4]).
        var r0 = Quad(q0, q1); var r1 = Quad(q2, q3); var r2 = Quad(q4, q5); var r3 = Quad(q6, q7);
        // Within blocks: block b of t0 holds vectors b and 4+b (2 lanes each: k0 + k2, k1 + k3), of t1 8+b and 12+b.
        var t0 = Avx512F.UnpackLow(r0.AsDouble(), r1.AsDouble()).AsSingle() + Avx512F.UnpackHigh(r0.AsDouble(), r1.AsDouble()).AsSingle();
        var t1 = Avx512F.UnpackLow(r2.AsDouble(), r3.AsDouble()).AsSingle() + Avx512F.UnpackHigh(r2.AsDouble(), r3.AsDouble()).AsSingle();
        // Lane 4b + i now holds vector b + 4i: back to vector order.
        var s = Avx512F.Shuffle(t0, t1, 0x88) + Avx512F.Shuffle(t0, t1, 0xDD);
        return Avx512F.PermuteVar16x32(s, BlockMajor);

        static Vector512<float> Pair(Vector512<float> a, Vector512<float> b) => Avx512F.Shuffle4x128(a, b, 0x44) + Avx512F.Shuffle4x128(a, b, 0xEE);
        static Vector512<float> Quad(Vector512<float> x, Vector512<float> y) => Avx512F.Shuffle4x128(x, y, 0x88) + Avx512F.Shuffle4x128(x, y, 0xDD);
    }

    /// <summary>The sum of one vector's lanes, added in <see cref="SumEach16(ReadOnlySpan{Vector512{float}})"/>'s order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float TreeSum(Vector512<float> a)
    {
        var p = a.GetLower() + a.GetUpper();   // lane j: a[j] + a[j+8]
        var k = p.GetLower() + p.GetUpper();   // lane m: P[m] + P[m+4]
        return (k.GetElement(0) + k.GetElement(2)) + (k.GetElement(1) + k.GetElement(3));
    }
}
