namespace SsmGen;

/// <summary>
/// What every generated model offers. The generated class implements it with code specialized to its
/// declared sizes; the trainer and tools work against this interface. Dispose frees a GPU model's device memory.
/// </summary>
public interface ISsmModel : IDisposable
{
    /// <summary>The declaration as a runtime description (the reference model is built from it).</summary>
    ModelConfig Config { get; }
    /// <summary>Names, shapes, offsets and optimizer groups of every tensor in <see cref="Parameters"/>.</summary>
    IReadOnlyList<ParameterInfo> ParameterTable { get; }
    /// <summary>Training (gradients and backward buffers) or inference only.</summary>
    ModelUse Use { get; }
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

    /// <summary>
    /// Called by Backward, on its own thread, each time the gradients from the given offset to the end of
    /// <see cref="Gradients"/> are final for this backward: after the output head, after each block (the last block
    /// first) and with 0 at the end. A data-parallel trainer starts all-reducing them while the backward goes on.
    /// </summary>
    Action<int>? GradientsFinal { get; set; }
    /// <summary>
    /// Null: Forward and Backward see whole sequences. Set: this process is one rank of a sequence-parallel job, and
    /// Forward and Backward run its piece of each sequence, exchanging the S4D and Mamba blocks' states with the other
    /// ranks (see <see cref="Distributed.SequenceParallel"/>). Only models of S4D and Mamba blocks with an output per
    /// token, on the CPU, can; others throw NotSupportedException.
    /// </summary>
    Distributed.SequenceParallel? SequenceParallel { get; set; }
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
    /// <summary>
    /// One step of several streams at once (up to <see cref="MaxBatch"/>, each its own state and position): stream s consumes
    /// the real features x[s·Input …] and writes outputs[s·Output …]. Every weight is read once for all of them, and each
    /// stream's outputs are exactly those of stepping it alone; streams may join and leave between calls.
    /// </summary>
    void Step(ReadOnlySpan<SsmState> streams, ReadOnlySpan<float> x, Span<float> outputs);
    /// <summary>One step of several streams at once: stream s consumes tokens[s]; see the real-feature overload.</summary>
    void Step(ReadOnlySpan<SsmState> streams, ReadOnlySpan<int> tokens, Span<float> outputs);
    /// <summary>The tensors <c>Step</c> multiplies by (its matrix products' weights), in buffer order: what <see cref="UseStepWeights"/> makes compact.</summary>
    IReadOnlyList<string> StepMatrices { get; }
    /// <summary>The format <c>Step</c> reads its matrix products' weights in: Float32 unless <see cref="UseStepWeights"/> chose another.</summary>
    WeightFormat StepWeights { get; }
    /// <summary>
    /// Makes <c>Step</c> read the weights of its matrix products from a BFloat16 or Int8 (per-row scales) copy made now
    /// from the parameters, or from the parameters again with Float32. The recurrent state, the SSM's parameters,
    /// biases and norms stay fp32, and so does Forward. Inference builds on the CPU only (a training build throws
    /// InvalidOperationException, a GPU model NotSupportedException). The copy is of the parameters as they are now:
    /// Checkpoint.Load makes it again; after changing the parameters otherwise, call this again.
    /// </summary>
    void UseStepWeights(WeightFormat format);
}

/// <summary>
/// Recurrent state of one stream: every layer's complex SSM state, the discretized parameters the stream
/// runs with, and the running pooled sum. Made by <see cref="ISsmModel.CreateState"/> and usable only
/// with that model instance. The SSM's discretized parameters are read when the stream starts (position 0):
/// after changing a model's parameters, <see cref="Reset"/> its streams. On a GPU model the newest values live
/// on the device between steps; reading <see cref="Values"/> brings them home (and the next step takes the
/// array, as the caller may have written it, back to the device).
/// </summary>
public sealed class SsmState
{
    private readonly object _owner;
    private readonly float[] _values;

    /// <summary>Set while this stream's newest values are on a GPU model's device.</summary>
    internal Cuda.DeviceStateSlot? Slot;

    /// <summary>Tokens consumed so far.</summary>
    public int Position { get; private set; }
    /// <summary>The state values (layout owned by the generated model), brought up to date from the device first.</summary>
    public float[] Values
    {
        get
        {
            Slot?.BringHome(this);
            return _values;
        }
    }
    /// <summary>How many values the state holds (without bringing them home).</summary>
    public int Size => _values.Length;
    /// <summary>The host array as it is, for the device copy itself.</summary>
    internal float[] HostValues => _values;
    /// <summary>The model type that made this state.</summary>
    public Type ModelType => _owner.GetType();
    /// <summary>The model instance that made this state.</summary>
    internal object Owner => _owner;

    public SsmState(object owner, int size) { _owner = owner; _values = new float[size]; }

    /// <summary>Back to the empty prefix.</summary>
    public void Reset()
    {
        Slot?.Forget(this);
        Array.Clear(_values);
        Position = 0;
        _startedUnder = null;
    }

    // The model's compact step copy in force when this stream discretized its SSM parameters (null: none, or values
    // that came from elsewhere): such streams hold equal discretized values, which a step may read from one shared copy.
    private object? _startedUnder;

    /// <summary>Called by generated code when a new stream has discretized its SSM parameters under <paramref name="copy"/>.</summary>
    public void MarkStarted(object? copy) => _startedUnder = copy;

    /// <summary>Called by generated code: whether this stream discretized its parameters under <paramref name="copy"/> (never for null).</summary>
    public bool StartedUnder(object? copy) => copy is not null && ReferenceEquals(_startedUnder, copy);

    /// <summary>Takes <paramref name="values"/> (checked to be this state's size) and <paramref name="position"/>, as a restored or forked stream.</summary>
    internal void Set(ReadOnlySpan<float> values, int position)
    {
        if (values.Length != _values.Length) throw new ArgumentException($"A state of this model holds {_values.Length} values, not {values.Length}.", nameof(values));
        Slot?.Forget(this);
        values.CopyTo(_values);
        Position = position;
        _startedUnder = null; // its discretized values are its own
    }

    /// <summary>Called by generated code before a step changes anything: throws unless <paramref name="model"/> made this state.</summary>
    public void CheckOwner(object model, string paramName)
    {
        if (!ReferenceEquals(model, _owner))
            throw new ArgumentException(model.GetType() == ModelType
                ? "This state was made by another model instance; create one with this model's CreateState()."
                : $"This state belongs to a {ModelType.Name}, not a {model.GetType().Name}.", paramName);
    }

    /// <summary>Called by generated code: checks that <paramref name="model"/> made this state; returns the position before this step and moves it on.</summary>
    public int Advance(object model)
    {
        CheckOwner(model, "state");
        return Position++;
    }
}
