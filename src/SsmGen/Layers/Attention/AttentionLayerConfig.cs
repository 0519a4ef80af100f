using SsmGen.Layers;

namespace SsmGen;

/// <summary>Runtime description of one transformer block (causal attention with rotary positions, then an MLP).</summary>
public sealed record AttentionLayerConfig(int Heads = 4, int MlpRatio = 4) : LayerConfig
{
    public override string Kind => "AttentionLayer";

    internal override BlockTensors Tensors(int dModel) => AttentionTable.Of(dModel, (long)MlpRatio * dModel);

    internal override Reference.ReferenceBlock<T> ReferenceBlock<T>(int dModel) => new Reference.AttentionBlock<T>(dModel, this);

    internal override long StreamValues(int dModel, int length) => 2L * dModel * length;

    internal override double StepFlops(int dModel, int length)
    {
        double h = dModel, meanRead = (length + 1) / 2.0;   // positions attended, averaged over the sequence
        return Memory.ModelCost.LayerNormFlops * h + 2 * 3 * h * h + 3 * h + 3 * h     // q, k, v and rotary positions
            + meanRead * (2 * h + 2 * h + 3 * Heads)                                   // scores, weighted values, softmax
            + 2 * h * h + h                                                            // out_proj
            + Memory.ModelCost.LayerNormFlops * h + 2 * 2 * MlpRatio * h * h + MlpRatio * h * (1 + Memory.ModelCost.GeluFlops) + h;
    }

    public override void Validate(int dModel)
    {
        if (Heads <= 0 || dModel % Heads != 0) throw new ArgumentException($"Heads = {Heads} must be positive and divide DModel = {dModel}.");
        if (dModel / Heads % 2 != 0) throw new ArgumentException($"The head size DModel/Heads = {dModel / Heads} must be even for rotary positions.");
        if (MlpRatio <= 0) throw new ArgumentException($"MlpRatio must be positive, got {MlpRatio}.");
    }
}
