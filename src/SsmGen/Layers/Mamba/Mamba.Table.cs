namespace SsmGen.Layers;

/// <summary>A Mamba block's tensors, in the Hugging Face Mamba names (shared by the generator and the runtime).</summary>
internal static class MambaTable
{
    /// <summary>
    /// Width H, inner width E, state size N, Δ rank R, convolution taps W. Starts: PyTorch's defaults for Linear and
    /// Conv1d (uniform ±1/√fan_in), Mamba's own for Δ's bias, A and D.
    /// </summary>
    public static BlockTensors Of(long h, long e, long n, long r, long w, bool rms) => new(
    [
        new("mixer.in_proj.weight", OptimizerGroup.Default, TensorInit.Uniform, 1 / System.Math.Sqrt(h), 2 * e, h),
        new("mixer.conv1d.weight", OptimizerGroup.Default, TensorInit.Uniform, 1 / System.Math.Sqrt(w), e, 1, w),
        new("mixer.conv1d.bias", OptimizerGroup.NoDecay, TensorInit.Uniform, 1 / System.Math.Sqrt(w), e),
        new("mixer.x_proj.weight", OptimizerGroup.Default, TensorInit.Uniform, 1 / System.Math.Sqrt(e), r + 2 * n, e),
        new("mixer.dt_proj.weight", OptimizerGroup.Default, TensorInit.Uniform, 1 / System.Math.Sqrt(r), e, r),
        new("mixer.dt_proj.bias", OptimizerGroup.NoDecay, TensorInit.MambaDtBias, 0, e),
        new("mixer.A_log", OptimizerGroup.NoDecay, TensorInit.MambaALog, 0, e, n),
        new("mixer.D", OptimizerGroup.NoDecay, TensorInit.One, 0, e),
        new("mixer.out_proj.weight", OptimizerGroup.Default, TensorInit.Uniform, 1 / System.Math.Sqrt(e), h, e),
    ], rmsPreNorm: rms, mambaNamed: true);
}
