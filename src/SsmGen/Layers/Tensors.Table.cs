namespace SsmGen.Layers;

// The parameter table, written once. The runtime compiles the *.Table.cs files of this folder, and the generator
// compiles them as well (linked), so the compile-time plan, the reference, checkpoints and the parser's size check
// all read one list of tensors. Sizes are long: the parser totals them before it knows the model fits int offsets.

/// <summary>How a tensor starts; the generated Initialize and the reference's both dispatch on it.</summary>
internal enum TensorInit
{
    /// <summary>Uniform in ±InitArg.</summary>
    Uniform,
    /// <summary>Normal with standard deviation InitArg.</summary>
    Normal,
    One,
    Zero,
    /// <summary>log Δ, log-uniform in the layer's [DtMin, DtMax].</summary>
    LogDt,
    /// <summary>S4D's A (real part, with the imaginary part that follows) by the layer's S4DInit.</summary>
    S4DA,
    ComplexOne,
    ComplexNormal,
    MambaALog,
    MambaDtBias,
    /// <summary>The IDS transition projection (weight, with the bias that follows).</summary>
    IdsTransition,
    /// <summary>A delta-rule block's gate rates: A_log = log A with A uniform in [1, 16] per head (Gated DeltaNet's start).</summary>
    DeltaALog,
    /// <summary>S4's Λ from HiPPO-LegS's normal part: log(−Re λ) = log ½, with Im λ = ω in the tensor that follows.</summary>
    HippoA,
    /// <summary>S4's low-rank P and input B in HiPPO-LegS's diagonal basis (p̃ = V*·P, with b̃ = V*·B in the tensor that follows).</summary>
    HippoPB,
    /// <summary>Written together with the tensor before it.</summary>
    FilledWithPrevious,
}

/// <summary>One tensor of a block, named relative to the block (<c>mixer.log_dt</c>), or of the parts around the blocks.</summary>
internal sealed class TensorEntry
{
    public TensorEntry(string name, OptimizerGroup group, TensorInit init, double initArg, params long[] shape)
    {
        Name = name; Group = group; Init = init; InitArg = initArg; Shape = shape;
        Length = 1;
        foreach (long d in shape) Length *= d;
    }

    public string Name { get; }
    public OptimizerGroup Group { get; }
    public TensorInit Init { get; }
    /// <summary>The bound or standard deviation of a Uniform or Normal start.</summary>
    public double InitArg { get; }
    public long[] Shape { get; }
    public long Length { get; }

    /// <summary>The same tensor under a longer name (the block's prefix put in front).</summary>
    public TensorEntry Under(string prefix) => new(prefix + Name, Group, Init, InitArg, Shape);
}

/// <summary>A block's tensors after its pre-norm, and the facts of the block that decide the model's names.</summary>
internal sealed class BlockTensors
{
    public BlockTensors(TensorEntry[] tensors, bool rmsPreNorm = false, bool mambaNamed = false)
    {
        Tensors = tensors; RmsPreNorm = rmsPreNorm; MambaNamed = mambaNamed;
    }

    public TensorEntry[] Tensors { get; }
    /// <summary>The block's pre-norm is RMSNorm (no bias) rather than LayerNorm.</summary>
    public bool RmsPreNorm { get; }
    /// <summary>A Mamba block: a model of only these takes the Hugging Face Mamba names.</summary>
    public bool MambaNamed { get; }

    /// <summary>Element counts of the mixer's own tensors (<c>mixer.*</c>), in order: what a kind's reference views.</summary>
    public int[] MixerLengths()
    {
        var lengths = new System.Collections.Generic.List<int>();
        foreach (var t in Tensors)
            if (t.Name.StartsWith("mixer.", System.StringComparison.Ordinal)) lengths.Add(checked((int)t.Length));
        return lengths.ToArray();
    }
}

/// <summary>Names of the parts around the blocks, which depend on the naming layout.</summary>
internal sealed class TensorNames
{
    public TensorNames(bool mambaLayout, string encoder, string layers, string finalNorm, string decoder, bool finalRms)
    {
        MambaLayout = mambaLayout; Encoder = encoder; Layers = layers; FinalNorm = finalNorm; Decoder = decoder; FinalRms = finalRms;
    }

    /// <summary>The Hugging Face Mamba names (and no decoder bias).</summary>
    public bool MambaLayout { get; }
    public string Encoder { get; }
    /// <summary>The prefix of block i's tensors is Layers + i + ".".</summary>
    public string Layers { get; }
    public string FinalNorm { get; }
    public string Decoder { get; }
    public bool DecoderBias => !MambaLayout;
    public bool FinalRms { get; }
}

/// <summary>A whole model's tensors in buffer order, with the block each belongs to (−1 for the parts around them).</summary>
internal static class TensorTable
{
    /// <summary>
    /// The naming layout: a model made only of Mamba blocks takes the Hugging Face Mamba names (backbone.embeddings,
    /// backbone.layers.{i}, backbone.norm_f, lm_head without bias) so such checkpoints load directly; its final norm is
    /// RMSNorm when every block's pre-norm is. Other models use encoder, layers.{i}, norm_f, decoder.
    /// </summary>
    public static TensorNames Names(bool tokenInput, BlockTensors[] blocks)
    {
        bool mamba = blocks.Length > 0, rms = blocks.Length > 0;
        foreach (var b in blocks) { mamba &= b.MambaNamed; rms &= b.RmsPreNorm; }
        return mamba
            ? new TensorNames(true, tokenInput ? "backbone.embeddings" : "backbone.encoder", "backbone.layers.", "backbone.norm_f", "lm_head", rms)
            : new TensorNames(false, "encoder", "layers.", "norm_f", "decoder", rms);
    }

    /// <summary>Every tensor of a model: encoder, each block's pre-norm and tensors, final norm, decoder.</summary>
    public static System.Collections.Generic.List<(TensorEntry Tensor, int Block)> Build(long input, long vocab, long dModel, long output, BlockTensors[] blocks)
    {
        var names = Names(vocab > 0, blocks);
        var list = new System.Collections.Generic.List<(TensorEntry, int)>();
        long h = dModel;
        double linear = 1 / System.Math.Sqrt(h);
        if (vocab > 0) list.Add((new TensorEntry(names.Encoder + ".weight", OptimizerGroup.Default, TensorInit.Normal, 1, vocab, h), -1));
        else
        {
            list.Add((new TensorEntry(names.Encoder + ".weight", OptimizerGroup.Default, TensorInit.Uniform, 1 / System.Math.Sqrt(input), h, input), -1));
            list.Add((new TensorEntry(names.Encoder + ".bias", OptimizerGroup.NoDecay, TensorInit.Uniform, 1 / System.Math.Sqrt(input), h), -1));
        }
        for (int i = 0; i < blocks.Length; i++)
        {
            string prefix = names.Layers + i + ".";
            foreach (var t in Norm("norm", blocks[i].RmsPreNorm, h)) list.Add((t.Under(prefix), i));
            foreach (var t in blocks[i].Tensors) list.Add((t.Under(prefix), i));
        }
        foreach (var t in Norm(names.FinalNorm, names.FinalRms, h)) list.Add((t, -1));
        list.Add((new TensorEntry(names.Decoder + ".weight", OptimizerGroup.Default, TensorInit.Uniform, linear, output, h), -1));
        if (names.DecoderBias) list.Add((new TensorEntry(names.Decoder + ".bias", OptimizerGroup.NoDecay, TensorInit.Uniform, linear, output), -1));
        return list;
    }

    /// <summary>A norm's gain (and, for LayerNorm, its bias): starts at 1 and 0, trained without weight decay.</summary>
    public static TensorEntry[] Norm(string name, bool rms, long width) => rms
        ? [new(name + ".weight", OptimizerGroup.NoDecay, TensorInit.One, 0, width)]
        : [new(name + ".weight", OptimizerGroup.NoDecay, TensorInit.One, 0, width), new(name + ".bias", OptimizerGroup.NoDecay, TensorInit.Zero, 0, width)];
}
