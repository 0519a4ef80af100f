using SsmGen.Layers;

namespace SsmGen;

/// <summary>Runtime description of one input-dependent transition (IDS) block.</summary>
public sealed record IdsLayerConfig(int N = 16) : LayerConfig
{
    public override string Kind => "IdsLayer";

    internal override BlockTensors Tensors(int dModel) => IdsTable.Of(dModel, N);

    internal override Reference.ReferenceBlock<T> ReferenceBlock<T>(int dModel) => new Reference.IdsBlock<T>(dModel, this);

    internal override long StreamValues(int dModel, int length) => N;

    internal override double StepFlops(int dModel, int length)
    {
        double h = dModel, nn = N;
        return Memory.ModelCost.LayerNormFlops * h + 2 * nn * nn * h + nn * nn + 2 * nn * nn + 2 * nn * h + 2 * h * nn + h;
    }

    internal override bool Initialize(TensorInit init, Span<float> dst, Span<float> next, int dModel, ref Rng rng)
    {
        if (init != TensorInit.IdsTransition) return false;
        Initialization.IdsTransition(dst, next, N, dModel, ref rng);
        return true;
    }

    public override void Validate(int dModel)
    {
        if (N <= 0) throw new ArgumentException($"IDS state size N must be positive, got {N}.");
    }
}
