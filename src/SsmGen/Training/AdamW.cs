using System.Runtime.Intrinsics;
using SsmGen.Numerics;

namespace SsmGen.Training;

/// <summary>Learning rate and weight decay of one optimizer group.</summary>
public readonly record struct GroupSettings(float LearningRate, float WeightDecay);

/// <summary>
/// AdamW (decoupled weight decay) over a model's contiguous parameter buffer, with settings per
/// <see cref="OptimizerGroup"/>. Defaults follow the S4D paper: the SSM group (log Δ, A, B) trains at
/// 1e-3 without weight decay; biases, norms and D have no weight decay. Moments are allocated once.
/// </summary>
public sealed class AdamW
{
    private readonly float[] _m, _v;
    private readonly (int Start, int Length, OptimizerGroup Group)[] _ranges;
    private readonly GroupSettings[] _groups = new GroupSettings[3];

    public float Beta1 { get; }
    public float Beta2 { get; }
    public float Epsilon { get; }
    /// <summary>Steps taken so far (bias correction uses it).</summary>
    public long StepCount { get; private set; }

    public AdamW(IReadOnlyList<ParameterInfo> table, float learningRate = 1e-2f, float weightDecay = 0.01f, float ssmLearningRate = 1e-3f,
                 float beta1 = 0.9f, float beta2 = 0.999f, float epsilon = 1e-8f)
    {
        if (!(learningRate > 0) || !(ssmLearningRate > 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), "Learning rates must be positive.");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), "Weight decay must not be negative.");
        if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), "Betas must be in [0, 1).");
        int count = table.Count == 0 ? 0 : table[^1].Offset + table[^1].Length;
        _m = new float[count];
        _v = new float[count];
        _ranges = table.Select(p => (p.Offset, p.Length, p.Group)).ToArray();
        this[OptimizerGroup.Default] = new(learningRate, weightDecay);
        this[OptimizerGroup.NoDecay] = new(learningRate, 0);
        this[OptimizerGroup.Ssm] = new(ssmLearningRate, 0);
        (Beta1, Beta2, Epsilon) = (beta1, beta2, epsilon);
    }

    /// <summary>First moments (for checkpoints).</summary>
    public ReadOnlySpan<float> FirstMoments { get { DeviceCopy?.MomentsRequested(); return _m; } }
    /// <summary>Second moments (for checkpoints).</summary>
    public ReadOnlySpan<float> SecondMoments { get { DeviceCopy?.MomentsRequested(); return _v; } }

    /// <summary>The moments' copy on a GPU, when a GPU model's training step updates them there (one at a time).</summary>
    internal Cuda.DeviceMoments? DeviceCopy { get; set; }
    internal float[] HostFirstMoments => _m;
    internal float[] HostSecondMoments => _v;

    /// <summary>Restores moments and step count saved from an optimizer over the same table; checks sizes first.</summary>
    public void Restore(ReadOnlySpan<float> firstMoments, ReadOnlySpan<float> secondMoments, long stepCount)
    {
        if (firstMoments.Length != _m.Length || secondMoments.Length != _v.Length)
            throw new ArgumentException($"Optimizer state has {firstMoments.Length} and {secondMoments.Length} moments; this optimizer has {_m.Length}.");
        if (stepCount < 0) throw new ArgumentOutOfRangeException(nameof(stepCount), stepCount, "Step count must not be negative.");
        firstMoments.CopyTo(_m);
        secondMoments.CopyTo(_v);
        StepCount = stepCount;
        DeviceCopy?.HostMomentsWritten();
    }

    /// <summary>Settings of a group; change them between steps as you like.</summary>
    public GroupSettings this[OptimizerGroup group]
    {
        get => _groups[(int)group];
        set => _groups[(int)group] = value;
    }

    /// <summary>Counts a step; returns the bias corrections 1/(1 − β₁ᵗ) and 1/(1 − β₂ᵗ).</summary>
    internal (float C1, float C2) BeginStep()
    {
        StepCount++;
        return (1f / (1f - MathF.Pow(Beta1, StepCount)), 1f / (1f - MathF.Pow(Beta2, StepCount)));
    }

    /// <summary>Takes back the count of a step whose update was not applied (a device step with a non-finite loss or norm).</summary>
    internal void UncountStep()
    {
        if (StepCount == 0) throw new InvalidOperationException("The optimizer has no step to take back.");
        StepCount--;
    }

    /// <summary>One update of <paramref name="parameters"/> from <paramref name="gradients"/>; every learning rate is scaled by <paramref name="lrScale"/> (the schedule).</summary>
    public void Step(Span<float> parameters, ReadOnlySpan<float> gradients, float lrScale = 1f)
    {
        if (parameters.Length != _m.Length || gradients.Length != _m.Length)
            throw new ArgumentException($"Expected {_m.Length} parameters and gradients, got {parameters.Length} and {gradients.Length}.");
        DeviceCopy?.MomentsRequested();
        DeviceCopy?.HostMomentsWritten();
        using var pass = PassProfile.Enter(Pass.Optimizer, 12.0 * parameters.Length, 20.0 * parameters.Length);
        var (c1, c2) = BeginStep();
        foreach (var (start, length, group) in _ranges)
        {
            var s = _groups[(int)group];
            float lr = s.LearningRate * lrScale, decay = 1f - lr * s.WeightDecay;
            int i = start;
            if (Vector512.IsHardwareAccelerated)
            {
                // the scalar loop's operations in its order, sixteen at a time (no fused multiply-adds): the same bits
                var b1 = Vector512.Create(Beta1); var b2 = Vector512.Create(Beta2); var r1 = Vector512.Create(1 - Beta1); var r2 = Vector512.Create(1 - Beta2);
                var vc1 = Vector512.Create(c1); var vc2 = Vector512.Create(c2); var vlr = Vector512.Create(lr); var vdecay = Vector512.Create(decay); var eps = Vector512.Create(Epsilon);
                for (; i + 16 <= start + length; i += 16)
                {
                    var g = Vector512.Create(gradients.Slice(i, 16));
                    var m = b1 * Vector512.Create(_m.AsSpan(i, 16)) + r1 * g;
                    var v = b2 * Vector512.Create(_v.AsSpan(i, 16)) + r2 * g * g;
                    m.CopyTo(_m.AsSpan(i, 16));
                    v.CopyTo(_v.AsSpan(i, 16));
                    (Vector512.Create(parameters.Slice(i, 16)) * vdecay - vlr * (m * vc1) / (Vector512.Sqrt(v * vc2) + eps)).CopyTo(parameters.Slice(i, 16));
                }
            }
            for (; i < start + length; i++)
            {
                float g = gradients[i];
                float m = _m[i] = Beta1 * _m[i] + (1 - Beta1) * g;
                float v = _v[i] = Beta2 * _v[i] + (1 - Beta2) * g * g;
                parameters[i] = parameters[i] * decay - lr * (m * c1) / (MathF.Sqrt(v * c2) + Epsilon);
            }
        }
    }
}
