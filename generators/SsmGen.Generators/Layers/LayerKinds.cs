namespace SsmGen.Generators.Layers;

/// <summary>The registry of layer kinds: a new kind adds its folder and one entry here.</summary>
internal static class LayerKinds
{
    /// <summary>Every kind, in the order kind-wide code (fields, kernels, scratch) is emitted.</summary>
    public static readonly LayerKind[] All = { new S4DKind(), new MambaKind(), new RnnKind(), new IdsKind(), new AttentionKind(), new DeltaKind(), new S4Kind() };

    /// <summary>Every layer attribute's metadata name.</summary>
    public static readonly string[] Attributes = All.Select(k => k.Attribute).ToArray();

    public static LayerKind? ByAttribute(string? metadataName) => All.FirstOrDefault(k => k.Attribute == metadataName);

    public static LayerKind Of(LayerSpec spec) => All.First(k => k.Owns(spec));

    public static LayerKind Of(LayerPlan plan) => All.First(k => k.Owns(plan));

    /// <summary>The kinds this model holds a block of, in <see cref="All"/> order.</summary>
    public static LayerKind[] In(ModelPlan plan) => All.Where(k => plan.Layers.Any(k.Owns)).ToArray();
}
