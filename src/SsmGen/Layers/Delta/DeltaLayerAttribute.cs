namespace SsmGen;

/// <summary>
/// A delta-rule block: RMSNorm, then per head a d × d state updated by the gated delta rule with
/// <see cref="HouseholderSteps"/> Householder steps per token (gated DeltaNet for 1, DeltaProduct for more):
/// S_t = α_t·Π_j(I − β_j k_j k_jᵀ)·S_{t−1} + writes β_j k_j v_jᵀ, read as o_t = Sᵀq_t; short causal convolutions with
/// SiLU on q, k and v, L2-normalized q and k, a per-head RMSNorm gated by SiLU(g), o_proj, residual. With
/// <see cref="NegativeEigenvalues"/>, β ∈ (0, 2), so a token's transition has eigenvalues in [−1, 1] (state tracking).
/// Trains in the chunked WY form on the CPU and the GPU (head sizes up to 64 there); streams token by token.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class DeltaLayerAttribute : Attribute
{
    /// <summary>Heads h, each with its own d × d state.</summary>
    public int Heads { get; set; } = 4;
    /// <summary>d, the size of each head's queries, keys and values; 0 means DModel / Heads.</summary>
    public int HeadSize { get; set; }
    /// <summary>n, Householder steps (keys, values and β) per token.</summary>
    public int HouseholderSteps { get; set; } = 1;
    /// <summary>The decay α_t = exp(−exp(A_log)·softplus(a_t + dt_bias)) applied before each token's update.</summary>
    public bool Gate { get; set; } = true;
    /// <summary>β ∈ (0, 2) instead of (0, 1): each Householder factor's eigenvalue 1 − β reaches into (−1, 0).</summary>
    public bool NegativeEigenvalues { get; set; } = true;
    /// <summary>Taps of the short causal convolutions on q, k and v.</summary>
    public int ConvWidth { get; set; } = 4;
    /// <summary>Lower end of the log-uniform start of softplus(dt_bias) (the gate's step).</summary>
    public double DtMin { get; set; } = 1e-3;
    /// <summary>Upper end of it.</summary>
    public double DtMax { get; set; } = 1e-1;
    /// <summary>How many consecutive copies of this block to stack.</summary>
    public int Repeat { get; set; } = 1;
}
