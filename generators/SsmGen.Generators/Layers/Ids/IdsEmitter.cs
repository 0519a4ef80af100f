namespace SsmGen.Generators.Layers;

/// <summary>
/// The IDS layer ("The Illusion of State in State-Space Models"), CPU backend: pre-LayerNorm, the transitions
/// A_t = A.weight·u_t + A.bias and the input terms B·u_t as two matrix products over all positions, the product of
/// matrices h_t = A_t h_{t−1} + B u_t (IdsKernels, batch rows in parallel), the readout C h_t + c, residual; the
/// exact backward through the product of matrices.
/// </summary>
internal sealed class IdsEmitter : CpuRendering<IdsLayerPlan>
{
    private static int MaxN(ModelPlan plan) => plan.Blocks<IdsLayerPlan>().Max(l => l.N);

    protected override string[] FieldNotes => ["IDS blocks: norm stats and output, transitions (B·L, N·N), input terms and states (B·L, N); shared scratch."];

    protected override IEnumerable<(string Name, string Floats)> BlockBuffers(IdsLayerPlan l) =>
        [("At", $"rows * {l.N * l.N}"), ("Bu", $"rows * {l.N}"), ("Hs", $"rows * {l.N}")];

    protected override IEnumerable<HostBuffer> SharedBuffers(ModelPlan plan)
    {
        int n = MaxN(plan);
        foreach (var (f, floats) in new[] { ("_idH", $"rows * {n}"), ("_idA", $"rows * {n * n}"), ("_iCarry", $"maxBatch * {n}") })
            yield return new(f, floats, Training: true);
        foreach (var (f, floats) in new[] { ("_idsStepU", "maxBatch * H"), ("_idsStepA", $"maxBatch * {n * n}"), ("_idsStepBu", $"maxBatch * {n}"), ("_idsStepH", $"maxBatch * {n}"), ("_idsStepScratch", $"{n}"), ("_idsStepOut", "maxBatch * H") })
            yield return new(f, floats);
    }

    private static string Pm(IdsLayerPlan l, string name, int len, string buf = "_p") => ModelEmitter.Tensor(l, "mixer." + name, len, buf);

    public override void EmitLayer(CodeWriter w, ModelPlan plan, IdsLayerPlan l)
    {
        string i = "_l" + l.Index;
        int n = l.N, nn = n * n, h = plan.Spec.DModel;
        w.Line($"/// <summary>Block {l.Index}, (B, L, H) → (B, L, H): pre-LayerNorm, IDS (N = {n}), residual.</summary>");
        ModelEmitter.OpenForward(w, l);
        w.Line($"var u = {i}U.AsSpan(0, rows * H);");
        w.Line("// every position's transition A_t (N×N, row-major) and input term B u_t, then the product of matrices");
        w.Line($"Gemm.LinearForward(u, {Pm(l, "A.weight", nn * h)}, {Pm(l, "A.bias", nn)}, {i}At, rows, H, {nn}, _ws);");
        w.Line($"Gemm.LinearForward(u, {Pm(l, "B.weight", n * h)}, ReadOnlySpan<float>.Empty, {i}Bu, rows, H, {n}, _ws);");
        w.Line($"IdsKernels.Forward({i}At, {i}Bu, {i}Hs, batch, length, {n}, _ws);");
        w.Line($"Gemm.LinearForward({i}Hs.AsSpan(0, rows * {n}), {Pm(l, "C.weight", h * n)}, {Pm(l, "C.bias", h)}, _mix, rows, {n}, H, _ws);");
        w.Line($"TensorPrimitives.Add(x, _mix.AsSpan(0, rows * H), {ModelEmitter.Next(plan, l)}.AsSpan(0, rows * H));");
        w.Close();
        w.Line();

        ModelEmitter.OpenBackward(w, l);
        w.Line($"var u = {i}U.AsSpan(0, rows * H);");
        w.Line($"var dH = _idH.AsSpan(0, rows * {n}); dH.Clear();");
        w.Line($"Gemm.LinearBackward({i}Hs.AsSpan(0, rows * {n}), {Pm(l, "C.weight", h * n)}, dX, dH, {Pm(l, "C.weight", h * n, "_g")}, {Pm(l, "C.bias", h, "_g")}, rows, {n}, H, _ws);");
        w.Line($$"""
            // backward through the product: total dL/dh_t (= dL/d(B u_t)) and dL/dA_t = dL/dh_t ⊗ h_{t−1}
            var dA = _idA.AsSpan(0, rows * {{nn}});
            IdsKernels.Backward({{i}}At, {{i}}Hs, dH, dA, _iCarry, batch, length, {{n}}, _ws);
            var dU = _dA.AsSpan(0, rows * H); dU.Clear();
            """);
        w.Line($"Gemm.LinearBackward(u, {Pm(l, "A.weight", nn * h)}, dA, dU, {Pm(l, "A.weight", nn * h, "_g")}, {Pm(l, "A.bias", nn, "_g")}, rows, H, {nn}, _ws);");
        w.Line($"Gemm.LinearBackward(u, {Pm(l, "B.weight", n * h)}, dH, dU, {Pm(l, "B.weight", n * h, "_g")}, Span<float>.Empty, rows, H, {n}, _ws);");
        ModelEmitter.CloseBackward(w, l);

        w.Line($"/// <summary>Block {l.Index}, one token of each stream: the rows of _sx (count, H) are updated in place. State: h ({n}).</summary>");
        w.Open($"private void Layer{l.Index}Step(ReadOnlySpan<SsmState> streams)");
        w.Line("int count = streams.Length;");
        w.Line(ModelEmitter.NormForward(false, l.Prefix + "norm", "_sx.AsSpan(0, count * H)", "_idsStepU", ModelEmitter.StepMean, ModelEmitter.StepRstd, "count"));
        w.Line($"StepProduct(_idsStepU.AsSpan(0, count * H), {Pm(l, "A.weight", nn * h)}, {Pm(l, "A.bias", nn)}, _idsStepA, count, H, {nn});");
        w.Line($"StepProduct(_idsStepU.AsSpan(0, count * H), {Pm(l, "B.weight", n * h)}, ReadOnlySpan<float>.Empty, _idsStepBu, count, H, {n});");
        w.Open("for (int s = 0; s < count; s++)");
        w.Line($"var h = {plan.State.Of(l, "h").Slice("streams[s].Values.AsSpan()")};");
        w.Line($"IdsKernels.Step(_idsStepA.AsSpan(s * {nn}, {nn}), _idsStepBu.AsSpan(s * {n}, {n}), h, _idsStepScratch, {n});");
        w.Line($"h.CopyTo(_idsStepH.AsSpan(s * {n}, {n}));");
        w.Close();
        w.Line($"StepProduct(_idsStepH.AsSpan(0, count * {n}), {Pm(l, "C.weight", h * n)}, {Pm(l, "C.bias", h)}, _idsStepOut, count, {n}, H);");
        w.Line("TensorPrimitives.Add(_sx.AsSpan(0, count * H), _idsStepOut.AsSpan(0, count * H), _sx);");
        w.Close();
        w.Line();
    }
}
