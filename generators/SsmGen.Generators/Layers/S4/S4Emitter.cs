namespace SsmGen.Generators.Layers;

/// <summary>
/// The S4 layer, CPU backend: the long-convolution block's passes (<see cref="ConvolutionBlock"/>) around S4's float
/// core (<c>S4Kernel</c>, one per block): its kernel by Cauchy sums and one FFT per channel, the kernel's backward,
/// and the O(N) DPLR step from the tables a stream prepares when it starts.
/// </summary>
internal sealed class S4Emitter : CpuRendering<S4LayerPlan>
{
    private static readonly ConvolutionBlock.Names Names = new("_s4Conv", "_s4DY", "_s4DU", "_s4Dk", "_s4StepU", "_s4StepY", "_s4StepAct", "_s4StepO", "_s4StepGlu");

    protected override string[] FieldNotes =>
    [
        "S4 blocks: norm stats, norm out, S4 out (after a training forward GELU's slope at it), GELU out, linear out, GLU out, kernel;",
        "shared: dL/d(the SSM's output, input), dL/d(kernel); the step's rows.",
    ];

    protected override IEnumerable<(string Name, string Floats)> BlockBuffers(S4LayerPlan l) => ConvolutionBlock.BlockBuffers;

    protected override IEnumerable<HostBuffer> SharedBuffers(ModelPlan plan) => Names.Shared([]);

    protected override (string Name, string Type, string Arguments)? BlockObject(S4LayerPlan l) => ("S4", "S4Kernel", $"H, {l.Spec.N}, {l.Spec.KernelLength}, maxLength");

    public override void EmitFields(CodeWriter w, ModelPlan plan)
    {
        base.EmitFields(w, plan);
        w.Line($"private readonly CausalConvolution {Names.Conv};");
    }

    public override void EmitAllocations(CodeWriter w, ModelPlan plan)
    {
        w.Line($"{Names.Conv} = new CausalConvolution(H, maxBatch, maxLength);");
        base.EmitAllocations(w, plan);
    }

    /// <summary>A new stream prepares every S4 block's step tables from the current parameters (C̃ back to C: a dense solve per channel).</summary>
    public override string StreamStart => "if (t == 0 && _gpu is null) PrepareS4(state.Values); // a new stream takes the current S4 parameters";

    public override void EmitStepHelpers(CodeWriter w, ModelPlan plan)
    {
        w.Open("private void PrepareS4(float[] state)");
        foreach (var l in plan.Blocks<S4LayerPlan>()) w.Line($"_l{l.Index}S4.Prepare({Args(plan, l, "_p")}, {plan.State.Of(l, "tables").Slice("state.AsSpan()")});");
        w.Close();
        w.Line();
    }

    /// <summary>Where block l's SSM tensors start in the parameter (and gradient) buffer.</summary>
    private static string Offsets(S4LayerPlan l)
    {
        string m = l.Prefix + "mixer.";
        return $"new S4Tensors({ModelEmitter.P(m + "log_dt")}, {ModelEmitter.P(m + "log_A_real")}, {ModelEmitter.P(m + "A_imag")}, {ModelEmitter.P(m + "P")}, {ModelEmitter.P(m + "B")}, {ModelEmitter.P(m + "C")})";
    }

    /// <summary>log Δ, log(−Re λ), Im λ, P, B and C̃ of block l in buffer <paramref name="buf"/> (_p or _g).</summary>
    private static string Args(ModelPlan plan, S4LayerPlan l, string buf)
    {
        string m = l.Prefix + "mixer.";
        string hm = (plan.Spec.DModel * l.Modes).ToString(), hm2 = (2 * plan.Spec.DModel * l.Modes).ToString();
        return string.Join(", ", ModelEmitter.Span(buf, m + "log_dt", "H"), ModelEmitter.Span(buf, m + "log_A_real", hm), ModelEmitter.Span(buf, m + "A_imag", hm),
            ModelEmitter.Span(buf, m + "P", hm2), ModelEmitter.Span(buf, m + "B", hm2), ModelEmitter.Span(buf, m + "C", hm2));
    }

    public override void EmitLayer(CodeWriter w, ModelPlan plan, S4LayerPlan l)
    {
        string i = "_l" + l.Index;
        ConvolutionBlock.EmitForward(w, plan, l, l.Spec.Dropout, Names, $"S4 (N = {l.Spec.N}, DPLR, kernel length {l.Spec.KernelLength})", () =>
        {
            w.Line("// S4: the kernel K (H, L) from the generating function at the roots of unity, then the convolution and D·u");
            w.Line($"{i}S4.Kernel(_p, {Offsets(l)}, {i}K, length);");
        });
        ConvolutionBlock.EmitBackward(w, l, l.Spec.Dropout, Names, () =>
        {
            w.Line("// kernel backward: dL/dK to log Δ, Λ, P, B and C̃");
            w.Line($"{i}S4.KernelBackward(_p, _g, {Offsets(l)}, {Names.DK}, length);");
        });
        ConvolutionBlock.EmitStep(w, l, Names, $"{plan.State.Of(l, "x").What}, and {plan.State.Of(l, "tables").What}", (u, y) =>
            w.Line($"{i}S4.Step({plan.State.Of(l, "tables").Slice("stream")}, {ModelEmitter.Span("_p", l.Prefix + "mixer.D", "H")}, {plan.State.Of(l, "x").Slice("stream")}, {u}, {y});"));
    }
}
