namespace SsmGen.Layers;

/// <summary>A transformer block's tensors after its pre-norm: attention, a second norm, the MLP (shared by the generator and the runtime).</summary>
internal static class AttentionTable
{
    /// <summary>Width H, MLP width M = MlpRatio·H; projections' biases start at zero.</summary>
    public static BlockTensors Of(long h, long mlp)
    {
        double linear = 1 / System.Math.Sqrt(h);
        var list = new System.Collections.Generic.List<TensorEntry>
        {
            new("mixer.in_proj.weight", OptimizerGroup.Default, TensorInit.Uniform, linear, 3 * h, h),
            new("mixer.in_proj.bias", OptimizerGroup.NoDecay, TensorInit.Zero, 0, 3 * h),
            new("mixer.out_proj.weight", OptimizerGroup.Default, TensorInit.Uniform, linear, h, h),
            new("mixer.out_proj.bias", OptimizerGroup.NoDecay, TensorInit.Zero, 0, h),
        };
        list.AddRange(TensorTable.Norm("norm2", false, h));
        list.Add(new("mlp.fc1.weight", OptimizerGroup.Default, TensorInit.Uniform, linear, mlp, h));
        list.Add(new("mlp.fc1.bias", OptimizerGroup.NoDecay, TensorInit.Uniform, linear, mlp));
        list.Add(new("mlp.fc2.weight", OptimizerGroup.Default, TensorInit.Uniform, 1 / System.Math.Sqrt(mlp), h, mlp));
        list.Add(new("mlp.fc2.bias", OptimizerGroup.NoDecay, TensorInit.Uniform, 1 / System.Math.Sqrt(mlp), h));
        return new BlockTensors(list.ToArray());
    }
}
