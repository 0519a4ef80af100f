namespace SsmGen;

/// <summary>
/// What every generated model offers. The generated class implements it with code specialized to its
/// declared sizes; the trainer and tools work against this interface.
/// </summary>
public interface ISsmModel
{
    /// <summary>The declaration as a runtime description (the reference model is built from it).</summary>
    ModelConfig Config { get; }
    /// <summary>Names, shapes, offsets and optimizer groups of every tensor in <see cref="Parameters"/>.</summary>
    IReadOnlyList<ParameterInfo> ParameterTable { get; }
    /// <summary>Largest batch the activation buffers were sized for.</summary>
    int MaxBatch { get; }
    /// <summary>Longest sequence the activation buffers were sized for.</summary>
    int MaxLength { get; }
    /// <summary>All parameters, one contiguous buffer.</summary>
    Span<float> Parameters { get; }
    /// <summary>Gradients, same layout as <see cref="Parameters"/>; <see cref="Backward"/> adds into it.</summary>
    Span<float> Gradients { get; }
    /// <summary>Seed of the dropout masks.</summary>
    ulong DropoutSeed { get; set; }
    /// <summary>Counter of training forwards; each one draws a fresh dropout mask from (seed, step).</summary>
    ulong DropoutStep { get; set; }

    /// <summary>Sets every parameter from the papers' initializations, deterministically from <paramref name="seed"/>.</summary>
    void Initialize(ulong seed);
    /// <summary>Forward over real inputs (B, L, Input) into (B, Output), or (B, L, Output) without pooling.</summary>
    void Forward(ReadOnlySpan<float> input, int batch, int length, Span<float> output, bool training = false);
    /// <summary>Forward over token ids (B, L).</summary>
    void Forward(ReadOnlySpan<int> tokens, int batch, int length, Span<float> output, bool training = false);
    /// <summary>Adds dL/dθ to <see cref="Gradients"/> given dL/d(output) of the last Forward.</summary>
    void Backward(ReadOnlySpan<float> dOutput);
    /// <summary>Sets every gradient to zero.</summary>
    void ZeroGradients();
    /// <summary>A fresh recurrent state for streaming with <c>Step</c> (allocates; steps do not).</summary>
    SsmState CreateState();
    /// <summary>Consumes one time step of real features (Input values); writes the output for the prefix so far.</summary>
    void Step(SsmState state, ReadOnlySpan<float> x, Span<float> y);
    /// <summary>Consumes one token id; writes the output for the prefix so far.</summary>
    void Step(SsmState state, int token, Span<float> y);
}

/// <summary>
/// Recurrent state of one stream: every layer's complex SSM state and the running pooled sum. Made by
/// <see cref="ISsmModel.CreateState"/>; usable only with a model of the same type. The discretized
/// parameters are read from the model when a stream starts (position 0).
/// </summary>
public sealed class SsmState
{
    /// <summary>The model type that made this state.</summary>
    public Type ModelType { get; }
    /// <summary>Tokens consumed so far.</summary>
    public int Position { get; internal set; }
    /// <summary>The state values (layout owned by the generated model).</summary>
    public float[] Values { get; }

    public SsmState(Type modelType, int size) { ModelType = modelType; Values = new float[size]; }

    /// <summary>Back to the empty prefix.</summary>
    public void Reset() { Array.Clear(Values); Position = 0; }

    /// <summary>Called by generated code: checks ownership and moves the position on.</summary>
    public int Advance(Type modelType)
    {
        if (modelType != ModelType) throw new ArgumentException($"This state belongs to {ModelType.Name}, not {modelType.Name}.");
        return Position++;
    }
}
