namespace SsmGen;

/// <summary>The measure whose HiPPO matrix initializes an S4 block.</summary>
public enum S4Measure
{
    /// <summary>HiPPO-LegS (scaled Legendre): A = Λ − P·P* in its normal-plus-low-rank form, B and P from it.</summary>
    LegS = 0,
}

/// <summary>
/// One S4 block ("Efficiently Modeling Long Sequences with Structured State Spaces"): pre-LayerNorm, the SSM with A in
/// diagonal-plus-low-rank form (A = Λ − P·P*, rank 1), bilinear discretization and S4's kernel algorithm (the
/// truncated generating function at the roots of unity by Cauchy sums and the Woodbury identity, then an inverse FFT),
/// GELU, linear H→2H, GLU, dropout, residual; the same block as <see cref="S4DLayerAttribute"/> around a different SSM.
/// C is S4's C̃ for the kernel length: sequences are at most <see cref="KernelLength"/> steps long, and the step
/// converts C̃ back to C when a stream starts. Runs on the CPU (the GPU path refuses the block for now).
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class S4LayerAttribute : Attribute
{
    /// <summary>State size N (counting conjugate pairs; N/2 complex modes are stored). Positive and even.</summary>
    public int N { get; set; } = 64;
    /// <summary>The HiPPO measure of the initialization.</summary>
    public S4Measure Measure { get; set; } = S4Measure.LegS;
    /// <summary>Lk, the length the kernel is computed for (S4's l_max): a power of two, at least the model's maxLength.</summary>
    public int KernelLength { get; set; } = 1024;
    /// <summary>Dropout probability after the GLU, in [0, 1).</summary>
    public double Dropout { get; set; }
    /// <summary>Lower end of the log-uniform Δ initialization.</summary>
    public double DtMin { get; set; } = 1e-3;
    /// <summary>Upper end of the log-uniform Δ initialization.</summary>
    public double DtMax { get; set; } = 1e-1;
    /// <summary>How many consecutive copies of this block to stack.</summary>
    public int Repeat { get; set; } = 1;
}
