namespace SsmGen.Generators.Model;

/// <summary>How a tensor is initialized (the emitter writes the matching runtime call).</summary>
internal enum InitKind { Uniform, Normal, One, Zero, LogDt, S4DA, S4DAImag, ComplexOne, ComplexNormal }

/// <summary>One tensor of the parameter buffer, with its offset fixed at compile time.</summary>
internal sealed record ParamPlan(string Name, EquatableArray<int> Shape, int Offset, int Length, string Group, InitKind Init, double InitArg, int Layer)
{
    /// <summary>The C# constant that holds this tensor's offset, e.g. <c>P_layers_0_mixer_log_dt</c>.</summary>
    public string Const => "P_" + Name.Replace('.', '_');
}

/// <summary>One S4D block with its resolved sizes; <see cref="Variant"/> names the shared specialized kernels.</summary>
internal sealed record S4DLayerPlan(int Index, S4DLayerSpec Spec)
{
    public int Modes => Spec.N / 2;
    public string Variant => $"S4D_N{Spec.N}_{(Spec.Discretization == 0 ? "Zoh" : "Bilinear")}{(Spec.TrainB ? "_TrainB" : "")}";
    public string Prefix => $"layers.{Index}.";
}

/// <summary>Everything the emitters need: resolved shapes, the parameter table, the layer stack.</summary>
internal sealed record ModelPlan(ModelSpec Spec, EquatableArray<ParamPlan> Parameters, EquatableArray<S4DLayerPlan> Layers, int ParameterCount)
{
    public bool TokenInput => Spec.Vocab > 0;
    public int InputWidth => TokenInput ? 1 : Spec.Input;
}
