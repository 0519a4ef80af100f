namespace SsmGen.Generators.Layers;

/// <summary>A delta-rule block as declared; <see cref="HeadSize"/> is resolved (0 → DModel / Heads).</summary>
internal sealed record DeltaLayerSpec(int Heads, int HeadSize, int HouseholderSteps, bool Gate, bool NegativeEigenvalues, int ConvWidth, double DtMin, double DtMax) : LayerSpec
{
    public override BlockTensors Tensors(long dModel) => DeltaTable.Of(dModel, Heads, HeadSize, HouseholderSteps, ConvWidth, Gate);
}

/// <summary>One delta-rule block: h heads of size d, n Householder steps per token.</summary>
internal sealed record DeltaLayerPlan(int Index, string Prefix, DeltaLayerSpec Spec) : LayerPlan(Index, Prefix)
{
    public int Heads => Spec.Heads;
    public int D => Spec.HeadSize;
    public int N => Spec.HouseholderSteps;
    /// <summary>Values of a row of q (and of g, o): h·d.</summary>
    public int Hd => Heads * D;
    /// <summary>Values of a row of the keys (and of the values): n·h·d.</summary>
    public int Kd => N * Hd;
    /// <summary>The q|k|v projections side by side: h·d + 2·n·h·d.</summary>
    public int C => Hd + 2 * Kd;
    /// <summary>Floats of a stream's state: the last W−1 raw q|k|v rows and each head's d × d state.</summary>
    public int StateFloats => (Spec.ConvWidth - 1) * C + Heads * D * D;
}

/// <summary>[DeltaLayer]: RMSNorm, the gated delta rule with Householder steps (DeltaNet, DeltaProduct), gated RMSNorm, o_proj, residual.</summary>
internal sealed class DeltaKind() : LayerKind<DeltaLayerSpec, DeltaLayerPlan>("SsmGen.DeltaLayerAttribute", new DeltaEmitter(), new CudaDeltaEmitter())
{
    private const int DefaultHeads = 4, DefaultSteps = 1, DefaultConvWidth = 4;
    private const int MaxHeads = 256, MaxHeadSize = 256, MaxConvWidth = 64;

    /// <summary>Householder steps per token at most (the GPU path's chunks of 32 rows then hold whole tokens).</summary>
    internal const int MaxSteps = 8;

    public override (string Namespace, string Names)[] RuntimeTypes => [("SsmGen", "DeltaLayerConfig"), ("SsmGen.Numerics", "DeltaRule")];

    public override LayerSpec? Parse(LayerArgs a)
    {
        int heads = a.Int("Heads", DefaultHeads), size = a.Int("HeadSize", 0), steps = a.Int("HouseholderSteps", DefaultSteps), width = a.Int("ConvWidth", DefaultConvWidth);
        foreach (var (key, value) in new[] { ("Heads", heads), ("HouseholderSteps", steps), ("ConvWidth", width) })
            if (value <= 0) a.Report(Diagnostics.NonPositiveSize, "DeltaLayer", key, LayerArgs.Text(value));
        if (size < 0) a.Report(Diagnostics.NonPositiveSize, "DeltaLayer", "HeadSize (or 0 for DModel / Heads)", LayerArgs.Text(size));
        foreach (var (key, value, max) in new[] { ("Heads", heads, MaxHeads), ("HeadSize", size, MaxHeadSize), ("HouseholderSteps", steps, MaxSteps), ("ConvWidth", width, MaxConvWidth) })
            a.AtMost(key, value, max);
        if (size == 0 && heads > 0)
        {
            if (a.DModel % heads != 0) a.Report(Diagnostics.BadHeadSize, LayerArgs.Text(heads), LayerArgs.Text(a.DModel));
            size = a.DModel / heads;
            a.AtMost("HeadSize", size, MaxHeadSize);
        }
        return new DeltaLayerSpec(heads, size, steps, a.Bool("Gate", true), a.Bool("NegativeEigenvalues", true), width, a.DtMin, a.DtMax);
    }

    protected override DeltaLayerPlan Plan(DeltaLayerSpec spec, int index, string prefix, int dModel) => new(index, prefix, spec);

    protected override string Describe(DeltaLayerPlan l) =>
        $"Delta({l.Heads} heads of {l.D}, {l.N} Householder step{(l.N == 1 ? "" : "s")}{(l.Spec.Gate ? ", gated" : "")}, β ∈ (0, {(l.Spec.NegativeEigenvalues ? 2 : 1)}), conv {l.Spec.ConvWidth})";

    protected override string ConfigExpression(DeltaLayerPlan l) =>
        $"new DeltaLayerConfig({l.Heads}, {l.D}, {l.N}, {(l.Spec.Gate ? "true" : "false")}, {(l.Spec.NegativeEigenvalues ? "true" : "false")}, {l.Spec.ConvWidth}, {CodeWriter.D(l.Spec.DtMin)}, {CodeWriter.D(l.Spec.DtMax)})";

    protected override IEnumerable<(string Name, int Floats, string What)> StateSegments(DeltaLayerPlan l, int dModel) =>
        [("state", l.StateFloats, $"the last {l.Spec.ConvWidth - 1} raw q|k|v rows ({l.C} each), oldest first, then each head's {l.D} × {l.D} state")];

    protected override string? InitCall(ModelPlan plan, DeltaLayerPlan l, ParamPlan p, string span, string next) => p.Init switch
    {
        TensorInit.DeltaALog => $"Initialization.DeltaALog({span}, ref rng);",
        TensorInit.MambaDtBias => $"Initialization.MambaDtBias({span}, {CodeWriter.D(l.Spec.DtMin)}, {CodeWriter.D(l.Spec.DtMax)}, ref rng);",
        _ => null,
    };
}
