namespace SsmGen.Generators.Model;

/// <summary>One tensor of the parameter buffer, with its offset fixed at compile time.</summary>
internal sealed record ParamPlan(string Name, EquatableArray<int> Shape, int Offset, int Length, string Group, TensorInit Init, double InitArg, int Layer)
{
    /// <summary>The C# constant that holds this tensor's offset, e.g. <c>P_layers_0_mixer_log_dt</c>.</summary>
    public string Const => "P_" + Name.Replace('.', '_');
}

/// <summary>One block of the stack with its resolved sizes and tensor-name prefix (e.g. <c>layers.0.</c>); each kind's record lives in its folder under Layers/.</summary>
internal abstract record LayerPlan(int Index, string Prefix);

/// <summary>Names of the parts around the blocks (they depend on the naming layout).</summary>
internal sealed record ModelNames(string Encoder, string FinalNorm, string Decoder, bool DecoderBias, bool FinalRms);

/// <summary>Everything the emitters need: resolved shapes, the parameter table, the layer stack.</summary>
internal sealed record ModelPlan(ModelSpec Spec, EquatableArray<ParamPlan> Parameters, EquatableArray<LayerPlan> Layers, int ParameterCount, ModelNames Names, int MaxWeights)
{
    public bool TokenInput => Spec.Vocab > 0;
    public int InputWidth => TokenInput ? 1 : Spec.Input;
    /// <summary>The blocks of one kind, in stack order.</summary>
    public System.Collections.Generic.IEnumerable<T> Blocks<T>() where T : LayerPlan => Layers.OfType<T>();
}
