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
    /// <summary>Floats of recurrent memory a stream holds after reading <paramref name="length"/> tokens.</summary>
    public static long StateValues(ModelConfig config, int length)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (length < 1) throw new ArgumentOutOfRangeException(nameof(length), length, "length must be positive.");
        long total = 0;
        int h = config.DModel;
        foreach (var layer in config.Layers)
            total += layer switch
            {
                S4DLayerConfig s => (long)h * s.N,
                MambaLayerConfig m => (long)m.Inner(h) * (m.N + m.ConvWidth - 1),
                RnnLayerConfig r => r.HiddenSize(h),
                IdsLayerConfig d => d.N,
                AttentionLayerConfig => 2L * h * length,
                _ => throw new NotSupportedException($"No memory count for layer kind {layer.Kind}."),
            };
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
        const double LayerNorm = 8, RmsNorm = 4, Gelu = 8, Silu = 4, Softplus = 3;   // per element
        double flops = config.TokenInput ? 0 : 2 * h * config.Input + h;
        foreach (var layer in config.Layers)
        {
            flops += h; // the residual add
            switch (layer)
            {
                case S4DLayerConfig s:
                    // per complex mode: h·Ā (6), + B̄·u (4), 2·Re(C·h) (4); then D·u, GELU, the 2H×H linear, the GLU
                    flops += LayerNorm * h + h * (s.N / 2) * 14 + 2 * h + Gelu * h + 4 * h * h + 2 * h + 6 * h;
                    break;
                case MambaLayerConfig m:
                    double e = m.Inner(config.DModel), r = m.Rank(config.DModel), n = m.N;
                    flops += (m.Norm == NormKind.RmsNorm ? RmsNorm : LayerNorm) * h
                        + 2 * 2 * e * h                      // in_proj
                        + 2 * e * m.ConvWidth + e + Silu * e // causal conv, bias, SiLU
                        + 2 * (r + 2 * n) * e                // x_proj
                        + 2 * e * r + e + Softplus * e       // dt_proj, bias, softplus
                        + e * n * (2 + 2 + 2 + 2)            // exp(Δ·A) (Δ·A, exp), Δ·B·x and the update, C·h
                        + 2 * e + Silu * e + e               // D·x, the SiLU gate
                        + 2 * h * e;                         // out_proj
                    break;
                case RnnLayerConfig rnn:
                    double hd = rnn.HiddenSize(config.DModel);
                    flops += LayerNorm * h + 2 * hd * h + 2 * hd * hd + 2 * hd + 4 * hd + 2 * h * hd + h;
                    break;
                case IdsLayerConfig ids:
                    double nn = ids.N;
                    flops += LayerNorm * h + 2 * nn * nn * h + nn * nn + 2 * nn * nn + 2 * nn * h + 2 * h * nn + h;
                    break;
                case AttentionLayerConfig att:
                    double meanRead = (length + 1) / 2.0;   // positions attended, averaged over the sequence
                    flops += LayerNorm * h + 2 * 3 * h * h + 3 * h + 3 * h            // q, k, v and rotary positions
                        + meanRead * (2 * h + 2 * h + 3 * att.Heads)               // scores, weighted values, softmax
                        + 2 * h * h + h                                          // out_proj
                        + LayerNorm * h + 2 * 2 * att.MlpRatio * h * h + att.MlpRatio * h * (1 + Gelu) + h;
                    break;
                default:
                    throw new NotSupportedException($"No FLOP count for layer kind {layer.Kind}.");
            }
        }
        flops += (config.FinalNorm == NormKind.RmsNorm ? RmsNorm : LayerNorm) * h + 2 * h * config.Output + config.Output;
        return flops;
    }
}
