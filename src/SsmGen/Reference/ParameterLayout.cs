namespace SsmGen.Reference;

/// <summary>
/// The parameter table of a model, derived from its <see cref="ModelConfig"/> by the reference. The
/// generator plans its own table at compile time; tests check that the two agree.
/// </summary>
public static class ParameterLayout
{
    /// <summary>Tensor names of the parts around the blocks, which depend on the naming layout.</summary>
    public sealed record Names(string Encoder, string Layers, string FinalNorm, string Decoder);

    /// <summary>The names a model uses (<see cref="ModelConfig.MambaLayout"/>).</summary>
    public static Names For(ModelConfig c) => c.MambaLayout
        ? new(c.TokenInput ? "backbone.embeddings" : "backbone.encoder", "backbone.layers.", "backbone.norm_f", "lm_head")
        : new("encoder", "layers.", "norm_f", "decoder");

    /// <summary>Names, shapes, offsets and optimizer groups in buffer order.</summary>
    public static ParameterInfo[] Build(ModelConfig c)
    {
        var list = new List<ParameterInfo>();
        int offset = 0;
        void Add(string name, OptimizerGroup g, params int[] shape)
        {
            var p = new ParameterInfo(name, shape, offset, g);
            list.Add(p);
            offset += p.Length;
        }
        void Norm(string prefix, NormKind kind, int h)
        {
            Add(prefix + ".weight", OptimizerGroup.NoDecay, h);
            if (kind == NormKind.LayerNorm) Add(prefix + ".bias", OptimizerGroup.NoDecay, h);
        }
        var names = For(c);
        int h = c.DModel;
        if (c.TokenInput) Add(names.Encoder + ".weight", OptimizerGroup.Default, c.Vocab, h);
        else
        {
            Add(names.Encoder + ".weight", OptimizerGroup.Default, h, c.Input);
            Add(names.Encoder + ".bias", OptimizerGroup.NoDecay, h);
        }
        for (int i = 0; i < c.Layers.Count; i++)
        {
            string p = names.Layers + i + ".";
            switch (c.Layers[i])
            {
                case S4DLayerConfig l:
                    Norm(p + "norm", NormKind.LayerNorm, h);
                    Add(p + "mixer.log_dt", OptimizerGroup.Ssm, h);
                    Add(p + "mixer.log_A_real", OptimizerGroup.Ssm, h, l.N / 2);
                    Add(p + "mixer.A_imag", OptimizerGroup.Ssm, h, l.N / 2);
                    if (l.TrainB) Add(p + "mixer.B", OptimizerGroup.Ssm, h, l.N / 2, 2);
                    Add(p + "mixer.C", OptimizerGroup.Default, h, l.N / 2, 2);
                    Add(p + "mixer.D", OptimizerGroup.NoDecay, h);
                    Add(p + "mixer.output_linear.weight", OptimizerGroup.Default, 2 * h, h);
                    Add(p + "mixer.output_linear.bias", OptimizerGroup.NoDecay, 2 * h);
                    break;
                case MambaLayerConfig m:
                    int e = m.Inner(h), r = m.Rank(h);
                    Norm(p + "norm", m.Norm, h);
                    Add(p + "mixer.in_proj.weight", OptimizerGroup.Default, 2 * e, h);
                    Add(p + "mixer.conv1d.weight", OptimizerGroup.Default, e, 1, m.ConvWidth);
                    Add(p + "mixer.conv1d.bias", OptimizerGroup.NoDecay, e);
                    Add(p + "mixer.x_proj.weight", OptimizerGroup.Default, r + 2 * m.N, e);
                    Add(p + "mixer.dt_proj.weight", OptimizerGroup.Default, e, r);
                    Add(p + "mixer.dt_proj.bias", OptimizerGroup.NoDecay, e);
                    Add(p + "mixer.A_log", OptimizerGroup.NoDecay, e, m.N);
                    Add(p + "mixer.D", OptimizerGroup.NoDecay, e);
                    Add(p + "mixer.out_proj.weight", OptimizerGroup.Default, h, e);
                    break;
                case RnnLayerConfig rnn:
                    int hd = rnn.HiddenSize(h);
                    Norm(p + "norm", NormKind.LayerNorm, h);
                    Add(p + "mixer.weight_ih", OptimizerGroup.Default, hd, h);
                    Add(p + "mixer.weight_hh", OptimizerGroup.Default, hd, hd);
                    Add(p + "mixer.bias_ih", OptimizerGroup.NoDecay, hd);
                    Add(p + "mixer.bias_hh", OptimizerGroup.NoDecay, hd);
                    Add(p + "mixer.out_proj.weight", OptimizerGroup.Default, h, hd);
                    Add(p + "mixer.out_proj.bias", OptimizerGroup.NoDecay, h);
                    break;
                case IdsLayerConfig ids:
                    Norm(p + "norm", NormKind.LayerNorm, h);
                    Add(p + "mixer.A.weight", OptimizerGroup.Default, ids.N * ids.N, h);
                    Add(p + "mixer.A.bias", OptimizerGroup.NoDecay, ids.N * ids.N);
                    Add(p + "mixer.B.weight", OptimizerGroup.Default, ids.N, h);
                    Add(p + "mixer.C.weight", OptimizerGroup.Default, h, ids.N);
                    Add(p + "mixer.C.bias", OptimizerGroup.NoDecay, h);
                    break;
                case AttentionLayerConfig att:
                    Norm(p + "norm", NormKind.LayerNorm, h);
                    Add(p + "mixer.in_proj.weight", OptimizerGroup.Default, 3 * h, h);
                    Add(p + "mixer.in_proj.bias", OptimizerGroup.NoDecay, 3 * h);
                    Add(p + "mixer.out_proj.weight", OptimizerGroup.Default, h, h);
                    Add(p + "mixer.out_proj.bias", OptimizerGroup.NoDecay, h);
                    Norm(p + "norm2", NormKind.LayerNorm, h);
                    Add(p + "mlp.fc1.weight", OptimizerGroup.Default, att.MlpRatio * h, h);
                    Add(p + "mlp.fc1.bias", OptimizerGroup.NoDecay, att.MlpRatio * h);
                    Add(p + "mlp.fc2.weight", OptimizerGroup.Default, h, att.MlpRatio * h);
                    Add(p + "mlp.fc2.bias", OptimizerGroup.NoDecay, h);
                    break;
                default:
                    throw new NotSupportedException($"No parameter layout for layer kind {c.Layers[i].Kind}.");
            }
        }
        Norm(names.FinalNorm, c.FinalNorm, h);
        Add(names.Decoder + ".weight", OptimizerGroup.Default, c.Output, h);
        if (!c.MambaLayout) Add(names.Decoder + ".bias", OptimizerGroup.NoDecay, c.Output);
        return list.ToArray();
    }

    /// <summary>Total number of parameters.</summary>
    public static int Count(IReadOnlyList<ParameterInfo> table) => table.Count == 0 ? 0 : table[^1].Offset + table[^1].Length;
}
