using SsmGen.Layers;

namespace SsmGen;

/// <summary>
/// Runtime description of one delta-rule block: RMSNorm, the gated delta rule with <paramref name="HouseholderSteps"/>
/// Householder steps per token over <paramref name="Heads"/> heads of size <paramref name="HeadSize"/> (see
/// <see cref="Reference.DeltaReference{T}"/>), residual.
/// </summary>
/// <param name="Heads">Heads h; the state of each is a HeadSize × HeadSize matrix.</param>
/// <param name="HeadSize">d, the size of each head's keys, queries and values.</param>
/// <param name="HouseholderSteps">n: 1 is gated DeltaNet, 2 and more DeltaProduct.</param>
/// <param name="Gate">The decay α_t = exp(−exp(A_log)·softplus(a_t + dt_bias)) before each token's update.</param>
/// <param name="NegativeEigenvalues">β ∈ (0, 2) instead of (0, 1), so each Householder factor's eigenvalue 1 − β reaches into (−1, 0).</param>
/// <param name="ConvWidth">Taps of the short causal convolutions on q, k and v.</param>
/// <param name="DtMin">Lower end of the log-uniform start of softplus(dt_bias).</param>
/// <param name="DtMax">Upper end of it.</param>
public sealed record DeltaLayerConfig(
    int Heads,
    int HeadSize,
    int HouseholderSteps = 1,
    bool Gate = true,
    bool NegativeEigenvalues = true,
    int ConvWidth = 4,
    double DtMin = 1e-3,
    double DtMax = 1e-1) : LayerConfig
{
    public override string Kind => "DeltaLayer";

    internal override BlockTensors Tensors(int dModel) => DeltaTable.Of(dModel, Heads, HeadSize, HouseholderSteps, ConvWidth, Gate);

    internal override Reference.ReferenceBlock<T> ReferenceBlock<T>(int dModel) => new Reference.DeltaBlock<T>(dModel, this);

    /// <summary>Channels of the three short convolutions: q (h·d), k and v (n·h·d each).</summary>
    private long ConvChannels => (long)Heads * HeadSize * (1 + 2 * HouseholderSteps);

    internal override long StreamValues(int dModel, int length) => (ConvWidth - 1) * ConvChannels + (long)Heads * HeadSize * HeadSize;

    internal override double StepFlops(int dModel, int length)
    {
        double h = dModel, hd = Heads * HeadSize, d = HeadSize, n = HouseholderSteps, c = ConvChannels;
        return Memory.ModelCost.RmsNormFlops * h
            + 2 * h * (c + n * Heads + hd + (Gate ? Heads : 0))                   // q, k, v, b, g (and a) projections
            + 2 * c * ConvWidth + Memory.ModelCost.SiluFlops * c                 // short convolutions, SiLU
            + 3 * hd * (1 + n)                                                   // L2 norms of q and the keys
            + Heads * (d * d + n * 6 * d * d)                                    // the gate, then each step: Sᵀk, v − Sᵀk, the rank-1 update
            + 2 * Heads * d * d                                                  // o = Sᵀq
            + Memory.ModelCost.RmsNormFlops * hd + (Memory.ModelCost.SiluFlops + 1) * hd // output norm and gate
            + 2 * h * hd;                                                        // o_proj
    }

    internal override bool Initialize(TensorInit init, Span<float> dst, Span<float> next, int dModel, ref Rng rng)
    {
        if (init == TensorInit.DeltaALog) Initialization.DeltaALog(dst, ref rng);
        else if (init == TensorInit.MambaDtBias) Initialization.MambaDtBias(dst, DtMin, DtMax, ref rng);
        else return false;
        return true;
    }

    public override void Validate(int dModel)
    {
        if (Heads <= 0 || HeadSize <= 0) throw new ArgumentException($"Heads and HeadSize must be positive, got {Heads} and {HeadSize}.");
        if (HouseholderSteps <= 0) throw new ArgumentException($"HouseholderSteps must be positive, got {HouseholderSteps}.");
        if (ConvWidth <= 0) throw new ArgumentException($"ConvWidth must be positive, got {ConvWidth}.");
        if (!(DtMin > 0 && DtMin <= DtMax)) throw new ArgumentException($"Need 0 < DtMin <= DtMax, got {DtMin} and {DtMax}.");
    }
}
