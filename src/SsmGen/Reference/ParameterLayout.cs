namespace SsmGen.Reference;

/// <summary>
/// The parameter table of a model, derived from its <see cref="ModelConfig"/> by the reference. The
/// generator plans its own table at compile time; tests check that the two agree.
/// </summary>
public static class ParameterLayout
{
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
        int h = c.DModel;
        if (c.TokenInput) Add("encoder.weight", OptimizerGroup.Default, c.Vocab, h);
        else
        {
            Add("encoder.weight", OptimizerGroup.Default, h, c.Input);
            Add("encoder.bias", OptimizerGroup.NoDecay, h);
        }
        for (int i = 0; i < c.Layers.Count; i++)
        {
            var l = c.Layers[i];
            string p = $"layers.{i}.";
            Add(p + "norm.weight", OptimizerGroup.NoDecay, h);
            Add(p + "norm.bias", OptimizerGroup.NoDecay, h);
            Add(p + "mixer.log_dt", OptimizerGroup.Ssm, h);
            Add(p + "mixer.log_A_real", OptimizerGroup.Ssm, h, l.N / 2);
            Add(p + "mixer.A_imag", OptimizerGroup.Ssm, h, l.N / 2);
            if (l.TrainB) Add(p + "mixer.B", OptimizerGroup.Ssm, h, l.N / 2, 2);
            Add(p + "mixer.C", OptimizerGroup.Default, h, l.N / 2, 2);
            Add(p + "mixer.D", OptimizerGroup.NoDecay, h);
            Add(p + "mixer.output_linear.weight", OptimizerGroup.Default, 2 * h, h);
            Add(p + "mixer.output_linear.bias", OptimizerGroup.NoDecay, 2 * h);
        }
        Add("norm_f.weight", OptimizerGroup.NoDecay, h);
        Add("norm_f.bias", OptimizerGroup.NoDecay, h);
        Add("decoder.weight", OptimizerGroup.Default, c.Output, h);
        Add("decoder.bias", OptimizerGroup.NoDecay, c.Output);
        return list.ToArray();
    }

    /// <summary>Total number of parameters.</summary>
    public static int Count(IReadOnlyList<ParameterInfo> table) => table.Count == 0 ? 0 : table[^1].Offset + table[^1].Length;
}
