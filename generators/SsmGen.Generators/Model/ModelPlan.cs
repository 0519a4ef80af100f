namespace SsmGen.Generators.Model;

/// <summary>One tensor of the parameter buffer, with its offset fixed at compile time.</summary>
internal sealed record ParamPlan(string Name, EquatableArray<int> Shape, int Offset, int Length, string Group, TensorInit Init, double InitArg, int Layer)
{
    /// <summary>The C# constant that holds this tensor's offset, e.g. <c>P_layers_0_mixer_log_dt</c>.</summary>
    public string Const => ConstOf(Name);
    public static string ConstOf(string tensor) => "P_" + tensor.Replace('.', '_');
}

/// <summary>One block of the stack with its resolved sizes and tensor-name prefix (e.g. <c>layers.0.</c>); each kind's record lives in its folder under Layers/.</summary>
internal abstract record LayerPlan(int Index, string Prefix);

/// <summary>Names of the parts around the blocks (they depend on the naming layout).</summary>
internal sealed record ModelNames(string Encoder, string FinalNorm, string Decoder, bool DecoderBias, bool FinalRms);

/// <summary>A named part of a stream's state, at a fixed offset.</summary>
internal sealed record StateSegment(int Layer, string Name, int Offset, int Floats, string What)
{
    /// <summary>The C# constant both backends address it by, e.g. <c>S_l0_h</c>.</summary>
    public string Const => $"S_l{Layer}_{Name}";
    /// <summary>The segment as a span of a host state array.</summary>
    public string Slice(string state) => $"{state}.Slice({Const}, {Floats})";
}

/// <summary>
/// A stream's state: each block's fixed segments in stack order, the pooled sum (H), then one key/value cache of
/// 2·maxLength·H values per block that keeps one (its size is known only at run time). The CPU and GPU steps both
/// address it through the constants the CPU shell emits from this record, so they agree by construction.
/// </summary>
internal sealed record StateLayout(EquatableArray<StateSegment> Segments, int Pool, int FixedSize, EquatableArray<int> CacheLayers)
{
    public StateSegment Of(LayerPlan l, string name) => Segments.Single(s => s.Layer == l.Index && s.Name == name);
    /// <summary>Which key/value cache is the block's (0 for the first block that keeps one).</summary>
    public int CacheOf(LayerPlan l) => CacheLayers.Items.IndexOf(l.Index);
}

/// <summary>Everything the emitters need: resolved shapes, the parameter table, the layer stack, the stream state's layout.</summary>
internal sealed record ModelPlan(ModelSpec Spec, EquatableArray<ParamPlan> Parameters, EquatableArray<LayerPlan> Layers, int ParameterCount, ModelNames Names, int MaxWeights, StateLayout State)
{
    public bool TokenInput => Spec.Vocab > 0;
    public int InputWidth => TokenInput ? 1 : Spec.Input;
    /// <summary>The blocks of one kind, in stack order.</summary>
    public System.Collections.Generic.IEnumerable<T> Blocks<T>() where T : LayerPlan => Layers.OfType<T>();
}
