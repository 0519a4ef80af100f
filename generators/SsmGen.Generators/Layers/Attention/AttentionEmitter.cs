namespace SsmGen.Generators.Layers;

/// <summary>
/// The transformer layer, CPU backend: pre-LayerNorm, in_proj to [q | k | v], rotary positions, causal multi-head
/// attention (AttentionKernels), out_proj, residual; pre-LayerNorm, MLP (fc1, GELU, fc2), residual. The step keeps
/// rotated keys and values in the stream's cache.
/// </summary>
internal sealed class AttentionEmitter : CpuRendering<AttentionLayerPlan>
{
    private static int MaxMlp(ModelPlan plan) => plan.Blocks<AttentionLayerPlan>().Max(l => l.Mlp);

    protected override string[] FieldNotes =>
    [
        "Transformer blocks: norm stats and output, rotated [q | k | v], probabilities (B, heads, L, L), attention out,",
        "stream after attention, second norm, fc1 out, GELU out; rotary tables per head size; shared scratch.",
    ];

    protected override IEnumerable<(string Name, string Floats)> BlockBuffers(AttentionLayerPlan l) =>
        [("Qkv", "rows * 3 * H"), ("Probs", $"maxBatch * {l.Heads} * maxLength * maxLength"), ("O", "rows * H"), ("X1", "rows * H"),
         ("Mean2", "rows"), ("Rstd2", "rows"), ("U2", "rows * H"), ("F1", $"rows * {l.Mlp}"), ("Act", $"rows * {l.Mlp}")];

    protected override IEnumerable<HostBuffer> SharedBuffers(ModelPlan plan)
    {
        foreach (int d in HeadSizes(plan))
        {
            yield return new($"_ropeCos{d}", $"maxLength * {d / 2}");
            yield return new($"_ropeSin{d}", $"maxLength * {d / 2}");
        }
        int mlp = MaxMlp(plan);
        foreach (var (f, floats) in new[] { ("_adQkv", "rows * 3 * H"), ("_adO", "rows * H"), ("_adAct", $"rows * {mlp}"), ("_adU2", "rows * H") })
            yield return new(f, floats, Training: true);
        foreach (var (f, floats) in new[] { ("_attnStepU", "maxBatch * H"), ("_attnStepQkv", "maxBatch * 3 * H"), ("_attnStepO", "maxBatch * H"), ("_attnStepOut", "maxBatch * H"), ("_attnStepScores", "maxLength"), ("_attnStepF1", $"maxBatch * {mlp}") })
            yield return new(f, floats);
    }

    public override void EmitAllocations(CodeWriter w, ModelPlan plan)
    {
        base.EmitAllocations(w, plan);
        foreach (int d in HeadSizes(plan)) w.Line($"AttentionKernels.RopeTables(_ropeCos{d}, _ropeSin{d}, maxLength, {d});");
    }

    private static IEnumerable<int> HeadSizes(ModelPlan plan) => plan.Blocks<AttentionLayerPlan>().Select(l => l.HeadSize).Distinct();

    private static string Pm(AttentionLayerPlan l, string name, int len, string buf = "_p") => ModelEmitter.Tensor(l, name, len, buf);

    public override void EmitLayer(CodeWriter w, ModelPlan plan, AttentionLayerPlan l)
    {
        string i = "_l" + l.Index;
        int h = plan.Spec.DModel, d = l.HeadSize, m = l.Mlp;
        w.Line($"/// <summary>Block {l.Index}, (B, L, H) → (B, L, H): pre-LayerNorm, causal attention ({l.Heads} heads of {d}, rotary positions),");
        w.Line($"/// residual; pre-LayerNorm, MLP (H → {m} → H, GELU), residual.</summary>");
        ModelEmitter.OpenForward(w, l);
        w.Line($"var qkv = {i}Qkv.AsSpan(0, rows * 3 * H);");
        w.Line($"Gemm.LinearForward({i}U.AsSpan(0, rows * H), {Pm(l, "mixer.in_proj.weight", 3 * h * h)}, {Pm(l, "mixer.in_proj.bias", 3 * h)}, qkv, rows, H, 3 * H, _ws);");
        w.Line($"AttentionKernels.Rotate(qkv, _ropeCos{d}, _ropeSin{d}, batch, length, H, {d}, inverse: false);");
        w.Line($"AttentionKernels.Forward(qkv, {i}Probs, {i}O, batch, length, H, {l.Heads}, _ws);");
        w.Line($"Gemm.LinearForward({i}O.AsSpan(0, rows * H), {Pm(l, "mixer.out_proj.weight", h * h)}, {Pm(l, "mixer.out_proj.bias", h)}, _mix, rows, H, H, _ws);");
        w.Line($$"""
            var x1 = {{i}}X1.AsSpan(0, rows * H);
            TensorPrimitives.Add(x, _mix.AsSpan(0, rows * H), x1);
            // the MLP half
            """);
        w.Line($"BlockKernels.LayerNormForward(x1, {Pm(l, "norm2.weight", h)}, {Pm(l, "norm2.bias", h)}, {i}U2, {i}Mean2, {i}Rstd2, rows, H, _ws);");
        w.Line($"Gemm.LinearForward({i}U2.AsSpan(0, rows * H), {Pm(l, "mlp.fc1.weight", m * h)}, {Pm(l, "mlp.fc1.bias", m)}, {i}F1, rows, H, {m}, _ws);");
        w.Line($"BlockKernels.GeluForward({i}F1.AsSpan(0, rows * {m}), {i}Act, _ws);");
        w.Line($"Gemm.LinearForward({i}Act.AsSpan(0, rows * {m}), {Pm(l, "mlp.fc2.weight", h * m)}, {Pm(l, "mlp.fc2.bias", h)}, _mix, rows, {m}, H, _ws);");
        w.Line($"TensorPrimitives.Add(x1, _mix.AsSpan(0, rows * H), {ModelEmitter.Next(plan, l)}.AsSpan(0, rows * H));");
        w.Close();
        w.Line();

        ModelEmitter.OpenBackward(w, l);
        w.Line($"var dAct = _adAct.AsSpan(0, rows * {m}); dAct.Clear();");
        w.Line($"Gemm.LinearBackward({i}Act.AsSpan(0, rows * {m}), {Pm(l, "mlp.fc2.weight", h * m)}, dX, dAct, {Pm(l, "mlp.fc2.weight", h * m, "_g")}, {Pm(l, "mlp.fc2.bias", h, "_g")}, rows, {m}, H, _ws);");
        w.Line($"BlockKernels.GeluBackward({i}F1.AsSpan(0, rows * {m}), dAct, dAct, _ws);");
        w.Line("var dU2 = _adU2.AsSpan(0, rows * H); dU2.Clear();");
        w.Line($"Gemm.LinearBackward({i}U2.AsSpan(0, rows * H), {Pm(l, "mlp.fc1.weight", m * h)}, dAct, dU2, {Pm(l, "mlp.fc1.weight", m * h, "_g")}, {Pm(l, "mlp.fc1.bias", m, "_g")}, rows, H, {m}, _ws);");
        w.Line("// dX becomes dL/d(stream after attention): the residual plus the path through the second norm");
        w.Line(ModelEmitter.NormBackward(false, l.Prefix + "norm2", $"{i}X1.AsSpan(0, rows * H)", $"{i}Mean2", $"{i}Rstd2", "dU2", "dX", "rows"));
        w.Line("var dO = _adO.AsSpan(0, rows * H); dO.Clear();");
        w.Line($"Gemm.LinearBackward({i}O.AsSpan(0, rows * H), {Pm(l, "mixer.out_proj.weight", h * h)}, dX, dO, {Pm(l, "mixer.out_proj.weight", h * h, "_g")}, {Pm(l, "mixer.out_proj.bias", h, "_g")}, rows, H, H, _ws);");
        w.Line($$"""
            var dQkv = _adQkv.AsSpan(0, rows * 3 * H);
            AttentionKernels.Backward({{i}}Qkv, {{i}}Probs, dO, dQkv, batch, length, H, {{l.Heads}}, _ws);
            // the rotation is orthogonal: its backward turns the q and k gradients back by the same angle
            AttentionKernels.Rotate(dQkv, _ropeCos{{d}}, _ropeSin{{d}}, batch, length, H, {{d}}, inverse: true);
            var dU = _dA.AsSpan(0, rows * H); dU.Clear();
            """);
        w.Line($"Gemm.LinearBackward({i}U.AsSpan(0, rows * H), {Pm(l, "mixer.in_proj.weight", 3 * h * h)}, dQkv, dU, {Pm(l, "mixer.in_proj.weight", 3 * h * h, "_g")}, {Pm(l, "mixer.in_proj.bias", 3 * h, "_g")}, rows, H, 3 * H, _ws);");
        ModelEmitter.CloseBackward(w, l);

        w.Line($"/// <summary>Block {l.Index}, one token of each stream at its own position: the rows of _sx (count, H) are updated in place. State: the key/value cache (2, maxLength, H).</summary>");
        w.Open($"private void Layer{l.Index}Step(ReadOnlySpan<SsmState> streams)");
        w.Line("int count = streams.Length;");
        w.Line(ModelEmitter.NormForward(false, l.Prefix + "norm", "_sx.AsSpan(0, count * H)", "_attnStepU", ModelEmitter.StepMean, ModelEmitter.StepRstd, "count"));
        w.Line($"StepProduct(_attnStepU.AsSpan(0, count * H), {Pm(l, "mixer.in_proj.weight", 3 * h * h)}, {Pm(l, "mixer.in_proj.bias", 3 * h)}, _attnStepQkv, count, H, 3 * H);");
        w.Open("for (int s = 0; s < count; s++)");
        w.Line("var qkv = _attnStepQkv.AsSpan(s * 3 * H, 3 * H);");
        w.Line($"AttentionKernels.RotateRow(qkv.Slice(0, 2 * H), _ropeCos{d}, _ropeSin{d}, _stepAt[s], H, {d});");
        w.Line($"AttentionKernels.Step(qkv, streams[s].Values.AsSpan(KeyValueCacheAt({plan.State.CacheOf(l)}, _maxLength), 2 * _maxLength * H), _stepAt[s], _attnStepO.AsSpan(s * H, H), _attnStepScores, H, {l.Heads}, _maxLength);");
        w.Close();
        w.Line($"StepProduct(_attnStepO.AsSpan(0, count * H), {Pm(l, "mixer.out_proj.weight", h * h)}, {Pm(l, "mixer.out_proj.bias", h)}, _attnStepOut, count, H, H);");
        w.Line("TensorPrimitives.Add(_sx.AsSpan(0, count * H), _attnStepOut.AsSpan(0, count * H), _sx);");
        w.Line($"BlockKernels.LayerNormForward(_sx.AsSpan(0, count * H), {Pm(l, "norm2.weight", h)}, {Pm(l, "norm2.bias", h)}, _attnStepU, {ModelEmitter.StepMean}, {ModelEmitter.StepRstd}, count, H, _ws);");
        w.Line($"StepProduct(_attnStepU.AsSpan(0, count * H), {Pm(l, "mlp.fc1.weight", m * h)}, {Pm(l, "mlp.fc1.bias", m)}, _attnStepF1, count, H, {m});");
        w.Line($"BlockKernels.GeluForward(_attnStepF1.AsSpan(0, count * {m}), _attnStepF1, _ws);");
        w.Line($"StepProduct(_attnStepF1.AsSpan(0, count * {m}), {Pm(l, "mlp.fc2.weight", h * m)}, {Pm(l, "mlp.fc2.bias", h)}, _attnStepOut, count, {m}, H);");
        w.Line("TensorPrimitives.Add(_sx.AsSpan(0, count * H), _attnStepOut.AsSpan(0, count * H), _sx);");
        w.Close();
        w.Line();
    }
}
