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

