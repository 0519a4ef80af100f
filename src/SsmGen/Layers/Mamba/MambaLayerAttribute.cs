namespace SsmGen;

/// <summary>
/// One Mamba block ("Mamba: Linear-Time Sequence Modeling with Selective State Spaces"): pre-norm, then
/// in_proj H→2E to (x, z), causal depthwise conv1d, SiLU, x_proj to (Δ, B, C), dt_proj and softplus,
/// the selective scan h_t = exp(Δ_t A) h_{t−1} + Δ_t B_t x_t, y_t = C_t·h_t + D x_t with A = −exp(A_log),
/// the gate y·SiLU(z), out_proj E→H, residual. E = Expand·DModel. With <see cref="MambaEigenvalues.PositiveAndNegative"/>
/// the transition is 2·exp(Δ_t A) − 1, whose eigenvalues reach into (−1, 1).
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class MambaLayerAttribute : Attribute
{
    /// <summary>State size N per channel (a compile-time constant of the scan).</summary>
    public int N { get; set; } = 16;
    /// <summary>Inner width factor: E = Expand·DModel.</summary>
    public int Expand { get; set; } = 2;
    /// <summary>Taps of the causal depthwise convolution.</summary>
    public int ConvWidth { get; set; } = 4;
    /// <summary>Rank of the Δ projection; 0 (auto) means ⌈DModel/16⌉.</summary>
    public int DtRank { get; set; }
    /// <summary>The block's pre-norm.</summary>
    public NormKind Norm { get; set; } = NormKind.RmsNorm;
    /// <summary>Lower end of the log-uniform Δ initialization (through dt_proj.bias).</summary>
    public double DtMin { get; set; } = 1e-3;
    /// <summary>Upper end of the log-uniform Δ initialization.</summary>
    public double DtMax { get; set; } = 1e-1;
    /// <summary>Where the scan's transitions lie: (0, 1) as in Mamba, or (−1, 1) (which parity and other state tracking need).</summary>
    public MambaEigenvalues Eigenvalues { get; set; } = MambaEigenvalues.Positive;
    /// <summary>How many consecutive copies of this block to stack.</summary>
    public int Repeat { get; set; } = 1;
}

/// <summary>The range of a Mamba block's transitions Ā_t = f(exp(Δ_t·A)), A = −exp(A_log) &lt; 0.</summary>
public enum MambaEigenvalues
{
    /// <summary>Ā = exp(Δ·A) ∈ (0, 1): Mamba's own.</summary>
    Positive,
    /// <summary>
    /// Ā = 2·exp(Δ·A) − 1 ∈ (−1, 1) ("Unlocking State-Tracking in Linear RNNs Through Negative Eigenvalues"): a
    /// channel can flip its state's sign, which parity needs. The input term stays Δ·B·x, as in the authors' code.
    /// </summary>
    PositiveAndNegative,
}
