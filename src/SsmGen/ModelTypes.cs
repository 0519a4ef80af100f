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

    /// <summary>Writes a start of the kind's own (<paramref name="next"/>: the tensor after, for starts that fill two); false for the generic ones.</summary>
    internal virtual bool Initialize(TensorInit init, Span<float> dst, Span<float> next, int dModel, ref Rng rng) => false;

    /// <summary>Floats a stream keeps for this block after <paramref name="length"/> tokens (see <see cref="Memory.ModelCost"/>).</summary>
    internal virtual long StreamValues(int dModel, int length) => throw new NotSupportedException($"No memory count for layer kind {Kind}.");

    /// <summary>FLOPs of the block's streaming step, its residual add aside, averaged over <paramref name="length"/> tokens.</summary>
    internal virtual double StepFlops(int dModel, int length) => throw new NotSupportedException($"No FLOP count for layer kind {Kind}.");

    /// <summary>The block as the reference model runs it (the kind's oracle, in its Layers/ folder).</summary>
    internal virtual Reference.ReferenceBlock<T> ReferenceBlock<T>(int dModel) where T : System.Numerics.IFloatingPointIeee754<T> =>
        throw new NotSupportedException($"No reference for layer kind {Kind}.");
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

/// <summary>How the streaming step stores the matrices of its products (<see cref="ISsmModel.UseStepWeights"/>).</summary>
public enum WeightFormat
{
    /// <summary>The parameters themselves: 4 bytes a weight.</summary>
    Float32,
    /// <summary>bfloat16: the upper 16 bits of each float, rounded to nearest even (8 bits of mantissa); 2 bytes a weight.</summary>
    BFloat16,
    /// <summary>Signed 8-bit integers with one float scale per matrix row (symmetric: the row's largest |w| maps to 127); 1 byte a weight.</summary>
    Int8,
    /// <summary>
    /// The weights as <see cref="Int8"/>, and each product's input row quantized the same way when the product runs
    /// (dynamic quantization): integer dot products, 32 at a time with AVX-VNNI where the CPU has it. Faster than Int8,
    /// and less exact: the inputs are rounded too.
    /// </summary>
    Int8Dynamic,
}
