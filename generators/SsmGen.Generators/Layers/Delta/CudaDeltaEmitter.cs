namespace SsmGen.Generators.Layers;

/// <summary>
/// The delta-rule layer's GPU rendering, for now a refusal: a model with such a block runs on the CPU, and a GPU
/// device is refused with the reason (the chunked kernels come next).
/// </summary>
internal sealed class CudaDeltaEmitter : GpuRendering<DeltaLayerPlan>
{
    public override IEnumerable<string> Unsupported(ModelPlan plan) =>
        plan.Blocks<DeltaLayerPlan>().Select(l => $"block {l.Index} is a delta-rule block, which has no GPU kernels yet");

    public override void EmitKernels(StringBuilder cu, ModelPlan plan) { }
    public override IEnumerable<(string Field, string Floats)> Buffers(DeltaLayerPlan l) => [];
    public override void EmitForward(CodeWriter w, ModelPlan plan, DeltaLayerPlan l) { }
    public override void EmitBackward(CodeWriter w, ModelPlan plan, DeltaLayerPlan l) { }
    public override void EmitStep(CodeWriter w, ModelPlan plan, DeltaLayerPlan l) { }
}
