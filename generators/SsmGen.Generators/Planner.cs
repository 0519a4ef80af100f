namespace SsmGen.Generators;

/// <summary>
/// ModelSpec → ModelPlan: the layer kinds' tensor tables (<c>src/SsmGen/Layers/*/*.Table.cs</c>, which the runtime's
/// ParameterLayout reads too) with offsets fixed at compile time, and each block's resolved sizes.
/// </summary>
internal static class Planner
{
    public static ModelPlan Plan(ModelSpec s)
    {
        var blocks = s.Layers.Items.Select(l => l.Tensors(s.DModel)).ToArray();
        var names = TensorTable.Names(s.Vocab > 0, blocks);
        var ps = new List<ParamPlan>();
        int offset = 0, maxWeights = 0;
        foreach (var (t, block) in TensorTable.Build(s.Input, s.Vocab, s.DModel, s.Output, blocks))
        {
            int length = (int)t.Length; // the parser refused models whose parameters do not fit
            ps.Add(new ParamPlan(t.Name, EquatableArray.From(t.Shape.Select(d => (int)d).ToArray()), offset, length, t.Group.ToString(), t.Init, t.InitArg, block));
            // room for a transposed linear weight (an embedding table is never transposed)
            if (t.Shape.Length == 2 && !(s.Vocab > 0 && offset == 0)) maxWeights = System.Math.Max(maxWeights, length);
            offset += length;
        }
        var layers = new List<LayerPlan>();
        for (int i = 0; i < s.Layers.Count; i++)
            layers.Add(LayerKinds.Of(s.Layers[i]).Plan(s.Layers[i], i, names.Layers + i + ".", s.DModel));
        var modelNames = new ModelNames(names.Encoder, names.FinalNorm, names.Decoder, names.DecoderBias, names.FinalRms);
        return new ModelPlan(s, EquatableArray.From(ps), EquatableArray.From(layers), offset, modelNames, maxWeights, State(layers, s.DModel));
    }

    /// <summary>The stream state's layout: the kinds name their segments, the plan places them.</summary>
    private static StateLayout State(List<LayerPlan> layers, int dModel)
    {
        var segments = new List<StateSegment>();
        int offset = 0;
        foreach (var l in layers)
            foreach (var (name, floats, what) in LayerKinds.Of(l).StateSegments(l, dModel))
            {
                segments.Add(new StateSegment(l.Index, name, offset, floats, what));
                offset += floats;
            }
        var caches = layers.Where(l => LayerKinds.Of(l).HasKeyValueCache).Select(l => l.Index).ToArray();
        return new StateLayout(EquatableArray.From(segments), offset, offset + dModel, EquatableArray.From(caches));
    }
}
