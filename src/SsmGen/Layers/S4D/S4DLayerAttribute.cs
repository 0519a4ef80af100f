namespace SsmGen;

/// <summary>Initializations of the diagonal state matrix A from the S4D paper.</summary>
public enum S4DInit
{
    /// <summary>A_n = −1/2 + iπn.</summary>
    Lin = 0,
    /// <summary>A_n = −1/2 + i(N/π)(N/(2n+1) − 1).</summary>
    Inv = 1,
    /// <summary>A_n = −(n+1), purely real.</summary>
    Real = 2,
    /// <summary>Eigenvalues of the normal part of the HiPPO-LegS matrix (−1/2 + iω).</summary>
    LegS = 3,
    /// <summary>A_n = −1/2 + iω with ω uniform in [0, πN/2), drawn from the model seed.</summary>
    Random = 4,
}

/// <summary>How the continuous-time SSM is turned into a discrete recurrence.</summary>
public enum Discretization
{
    /// <summary>Zero-order hold: Ā = exp(ΔA), B̄ = (exp(ΔA) − 1)/A · B.</summary>
    Zoh = 0,
    /// <summary>Bilinear: Ā = (1 + ΔA/2)/(1 − ΔA/2), B̄ = Δ/(1 − ΔA/2) · B.</summary>
    Bilinear = 1,
}

/// <summary>
/// One S4D block: pre-LayerNorm, diagonal SSM (S4D), GELU, linear H→2H, GLU, dropout, residual.
/// Repeated attributes stack in declaration order; <see cref="Repeat"/> stacks copies of this one.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class S4DLayerAttribute : Attribute
{
    /// <summary>State size N (counting conjugate pairs; N/2 complex modes are stored). Positive and even.</summary>
    public int N { get; set; } = 64;
    /// <summary>Initialization of A.</summary>
    public S4DInit Init { get; set; } = S4DInit.Lin;
    /// <summary>Discretization rule.</summary>
    public Discretization Discretization { get; set; } = Discretization.Zoh;
    /// <summary>Whether B is a trainable parameter (otherwise fixed at 1).</summary>
    public bool TrainB { get; set; }
    /// <summary>Dropout probability after the GLU, in [0, 1).</summary>
    public double Dropout { get; set; }
    /// <summary>Lower end of the log-uniform Δ initialization.</summary>
    public double DtMin { get; set; } = 1e-3;
    /// <summary>Upper end of the log-uniform Δ initialization.</summary>
    public double DtMax { get; set; } = 1e-1;
    /// <summary>How many consecutive copies of this block to stack.</summary>
    public int Repeat { get; set; } = 1;
}
