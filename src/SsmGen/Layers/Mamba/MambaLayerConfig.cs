using SsmGen.Layers;

namespace SsmGen;

/// <summary>
/// Runtime description of one Mamba block: pre-norm, the selective SSM mixer (in_proj, causal depthwise conv,
/// SiLU, x_proj, dt_proj with softplus, selective scan, SiLU gate, out_proj), residual.
/// </summary>
/// <param name="N">State size per channel.</param>
/// <param name="Expand">Inner width E = Expand·DModel.</param>
/// <param name="ConvWidth">Taps of the causal depthwise convolution.</param>
/// <param name="DtRank">Rank of the Δ projection; 0 means ⌈DModel/16⌉.</param>
/// <param name="Norm">The block's pre-norm.</param>
/// <param name="DtMin">Lower end of the log-uniform Δ initialization.</param>
/// <param name="DtMax">Upper end of the log-uniform Δ initialization.</param>
/// <param name="Eigenvalues">The range of the scan's transitions: (0, 1), or (−1, 1) with 2·exp(Δ·A) − 1.</param>
public sealed record MambaLayerConfig(
    int N = 16,
    int Expand = 2,
    int ConvWidth = 4,
    int DtRank = 0,
    NormKind Norm = NormKind.RmsNorm,
    double DtMin = 1e-3,
    double DtMax = 1e-1,
    MambaEigenvalues Eigenvalues = MambaEigenvalues.Positive) : LayerConfig
{
    public override string Kind => "MambaLayer";

    internal override BlockTensors Tensors(int dModel) => MambaTable.Of(dModel, Inner(dModel), N, Rank(dModel), ConvWidth, Norm == NormKind.RmsNorm);

    internal override Reference.ReferenceBlock<T> ReferenceBlock<T>(int dModel) => new Reference.MambaBlock<T>(dModel, this);

    internal override long StreamValues(int dModel, int length) => (long)Inner(dModel) * (N + ConvWidth - 1);

    internal override double StepFlops(int dModel, int length)
    {
        double h = dModel, e = Inner(dModel), r = Rank(dModel), n = N;
        return (Norm == NormKind.RmsNorm ? Memory.ModelCost.RmsNormFlops : Memory.ModelCost.LayerNormFlops) * h
            + 2 * 2 * e * h                                          // in_proj
            + 2 * e * ConvWidth + e + Memory.ModelCost.SiluFlops * e  // causal conv, bias, SiLU
            + 2 * (r + 2 * n) * e                                    // x_proj
            + 2 * e * r + e + Memory.ModelCost.SoftplusFlops * e      // dt_proj, bias, softplus
            + e * n * (2 + 2 + 2 + 2)                                // exp(Δ·A) (Δ·A, exp), Δ·B·x and the update, C·h
            + (Eigenvalues == MambaEigenvalues.PositiveAndNegative ? 2 * e * n : 0) // 2·exp(Δ·A) − 1
            + 2 * e + Memory.ModelCost.SiluFlops * e + e              // D·x, the SiLU gate
            + 2 * h * e;                                             // out_proj
    }

    internal override bool Initialize(TensorInit init, Span<float> dst, Span<float> next, int dModel, ref Rng rng)
    {
        if (init == TensorInit.MambaALog) Initialization.MambaALog(dst, N);
        else if (init == TensorInit.MambaDtBias) Initialization.MambaDtBias(dst, DtMin, DtMax, ref rng);
        else return false;
        return true;
    }

    /// <summary>Inner width E.</summary>
    public int Inner(int dModel) => Expand * dModel;

    /// <summary>The Δ projection rank actually used.</summary>
    public int Rank(int dModel) => DtRank > 0 ? DtRank : (dModel + 15) / 16;

    public override void Validate(int dModel)
    {
        if (N <= 0) throw new ArgumentException($"Mamba state size N must be positive, got {N}.");
        if (Expand <= 0) throw new ArgumentException($"Expand must be positive, got {Expand}.");
        if (ConvWidth <= 0) throw new ArgumentException($"ConvWidth must be positive, got {ConvWidth}.");
        if (DtRank < 0) throw new ArgumentException($"DtRank must be positive, or 0 for ⌈DModel/16⌉; got {DtRank}.");
        if (!(DtMin > 0 && DtMin <= DtMax)) throw new ArgumentException($"Need 0 < DtMin <= DtMax, got {DtMin} and {DtMax}.");
        if (Eigenvalues is not (MambaEigenvalues.Positive or MambaEigenvalues.PositiveAndNegative))
            throw new ArgumentException($"Eigenvalues must be Positive or PositiveAndNegative, got {(int)Eigenvalues}.");
    }
}
