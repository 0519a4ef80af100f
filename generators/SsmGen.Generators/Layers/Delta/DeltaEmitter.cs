namespace SsmGen.Generators.Layers;

/// <summary>
/// The delta-rule layer, CPU backend: RMSNorm; the q|k|v, β, g (and gate) projections as matrix products over all
/// positions; the convolutions, norms, gates and recurrence in the block's DeltaRule (runtime, allocated once); the
/// per-head RMSNorm gated by SiLU(g); o_proj; residual. The backward mirrors it.
/// </summary>
internal sealed class DeltaEmitter : CpuRendering<DeltaLayerPlan>
{
    protected override bool PlainArrays => true; // the delta rule takes its output buffers as arrays
    private static int Max(ModelPlan plan, System.Func<DeltaLayerPlan, int> size) => plan.Blocks<DeltaLayerPlan>().Max(size);

    protected override string[] FieldNotes =>
    [
        "Delta blocks: norm stats and output, q|k|v projections, β and gate inputs, the output gate's input, o, its",
        "per-head norm (rstd, output) and the gated output; shared: the backward's dL/d of each (_dd…), the step's rows (_deltaStep…).",
    ];

    protected override IEnumerable<(string Name, string Floats)> BlockBuffers(DeltaLayerPlan l)
    {
        yield return ("Raw", $"rows * {l.C}");
        yield return ("B", $"rows * {l.N * l.Heads}");
        if (l.Spec.Gate) yield return ("A", $"rows * {l.Heads}");
        foreach (string f in new[] { "G", "O", "Normed", "Gated" }) yield return (f, $"rows * {l.Hd}");
        yield return ("ORstd", $"rows * {l.Heads}");
    }

    protected override IEnumerable<HostBuffer> SharedBuffers(ModelPlan plan)
    {
        int c = Max(plan, l => l.C), nh = Max(plan, l => l.N * l.Heads), h = Max(plan, l => l.Heads), hd = Max(plan, l => l.Hd);
        foreach (var (f, floats) in new[] { ("_ddRaw", $"rows * {c}"), ("_ddB", $"rows * {nh}"), ("_ddA", $"rows * {h}"), ("_ddG", $"rows * {hd}"), ("_ddO", $"rows * {hd}"), ("_ddNormed", $"rows * {hd}"), ("_ddGated", $"rows * {hd}") })
            yield return new(f, floats, Training: true);
        foreach (var (f, floats) in new[] { ("_deltaStepU", "H"), ("_deltaStepRaw", $"{c}"), ("_deltaStepB", $"{nh}"), ("_deltaStepA", $"{h}"), ("_deltaStepG", $"{hd}"), ("_deltaStepO", $"{hd}"), ("_deltaStepRstd", $"{h}"), ("_deltaStepNormed", $"{hd}"), ("_deltaStepOut", "H") })
            yield return new(f, $"maxBatch * {floats}");
    }

    /// <summary>The block's recurrence (runtime), which owns its intermediates and chunk states.</summary>
    protected override (string Name, string Type, string Arguments)? BlockObject(DeltaLayerPlan l) =>
        ("Delta", "DeltaRule", $"{l.Heads}, {l.D}, {l.N}, {l.Spec.ConvWidth}, {(l.Spec.Gate ? "true" : "false")}, {(l.Spec.NegativeEigenvalues ? "true" : "false")}, maxBatch, maxLength");

    private static string Pm(DeltaLayerPlan l, string name, int len, string buf = "_p") => ModelEmitter.Tensor(l, "mixer." + name, len, buf);

    /// <summary>A gate tensor's span, or an empty one for an ungated block.</summary>
    private static string Gated(DeltaLayerPlan l, string name, int len, string buf = "_p") =>
        l.Spec.Gate ? Pm(l, name, len, buf) : buf == "_p" ? "ReadOnlySpan<float>.Empty" : "Span<float>.Empty";

    public override void EmitLayer(CodeWriter w, ModelPlan plan, DeltaLayerPlan l)
    {
        string i = "_l" + l.Index;
        int h = plan.Spec.DModel, c = l.C, nh = l.N * l.Heads, hd = l.Hd, w0 = l.Spec.ConvWidth;
        string qkv(string buf = "_p") => Pm(l, "q_proj.weight", c * h, buf);       // q_proj, k_proj and v_proj lie back to back
        string conv(string buf = "_p") => Pm(l, "q_conv1d.weight", c * w0, buf);    // and so do their convolutions
        string aRows = l.Spec.Gate ? $"{i}A" : "ReadOnlySpan<float>.Empty";

        w.Line($"/// <summary>Block {l.Index}, (B, L, H) → (B, L, H): RMSNorm, delta rule ({l.Heads} heads of {l.D}, {l.N} Householder steps), residual.</summary>");
        ModelEmitter.OpenForward(w, l, rms: true);
        w.Line($"var u = {i}U.AsSpan(0, rows * H);");
        w.Line($"Gemm.LinearForward(u, {qkv()}, ReadOnlySpan<float>.Empty, {i}Raw, rows, H, {c}, _ws);");
        w.Line($"Gemm.LinearForward(u, {Pm(l, "b_proj.weight", nh * h)}, ReadOnlySpan<float>.Empty, {i}B, rows, H, {nh}, _ws);");
        if (l.Spec.Gate) w.Line($"Gemm.LinearForward(u, {Pm(l, "a_proj.weight", l.Heads * h)}, ReadOnlySpan<float>.Empty, {i}A, rows, H, {l.Heads}, _ws);");
        w.Line($"Gemm.LinearForward(u, {Pm(l, "g_proj.weight", hd * h)}, ReadOnlySpan<float>.Empty, {i}G, rows, H, {hd}, _ws);");
        w.Line($"{i}Delta.Forward({i}Raw, {conv()}, {i}B, {aRows}, {Gated(l, "A_log", l.Heads)}, {Gated(l, "dt_bias", l.Heads)}, {i}O, batch, length);");
        w.Line("// per head: RMSNorm with the shared weight, then the output gate SiLU(g), then o_proj");
        w.Line($"BlockKernels.RmsNormForward({i}O.AsSpan(0, rows * {hd}), {Pm(l, "o_norm.weight", l.D)}, {i}Normed, {i}ORstd, rows * {l.Heads}, {l.D}, _ws);");
        w.Line($"BlockKernels.SiluGateForward({i}Normed.AsSpan(0, rows * {hd}), {i}G, {i}Gated);");
        w.Line($"Gemm.LinearForward({i}Gated.AsSpan(0, rows * {hd}), {Pm(l, "o_proj.weight", h * hd)}, ReadOnlySpan<float>.Empty, _mix, rows, {hd}, H, _ws);");
        w.Line($"TensorPrimitives.Add(x, _mix.AsSpan(0, rows * H), {ModelEmitter.Next(plan, l)}.AsSpan(0, rows * H));");
        w.Close();
        w.Line();

        ModelEmitter.OpenBackward(w, l);
        w.Line($$"""
            var u = {{i}}U.AsSpan(0, rows * H);
            var dGated = _ddGated.AsSpan(0, rows * {{hd}}); dGated.Clear();
            var dO = _ddO.AsSpan(0, rows * {{hd}}); dO.Clear();
            var dRaw = _ddRaw.AsSpan(0, rows * {{c}}); dRaw.Clear();
            """);
        w.Line($"Gemm.LinearBackward({i}Gated, {Pm(l, "o_proj.weight", h * hd)}, dX, dGated, {Pm(l, "o_proj.weight", h * hd, "_g")}, Span<float>.Empty, rows, {hd}, H, _ws);");
        w.Line($"BlockKernels.SiluGateBackward({i}Normed.AsSpan(0, rows * {hd}), {i}G, dGated, _ddNormed, _ddG);");
        w.Line($"BlockKernels.RmsNormBackward({i}O, {Pm(l, "o_norm.weight", l.D)}, {i}ORstd, _ddNormed, dO, {Pm(l, "o_norm.weight", l.D, "_g")}, rows * {l.Heads}, {l.D}, _ws);");
        w.Line($"{i}Delta.Backward({i}Raw, {conv()}, {aRows}, {Gated(l, "A_log", l.Heads)}, {Gated(l, "dt_bias", l.Heads)}, _ddO, dRaw, {conv("_g")}, _ddB, _ddA, {Gated(l, "A_log", l.Heads, "_g")}, {Gated(l, "dt_bias", l.Heads, "_g")});");
        w.Line("var dU = _dA.AsSpan(0, rows * H); dU.Clear();");
        w.Line($"Gemm.LinearBackward(u, {qkv()}, dRaw, dU, {qkv("_g")}, Span<float>.Empty, rows, H, {c}, _ws);");
        w.Line($"Gemm.LinearBackward(u, {Pm(l, "b_proj.weight", nh * h)}, _ddB.AsSpan(0, rows * {nh}), dU, {Pm(l, "b_proj.weight", nh * h, "_g")}, Span<float>.Empty, rows, H, {nh}, _ws);");
        if (l.Spec.Gate) w.Line($"Gemm.LinearBackward(u, {Pm(l, "a_proj.weight", l.Heads * h)}, _ddA.AsSpan(0, rows * {l.Heads}), dU, {Pm(l, "a_proj.weight", l.Heads * h, "_g")}, Span<float>.Empty, rows, H, {l.Heads}, _ws);");
        w.Line($"Gemm.LinearBackward(u, {Pm(l, "g_proj.weight", hd * h)}, _ddG.AsSpan(0, rows * {hd}), dU, {Pm(l, "g_proj.weight", hd * h, "_g")}, Span<float>.Empty, rows, H, {hd}, _ws);");
        ModelEmitter.CloseBackward(w, l, rms: true);

        w.Line($"/// <summary>Block {l.Index}, one token of each stream: the rows of _sx (count, H) are updated in place. State: {plan.State.Of(l, "state").What}.</summary>");
        w.Open($"private void Layer{l.Index}Step(ReadOnlySpan<SsmState> streams)");
        w.Line("int count = streams.Length;");
        w.Line(ModelEmitter.NormForward(true, l.Prefix + "norm", "_sx.AsSpan(0, count * H)", "_deltaStepU", ModelEmitter.StepMean, ModelEmitter.StepRstd, "count"));
        w.Line("var u = _deltaStepU.AsSpan(0, count * H);");
        w.Line($"StepProduct(u, {qkv()}, ReadOnlySpan<float>.Empty, _deltaStepRaw, count, H, {c});");
        w.Line($"StepProduct(u, {Pm(l, "b_proj.weight", nh * h)}, ReadOnlySpan<float>.Empty, _deltaStepB, count, H, {nh});");
        if (l.Spec.Gate) w.Line($"StepProduct(u, {Pm(l, "a_proj.weight", l.Heads * h)}, ReadOnlySpan<float>.Empty, _deltaStepA, count, H, {l.Heads});");
        w.Line($"StepProduct(u, {Pm(l, "g_proj.weight", hd * h)}, ReadOnlySpan<float>.Empty, _deltaStepG, count, H, {hd});");
        string a = l.Spec.Gate ? $"_deltaStepA.AsSpan(s * {l.Heads}, {l.Heads})" : "ReadOnlySpan<float>.Empty";
        w.Line($"for (int s = 0; s < count; s++) {i}Delta.Step({plan.State.Of(l, "state").Slice("streams[s].Values.AsSpan()")}, _deltaStepRaw.AsSpan(s * {c}, {c}), {conv()}, _deltaStepB.AsSpan(s * {nh}, {nh}), {a}, {Gated(l, "A_log", l.Heads)}, {Gated(l, "dt_bias", l.Heads)}, _deltaStepO.AsSpan(s * {hd}, {hd}));");
        w.Line($"BlockKernels.RmsNormForward(_deltaStepO.AsSpan(0, count * {hd}), {Pm(l, "o_norm.weight", l.D)}, _deltaStepNormed, _deltaStepRstd, count * {l.Heads}, {l.D}, _ws);");
        w.Line($"BlockKernels.SiluGateForward(_deltaStepNormed.AsSpan(0, count * {hd}), _deltaStepG, _deltaStepNormed);");
        w.Line($"StepProduct(_deltaStepNormed.AsSpan(0, count * {hd}), {Pm(l, "o_proj.weight", h * hd)}, ReadOnlySpan<float>.Empty, _deltaStepOut, count, {hd}, H);");
        w.Line("TensorPrimitives.Add(_sx.AsSpan(0, count * H), _deltaStepOut.AsSpan(0, count * H), _sx);");
        w.Close();
        w.Line();
    }
}
