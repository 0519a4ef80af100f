using System.Linq;

namespace SsmGen.Generators.Model;

/// <summary>How a tensor is initialized (the emitter writes the matching runtime call).</summary>
internal enum InitKind { Uniform, Normal, One, Zero, LogDt, S4DA, S4DAImag, ComplexOne, ComplexNormal, MambaALog, MambaDtBias, IdsTransition, FilledWithPrevious }

/// <summary>One tensor of the parameter buffer, with its offset fixed at compile time.</summary>
internal sealed record ParamPlan(string Name, EquatableArray<int> Shape, int Offset, int Length, string Group, InitKind Init, double InitArg, int Layer)
{
    /// <summary>The C# constant that holds this tensor's offset, e.g. <c>P_layers_0_mixer_log_dt</c>.</summary>
    public string Const => "P_" + Name.Replace('.', '_');
}

/// <summary>One block of the stack with its resolved sizes and tensor-name prefix (e.g. <c>layers.0.</c>).</summary>
internal abstract record LayerPlan(int Index, string Prefix);

/// <summary>One S4D block; <see cref="Variant"/> names the shared specialized kernels.</summary>
internal sealed record S4DLayerPlan(int Index, string Prefix, S4DLayerSpec Spec) : LayerPlan(Index, Prefix)
{
    public int Modes => Spec.N / 2;
    public string Variant => $"S4D_N{Spec.N}_{(Spec.Discretization == 0 ? "Zoh" : "Bilinear")}{(Spec.TrainB ? "_TrainB" : "")}";
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
    /// <summary>The scan kernels depend on N only.</summary>
    public string Variant => $"Mamba_N{Spec.N}";
}

/// <summary>One simple RNN block with hidden size Hd.</summary>
internal sealed record RnnLayerPlan(int Index, string Prefix, RnnLayerSpec Spec) : LayerPlan(Index, Prefix)
{
    public int Hd => Spec.Hidden;
    public bool Relu => Spec.Nonlinearity == 1;
}

/// <summary>One IDS block with state size N.</summary>
internal sealed record IdsLayerPlan(int Index, string Prefix, IdsLayerSpec Spec) : LayerPlan(Index, Prefix)
{
    public int N => Spec.N;
}

/// <summary>One transformer block: Heads heads of size HeadSize, MLP width Mlp.</summary>
internal sealed record AttentionLayerPlan(int Index, string Prefix, AttentionLayerSpec Spec, int H) : LayerPlan(Index, Prefix)
{
    public int Heads => Spec.Heads;
    public int HeadSize => H / Spec.Heads;
    public int Mlp => Spec.MlpRatio * H;
}

/// <summary>Names of the parts around the blocks (they depend on the naming layout).</summary>
internal sealed record ModelNames(string Encoder, string FinalNorm, string Decoder, bool DecoderBias, bool FinalRms);

/// <summary>Everything the emitters need: resolved shapes, the parameter table, the layer stack.</summary>
internal sealed record ModelPlan(ModelSpec Spec, EquatableArray<ParamPlan> Parameters, EquatableArray<LayerPlan> Layers, int ParameterCount, ModelNames Names, int MaxWeights)
{
    public bool TokenInput => Spec.Vocab > 0;
    public int InputWidth => TokenInput ? 1 : Spec.Input;
    public System.Collections.Generic.IEnumerable<S4DLayerPlan> S4DLayers => Layers.OfType<S4DLayerPlan>();
    public System.Collections.Generic.IEnumerable<MambaLayerPlan> MambaLayers => Layers.OfType<MambaLayerPlan>();
    public System.Collections.Generic.IEnumerable<RnnLayerPlan> RnnLayers => Layers.OfType<RnnLayerPlan>();
    public System.Collections.Generic.IEnumerable<IdsLayerPlan> IdsLayers => Layers.OfType<IdsLayerPlan>();
    public System.Collections.Generic.IEnumerable<AttentionLayerPlan> AttentionLayers => Layers.OfType<AttentionLayerPlan>();
}
