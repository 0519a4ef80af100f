namespace SsmGen.Generators.Layers;

/// <summary>An S4D block as declared.</summary>
internal sealed record S4DLayerSpec(int N, int Init, int Discretization, bool TrainB, double Dropout, double DtMin, double DtMax) : LayerSpec
{
    public override BlockTensors Tensors(long dModel) => S4DTable.Of(dModel, N, TrainB);
}

/// <summary>One S4D block; <see cref="Variant"/> names the shared specialized kernels.</summary>
internal sealed record S4DLayerPlan(int Index, string Prefix, S4DLayerSpec Spec) : LayerPlan(Index, Prefix)
{
    public int Modes => Spec.N / 2;
    public string Variant => $"S4D_N{Spec.N}_{(Spec.Discretization == 0 ? "Zoh" : "Bilinear")}{(Spec.TrainB ? "_TrainB" : "")}";
}

/// <summary>[S4DLayer]: pre-LayerNorm, diagonal SSM (S4D), GELU, Linear H→2H, GLU, dropout, residual.</summary>
internal sealed class S4DKind() : LayerKind<S4DLayerSpec, S4DLayerPlan>("SsmGen.S4DLayerAttribute", new S4DEmitter(), new CudaS4DEmitter())
{
    // The runtime enums' member names, by value. (DeclarationTests checks the defaults below against the runtime attribute.)
    internal static readonly string[] InitNames = { "Lin", "Inv", "Real", "LegS", "Random" };
    internal static readonly string[] DiscretizationNames = { "Zoh", "Bilinear" };
    private const int DefaultN = 64;
    // The generated code keeps N/2 modes in registers.
    private const int MaxN = 512;

    public override (string Namespace, string Names)[] RuntimeTypes => [("SsmGen", "S4DLayerConfig S4DInit Discretization"), ("SsmGen.Numerics", "CausalConvolution"), ("SsmGen.Layers", "S4DStatePassing S4DRecurrence S4DModes")];

    public override LayerSpec? Parse(LayerArgs a)
    {
        int n = a.Int("N", DefaultN), init = a.Int("Init", 0), disc = a.Int("Discretization", 0);
        double dropout = a.Double("Dropout", 0);
        if (n <= 0 || n % 2 != 0) a.Report(Diagnostics.BadStateSize, LayerArgs.Text(n));
        if (init < 0 || init >= InitNames.Length) a.Report(Diagnostics.UnknownInit, LayerArgs.Text(init));
        if (disc < 0 || disc >= DiscretizationNames.Length) a.Report(Diagnostics.UnknownDiscretization, LayerArgs.Text(disc));
        if (!(dropout >= 0 && dropout < 1)) a.Report(Diagnostics.BadDropout, "S4DLayer", LayerArgs.Text(dropout));
        a.AtMost("N", n, MaxN);
        return new S4DLayerSpec(n, init, disc, a.Bool("TrainB"), dropout, a.DtMin, a.DtMax);
    }

    protected override S4DLayerPlan Plan(S4DLayerSpec spec, int index, string prefix, int dModel) => new(index, prefix, spec);

    protected override string Describe(S4DLayerPlan x) => $"S4D(N = {x.Spec.N}, {InitNames[x.Spec.Init]}, {DiscretizationNames[x.Spec.Discretization]})";

    protected override string ConfigExpression(S4DLayerPlan x) =>
        $"new S4DLayerConfig({x.Spec.N}, S4DInit.{InitNames[x.Spec.Init]}, Discretization.{DiscretizationNames[x.Spec.Discretization]}, {(x.Spec.TrainB ? "true" : "false")}, {CodeWriter.D(x.Spec.Dropout)}, {CodeWriter.D(x.Spec.DtMin)}, {CodeWriter.D(x.Spec.DtMax)})";

    protected override IEnumerable<(string Name, int Floats, string What)> StateSegments(S4DLayerPlan l, int dModel) =>
        [("x", 2 * dModel * l.Modes, "the complex state [Re x | Im x] (H, N/2)"), ("modes", S4DEmitter.ModeTables * dModel * l.Modes, "the stream's discretized mode tables (6, H, N/2)")];

    protected override string? InitCall(ModelPlan plan, S4DLayerPlan l, ParamPlan p, string span, string next) => p.Init switch
    {
        TensorInit.LogDt => $"Initialization.LogDt({span}, {CodeWriter.D(l.Spec.DtMin)}, {CodeWriter.D(l.Spec.DtMax)}, ref rng);",
        TensorInit.S4DA => $"Initialization.S4DA({span}, {next}, H, {l.Spec.N}, S4DInit.{InitNames[l.Spec.Init]}, ref rng);",
        _ => null,
    };
}
