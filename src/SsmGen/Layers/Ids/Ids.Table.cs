namespace SsmGen.Layers;

/// <summary>An input-dependent transition (IDS) block's tensors (shared by the generator and the runtime).</summary>
internal static class IdsTable
{
    /// <summary>Width H, state size N: the transition A(x) = reshape(W x + b) to N×N, the input map B, the readout C.</summary>
    public static BlockTensors Of(long h, long n) => new(
    [
        new("mixer.A.weight", OptimizerGroup.Default, TensorInit.IdsTransition, 0, n * n, h),
        new("mixer.A.bias", OptimizerGroup.NoDecay, TensorInit.FilledWithPrevious, 0, n * n),
        new("mixer.B.weight", OptimizerGroup.Default, TensorInit.Uniform, 1 / System.Math.Sqrt(h), n, h),
        new("mixer.C.weight", OptimizerGroup.Default, TensorInit.Uniform, 1 / System.Math.Sqrt(n), h, n),
        new("mixer.C.bias", OptimizerGroup.NoDecay, TensorInit.Uniform, 1 / System.Math.Sqrt(n), h),
    ]);
}
