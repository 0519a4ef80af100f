using System.Globalization;
using Microsoft.CodeAnalysis;

namespace SsmGen.Generators.Layers;

/// <summary>
/// One layer kind as the generator sees it: how its attribute reads, its plan, and its C# and CUDA renderings. Each
/// kind lives in its own folder (Layers/&lt;Kind&gt;/: this class, its spec and plan records, its CPU and GPU emitters)
/// and is listed once in <see cref="LayerKinds.All"/>; the parser, planner and both shells only iterate that list.
/// Its tensor table is shared with the runtime (src/SsmGen/Layers/&lt;Kind&gt;/&lt;Kind&gt;.Table.cs), reached through
/// <see cref="LayerSpec.Tensors"/>.
/// </summary>
/// <param name="attribute">The attribute's metadata name, e.g. <c>SsmGen.S4DLayerAttribute</c>.</param>
/// <param name="positionalProperty">The property a single positional constructor argument sets (<c>[RnnLayer(64)]</c>), if the attribute has one.</param>
internal abstract class LayerKind(string attribute, string? positionalProperty)
{
    public string Attribute { get; } = attribute;
    public string? PositionalProperty { get; } = positionalProperty;

    /// <summary>The runtime types the kind's renderings name, by namespace (NameQualifier roots them at global::).</summary>
    public abstract (string Namespace, string Names)[] RuntimeTypes { get; }

    /// <summary>Reads and checks one attribute; reports through <paramref name="a"/>, and returns null only with a report.</summary>
    public abstract LayerSpec? Parse(LayerArgs a);

    public abstract bool Owns(LayerSpec spec);
    public abstract bool Owns(LayerPlan plan);

    /// <summary>The block's resolved sizes; <paramref name="prefix"/> starts its tensors' names (<c>layers.0.</c>).</summary>
    public abstract LayerPlan Plan(LayerSpec spec, int index, string prefix, int dModel);

    /// <summary>One phrase for the generated class's summary, e.g. <c>IDS(N = 4)</c>.</summary>
    public abstract string Describe(LayerPlan l);

    /// <summary>The C# expression of the runtime's config record for this block.</summary>
    public abstract string ConfigExpression(LayerPlan l);

    /// <summary>The block's parts of a stream's fixed-size state: (name, floats, what it holds); a KV cache is not among them.</summary>
    public abstract IEnumerable<(string Name, int Floats, string What)> StateSegments(LayerPlan l, int dModel);

    /// <summary>A kind's own initialization call for a tensor of its block, or null when the shell's generic ones serve.</summary>
    public virtual string? InitCall(ModelPlan plan, LayerPlan l, ParamPlan p, string span, string next) => null;

    /// <summary>The kind's blocks can run a piece of a sequence, passing their state between ranks (sequence parallelism).</summary>
    public abstract bool PassesState { get; }

    /// <summary>The fewest tokens a rank's piece of a sequence must hold for the block to pass its state.</summary>
    public abstract int ShortestPiece(LayerPlan l);

    /// <summary>The block's step state is a key/value cache of 2·maxLength·H values (after the fixed-size states).</summary>
    public virtual bool HasKeyValueCache => false;

    // The renderings, typed per kind in LayerKind<TSpec, TPlan>; see CpuRendering and GpuRendering for what each writes.
    // Kind-wide parts are emitted once per model, in LayerKinds.All order.
    public abstract string? StreamStart { get; }
    public abstract void EmitStepHelpers(CodeWriter w, ModelPlan plan);
    public abstract void EmitFields(CodeWriter w, ModelPlan plan);
    public abstract void EmitAllocations(CodeWriter w, ModelPlan plan);
    public abstract void EmitLayer(CodeWriter w, ModelPlan plan, LayerPlan l);
    public abstract void EmitKernels(CodeWriter w, ModelPlan plan);
    public abstract void EmitCudaKernels(StringBuilder cu, ModelPlan plan);
    public abstract IEnumerable<(string Field, string Floats)> GpuBuffers(LayerPlan l);
    public abstract IEnumerable<(string Field, string Floats, bool Training)> GpuScratch(ModelPlan plan);
    public abstract int GpuColumnWidth(ModelPlan plan);
    public abstract IEnumerable<string> GpuUnsupported(ModelPlan plan);
    public abstract void EmitGpuHelpers(CodeWriter w, ModelPlan plan);
    /// <summary>The block's forward, backward and step on the device.</summary>
    public abstract void EmitGpuLayer(CodeWriter w, ModelPlan plan, LayerPlan l);
}

/// <summary>The typed side of <see cref="LayerKind"/>: a kind names its spec and plan records and its two renderings once.</summary>
/// <param name="cpu">The C# rendering (Layers/&lt;Kind&gt;/&lt;Kind&gt;Emitter.cs).</param>
/// <param name="gpu">The CUDA rendering (Layers/&lt;Kind&gt;/Cuda&lt;Kind&gt;Emitter.cs).</param>
internal abstract class LayerKind<TSpec, TPlan>(string attribute, CpuRendering<TPlan> cpu, GpuRendering<TPlan> gpu, string? positionalProperty = null)
    : LayerKind(attribute, positionalProperty) where TSpec : LayerSpec where TPlan : LayerPlan
{
    protected CpuRendering<TPlan> Cpu { get; } = cpu;
    protected GpuRendering<TPlan> Gpu { get; } = gpu;

    public sealed override bool Owns(LayerSpec spec) => spec is TSpec;
    public sealed override bool Owns(LayerPlan plan) => plan is TPlan;
    public sealed override LayerPlan Plan(LayerSpec spec, int index, string prefix, int dModel) => Plan((TSpec)spec, index, prefix, dModel);
    public sealed override string Describe(LayerPlan l) => Describe((TPlan)l);
    public sealed override string ConfigExpression(LayerPlan l) => ConfigExpression((TPlan)l);
    public sealed override IEnumerable<(string Name, int Floats, string What)> StateSegments(LayerPlan l, int dModel) => StateSegments((TPlan)l, dModel);
    public sealed override string? InitCall(ModelPlan plan, LayerPlan l, ParamPlan p, string span, string next) => InitCall(plan, (TPlan)l, p, span, next);

    public sealed override bool PassesState => Cpu.PassesState;
    public sealed override int ShortestPiece(LayerPlan l) => Cpu.ShortestPiece((TPlan)l);
    public sealed override string? StreamStart => Cpu.StreamStart;
    public sealed override void EmitStepHelpers(CodeWriter w, ModelPlan plan) => Cpu.EmitStepHelpers(w, plan);
    public sealed override void EmitFields(CodeWriter w, ModelPlan plan) => Cpu.EmitFields(w, plan);
    public sealed override void EmitAllocations(CodeWriter w, ModelPlan plan) => Cpu.EmitAllocations(w, plan);
    public sealed override void EmitLayer(CodeWriter w, ModelPlan plan, LayerPlan l) => Cpu.EmitLayer(w, plan, (TPlan)l);
    public sealed override void EmitKernels(CodeWriter w, ModelPlan plan) => Cpu.EmitKernels(w, plan);

    public sealed override void EmitCudaKernels(StringBuilder cu, ModelPlan plan) => Gpu.EmitKernels(cu, plan);
    public sealed override IEnumerable<(string Field, string Floats)> GpuBuffers(LayerPlan l) => Gpu.Buffers((TPlan)l);
    public sealed override IEnumerable<(string Field, string Floats, bool Training)> GpuScratch(ModelPlan plan) => Gpu.Scratch(plan);
    public sealed override int GpuColumnWidth(ModelPlan plan) => Gpu.MaxColumnWidth(plan);
    public sealed override IEnumerable<string> GpuUnsupported(ModelPlan plan) => Gpu.Unsupported(plan);
    public sealed override void EmitGpuHelpers(CodeWriter w, ModelPlan plan) => Gpu.EmitHelpers(w, plan);

    public sealed override void EmitGpuLayer(CodeWriter w, ModelPlan plan, LayerPlan l)
    {
        Gpu.EmitForward(w, plan, (TPlan)l);
        Gpu.EmitBackward(w, plan, (TPlan)l);
        Gpu.EmitStep(w, plan, (TPlan)l);
    }

    protected abstract TPlan Plan(TSpec spec, int index, string prefix, int dModel);
    protected abstract string Describe(TPlan l);
    protected abstract string ConfigExpression(TPlan l);
    protected virtual IEnumerable<(string Name, int Floats, string What)> StateSegments(TPlan l, int dModel) => Enumerable.Empty<(string, int, string)>();
    protected virtual string? InitCall(ModelPlan plan, TPlan l, ParamPlan p, string span, string next) => null;
}

/// <summary>One layer attribute's arguments as the kinds read them, with where to report a problem.</summary>
internal sealed class LayerArgs
{
    private readonly Dictionary<string, TypedConstant> _named;
    private readonly Location _at;
    private readonly List<DiagnosticInfo> _diagnostics;

    public LayerArgs(Dictionary<string, TypedConstant> named, Location at, List<DiagnosticInfo> diagnostics, int dModel, double dtMin, double dtMax)
    {
        _named = named; _at = at; _diagnostics = diagnostics; DModel = dModel; DtMin = dtMin; DtMax = dtMax;
    }

    /// <summary>The model's width (already checked by the parser).</summary>
    public int DModel { get; }
    /// <summary>The block's Δ range (every kind's attribute carries one; the parser checks it).</summary>
    public double DtMin { get; }
    public double DtMax { get; }

    public int Int(string key, int fallback) => Int(_named, key, fallback);
    public double Double(string key, double fallback) => Double(_named, key, fallback);

    // Values of the wrong type exist only in code the compiler already rejects; they read as the default.
    public static int Int(Dictionary<string, TypedConstant> named, string key, int fallback) =>
        named.TryGetValue(key, out var v) && v.Value is int i ? i : fallback;

    public static double Double(Dictionary<string, TypedConstant> named, string key, double fallback) =>
        named.TryGetValue(key, out var v) ? v.Value switch { double d => d, float f => f, int i => i, _ => fallback } : fallback;

    public bool Bool(string key, bool fallback = false) => _named.TryGetValue(key, out var v) && v.Value is bool b ? b : fallback;

    public void Report(DiagnosticDescriptor d, params string[] args) => _diagnostics.Add(DiagnosticInfo.Create(d, _at, args));

    /// <summary>A diagnostic when <paramref name="value"/> exceeds <paramref name="max"/>.</summary>
    public void AtMost(string key, int value, int max)
    {
        if (value > max) Report(Diagnostics.TooLarge, key, Text(value), Text(max));
    }

    public static string Text(int v) => v.ToString(CultureInfo.InvariantCulture);
    public static string Text(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
