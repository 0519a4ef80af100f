namespace SsmGen;

/// <summary>How the per-token features become the model's output.</summary>
public enum Pooling
{
    /// <summary>Average over the sequence: one output row per sequence, shape (B, Output).</summary>
    Mean = 0,
    /// <summary>The last position's features: one output row per sequence, shape (B, Output).</summary>
    Last = 1,
    /// <summary>No pooling: one output row per token, shape (B, L, Output).</summary>
    None = 2,
}

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

/// <summary>Normalization at the start of a block (and of the final norm).</summary>
public enum NormKind
{
    /// <summary>LayerNorm: (x − mean)/std · weight + bias.</summary>
    LayerNorm = 0,
    /// <summary>RMSNorm: x/rms(x) · weight, no bias (Mamba's default).</summary>
    RmsNorm = 1,
}

/// <summary>
/// Declares a sequence model whose code SsmGen generates. Put it on a top-level, non-generic
/// <c>partial class</c> together with one or more layer attributes such as <see cref="S4DLayerAttribute"/>.
/// Set exactly one of <see cref="Input"/> (real-valued features per step, Linear encoder) and
/// <see cref="Vocab"/> (token ids, Embedding encoder).
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class SsmModelAttribute : Attribute
{
    /// <summary>Real-valued features per time step (Linear encoder).</summary>
    public int Input { get; set; }
    /// <summary>Vocabulary size for token inputs (Embedding encoder).</summary>
    public int Vocab { get; set; }
    /// <summary>Width H of the residual stream.</summary>
    public int DModel { get; set; }
    /// <summary>Output features (classes for classification, values for regression).</summary>
    public int Output { get; set; }
    /// <summary>Pooling before the decoder.</summary>
    public Pooling Pooling { get; set; } = Pooling.Mean;
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

/// <summary>
/// One Mamba block ("Mamba: Linear-Time Sequence Modeling with Selective State Spaces"): pre-norm, then
/// in_proj H→2E to (x, z), causal depthwise conv1d, SiLU, x_proj to (Δ, B, C), dt_proj and softplus,
/// the selective scan h_t = exp(Δ_t A) h_{t−1} + Δ_t B_t x_t, y_t = C_t·h_t + D x_t with A = −exp(A_log),
/// the gate y·SiLU(z), out_proj E→H, residual. E = Expand·DModel.
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
    /// <summary>How many consecutive copies of this block to stack.</summary>
    public int Repeat { get; set; } = 1;
}

/// <summary>The elementwise nonlinearity f of a simple recurrent layer h_t = f(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh).</summary>
public enum Nonlinearity
{
    /// <summary>f(s) = tanh(s) (PyTorch nn.RNN's default).</summary>
    Tanh = 0,
    /// <summary>f(s) = max(s, 0).</summary>
    Relu = 1,
}

/// <summary>
/// A simple nonlinear RNN block, the state-tracking baseline of "The Illusion of State in State-Space Models":
/// pre-LayerNorm, h_t = f(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh), out_proj Hidden→H, residual.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class RnnLayerAttribute : Attribute
{
    public RnnLayerAttribute() { }
    /// <param name="hidden">Hidden state size.</param>
    public RnnLayerAttribute(int hidden) => Hidden = hidden;
    /// <summary>Hidden state size (a compile-time constant); 0 means DModel.</summary>
    public int Hidden { get; set; }
    /// <summary>The elementwise nonlinearity f.</summary>
    public Nonlinearity Nonlinearity { get; set; } = Nonlinearity.Tanh;
    /// <summary>How many consecutive copies of this block to stack.</summary>
    public int Repeat { get; set; } = 1;
}

/// <summary>
/// An input-dependent transition SSM block (IDS4 of "The Illusion of State in State-Space Models"): pre-LayerNorm,
/// h_t = A(x_t) h_{t−1} + B x_t with A(x_t) a dense N×N matrix linear in x_t (identity plus noise/√N at init),
/// the readout C h_t + c, residual.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class IdsLayerAttribute : Attribute
{
    public IdsLayerAttribute() { }
    /// <param name="n">State size.</param>
    public IdsLayerAttribute(int n) => N = n;
    /// <summary>State size N (a compile-time constant).</summary>
    public int N { get; set; } = 16;
    /// <summary>How many consecutive copies of this block to stack.</summary>
    public int Repeat { get; set; } = 1;
}

/// <summary>
/// A transformer block, the attention baseline of "The Illusion of State in State-Space Models": pre-LayerNorm,
/// causal multi-head self-attention with rotary positions, residual; pre-LayerNorm, MLP (H → MlpRatio·H, GELU, → H),
/// residual. Its step keeps a key/value cache of up to the model's maxLength positions.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class AttentionLayerAttribute : Attribute
{
    public AttentionLayerAttribute() { }
    /// <param name="heads">Number of heads; must divide DModel with an even head size.</param>
    public AttentionLayerAttribute(int heads) => Heads = heads;
    /// <summary>Number of heads; must divide DModel with an even head size.</summary>
    public int Heads { get; set; } = 4;
    /// <summary>Width of the MLP as a multiple of DModel.</summary>
    public int MlpRatio { get; set; } = 4;
    /// <summary>How many consecutive copies of this block to stack.</summary>
    public int Repeat { get; set; } = 1;
}
