namespace SsmGen.Generators.Layers;

/// <summary>An input-dependent transition (IDS) block as declared.</summary>
internal sealed record IdsLayerSpec(int N) : LayerSpec
{
    public override BlockTensors Tensors(long dModel) => IdsTable.Of(dModel, N);
}

/// <summary>One IDS block with state size N.</summary>
internal sealed record IdsLayerPlan(int Index, string Prefix, IdsLayerSpec Spec) : LayerPlan(Index, Prefix)
{
    public int N => Spec.N;
}

/// <summary>[IdsLayer]: pre-LayerNorm, h_t = A(x_t) h_(t−1) + B x_t with A(x) a full N×N matrix, C readout, residual.</summary>
internal sealed class IdsKind() : LayerKind<IdsLayerSpec, IdsLayerPlan>("SsmGen.IdsLayerAttribute", new IdsEmitter(), new CudaIdsEmitter(), positionalProperty: "N")
{
    private const int DefaultN = 16, MaxN = 256;

    public override (string Namespace, string Names)[] RuntimeTypes => [("SsmGen", "IdsLayerConfig"), ("SsmGen.Numerics", "IdsKernels")];

    public override LayerSpec? Parse(LayerArgs a)
    {
        int n = a.Int("N", DefaultN);
        if (n <= 0) a.Report(Diagnostics.NonPositiveSize, "IdsLayer", "N", LayerArgs.Text(n));
        a.AtMost("N", n, MaxN);
        return new IdsLayerSpec(n);
    }

    protected override IdsLayerPlan Plan(IdsLayerSpec spec, int index, string prefix, int dModel) => new(index, prefix, spec);
    protected override string Describe(IdsLayerPlan d) => $"IDS(N = {d.N})";
    protected override string ConfigExpression(IdsLayerPlan d) => $"new IdsLayerConfig({d.N})";
    protected override IEnumerable<(string Name, int Floats, string What)> StateSegments(IdsLayerPlan d, int dModel) => [("h", d.N, "the state h")];

    protected override string? InitCall(ModelPlan plan, IdsLayerPlan l, ParamPlan p, string span, string next) =>
        p.Init == TensorInit.IdsTransition ? $"Initialization.IdsTransition({span}, {next}, {l.N}, H, ref rng);" : null;
}
