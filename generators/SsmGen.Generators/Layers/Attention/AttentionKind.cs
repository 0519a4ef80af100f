namespace SsmGen.Generators.Layers;

/// <summary>A transformer block as declared: attention with rotary positions, then an MLP.</summary>
internal sealed record AttentionLayerSpec(int Heads, int MlpRatio) : LayerSpec
{
    public override BlockTensors Tensors(long dModel) => AttentionTable.Of(dModel, MlpRatio * dModel);
}

/// <summary>One transformer block: Heads heads of size HeadSize, MLP width Mlp.</summary>
internal sealed record AttentionLayerPlan(int Index, string Prefix, AttentionLayerSpec Spec, int H) : LayerPlan(Index, Prefix)
{
    public int Heads => Spec.Heads;
    public int HeadSize => H / Spec.Heads;
    public int Mlp => Spec.MlpRatio * H;
}

/// <summary>[AttentionLayer]: pre-LayerNorm, causal attention with rotary positions, residual; LayerNorm, GELU MLP, residual.</summary>
internal sealed class AttentionKind() : LayerKind<AttentionLayerSpec, AttentionLayerPlan>("SsmGen.AttentionLayerAttribute", new AttentionEmitter(), new CudaAttentionEmitter(), positionalProperty: "Heads")
{
    private const int DefaultHeads = 4, DefaultMlpRatio = 4, MaxMlpRatio = 64;

    public override (string Namespace, string Names)[] RuntimeTypes => [("SsmGen", "AttentionLayerConfig"), ("SsmGen.Numerics", "AttentionKernels")];

    public override LayerSpec? Parse(LayerArgs a)
    {
        int heads = a.Int("Heads", DefaultHeads), ratio = a.Int("MlpRatio", DefaultMlpRatio);
        if (heads <= 0) a.Report(Diagnostics.NonPositiveSize, "AttentionLayer", "Heads", LayerArgs.Text(heads));
        else if (a.DModel > 0 && (a.DModel % heads != 0 || a.DModel / heads % 2 != 0))
            a.Report(Diagnostics.BadHeads, LayerArgs.Text(heads), LayerArgs.Text(a.DModel));
        if (ratio <= 0) a.Report(Diagnostics.NonPositiveSize, "AttentionLayer", "MlpRatio", LayerArgs.Text(ratio));
        a.AtMost("MlpRatio", ratio, MaxMlpRatio);
        return new AttentionLayerSpec(heads, ratio);
    }

    protected override AttentionLayerPlan Plan(AttentionLayerSpec spec, int index, string prefix, int dModel) => new(index, prefix, spec, dModel);
    protected override string Describe(AttentionLayerPlan t) => $"Attention({t.Heads} heads of {t.HeadSize}, MLP {t.Mlp})";
    protected override string ConfigExpression(AttentionLayerPlan t) => $"new AttentionLayerConfig({t.Heads}, {t.Spec.MlpRatio})";
    public override bool HasKeyValueCache => true;
}
