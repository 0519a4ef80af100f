namespace SsmGen.Layers;

/// <summary>An S4 block's tensors (shared by the generator and the runtime; see Tensors.Table.cs).</summary>
internal static class S4Table
{
    /// <summary>Width H, state size N (N/2 complex modes). C holds S4's C̃ (see S4Reference).</summary>
    public static BlockTensors Of(long h, long n)
    {
        long m = n / 2;
        double linear = 1 / System.Math.Sqrt(h);
        return new BlockTensors(
        [
            new("mixer.log_dt", OptimizerGroup.Ssm, TensorInit.LogDt, 0, h),
            new("mixer.log_A_real", OptimizerGroup.Ssm, TensorInit.HippoA, 0, h, m),
            new("mixer.A_imag", OptimizerGroup.Ssm, TensorInit.FilledWithPrevious, 0, h, m),
            new("mixer.P", OptimizerGroup.Ssm, TensorInit.HippoPB, 0, h, m, 2),
            new("mixer.B", OptimizerGroup.Ssm, TensorInit.FilledWithPrevious, 0, h, m, 2),
            new("mixer.C", OptimizerGroup.Default, TensorInit.ComplexNormal, 0, h, m, 2),
            new("mixer.D", OptimizerGroup.NoDecay, TensorInit.Normal, 1, h),
            new("mixer.output_linear.weight", OptimizerGroup.Default, TensorInit.Uniform, linear, 2 * h, h),
            new("mixer.output_linear.bias", OptimizerGroup.NoDecay, TensorInit.Uniform, linear, 2 * h),
        ]);
    }
}
