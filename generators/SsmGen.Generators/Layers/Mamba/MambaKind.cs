namespace SsmGen.Generators.Layers;

/// <summary>
/// A Mamba block as declared; <see cref="DtRank"/> is already resolved (auto → ⌈DModel/16⌉). <see cref="Negative"/>:
/// transitions 2·exp(Δ·A) − 1 in (−1, 1) instead of exp(Δ·A).
/// </summary>
internal sealed record MambaLayerSpec(int N, int Expand, int ConvWidth, int DtRank, int Norm, double DtMin, double DtMax, bool Negative) : LayerSpec
{
    public override BlockTensors Tensors(long dModel) => MambaTable.Of(dModel, Expand * dModel, N, DtRank, ConvWidth, rms: Norm == 1);
}

/// <summary>One Mamba block: H the stream width, E = Expand·H the inner width, R the Δ rank.</summary>
internal sealed record MambaLayerPlan(int Index, string Prefix, MambaLayerSpec Spec, int H) : LayerPlan(Index, Prefix)
{
    public int E => Spec.Expand * H;
    public int R => Spec.DtRank;
    public int N => Spec.N;
    /// <summary>Width of x_proj's output rows: (Δ, B, C).</summary>
    public int Dbc => R + 2 * N;
    public bool Rms => Spec.Norm == 1;
    public bool Negative => Spec.Negative;
    /// <summary>The scan kernels depend on N and on the transitions' range only.</summary>
    public string Variant => $"Mamba_N{Spec.N}{(Spec.Negative ? "_Neg" : "")}";
}

/// <summary>[MambaLayer]: pre-norm, in_proj, causal depthwise conv, SiLU, selective scan, SiLU gate, out_proj, residual.</summary>
internal sealed class MambaKind() : LayerKind<MambaLayerSpec, MambaLayerPlan>("SsmGen.MambaLayerAttribute", new MambaEmitter(), new CudaMambaEmitter())
{
    private const int DefaultN = 16, DefaultExpand = 2, DefaultConvWidth = 4, DefaultNorm = 1, NormCount = 2, EigenvalueRanges = 2;
    // The scan keeps N state registers per 16 channels; the conv keeps ConvWidth taps.
    private const int MaxN = 64, MaxExpand = 16, MaxConvWidth = 64, MaxRank = 1 << 16;

    public override (string Namespace, string Names)[] RuntimeTypes => [("SsmGen", "MambaLayerConfig MambaEigenvalues"), ("SsmGen.Numerics", "MambaKernels SelectiveScan"), ("SsmGen.Layers", "MambaStatePassing")];

    public override LayerSpec? Parse(LayerArgs a)
    {
        int n = a.Int("N", DefaultN), expand = a.Int("Expand", DefaultExpand), width = a.Int("ConvWidth", DefaultConvWidth);
        int rank = a.Int("DtRank", 0), norm = a.Int("Norm", DefaultNorm), eigenvalues = a.Int("Eigenvalues", 0);
        foreach (var (key, value) in new[] { ("N", n), ("Expand", expand), ("ConvWidth", width) })
            if (value <= 0) a.Report(Diagnostics.NonPositiveSize, "MambaLayer", key, LayerArgs.Text(value));
        if (rank < 0) a.Report(Diagnostics.NonPositiveSize, "MambaLayer", "DtRank (or 0 for auto)", LayerArgs.Text(rank));
        if (norm < 0 || norm >= NormCount) a.Report(Diagnostics.UnknownNorm, "MambaLayer", LayerArgs.Text(norm));
        if (eigenvalues < 0 || eigenvalues >= EigenvalueRanges) a.Report(Diagnostics.UnknownEigenvalues, LayerArgs.Text(eigenvalues));
        foreach (var (key, value, max) in new[] { ("N", n, MaxN), ("Expand", expand, MaxExpand), ("ConvWidth", width, MaxConvWidth), ("DtRank", rank, MaxRank) })
            a.AtMost(key, value, max);
        if (rank == 0) rank = (a.DModel + 15) / 16;
        return new MambaLayerSpec(n, expand, width, rank, norm, a.DtMin, a.DtMax, Negative: eigenvalues == 1);
    }

    protected override MambaLayerPlan Plan(MambaLayerSpec spec, int index, string prefix, int dModel) => new(index, prefix, spec, dModel);

    protected override string Describe(MambaLayerPlan m) =>
        $"Mamba(N = {m.N}, E = {m.E}, conv {m.Spec.ConvWidth}, Δ rank {m.R}, {(m.Rms ? "RMSNorm" : "LayerNorm")}{(m.Negative ? ", transitions in (−1, 1)" : "")})";

    protected override string ConfigExpression(MambaLayerPlan m) =>
        $"new MambaLayerConfig({m.N}, {m.Spec.Expand}, {m.Spec.ConvWidth}, {m.R}, NormKind.{(m.Rms ? "RmsNorm" : "LayerNorm")}, {CodeWriter.D(m.Spec.DtMin)}, {CodeWriter.D(m.Spec.DtMax)}{(m.Negative ? ", MambaEigenvalues.PositiveAndNegative" : "")})";

    protected override IEnumerable<(string Name, int Floats, string What)> StateSegments(MambaLayerPlan l, int dModel) =>
        [("window", l.E * (l.Spec.ConvWidth - 1), "the last W−1 conv inputs (E, W−1), oldest first"), ("h", l.E * l.N, "the SSM state h (E, N)")];

    protected override string? InitCall(ModelPlan plan, MambaLayerPlan l, ParamPlan p, string span, string next) => p.Init switch
    {
        TensorInit.MambaALog => $"Initialization.MambaALog({span}, {l.N});",
        TensorInit.MambaDtBias => $"Initialization.MambaDtBias({span}, {CodeWriter.D(l.Spec.DtMin)}, {CodeWriter.D(l.Spec.DtMax)}, ref rng);",
        _ => null,
    };
}
