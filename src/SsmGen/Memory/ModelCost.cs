namespace SsmGen.Memory;

/// <summary>
/// What a model costs per sequence and per token when it streams, counted from its declaration: the values it must
/// keep to continue a sequence (its memory) and the floating-point operations of one step.
/// </summary>
/// <remarks>
/// Memory counts only what depends on the sequence read so far: an S4D block's complex state (H·N/2 complex = H·N
/// floats), a Mamba block's SSM state (E·N) and convolution window (E·(W − 1)), an RNN's hidden vector, an IDS
/// block's N-vector, an attention block's key and value cache (2·H per position read), and a mean-pooled model's
/// running sum (H). Tables a stream derives from the parameters alone (S4D's discretized modes) are not memory. FLOPs count a multiply-add as 2, every other
/// arithmetic operation, exp, tanh and square root as 1, and leave out the embedding lookup; an attention block's
/// cost at position t grows with t, so the count averages it over positions 0…L − 1.
/// </remarks>
public static class ModelCost
{
    // FLOPs per element of the element-wise passes; each kind counts its block with them (its config's StepFlops).
    internal const double LayerNormFlops = 8, RmsNormFlops = 4, GeluFlops = 8, SiluFlops = 4, SoftplusFlops = 3;

    /// <summary>Floats of recurrent memory a stream holds after reading <paramref name="length"/> tokens.</summary>
    public static long StateValues(ModelConfig config, int length)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (length < 1) throw new ArgumentOutOfRangeException(nameof(length), length, "length must be positive.");
        long total = 0;
        int h = config.DModel;
        foreach (var layer in config.Layers) total += layer.StreamValues(h, length);
        if (config.Pooling == Pooling.Mean) total += h;
        return total;
    }

    /// <summary>Bytes of <see cref="StateValues"/> in float32.</summary>
    public static long StateBytes(ModelConfig config, int length) => 4 * StateValues(config, length);

    /// <summary>FLOPs of one streaming step, averaged over a sequence of <paramref name="length"/> tokens.</summary>
    public static double FlopsPerToken(ModelConfig config, int length)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (length < 1) throw new ArgumentOutOfRangeException(nameof(length), length, "length must be positive.");
        double h = config.DModel;
        double flops = config.TokenInput ? 0 : 2 * h * config.Input + h;
        foreach (var layer in config.Layers)
        {
            flops += h; // the residual add
            flops += layer.StepFlops(config.DModel, length);
        }
        flops += (config.FinalNorm == NormKind.RmsNorm ? RmsNormFlops : LayerNormFlops) * h + 2 * h * config.Output + config.Output;
        return flops;
    }
}
