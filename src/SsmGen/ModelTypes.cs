using SsmGen.Layers;

namespace SsmGen;

/// <summary>What a model instance is built for, which decides the buffers its constructor allocates.</summary>
public enum ModelUse
{
    /// <summary>Forward (training or inference), Backward and Step: gradients and backward scratch included.</summary>
    Training = 0,
    /// <summary>
    /// Forward (inference only) and Step: no gradient buffer and none of the generated passes' backward scratch
    /// (the selective scan and the portable convolution path still keep a few backward buffers of their own).
    /// Backward and a training Forward throw. The per-layer forward buffers remain, sized by maxBatch·maxLength: a streaming-only model
    /// can be built with maxBatch = 1.
    /// </summary>
    Inference = 1,
}

/// <summary>One named tensor inside a model's contiguous parameter buffer.</summary>
/// <param name="Name">PyTorch-style name, e.g. <c>layers.0.mixer.log_dt</c>.</param>
/// <param name="Shape">Row-major shape.</param>
/// <param name="Offset">First element in the parameter (and gradient) buffer.</param>
/// <param name="Group">Optimizer group.</param>
public sealed record ParameterInfo(string Name, int[] Shape, int Offset, OptimizerGroup Group)
{
    /// <summary>Number of elements (product of the shape).</summary>
    public int Length => checked((int)Shapes.ElementCount(Shape));

    /// <summary>Shape written as <c>(a, b)</c>.</summary>
    public string ShapeText => "(" + string.Join(", ", Shape) + ")";
}

/// <summary>Shape arithmetic shared by parameter tables and checkpoint entries.</summary>
public static class Shapes
{
    /// <summary>Product of the dimensions (1 for a scalar's empty shape).</summary>
    public static long ElementCount(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        return n;
    }
}

/// <summary>Runtime description of one block of a model; one record type per layer kind.</summary>
public abstract record LayerConfig
{
    /// <summary>The attribute that declares this kind, e.g. <c>S4DLayer</c> (used in messages).</summary>
    public abstract string Kind { get; }

    /// <summary>Checks the facts the generator also checks at compile time.</summary>
    public abstract void Validate(int dModel);

    /// <summary>The block's tensors after its pre-norm (the kind's table, shared with the generator).</summary>
    internal virtual BlockTensors Tensors(int dModel) => throw new NotSupportedException($"No parameter table for layer kind {Kind}.");
}

/// <summary>Runtime description of one S4D block (the same facts the attributes declare).</summary>
public sealed record S4DLayerConfig(
    int N,
    S4DInit Init = S4DInit.Lin,
    Discretization Discretization = Discretization.Zoh,
    bool TrainB = false,
    double Dropout = 0,
    double DtMin = 1e-3,
    double DtMax = 1e-1) : LayerConfig
{
    public override string Kind => "S4DLayer";

    internal override BlockTensors Tensors(int dModel) => S4DTable.Of(dModel, N, TrainB);

    public override void Validate(int dModel)
    {
        if (N <= 0 || N % 2 != 0) throw new ArgumentException($"S4D state size N must be positive and even, got {N}.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"Dropout must be in [0, 1), got {Dropout}.");
        if (!(DtMin > 0 && DtMin <= DtMax)) throw new ArgumentException($"Need 0 < DtMin <= DtMax, got {DtMin} and {DtMax}.");
    }
}

/// <summary>
/// Runtime description of one Mamba block: pre-norm, the selective SSM mixer (in_proj, causal depthwise conv,
/// SiLU, x_proj, dt_proj with softplus, selective scan, SiLU gate, out_proj), residual.
/// </summary>
/// <param name="N">State size per channel.</param>
/// <param name="Expand">Inner width E = Expand·DModel.</param>
/// <param name="ConvWidth">Taps of the causal depthwise convolution.</param>
/// <param name="DtRank">Rank of the Δ projection; 0 means ⌈DModel/16⌉.</param>
/// <param name="Norm">The block's pre-norm.</param>
public sealed record MambaLayerConfig(
    int N = 16,
    int Expand = 2,
    int ConvWidth = 4,
    int DtRank = 0,
    NormKind Norm = NormKind.RmsNorm,
    double DtMin = 1e-3,
    double DtMax = 1e-1) : LayerConfig
{
    public override string Kind => "MambaLayer";

    internal override BlockTensors Tensors(int dModel) => MambaTable.Of(dModel, Inner(dModel), N, Rank(dModel), ConvWidth, Norm == NormKind.RmsNorm);

    /// <summary>Inner width E.</summary>
    public int Inner(int dModel) => Expand * dModel;

    /// <summary>The Δ projection rank actually used.</summary>
    public int Rank(int dModel) => DtRank > 0 ? DtRank : (dModel + 15) / 16;

    public override void Validate(int dModel)
    {
        if (N <= 0) throw new ArgumentException($"Mamba state size N must be positive, got {N}.");
        if (Expand <= 0) throw new ArgumentException($"Expand must be positive, got {Expand}.");
        if (ConvWidth <= 0) throw new ArgumentException($"ConvWidth must be positive, got {ConvWidth}.");
        if (DtRank < 0) throw new ArgumentException($"DtRank must be positive, or 0 for ⌈DModel/16⌉; got {DtRank}.");
        if (!(DtMin > 0 && DtMin <= DtMax)) throw new ArgumentException($"Need 0 < DtMin <= DtMax, got {DtMin} and {DtMax}.");
    }
}

/// <summary>Runtime description of one simple RNN block.</summary>
/// <param name="Hidden">Hidden state size; 0 means DModel.</param>
public sealed record RnnLayerConfig(int Hidden = 0, Nonlinearity Nonlinearity = Nonlinearity.Tanh) : LayerConfig
{
    public override string Kind => "RnnLayer";

    internal override BlockTensors Tensors(int dModel) => RnnTable.Of(dModel, HiddenSize(dModel));

    /// <summary>The hidden size actually used.</summary>
    public int HiddenSize(int dModel) => Hidden > 0 ? Hidden : dModel;

    public override void Validate(int dModel)
    {
        if (Hidden < 0) throw new ArgumentException($"Hidden must be positive, or 0 for DModel; got {Hidden}.");
        if (!Enum.IsDefined(Nonlinearity)) throw new ArgumentException($"Unknown nonlinearity {Nonlinearity}.");
    }
}

/// <summary>Runtime description of one input-dependent transition (IDS) block.</summary>
public sealed record IdsLayerConfig(int N = 16) : LayerConfig
{
    public override string Kind => "IdsLayer";

    internal override BlockTensors Tensors(int dModel) => IdsTable.Of(dModel, N);

    public override void Validate(int dModel)
    {
        if (N <= 0) throw new ArgumentException($"IDS state size N must be positive, got {N}.");
    }
}

/// <summary>Runtime description of one transformer block (causal attention with rotary positions, then an MLP).</summary>
public sealed record AttentionLayerConfig(int Heads = 4, int MlpRatio = 4) : LayerConfig
{
    public override string Kind => "AttentionLayer";

    internal override BlockTensors Tensors(int dModel) => AttentionTable.Of(dModel, (long)MlpRatio * dModel);

    public override void Validate(int dModel)
    {
        if (Heads <= 0 || dModel % Heads != 0) throw new ArgumentException($"Heads = {Heads} must be positive and divide DModel = {dModel}.");
        if (dModel / Heads % 2 != 0) throw new ArgumentException($"The head size DModel/Heads = {dModel / Heads} must be even for rotary positions.");
        if (MlpRatio <= 0) throw new ArgumentException($"MlpRatio must be positive, got {MlpRatio}.");
    }
}

/// <summary>Runtime description of a whole model; the reference implementation is built from it.</summary>
public sealed record ModelConfig(int Input, int Vocab, int DModel, int Output, Pooling Pooling, IReadOnlyList<LayerConfig> Layers)
{
    /// <summary>True when the model reads token ids through an embedding.</summary>
    public bool TokenInput => Vocab > 0;

    /// <summary>Values per time step in a <c>Forward</c> input row: Input, or 1 for token ids.</summary>
    public int InputWidth => TokenInput ? 1 : Input;

    /// <summary>
    /// A model made only of Mamba blocks names its tensors in the Hugging Face Mamba layout
    /// (<c>backbone.embeddings.weight</c>, <c>backbone.layers.{i}.mixer.*</c>, <c>backbone.norm_f.weight</c>,
    /// <c>lm_head.weight</c> without bias), so such checkpoints load directly; other models use
    /// <c>encoder</c>, <c>layers.{i}</c>, <c>norm_f</c>, <c>decoder</c>.
    /// </summary>
    public bool MambaLayout => TensorNames().MambaLayout;

    /// <summary>The final norm: RMSNorm when every block is a Mamba block with RMSNorm, else LayerNorm.</summary>
    public NormKind FinalNorm => TensorNames().FinalRms ? NormKind.RmsNorm : NormKind.LayerNorm;

    /// <summary>Each block's tensors after its pre-norm, in stack order.</summary>
    internal BlockTensors[] BlockTensors() => Layers.Select(l => l.Tensors(DModel)).ToArray();

    internal TensorNames TensorNames() => TensorTable.Names(TokenInput, BlockTensors());

    /// <summary>Checks the facts the generator also checks at compile time.</summary>
    public void Validate()
    {
        if ((Input > 0) == (Vocab > 0)) throw new ArgumentException("Set exactly one of Input (real features) and Vocab (token ids).");
        if (Input < 0 || Vocab < 0) throw new ArgumentException("Input and Vocab must not be negative.");
        if (DModel <= 0) throw new ArgumentException($"DModel must be positive, got {DModel}.");
        if (Output <= 0) throw new ArgumentException($"Output must be positive, got {Output}.");
        if (Layers.Count == 0) throw new ArgumentException("A model needs at least one layer.");
        foreach (var l in Layers) l.Validate(DModel);
    }
}
