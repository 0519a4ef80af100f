namespace SsmGen.Generators.Layers;

/// <summary>
/// The simple RNN layer, CPU backend: pre-LayerNorm, W_ih as one matrix product over all positions, the sequential
/// recurrence h_t = f(pre_t + b_hh + W_hh h_{t−1}) (RnnKernels, batch rows in parallel), out_proj, residual; the
/// backward through time, with W_hh's gradient as one product of dL/ds and the shifted states.
/// </summary>
internal sealed class RnnEmitter : CpuRendering<RnnLayerPlan>
{
    private static int MaxHd(ModelPlan plan) => plan.Blocks<RnnLayerPlan>().Max(l => l.Hd);

    protected override string[] FieldNotes => ["RNN blocks: norm stats and output, the hidden states (B·L, Hd); shared scratch for the backward and the step."];

    protected override IEnumerable<(string Name, string Floats)> BlockBuffers(RnnLayerPlan l) => [("Hs", $"rows * {l.Hd}")];

    protected override IEnumerable<HostBuffer> SharedBuffers(ModelPlan plan)
    {
        int hd = MaxHd(plan);
        foreach (var (f, floats) in new[] { ("_rdH", $"rows * {hd}"), ("_rPrev", $"rows * {hd}"), ("_rCarry", $"maxBatch * {hd}") })
            yield return new(f, floats, Training: true);
        foreach (var (f, floats) in new[] { ("_rnnStepU", "H"), ("_rnnStepPre", $"{hd}"), ("_rnnStepH", $"{hd}"), ("_rnnStepRec", $"{hd}"), ("_rnnStepOut", "H") })
            yield return new(f, $"maxBatch * {floats}");
    }

    private static string Pm(RnnLayerPlan l, string name, int len, string buf = "_p") => ModelEmitter.Tensor(l, "mixer." + name, len, buf);

    public override void EmitLayer(CodeWriter w, ModelPlan plan, RnnLayerPlan l)
    {
        string i = "_l" + l.Index, relu = l.Relu ? "true" : "false";
        int hd = l.Hd, h = plan.Spec.DModel;
        w.Line($"/// <summary>Block {l.Index}, (B, L, H) → (B, L, H): pre-LayerNorm, RNN (hidden {hd}, {(l.Relu ? "ReLU" : "tanh")}), out_proj, residual.</summary>");
        ModelEmitter.OpenForward(w, l);
        w.Line("// W_ih u + b_ih for every position at once, then the recurrence in place");
        w.Line($"var hs = {i}Hs.AsSpan(0, rows * {hd});");
        w.Line($"Gemm.LinearForward({i}U.AsSpan(0, rows * H), {Pm(l, "weight_ih", hd * h)}, {Pm(l, "bias_ih", hd)}, hs, rows, H, {hd}, _ws);");
        w.Line($"RnnKernels.Forward(hs, {Pm(l, "weight_hh", hd * hd)}, {Pm(l, "bias_hh", hd)}, hs, batch, length, {hd}, {relu}, _ws);");
        w.Line($"Gemm.LinearForward(hs, {Pm(l, "out_proj.weight", h * hd)}, {Pm(l, "out_proj.bias", h)}, _mix, rows, {hd}, H, _ws);");
        w.Line($"TensorPrimitives.Add(x, _mix.AsSpan(0, rows * H), {ModelEmitter.Next(plan, l)}.AsSpan(0, rows * H));");
        w.Close();
        w.Line();

        ModelEmitter.OpenBackward(w, l);
        w.Line($"var hs = {i}Hs.AsSpan(0, rows * {hd});");
        w.Line($"var dS = _rdH.AsSpan(0, rows * {hd}); dS.Clear();");
        w.Line($"Gemm.LinearBackward(hs, {Pm(l, "out_proj.weight", h * hd)}, dX, dS, {Pm(l, "out_proj.weight", h * hd, "_g")}, {Pm(l, "out_proj.bias", h, "_g")}, rows, {hd}, H, _ws);");
        w.Line("// through time: dL/dh_t → dL/ds_t; then W_hh's gradient Σ_t dL/ds_t h_{t−1}ᵀ as one product");
        w.Line($"RnnKernels.Backward(hs, {Pm(l, "weight_hh", hd * hd)}, dS, _rCarry, batch, length, {hd}, {relu}, _ws);");
        w.Line($"RnnKernels.ShiftInTime(hs, _rPrev, batch, length, {hd});");
        w.Line($"Gemm.LinearBackward(_rPrev.AsSpan(0, rows * {hd}), {Pm(l, "weight_hh", hd * hd)}, dS, Span<float>.Empty, {Pm(l, "weight_hh", hd * hd, "_g")}, {Pm(l, "bias_hh", hd, "_g")}, rows, {hd}, {hd}, _ws);");
        w.Line("var dU = _dA.AsSpan(0, rows * H); dU.Clear();");
        w.Line($"Gemm.LinearBackward({i}U.AsSpan(0, rows * H), {Pm(l, "weight_ih", hd * h)}, dS, dU, {Pm(l, "weight_ih", hd * h, "_g")}, {Pm(l, "bias_ih", hd, "_g")}, rows, H, {hd}, _ws);");
        ModelEmitter.CloseBackward(w, l);

        w.Line($"/// <summary>Block {l.Index}, one token of each stream: the rows of _sx (count, H) are updated in place. State: h ({hd}).</summary>");
        w.Open($"private void Layer{l.Index}Step(ReadOnlySpan<SsmState> streams)");
        w.Line("int count = streams.Length;");
        w.Line(ModelEmitter.NormForward(false, l.Prefix + "norm", "_sx.AsSpan(0, count * H)", "_rnnStepU", ModelEmitter.StepMean, ModelEmitter.StepRstd, "count"));
        w.Line($"StepProduct(_rnnStepU.AsSpan(0, count * H), {Pm(l, "weight_ih", hd * h)}, {Pm(l, "bias_ih", hd)}, _rnnStepPre, count, H, {hd});");
        w.Line($"for (int s = 0; s < count; s++) {plan.State.Of(l, "h").Slice("streams[s].Values.AsSpan()")}.CopyTo(_rnnStepH.AsSpan(s * {hd}, {hd}));");
        w.Line($"StepProduct(_rnnStepH.AsSpan(0, count * {hd}), {Pm(l, "weight_hh", hd * hd)}, {Pm(l, "bias_hh", hd)}, _rnnStepRec, count, {hd}, {hd});");
        w.Line($"TensorPrimitives.Add(_rnnStepPre.AsSpan(0, count * {hd}), _rnnStepRec.AsSpan(0, count * {hd}), _rnnStepPre);");
        w.Line(l.Relu ? $"TensorPrimitives.Max(_rnnStepPre.AsSpan(0, count * {hd}), 0f, _rnnStepH);" : $"TensorPrimitives.Tanh(_rnnStepPre.AsSpan(0, count * {hd}), _rnnStepH);");
        w.Line($"for (int s = 0; s < count; s++) _rnnStepH.AsSpan(s * {hd}, {hd}).CopyTo({plan.State.Of(l, "h").Slice("streams[s].Values.AsSpan()")});");
        w.Line($"StepProduct(_rnnStepH.AsSpan(0, count * {hd}), {Pm(l, "out_proj.weight", h * hd)}, {Pm(l, "out_proj.bias", h)}, _rnnStepOut, count, {hd}, H);");
        w.Line("TensorPrimitives.Add(_sx.AsSpan(0, count * H), _rnnStepOut.AsSpan(0, count * H), _sx);");
        w.Close();
        w.Line();
    }
}
