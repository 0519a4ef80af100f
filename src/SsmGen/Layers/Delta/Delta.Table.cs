namespace SsmGen.Layers;

/// <summary>A delta-rule block's tensors, in the names of the open Gated DeltaNet implementations (shared by the generator and the runtime).</summary>
internal static class DeltaTable
{
    /// <summary>
    /// Width H, h heads of size d, n Householder steps per token, short convolutions of w taps; with the gate, its
    /// projection, rates and bias. Starts: PyTorch's defaults for Linear and Conv1d (uniform ±1/√fan_in), Gated
    /// DeltaNet's for the gate (A uniform in [1, 16], Δ's bias as Mamba's), ones for the output norm.
    /// </summary>
    public static BlockTensors Of(long h, long heads, long d, long n, long w, bool gate)
    {
        long hd = heads * d, kd = n * hd;
        double x = 1 / System.Math.Sqrt(h);
        var tensors = new System.Collections.Generic.List<TensorEntry>
        {
            new("mixer.q_proj.weight", OptimizerGroup.Default, TensorInit.Uniform, x, hd, h),
            new("mixer.k_proj.weight", OptimizerGroup.Default, TensorInit.Uniform, x, kd, h),
            new("mixer.v_proj.weight", OptimizerGroup.Default, TensorInit.Uniform, x, kd, h),
            new("mixer.b_proj.weight", OptimizerGroup.Default, TensorInit.Uniform, x, n * heads, h),
        };
        if (gate)
        {
            tensors.Add(new("mixer.a_proj.weight", OptimizerGroup.Default, TensorInit.Uniform, x, heads, h));
            tensors.Add(new("mixer.A_log", OptimizerGroup.NoDecay, TensorInit.DeltaALog, 0, heads));
            tensors.Add(new("mixer.dt_bias", OptimizerGroup.NoDecay, TensorInit.MambaDtBias, 0, heads));
        }
        double c = 1 / System.Math.Sqrt(w);
        tensors.Add(new("mixer.q_conv1d.weight", OptimizerGroup.Default, TensorInit.Uniform, c, hd, 1, w));
        tensors.Add(new("mixer.k_conv1d.weight", OptimizerGroup.Default, TensorInit.Uniform, c, kd, 1, w));
        tensors.Add(new("mixer.v_conv1d.weight", OptimizerGroup.Default, TensorInit.Uniform, c, kd, 1, w));
        tensors.Add(new("mixer.g_proj.weight", OptimizerGroup.Default, TensorInit.Uniform, x, hd, h));
        tensors.Add(new("mixer.o_norm.weight", OptimizerGroup.NoDecay, TensorInit.One, 0, d));
        tensors.Add(new("mixer.o_proj.weight", OptimizerGroup.Default, TensorInit.Uniform, 1 / System.Math.Sqrt(hd), h, hd));
        return new BlockTensors(tensors.ToArray(), rmsPreNorm: true);
    }
}
