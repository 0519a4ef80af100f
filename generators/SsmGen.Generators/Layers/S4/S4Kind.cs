namespace SsmGen.Generators.Layers;

/// <summary>An S4 block as declared.</summary>
internal sealed record S4LayerSpec(int N, int KernelLength, int Measure, double Dropout, double DtMin, double DtMax) : LayerSpec
{
    public override BlockTensors Tensors(long dModel) => S4Table.Of(dModel, N);
}

/// <summary>One S4 block.</summary>
internal sealed record S4LayerPlan(int Index, string Prefix, S4LayerSpec Spec) : LayerPlan(Index, Prefix)
{
    public int Modes => Spec.N / 2;
}

/// <summary>[S4Layer]: pre-LayerNorm, S4 (DPLR, bilinear, S4's kernel algorithm), GELU, Linear H→2H, GLU, dropout, residual.</summary>
internal sealed class S4Kind() : LayerKind<S4LayerSpec, S4LayerPlan>("SsmGen.S4LayerAttribute", new S4Emitter(), new CudaS4Emitter())
{
    // The runtime enum's member names, by value.
    internal static readonly string[] MeasureNames = { "LegS" };
    private const int DefaultN = 64, DefaultKernelLength = 1024;
    // The HiPPO-LegS eigenvectors are found by Jacobi rotations at initialization (O(N³) per sweep).
    private const int MaxN = 256, MaxKernelLength = 1 << 20;

    public override (string Namespace, string Names)[] RuntimeTypes => [("SsmGen", "S4LayerConfig S4Measure"), ("SsmGen.Numerics", "CausalConvolution S4Kernel S4Tensors")];

    public override LayerSpec? Parse(LayerArgs a)
    {
        int n = a.Int("N", DefaultN), kernelLength = a.Int("KernelLength", DefaultKernelLength), measure = a.Int("Measure", 0);
        double dropout = a.Double("Dropout", 0);
        if (n <= 0 || n % 2 != 0) a.Report(Diagnostics.BadS4Setting, "N", LayerArgs.Text(n), "use a positive even state size such as 64");
        if (kernelLength < 2 || (kernelLength & (kernelLength - 1)) != 0)
            a.Report(Diagnostics.BadS4Setting, "KernelLength", LayerArgs.Text(kernelLength), "use a power of two at least as long as the longest sequence, such as 1024");
        if (measure < 0 || measure >= MeasureNames.Length) a.Report(Diagnostics.BadS4Setting, "Measure", LayerArgs.Text(measure), "use S4Measure.LegS");
        if (!(dropout >= 0 && dropout < 1)) a.Report(Diagnostics.BadDropout, "S4Layer", LayerArgs.Text(dropout));
        a.AtMost("N", n, MaxN);
        a.AtMost("KernelLength", kernelLength, MaxKernelLength);
        return new S4LayerSpec(n, kernelLength, measure, dropout, a.DtMin, a.DtMax);
    }

    protected override S4LayerPlan Plan(S4LayerSpec spec, int index, string prefix, int dModel) => new(index, prefix, spec);

    protected override string Describe(S4LayerPlan x) => $"S4(N = {x.Spec.N}, {MeasureNames[x.Spec.Measure]}, kernel length {x.Spec.KernelLength})";

    protected override string ConfigExpression(S4LayerPlan x) =>
        $"new S4LayerConfig({x.Spec.N}, {x.Spec.KernelLength}, S4Measure.{MeasureNames[x.Spec.Measure]}, {CodeWriter.D(x.Spec.Dropout)}, {CodeWriter.D(x.Spec.DtMin)}, {CodeWriter.D(x.Spec.DtMax)})";

    protected override IEnumerable<(string Name, int Floats, string What)> StateSegments(S4LayerPlan l, int dModel) =>
        [("x", 2 * dModel * l.Modes, "the complex state [Re x | Im x] (H, N/2)"),
         ("tables", dModel * (10 * l.Modes + 2), "the stream's step tables (λ, p, D, Δ·B, C per mode; two per channel)")];

    protected override string? InitCall(ModelPlan plan, S4LayerPlan l, ParamPlan p, string span, string next) => p.Init switch
    {
        TensorInit.LogDt => $"Initialization.LogDt({span}, {CodeWriter.D(l.Spec.DtMin)}, {CodeWriter.D(l.Spec.DtMax)}, ref rng);",
        TensorInit.HippoA => $"Initialization.HippoA({span}, {next}, H, {l.Spec.N});",
        TensorInit.HippoPB => $"Initialization.HippoPB({span}, {next}, H, {l.Spec.N});",
        _ => null,
    };
}
