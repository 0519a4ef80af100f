using System.Runtime.Intrinsics;

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
    public static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Lo), Hi);
        var n = Vector512.Round(x * Log2E);
        var r = x - n * Ln2Hi - n * Ln2Lo;
        // e^r ≈ 1 + r + r²/2! + … + r⁶/6!, Horner form
        var p = Vector512.Create(1.0f / 720);
        p = p * r + Vector512.Create(1.0f / 120);
        p = p * r + Vector512.Create(1.0f / 24);
        p = p * r + Vector512.Create(1.0f / 6);
        p = p * r + Vector512.Create(0.5f);
        p = p * r + Vector512<float>.One;
        p = p * r + Vector512<float>.One;
        var scale = (Vector512.ConvertToInt32(n) + Vector512.Create(127)) << 23;
        return p * scale.AsSingle();
    }

    /// <summary>tanh x = 1 − 2/(e^{2x} + 1).</summary>
    public static Vector512<float> Tanh(Vector512<float> x) => Vector512<float>.One - Vector512.Create(2f) / (Exp(x + x) + Vector512<float>.One);

    /// <summary>σ(x) = 1/(1 + e^{−x}).</summary>
    public static Vector512<float> Sigmoid(Vector512<float> x) => Vector512<float>.One / (Vector512<float>.One + Exp(-x));
}
