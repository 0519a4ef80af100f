namespace SsmGen.Layers;

/// <summary>A simple RNN block's tensors (shared by the generator and the runtime).</summary>
internal static class RnnTable
{
    /// <summary>Width H, hidden size Hd; every tensor starts uniform in ±1/√Hd (PyTorch's RNN init, out_proj alike).</summary>
    public static BlockTensors Of(long h, long hd)
    {
        double bound = 1 / System.Math.Sqrt(hd);
        return new(
        [
            new("mixer.weight_ih", OptimizerGroup.Default, TensorInit.Uniform, bound, hd, h),
            new("mixer.weight_hh", OptimizerGroup.Default, TensorInit.Uniform, bound, hd, hd),
            new("mixer.bias_ih", OptimizerGroup.NoDecay, TensorInit.Uniform, bound, hd),
            new("mixer.bias_hh", OptimizerGroup.NoDecay, TensorInit.Uniform, bound, hd),
            new("mixer.out_proj.weight", OptimizerGroup.Default, TensorInit.Uniform, bound, h, hd),
            new("mixer.out_proj.bias", OptimizerGroup.NoDecay, TensorInit.Uniform, bound, h),
        ]);
    }
}
