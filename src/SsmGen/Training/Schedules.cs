using SsmGen.Numerics;

namespace SsmGen.Training;

/// <summary>Linear warm-up from 0 to 1, then a cosine decay to <see cref="MinFactor"/> at <see cref="TotalSteps"/>.</summary>
public sealed record CosineSchedule(int WarmupSteps, int TotalSteps, float MinFactor = 0f)
{
    /// <summary>The learning-rate factor of step <paramref name="step"/> (0-based).</summary>
    public float Factor(long step)
    {
        if (step < WarmupSteps) return (step + 1f) / WarmupSteps;
        if (step >= TotalSteps) return MinFactor;
        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        return (float)(MinFactor + (1 - MinFactor) * 0.5 * (1 + Math.Cos(Math.PI * progress)));
    }
}

/// <summary>Gradient clipping.</summary>
public static class GradientClipping
{
    /// <summary>Scales <paramref name="gradients"/> so their global L2 norm is at most <paramref name="maxNorm"/>; returns the norm before clipping.</summary>
    public static float ClipByGlobalNorm(Span<float> gradients, float maxNorm)
    {
        using var pass = PassProfile.Enter(Pass.Optimizer, 3.0 * gradients.Length, 8.0 * gradients.Length);
        double sq = 0;
        foreach (float g in gradients) sq += (double)g * g;
        float norm = (float)Math.Sqrt(sq);
        if (norm > maxNorm && norm > 0)
        {
            float s = maxNorm / norm;
            for (int i = 0; i < gradients.Length; i++) gradients[i] *= s;
        }
        return norm;
    }
}
