using SsmGen.Layers;

namespace SsmGen;

/// <summary>Runtime description of one S4 block (the same facts the attributes declare).</summary>
public sealed record S4LayerConfig(
    int N,
    int KernelLength = 1024,
    S4Measure Measure = S4Measure.LegS,
    double Dropout = 0,
    double DtMin = 1e-3,
    double DtMax = 1e-1) : LayerConfig
{
    public override string Kind => "S4Layer";

    internal override BlockTensors Tensors(int dModel) => S4Table.Of(dModel, N);

    internal override Reference.ReferenceBlock<T> ReferenceBlock<T>(int dModel) => new Reference.S4Block<T>(dModel, this);

    internal override long StreamValues(int dModel, int length) => (long)dModel * N;

    // per complex mode: p̄·x (4), λx − p·s and Δ·B·u (12), D·v (6), p̄·(D·v) (4), the correction (6), 2·Re(C·x) (4); then D·u,
    // GELU, the 2H×H linear, the GLU
    internal override double StepFlops(int dModel, int length)
    {
        double h = dModel;
        return Memory.ModelCost.LayerNormFlops * h + h * (N / 2) * 36 + 2 * h + Memory.ModelCost.GeluFlops * h + 4 * h * h + 2 * h + 6 * h;
    }

    internal override bool Initialize(TensorInit init, Span<float> dst, Span<float> next, int dModel, ref Rng rng)
    {
        if (init == TensorInit.LogDt) Initialization.LogDt(dst, DtMin, DtMax, ref rng);
        else if (init == TensorInit.HippoA) Initialization.HippoA(dst, next, dModel, N);
        else if (init == TensorInit.HippoPB) Initialization.HippoPB(dst, next, dModel, N);
        else return false;
        return true;
    }

    public override void Validate(int dModel)
    {
        if (N <= 0 || N % 2 != 0) throw new ArgumentException($"S4 state size N must be positive and even, got {N}.");
        if (KernelLength < 2 || (KernelLength & (KernelLength - 1)) != 0) throw new ArgumentException($"S4 kernel length must be a power of two ≥ 2, got {KernelLength}.");
        if (Measure != S4Measure.LegS) throw new ArgumentException($"Unknown S4 measure {Measure}.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"Dropout must be in [0, 1), got {Dropout}.");
        if (!(DtMin > 0 && DtMin <= DtMax)) throw new ArgumentException($"Need 0 < DtMin <= DtMax, got {DtMin} and {DtMax}.");
    }
}
