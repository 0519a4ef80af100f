using SsmGen.Layers;

namespace SsmGen;

/// <summary>Runtime description of one S4D block (the same facts the attributes declare).</summary>
public sealed record S4DLayerConfig(
    int N,
    S4DInit Init = S4DInit.Lin,
    Discretization Discretization = Discretization.Zoh,
    bool TrainB = false,
    double Dropout = 0,
    double DtMin = 1e-3,
    double DtMax = 1e-1) : LayerConfig
{
    public override string Kind => "S4DLayer";

    internal override BlockTensors Tensors(int dModel) => S4DTable.Of(dModel, N, TrainB);

    internal override Reference.ReferenceBlock<T> ReferenceBlock<T>(int dModel) => new Reference.S4DBlock<T>(dModel, this);

    internal override long StreamValues(int dModel, int length) => (long)dModel * N;

    // per complex mode: h·Ā (6), + B̄·u (4), 2·Re(C·h) (4); then D·u, GELU, the 2H×H linear, the GLU
    internal override double StepFlops(int dModel, int length)
    {
        double h = dModel;
        return Memory.ModelCost.LayerNormFlops * h + h * (N / 2) * 14 + 2 * h + Memory.ModelCost.GeluFlops * h + 4 * h * h + 2 * h + 6 * h;
    }

    internal override bool Initialize(TensorInit init, Span<float> dst, Span<float> next, int dModel, ref Rng rng)
    {
        if (init == TensorInit.LogDt) Initialization.LogDt(dst, DtMin, DtMax, ref rng);
        else if (init == TensorInit.S4DA) Initialization.S4DA(dst, next, dModel, N, Init, ref rng);
        else return false;
        return true;
    }

    public override void Validate(int dModel)
    {
        if (N <= 0 || N % 2 != 0) throw new ArgumentException($"S4D state size N must be positive and even, got {N}.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"Dropout must be in [0, 1), got {Dropout}.");
        if (!(DtMin > 0 && DtMin <= DtMax)) throw new ArgumentException($"Need 0 < DtMin <= DtMax, got {DtMin} and {DtMax}.");
    }
}
