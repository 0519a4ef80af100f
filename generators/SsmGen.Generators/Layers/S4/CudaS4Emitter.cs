namespace SsmGen.Generators.Layers;

/// <summary>
/// The S4 layer, GPU backend: not rendered yet. A model with an S4 block refuses a GPU device with the reason, and
/// runs on the CPU (the shell stubs the block's device passes).
/// </summary>
internal sealed class CudaS4Emitter : GpuRendering<S4LayerPlan>
{
    public override IEnumerable<string> Unsupported(ModelPlan plan) =>
        plan.Blocks<S4LayerPlan>().Select(l => $"block {l.Index} is an S4 block, which has no GPU rendering yet");

    public override void EmitKernels(StringBuilder cu, ModelPlan plan) { }

    public override IEnumerable<(string Field, string Floats)> Buffers(S4LayerPlan l) => [];

    // Never emitted: a model with an unsupported block gets the shell's stubs instead.
    public override void EmitForward(CodeWriter w, ModelPlan plan, S4LayerPlan l) { }
    public override void EmitBackward(CodeWriter w, ModelPlan plan, S4LayerPlan l) { }
    public override void EmitStep(CodeWriter w, ModelPlan plan, S4LayerPlan l) { }
}
