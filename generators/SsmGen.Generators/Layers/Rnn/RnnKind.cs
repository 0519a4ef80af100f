namespace SsmGen.Generators.Layers;

/// <summary>A simple RNN block as declared; <see cref="Hidden"/> is resolved (0 → DModel).</summary>
internal sealed record RnnLayerSpec(int Hidden, int Nonlinearity) : LayerSpec
{
    public override BlockTensors Tensors(long dModel) => RnnTable.Of(dModel, Hidden);
}

/// <summary>One simple RNN block with hidden size Hd.</summary>
internal sealed record RnnLayerPlan(int Index, string Prefix, RnnLayerSpec Spec) : LayerPlan(Index, Prefix)
{
    public int Hd => Spec.Hidden;
    public bool Relu => Spec.Nonlinearity == 1;
}

/// <summary>[RnnLayer]: pre-LayerNorm, h_t = f(W_ih x_t + b_ih + W_hh h_(t−1) + b_hh), out_proj, residual.</summary>
internal sealed class RnnKind() : LayerKind<RnnLayerSpec, RnnLayerPlan>("SsmGen.RnnLayerAttribute", new RnnEmitter(), new CudaRnnEmitter(), positionalProperty: "Hidden")
{
    // A declaration's limit; the GPU path runs up to CudaRnnEmitter.MaxHidden and refuses larger ones.
    private const int NonlinearityCount = 2, MaxDeclaredHidden = 1 << 16;

    public override (string Namespace, string Names)[] RuntimeTypes => [("SsmGen", "RnnLayerConfig Nonlinearity"), ("SsmGen.Numerics", "RnnKernels")];

    public override LayerSpec? Parse(LayerArgs a)
    {
        int hidden = a.Int("Hidden", 0), nonlinearity = a.Int("Nonlinearity", 0);
        if (hidden < 0) a.Report(Diagnostics.NonPositiveSize, "RnnLayer", "Hidden (or 0 for DModel)", LayerArgs.Text(hidden));
        a.AtMost("Hidden", hidden, MaxDeclaredHidden);
        if (nonlinearity < 0 || nonlinearity >= NonlinearityCount) a.Report(Diagnostics.UnknownNonlinearity, LayerArgs.Text(nonlinearity));
        if (hidden == 0) hidden = a.DModel;
        return new RnnLayerSpec(hidden, nonlinearity);
    }

    protected override RnnLayerPlan Plan(RnnLayerSpec spec, int index, string prefix, int dModel) => new(index, prefix, spec);
    protected override string Describe(RnnLayerPlan r) => $"RNN(hidden {r.Hd}, {(r.Relu ? "ReLU" : "tanh")})";
    protected override string ConfigExpression(RnnLayerPlan r) => $"new RnnLayerConfig({r.Hd}, Nonlinearity.{(r.Relu ? "Relu" : "Tanh")})";
    protected override IEnumerable<(string Name, int Floats, string What)> StateSegments(RnnLayerPlan r, int dModel) => [("h", r.Hd, "the hidden state h")];
}
