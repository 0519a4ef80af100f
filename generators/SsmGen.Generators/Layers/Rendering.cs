namespace SsmGen.Generators.Layers;

/// <summary>
/// One host buffer of a kind's C# rendering: a field (<c>CpuRendering.PlainArrays</c> says its type) of <see cref="Floats"/> elements (a C# expression over
/// rows = maxBatch·maxLength, H, maxBatch and maxLength), allocated once by the constructor. <see cref="Training"/>:
/// only Backward reads it, so an inference build leaves it empty. <see cref="Block"/>: the block it belongs to, or −1
/// for scratch the kind's blocks share.
/// </summary>
internal sealed record HostBuffer(string Field, string Floats, bool Training = false, int Block = -1);

/// <summary>A kind's C# rendering (its &lt;Kind&gt;Emitter.cs): the block's buffers, passes and specialized kernels.</summary>
internal abstract class CpuRendering<TPlan> where TPlan : LayerPlan
{
    /// <summary>
    /// The type of the kind's buffer fields: AlignedBuffer (the data starts on a cache line, so the kernels' 64-byte
    /// vectors never straddle two), or float[] where a runtime type keeps the buffers as arrays between calls.
    /// </summary>
    protected virtual bool PlainArrays => false;

    private string BufferType => PlainArrays ? "float[]" : "AlignedBuffer";

    /// <summary>What the kind's fields hold, as comment lines above them.</summary>
    protected abstract string[] FieldNotes { get; }

    /// <summary>
    /// A block's own buffers, after its pre-norm's statistics and output (<c>Mean</c>, <c>Rstd</c>, <c>U</c>, which
    /// every block has): (name after the block's <c>_l{i}</c> prefix, floats).
    /// </summary>
    protected abstract IEnumerable<(string Name, string Floats)> BlockBuffers(TPlan l);

    /// <summary>Buffers the kind's blocks share: backward scratch (training-only) and the step's one-token rows.</summary>
    protected virtual IEnumerable<HostBuffer> SharedBuffers(ModelPlan plan) => [];

    /// <summary>Every host buffer of the kind's blocks in this model: per block first, then the shared ones.</summary>
    public IEnumerable<HostBuffer> Buffers(ModelPlan plan)
    {
        foreach (var l in plan.Blocks<TPlan>())
            foreach (var (name, floats) in new[] { ("Mean", "rows"), ("Rstd", "rows"), ("U", "rows * H") }.Concat(BlockBuffers(l)))
                yield return new($"_l{l.Index}{name}", floats, Block: l.Index);
        foreach (var b in SharedBuffers(plan)) yield return b;
    }

    /// <summary>
    /// A runtime object each block owns (a scan, a recurrence), allocated once with the buffers: the field's name
    /// after <c>_l{i}</c>, its type and its constructor's arguments; null when the kind has none.
    /// </summary>
    protected virtual (string Name, string Type, string Arguments)? BlockObject(TPlan l) => null;

    /// <summary>
    /// The runtime object that passes a block's state between the ranks of a sequence-parallel job (its type and its
    /// constructor's arguments), made on first use; null when the kind cannot pass its state.
    /// </summary>
    protected virtual (string Type, string Arguments)? StatePassing(TPlan l) => null;

    /// <summary>Whether the kind's blocks can run a piece of a sequence (<see cref="StatePassing"/> is given).</summary>
    public virtual bool PassesState => false;

    /// <summary>The fewest tokens a rank's piece of a sequence must hold for the block to pass its state.</summary>
    public virtual int ShortestPiece(TPlan l) => 1;

    /// <summary>The expression of block <paramref name="l"/>'s state-passing object, made on first use.</summary>
    protected string Pass(TPlan l) => StatePassing(l) is var (type, arguments) ? $"(_l{l.Index}Pass ??= new {type}({arguments}))" : throw new System.InvalidOperationException("This kind passes no state.");

    /// <summary>The fields of <see cref="Buffers"/> (once per model), one declaration per block and one for the shared ones, then the blocks' objects.</summary>
    public virtual void EmitFields(CodeWriter w, ModelPlan plan)
    {
        foreach (string note in FieldNotes) w.Line("// " + note);
        foreach (var group in Buffers(plan).GroupBy(b => b.Block))
            foreach (var line in Lines(group, 12)) w.Line($"private readonly {BufferType} {string.Join(", ", line.Select(b => b.Field))};");
        foreach (var l in plan.Blocks<TPlan>())
            if (BlockObject(l) is var (name, type, _)) w.Line($"private readonly {type} _l{l.Index}{name};");
        foreach (var l in plan.Blocks<TPlan>())
            if (StatePassing(l) is var (type, _)) w.Line($"private {type}? _l{l.Index}Pass; // sequence parallelism only");
    }

    /// <summary>The constructor lines allocating them: each block's on a line, the training-only ones together.</summary>
    public virtual void EmitAllocations(CodeWriter w, ModelPlan plan)
    {
        var buffers = Buffers(plan).ToList();
        foreach (var group in buffers.Where(b => !b.Training).GroupBy(b => b.Block))
            foreach (var line in Lines(group, 4)) w.Line(string.Join(" ", line.Select(Allocation)));
        var training = buffers.Where(b => b.Training).ToList();
        if (training.Count > 0) ModelEmitter.TrainingOnly(w, PlainArrays, training.Select(b => (b.Field, Size(b))).ToArray());
        foreach (var l in plan.Blocks<TPlan>())
            if (BlockObject(l) is var (name, type, arguments)) w.Line($"_l{l.Index}{name} = new {type}({arguments});");
    }

    private static IEnumerable<IEnumerable<HostBuffer>> Lines(IEnumerable<HostBuffer> buffers, int perLine) =>
        buffers.Select((b, k) => (b, k)).GroupBy(x => x.k / perLine, x => x.b);

    // Products are checked: maxBatch·maxLength·width can pass int's range where the constructor's own check does not look.
    private static string Size(HostBuffer b) => b.Floats.Contains('*') ? $"checked({b.Floats})" : b.Floats;
    private string Allocation(HostBuffer b) => PlainArrays ? $"{b.Field} = new float[{Size(b)}];" : $"{b.Field} = new AlignedBuffer({Size(b)});";

    /// <summary>The block's forward, backward and step methods.</summary>
    public abstract void EmitLayer(CodeWriter w, ModelPlan plan, TPlan l);
    /// <summary>Kernels specialized to the kind's sizes, each variant once per model.</summary>
    public virtual void EmitKernels(CodeWriter w, ModelPlan plan) { }
    /// <summary>A statement the step runs on a stream's first token (t == 0), once per model.</summary>
    public virtual string? StreamStart => null;
    /// <summary>Members the step's statements call, once per model.</summary>
    public virtual void EmitStepHelpers(CodeWriter w, ModelPlan plan) { }
}

/// <summary>A kind's CUDA rendering (its Cuda&lt;Kind&gt;Emitter.cs): kernels, device buffers and the block's launches.</summary>
internal abstract class GpuRendering<TPlan> where TPlan : LayerPlan
{
    /// <summary>The kernels of every variant the model uses (nothing when it has no block of the kind).</summary>
    public abstract void EmitKernels(StringBuilder cu, ModelPlan plan);
    /// <summary>
    /// Device buffers of one block, kept from forward to backward, after its pre-norm's (which the shell lays out):
    /// (field, size in floats as a C# expression).
    /// </summary>
    public abstract IEnumerable<(string Field, string Floats)> Buffers(TPlan l);
    /// <summary>Device scratch the kind's blocks share (training-only where flagged), the step's one-token rows among it.</summary>
    public virtual IEnumerable<(string Field, string Floats, bool Training)> Scratch(ModelPlan plan) => Enumerable.Empty<(string, string, bool)>();
    /// <summary>The widest row the shared column-reduction scratch must hold for this kind's blocks.</summary>
    public virtual int MaxColumnWidth(ModelPlan plan) => 1;
    /// <summary>Why a block cannot run on a GPU (the model then runs on the CPU), one reason per block.</summary>
    public virtual IEnumerable<string> Unsupported(ModelPlan plan) => Enumerable.Empty<string>();
    /// <summary>Members of the device path the launches call, once per model holding such a block.</summary>
    public virtual void EmitHelpers(CodeWriter w, ModelPlan plan) { }
    public abstract void EmitForward(CodeWriter w, ModelPlan plan, TPlan l);
    public abstract void EmitBackward(CodeWriter w, ModelPlan plan, TPlan l);
    public abstract void EmitStep(CodeWriter w, ModelPlan plan, TPlan l);
}
