using SsmGen.Layers;

namespace SsmGen;

/// <summary>Runtime description of one simple RNN block.</summary>
/// <param name="Hidden">Hidden state size; 0 means DModel.</param>
public sealed record RnnLayerConfig(int Hidden = 0, Nonlinearity Nonlinearity = Nonlinearity.Tanh) : LayerConfig
{
    public override string Kind => "RnnLayer";

    internal override BlockTensors Tensors(int dModel) => RnnTable.Of(dModel, HiddenSize(dModel));

    internal override Reference.ReferenceBlock<T> ReferenceBlock<T>(int dModel) => new Reference.RnnBlock<T>(dModel, this);

    internal override long StreamValues(int dModel, int length) => HiddenSize(dModel);

    internal override double StepFlops(int dModel, int length)
    {
        double h = dModel, hd = HiddenSize(dModel);
        return Memory.ModelCost.LayerNormFlops * h + 2 * hd * h + 2 * hd * hd + 2 * hd + 4 * hd + 2 * h * hd + h;
    }

    /// <summary>The hidden size actually used.</summary>
    public int HiddenSize(int dModel) => Hidden > 0 ? Hidden : dModel;

    public override void Validate(int dModel)
    {
        if (Hidden < 0) throw new ArgumentException($"Hidden must be positive, or 0 for DModel; got {Hidden}.");
        if (!Enum.IsDefined(Nonlinearity)) throw new ArgumentException($"Unknown nonlinearity {Nonlinearity}.");
    }
}
