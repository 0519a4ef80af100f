namespace SsmGen.Layers;

/// <summary>An S4D block's tensors (shared by the generator and the runtime; see Tensors.Table.cs).</summary>
internal static class S4DTable
{
    /// <summary>Width H, state size N (N/2 complex modes), B trained or fixed at 1.</summary>
    public static BlockTensors Of(long h, long n, bool trainB)
    {
        long m = n / 2;
        double linear = 1 / System.Math.Sqrt(h);
        var list = new System.Collections.Generic.List<TensorEntry>
        {
            new("mixer.log_dt", OptimizerGroup.Ssm, TensorInit.LogDt, 0, h),
            new("mixer.log_A_real", OptimizerGroup.Ssm, TensorInit.S4DA, 0, h, m),
            new("mixer.A_imag", OptimizerGroup.Ssm, TensorInit.FilledWithPrevious, 0, h, m),
        };
        if (trainB) list.Add(new("mixer.B", OptimizerGroup.Ssm, TensorInit.ComplexOne, 0, h, m, 2));
        list.Add(new("mixer.C", OptimizerGroup.Default, TensorInit.ComplexNormal, 0, h, m, 2));
        list.Add(new("mixer.D", OptimizerGroup.NoDecay, TensorInit.Normal, 1, h));
        list.Add(new("mixer.output_linear.weight", OptimizerGroup.Default, TensorInit.Uniform, linear, 2 * h, h));
        list.Add(new("mixer.output_linear.bias", OptimizerGroup.NoDecay, TensorInit.Uniform, linear, 2 * h));
        return new BlockTensors(list.ToArray());
    }
}
