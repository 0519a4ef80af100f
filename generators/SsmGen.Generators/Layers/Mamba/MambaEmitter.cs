namespace SsmGen.Generators.Layers;

/// <summary>
/// The Mamba layer, CPU backend: the block's buffers and passes (pre-norm, in_proj, causal depthwise conv,
/// SiLU, x_proj, dt_proj + softplus, selective scan, SiLU gate, out_proj, residual) and, per state size N, the
/// scan kernels: 16 channels per call with the N state vectors held in registers for the whole sequence
/// (forward), chunk-wise recomputation of the states (backward), and the one-token step.
/// </summary>
internal sealed class MambaEmitter : CpuRendering<MambaLayerPlan>
{
    protected override bool PlainArrays => true; // the selective scan keeps its buffers as arrays from Forward to Backward
    private static int MaxE(ModelPlan plan) => plan.Blocks<MambaLayerPlan>().Max(l => l.E);
    private static int MaxDbc(ModelPlan plan) => plan.Blocks<MambaLayerPlan>().Max(l => l.Dbc);
    private static int MaxR(ModelPlan plan) => plan.Blocks<MambaLayerPlan>().Max(l => l.R);
    private static int MaxConv(ModelPlan plan) => plan.Blocks<MambaLayerPlan>().Max(l => l.E * l.Spec.ConvWidth);

    protected override string[] FieldNotes =>
    [
        "Mamba blocks: norm stats and output, x and z halves of in_proj, conv out, SiLU out, x_proj rows (Δ, B, C),",
        "Δ input, Δ, scan out, gate out, conv weight as (W, E), and the scan with its chunk states; shared: the",
        "backward's dL/d of each of them (_md…), the step's rows (_mambaStep…).",
    ];

    protected override IEnumerable<(string Name, string Floats)> BlockBuffers(MambaLayerPlan l)
    {
        string e = $"rows * {l.E}";
        return [("Xi", e), ("Z", e), ("C", e), ("Act", e), ("Dbc", $"rows * {l.Dbc}"), ("DtIn", $"rows * {l.R}"), ("Delta", e), ("Ys", e), ("G", e), ("ConvT", $"{l.E * l.Spec.ConvWidth}")];
    }

    protected override IEnumerable<HostBuffer> SharedBuffers(ModelPlan plan)
    {
        string me = $"rows * {MaxE(plan)}";
        foreach (var (f, floats) in new[] { ("_mdG", me), ("_mdYs", me), ("_mdZ", me), ("_mdU", me), ("_mdDelta", me), ("_mdDbc", $"rows * {MaxDbc(plan)}"), ("_mdDtIn", $"rows * {MaxR(plan)}"), ("_mdXi", me), ("_mdConvT", $"{MaxConv(plan)}") })
            yield return new(f, floats, Training: true);
        string se = $"{MaxE(plan)}";
        foreach (var (f, floats) in new[] { ("_mambaStepU", "H"), ("_mambaStepX", se), ("_mambaStepZ", se), ("_mambaStepConv", se), ("_mambaStepAct", se), ("_mambaStepDtIn", $"{MaxR(plan)}"), ("_mambaStepBc", $"{2 * plan.Blocks<MambaLayerPlan>().Max(l => l.N)}"), ("_mambaStepDt", se), ("_mambaStepY", se), ("_mambaStepGated", se), ("_mambaStepOut", "H") })
            yield return new(f, $"maxBatch * {floats}");
        yield return new("_mambaStepA", $"{plan.Blocks<MambaLayerPlan>().Max(l => l.E * l.N)}"); // A·log₂e of the block stepping, once per step for all streams
    }

    /// <summary>Where block <paramref name="l"/>'s rates start in the cache of every block's rates.</summary>
    private static int RatesAt(ModelPlan plan, MambaLayerPlan l) => plan.Blocks<MambaLayerPlan>().TakeWhile(b => b != l).Sum(b => b.E * b.N);

    public override void EmitStepHelpers(CodeWriter w, ModelPlan plan)
    {
        int all = plan.Blocks<MambaLayerPlan>().Sum(b => b.E * b.N);
        w.Line($$"""
            private float[]? _stepLog2Rates; // every Mamba block's A·log₂e for the compact copy _stepRatesOf, made on its first step
            private CompactWeights? _stepRatesOf;

            /// <summary>
            /// A·log₂e (A = −exp(A_log)) of one block, for every stream of the step: computed each step from the live
            /// parameters, or once per compact copy (an inference copy, remade whenever UseStepWeights or a checkpoint load
            /// changes the weights), which saves an exponential per channel and state on every token.
            /// </summary>
            private ReadOnlySpan<float> StepLog2Rates(ReadOnlySpan<float> aLog, int at)
            {
                if (_stepWeights is null)
                {
                    MambaKernels.StepLog2Rates(aLog, _mambaStepA);
                    return _mambaStepA.AsSpan(0, aLog.Length);
                }
                if (_stepRatesOf != _stepWeights)
                {
                    _stepLog2Rates ??= new float[{{all}}];
            """);
        foreach (var b in plan.Blocks<MambaLayerPlan>())
            w.Line($"        MambaKernels.StepLog2Rates({Pm(b, "A_log", b.E * b.N)}, _stepLog2Rates.AsSpan({RatesAt(plan, b)}, {b.E * b.N}));");
        w.Line("""
                    _stepRatesOf = _stepWeights;
                }
                return _stepLog2Rates.AsSpan(at, aLog.Length);
            }

            """);
    }

    /// <summary>The block's scan (its class generated per N below), which owns the chunk states.</summary>
    protected override (string Name, string Type, string Arguments)? BlockObject(MambaLayerPlan l) =>
        ("Scan", $"{l.Variant}_Scan", $"{l.E}, {l.Dbc}, {l.R}, maxBatch, maxLength");

    protected override (string Type, string Arguments)? StatePassing(MambaLayerPlan l) => ("MambaStatePassing", $"{l.Index}, {l.E}, {l.N}, {l.Spec.ConvWidth}");
    public override bool PassesState => true;
    public override int ShortestPiece(MambaLayerPlan l) => System.Math.Max(1, l.Spec.ConvWidth - 1);

    public override void EmitLayer(CodeWriter w, ModelPlan plan, MambaLayerPlan l)
    {
        EmitForward(w, plan, l);
        EmitBackward(w, plan, l);
        EmitStep(w, plan, l);
    }

    private static string Pm(MambaLayerPlan l, string name, int len, string buf = "_p", int at = 0) => ModelEmitter.Tensor(l, "mixer." + name, len, buf, at);

    private void EmitForward(CodeWriter w, ModelPlan plan, MambaLayerPlan l)
    {
        string i = "_l" + l.Index;
        int e = l.E, eh = l.E * plan.Spec.DModel;
        w.Line($"/// <summary>Block {l.Index}, (B, L, H) → (B, L, H): pre-{(l.Rms ? "RMSNorm" : "LayerNorm")}, Mamba mixer (N = {l.N}, E = {e}, conv {l.Spec.ConvWidth}, Δ rank {l.R}), residual.</summary>");
        ModelEmitter.OpenForward(w, l, l.Rms);
        w.Line("// in_proj: (B, L, H) → x (B, L, E) and z (B, L, E), the two row blocks of the weight");
        w.Line($"Gemm.LinearForward({i}U.AsSpan(0, rows * H), {Pm(l, "in_proj.weight", eh)}, ReadOnlySpan<float>.Empty, {i}Xi, rows, H, {e}, _ws);");
        w.Line($"Gemm.LinearForward({i}U.AsSpan(0, rows * H), {Pm(l, "in_proj.weight", eh, at: eh)}, ReadOnlySpan<float>.Empty, {i}Z, rows, H, {e}, _ws);");
        w.Line("// causal depthwise conv along time, then SiLU");
        w.Line($"MambaKernels.ConvForward({i}Xi, {Pm(l, "conv1d.weight", e * l.Spec.ConvWidth)}, {Pm(l, "conv1d.bias", e)}, {i}C, {i}ConvT, batch, length, {e}, {l.Spec.ConvWidth}, _ws);");
        w.Line($"if (_seq is not null) {Pass(l)}.ConvForward(_seq, {i}Xi, {Pm(l, "conv1d.weight", e * l.Spec.ConvWidth)}, {i}C, batch, length); // taps into the piece before");
        w.Line($"BlockKernels.SiluForward({i}C.AsSpan(0, rows * {e}), {i}Act);");
        w.Line($"// x_proj: (B, L, E) → (Δ in R | B in N | C in N); Δ = softplus(dt_proj(Δ in))");
        w.Line($"Gemm.LinearForward({i}Act.AsSpan(0, rows * {e}), {Pm(l, "x_proj.weight", l.Dbc * e)}, ReadOnlySpan<float>.Empty, {i}Dbc, rows, {e}, {l.Dbc}, _ws);");
        w.Line($"for (int r = 0; r < rows; r++) {i}Dbc.AsSpan(r * {l.Dbc}, {l.R}).CopyTo({i}DtIn.AsSpan(r * {l.R}, {l.R}));");
        w.Line($"Gemm.LinearForward({i}DtIn.AsSpan(0, rows * {l.R}), {Pm(l, "dt_proj.weight", e * l.R)}, {Pm(l, "dt_proj.bias", e)}, {i}Delta, rows, {l.R}, {e}, _ws);");
        w.Line($"MambaKernels.Softplus({i}Delta.AsSpan(0, rows * {e}));");
        w.Line("// selective scan, then the gate y·SiLU(z) and out_proj back to H");
        w.Line($"if (_seq is not null) {Pass(l)}.ScanForward(_seq, {i}Scan, {i}Act, {i}Delta, {i}Dbc, {Pm(l, "A_log", e * l.N)}, {Pm(l, "D", e)}, {i}Ys, batch, length); // from the state entering this rank's piece");
        w.Line($"else {i}Scan.Forward({i}Act, {i}Delta, {i}Dbc, {Pm(l, "A_log", e * l.N)}, {Pm(l, "D", e)}, {i}Ys, batch, length);");
        w.Line($"BlockKernels.SiluGateForward({i}Ys.AsSpan(0, rows * {e}), {i}Z, {i}G);");
        w.Line($"Gemm.LinearForward({i}G.AsSpan(0, rows * {e}), {Pm(l, "out_proj.weight", eh)}, ReadOnlySpan<float>.Empty, _mix, rows, {e}, H, _ws);");
        w.Line($"TensorPrimitives.Add(x, _mix.AsSpan(0, rows * H), {ModelEmitter.Next(plan, l)}.AsSpan(0, rows * H));");
        w.Close();
        w.Line();
    }

    private void EmitBackward(CodeWriter w, ModelPlan plan, MambaLayerPlan l)
    {
        string i = "_l" + l.Index;
        int e = l.E, eh = l.E * plan.Spec.DModel;
        ModelEmitter.OpenBackward(w, l);
        w.Line($"var dG = _mdG.AsSpan(0, rows * {e}); dG.Clear();");
        w.Line($"Gemm.LinearBackward({i}G, {Pm(l, "out_proj.weight", eh)}, dX, dG, {Pm(l, "out_proj.weight", eh, "_g")}, Span<float>.Empty, rows, {e}, H, _ws);");
        w.Line($$"""
            BlockKernels.SiluGateBackward({{i}}Ys.AsSpan(0, rows * {{e}}), {{i}}Z, dG, _mdYs, _mdZ);
            // scan backward: dL/du (into _mdU), dL/dΔ, the B and C columns of dL/d(x_proj rows), A_log and D
            var dAct = _mdU.AsSpan(0, rows * {{e}}); dAct.Clear();
            var dDbc = _mdDbc.AsSpan(0, rows * {{l.Dbc}}); dDbc.Clear();
            """);
        w.Line($"if (_seq is not null) {Pass(l)}.ScanBackward(_seq, {i}Scan, _mdYs, _mdU, _mdDelta, _mdDbc, {Pm(l, "A_log", e * l.N, "_g")}, {Pm(l, "D", e, "_g")}, batch); // with the adjoint the later pieces send");
        w.Line($"else {i}Scan.Backward(_mdYs, _mdU, _mdDelta, _mdDbc, {Pm(l, "A_log", e * l.N, "_g")}, {Pm(l, "D", e, "_g")});");
        w.Line($$"""
            var dDelta = _mdDelta.AsSpan(0, rows * {{e}});
            MambaKernels.SoftplusBackward({{i}}Delta.AsSpan(0, rows * {{e}}), dDelta, dDelta);
            var dDtIn = _mdDtIn.AsSpan(0, rows * {{l.R}}); dDtIn.Clear();
            """);
        w.Line($"Gemm.LinearBackward({i}DtIn, {Pm(l, "dt_proj.weight", e * l.R)}, dDelta, dDtIn, {Pm(l, "dt_proj.weight", e * l.R, "_g")}, {Pm(l, "dt_proj.bias", e, "_g")}, rows, {l.R}, {e}, _ws);");
        w.Line($"for (int r = 0; r < rows; r++) dDtIn.Slice(r * {l.R}, {l.R}).CopyTo(dDbc.Slice(r * {l.Dbc}, {l.R}));");
        w.Line($"Gemm.LinearBackward({i}Act, {Pm(l, "x_proj.weight", l.Dbc * e)}, dDbc, dAct, {Pm(l, "x_proj.weight", l.Dbc * e, "_g")}, Span<float>.Empty, rows, {e}, {l.Dbc}, _ws);");
        w.Line($"BlockKernels.SiluBackward({i}C.AsSpan(0, rows * {e}), dAct, dAct);");
        w.Line($"MambaKernels.ConvBackward({i}Xi, {i}ConvT, dAct, _mdXi, {Pm(l, "conv1d.weight", e * l.Spec.ConvWidth, "_g")}, {Pm(l, "conv1d.bias", e, "_g")}, _mdConvT, batch, length, {e}, {l.Spec.ConvWidth});");
        w.Line($"if (_seq is not null) {Pass(l)}.ConvBackward(_seq, dAct, {Pm(l, "conv1d.weight", e * l.Spec.ConvWidth)}, {Pm(l, "conv1d.weight", e * l.Spec.ConvWidth, "_g")}, _mdXi, batch, length); // the halo's taps");
        w.Line("// in_proj backward into dL/d(norm output), then the norm; the residual already carries dX");
        w.Line("var dU = _dA.AsSpan(0, rows * H); dU.Clear();");
        w.Line($"Gemm.LinearBackward({i}U, {Pm(l, "in_proj.weight", eh)}, _mdXi.AsSpan(0, rows * {e}), dU, {Pm(l, "in_proj.weight", eh, "_g")}, Span<float>.Empty, rows, H, {e}, _ws);");
        w.Line($"Gemm.LinearBackward({i}U, {Pm(l, "in_proj.weight", eh, at: eh)}, _mdZ.AsSpan(0, rows * {e}), dU, {Pm(l, "in_proj.weight", eh, "_g", at: eh)}, Span<float>.Empty, rows, H, {e}, _ws);");
        ModelEmitter.CloseBackward(w, l, l.Rms);
    }

    private static void EmitStep(CodeWriter w, ModelPlan plan, MambaLayerPlan l)
    {
        int e = l.E, eh = l.E * plan.Spec.DModel, cw = l.Spec.ConvWidth, n2 = 2 * l.N;
        w.Line($"/// <summary>Block {l.Index}, one token of each stream: the rows of _sx (count, H) are updated in place. State: {plan.State.Of(l, "window").What}, and {plan.State.Of(l, "h").What}.</summary>");
        w.Open($"private void Layer{l.Index}Step(ReadOnlySpan<SsmState> streams)");
        w.Line("int count = streams.Length;");
        w.Line(ModelEmitter.NormForward(l.Rms, l.Prefix + "norm", "_sx.AsSpan(0, count * H)", "_mambaStepU", ModelEmitter.StepMean, ModelEmitter.StepRstd, "count"));
        w.Line($"StepProduct(_mambaStepU.AsSpan(0, count * H), {Pm(l, "in_proj.weight", eh)}, ReadOnlySpan<float>.Empty, _mambaStepX, count, H, {e});");
        w.Line($"StepProduct(_mambaStepU.AsSpan(0, count * H), {Pm(l, "in_proj.weight", eh, at: eh)}, ReadOnlySpan<float>.Empty, _mambaStepZ, count, H, {e});");
        w.Line($"for (int s = 0; s < count; s++) MambaKernels.ConvStep({plan.State.Of(l, "window").Slice("streams[s].Values.AsSpan()")}, {Pm(l, "conv1d.weight", e * cw)}, {Pm(l, "conv1d.bias", e)}, _mambaStepX.AsSpan(s * {e}, {e}), _mambaStepConv.AsSpan(s * {e}, {e}), {e}, {cw});");
        w.Line($"BlockKernels.SiluForward(_mambaStepConv.AsSpan(0, count * {e}), _mambaStepAct);");
        w.Line("// x_proj in its two row blocks, so that Δ's input and (B, C) come out as contiguous rows");
        w.Line($"StepProduct(_mambaStepAct.AsSpan(0, count * {e}), {Pm(l, "x_proj.weight", l.R * e)}, ReadOnlySpan<float>.Empty, _mambaStepDtIn, count, {e}, {l.R});");
        w.Line($"StepProduct(_mambaStepAct.AsSpan(0, count * {e}), {Pm(l, "x_proj.weight", n2 * e, at: l.R * e)}, ReadOnlySpan<float>.Empty, _mambaStepBc, count, {e}, {n2});");
        w.Line($"StepProduct(_mambaStepDtIn.AsSpan(0, count * {l.R}), {Pm(l, "dt_proj.weight", e * l.R)}, {Pm(l, "dt_proj.bias", e)}, _mambaStepDt, count, {l.R}, {e});");
        w.Line($"MambaKernels.Softplus(_mambaStepDt.AsSpan(0, count * {e}));");
        w.Line($"var rates = StepLog2Rates({Pm(l, "A_log", e * l.N)}, {RatesAt(plan, l)});");
        w.Line($"for (int s = 0; s < count; s++) {l.Variant}_Step(rates, {Pm(l, "D", e)}, {plan.State.Of(l, "h").Slice("streams[s].Values.AsSpan()")}, _mambaStepAct.AsSpan(s * {e}, {e}), _mambaStepDt.AsSpan(s * {e}, {e}), _mambaStepBc.AsSpan(s * {n2}, {n2}), _mambaStepY.AsSpan(s * {e}, {e}), {e});");
        w.Line($"BlockKernels.SiluGateForward(_mambaStepY.AsSpan(0, count * {e}), _mambaStepZ, _mambaStepGated);");
        w.Line($"StepProduct(_mambaStepGated.AsSpan(0, count * {e}), {Pm(l, "out_proj.weight", eh)}, ReadOnlySpan<float>.Empty, _mambaStepOut, count, {e}, H);");
        w.Line("TensorPrimitives.Add(_sx.AsSpan(0, count * H), _mambaStepOut.AsSpan(0, count * H), _sx);");
        w.Close();
        w.Line();
    }

    /// <summary>The scan class and step kernel of every state size the plan's Mamba blocks use.</summary>
    public override void EmitKernels(CodeWriter w, ModelPlan plan)
    {
        foreach (var l in plan.Blocks<MambaLayerPlan>().GroupBy(l => l.Variant).Select(g => g.First()))
        {
            EmitScanClass(w, l);
            EmitStepKernel(w, l);
        }
    }

    /// <summary>The transition from a decay expression: the decay itself, or 2·decay − 1 held inside (−1, 1).</summary>
    private static string Transition(MambaLayerPlan l, string decay) => l.Negative ? $"Stability.NegativeTransition({decay})" : decay;

    private static void EachN(CodeWriter w, int n, System.Func<int, string> line)
    {
        for (int k = 0; k < n; k++) w.Line(line(k));
    }

    private static void EmitScanClass(CodeWriter w, MambaLayerPlan l)
    {
        int n = l.N;
        string cls = $"{l.Variant}_Scan";
        w.Line($"/// <summary>The selective scan for N = {n}{(l.Negative ? " with transitions 2·exp(Δ·A) − 1" : "")}: 16 channels per call, h as {n} Vector512 registers, B_t and C_t broadcast.");
        w.Line("/// Internal so that benchmarks in the declaring assembly can time it alone.</summary>");
        w.Open($"internal sealed class {cls} : SelectiveScan");
        w.Line($$"""
            public {{cls}}(int e, int dbcWidth, int bOffset, int maxBatch, int maxLength) : base({{n}}, e, dbcWidth, bOffset, maxBatch, maxLength{{(l.Negative ? ", MambaEigenvalues.PositiveAndNegative" : "")}}) { }

            [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
            private static Vector512<float> V(float[] a, int i) => Load(a, i);
            """);
        w.Line();
        // forward
        w.Open("protected override void ForwardGroup(int b, int e0)");
        w.Line("// h_t = exp(Δ_t·A) ⊙ h_{t−1} + (Δ_t·u_t)·B_t[n];  y_t = Σ_n C_t[n]·h_t + D·u_t; 16 channels per lane set");
        EachN(w, n, k => $"var h{k} = StartState(b, {k}, e0);");
        w.Line("var d = V(Dv, e0);");
        w.Open("for (int t = 0; t < Length; t++)");
        w.Line("int row = b * Length + t, x = row * DbcWidth + BOffset, o = row * E + e0;");
        w.Line("var dt = V(Delta, o); var u = V(U, o); var du = dt * u; var y0 = d * u; var y1 = Vector512<float>.Zero;");
        w.Line("ref float bc = ref Dbc[x + " + (2 * n - 1) + "]; // bounds checked once per step: B_t at bc − " + (2 * n - 1) + ", C_t after it");
        w.Line("bc = ref System.Runtime.CompilerServices.Unsafe.Subtract(ref bc, " + (2 * n - 1) + ");");
        // two partial sums for y, so consecutive n do not wait on each other's FMA
        EachN(w, n, k => $"h{k} = Vector512.FusedMultiplyAdd({Transition(l, $"FastMath.Exp2Decay(dt * V(AT2, e0 * {n} + {16 * k}))")}, h{k}, du * Vector512.Create(System.Runtime.CompilerServices.Unsafe.Add(ref bc, {k}))); y{k % 2} = Vector512.FusedMultiplyAdd(Vector512.Create(System.Runtime.CompilerServices.Unsafe.Add(ref bc, {n + k})), h{k}, y{k % 2});");
        w.Line("Store(y0 + y1, Ys, o);");
        w.Open("if ((t + 1) % ChunkLength == 0 && t + 1 < Length)");
        w.Line("int k0 = StateIndex(b, t / ChunkLength, 0, e0);");
        EachN(w, n, k => $"Store(h{k}, States, k0 + {k} * E);");
        w.Close();
        w.Close();
        EachN(w, n, k => $"Store(h{k}, EndStates, EndIndex(b, {k}, e0));");
        w.Close();
        w.Line();
        // backward
        w.Open("protected override void BackwardChunk(int b, int e0, int k, Span<Vector512<float>> scratch)");
        w.Line($$"""
            // Recompute the chunk's states and decays from its saved start, then run time backwards with g = dL/dh_t
            // carried through the decay. B and C gradients are sums over channels: this group's terms are added lane
            // by lane into the chunk's sums, which the caller reduces over the lanes once all groups have run.
            // The scratch (SelectiveScan.BackwardChunk's layout) is indexed unchecked: its length is checked once here,
            // and every array index stays inside the rows the public entry points checked.
            if (scratch.Length < BackwardScratch) throw new ArgumentException("The backward's scratch is too short.", nameof(scratch));
            ref var hs = ref MemoryMarshal.GetReference(scratch);          // hs[0..N): the chunk's start; hs[(t − t0 + 1)·N ..]: the state after step t
            ref var ds = ref Unsafe.Add(ref hs, DecaysAt);                 // decays of step t at ds[(t − t0)·N ..]
            ref var sums = ref Unsafe.Add(ref hs, SumsAt);                 // step t's dB terms at sums[(t − t0)·2N ..], its dC terms after them
            ref var carried = ref Unsafe.Add(ref hs, CarriedAt(e0));       // this group's dL/dh, then dA, then dD
            ref var dA = ref Unsafe.Add(ref carried, {{n}});
            float[] delta = Delta, input = U, dys = DYs, dbc = Dbc, at = AT, at2 = AT2;
            int t0 = k * ChunkLength, t1 = Math.Min(Length, t0 + ChunkLength);
            bool last = t1 == Length;
            var d = V(Dv, e0); var dD = last ? Vector512<float>.Zero : Unsafe.Add(ref carried, {{2 * n}});
            """);
        EachN(w, n, k => $"var h{k} = k == 0 ? StartState(b, {k}, e0) : V(States, StateIndex(b, k - 1, {k}, e0)); Unsafe.Add(ref hs, {k}) = h{k};");
        w.Open("for (int t = t0; t < t1; t++)");
        w.Line($$"""
            int row = b * Length + t, o = row * E + e0;
            ref var next = ref Unsafe.Add(ref hs, (t - t0 + 1) * {{n}}); ref var decays = ref Unsafe.Add(ref ds, (t - t0) * {{n}});
            Prefetch(delta, o + Lanes); Prefetch(input, o + Lanes); // the next group's lines of this row
            var dt = V(delta, o); var du = dt * V(input, o);
            ref float bc = ref dbc[row * DbcWidth + BOffset + {{n - 1}}]; // bounds checked once per step: B_t at bc − {{n - 1}}
            bc = ref Unsafe.Subtract(ref bc, {{n - 1}});
            """);
        EachN(w, n, k => $"{{ var decay = FastMath.Exp2Decay(dt * V(at2, e0 * {n} + {16 * k})); Unsafe.Add(ref decays, {k}) = decay; h{k} = Vector512.FusedMultiplyAdd({Transition(l, "decay")}, h{k}, du * Vector512.Create(Unsafe.Add(ref bc, {k}))); Unsafe.Add(ref next, {k}) = h{k}; }}");
        w.Close();
        w.Line("// dL/dh enters from the chunk after (loaded only now, so that the recomputation has the registers)");
        EachN(w, n, k => $"var g{k} = last ? EndAdjoint(b, {k}, e0) : Unsafe.Add(ref carried, {k}); if (last) Unsafe.Add(ref dA, {k}) = Vector512<float>.Zero;");
        w.Open("for (int t = t1 - 1; t >= t0; t--)");
        w.Line($$"""
            int row = b * Length + t, o = row * E + e0;
            ref var prev = ref Unsafe.Add(ref hs, (t - t0) * {{n}}); ref var decays = ref Unsafe.Add(ref ds, (t - t0) * {{n}});
            ref var dB = ref Unsafe.Add(ref sums, (t - t0) * {{2 * n}}); ref var dC = ref Unsafe.Add(ref dB, {{n}});
            Prefetch(dys, o + Lanes); Prefetch(DU, o + Lanes); Prefetch(DDelta, o + Lanes);
            var dt = V(delta, o); var u = V(input, o); var dy = V(dys, o); var dtu = dt * u;
            Vector512<float> dDt0 = default, dDt1 = default, gb0 = default, gb1 = default; // gb = Σ_n g·B_t[n], shared by dΔ and du; two partial sums each
            dD += dy * u;
            ref float bc = ref dbc[row * DbcWidth + BOffset + {{2 * n - 1}}]; // B_t at bc − {{2 * n - 1}}, C_t after it
            bc = ref Unsafe.Subtract(ref bc, {{2 * n - 1}});
            """);
        for (int k = 0; k < n; k++)
        {
            string slope = l.Negative ? "(decay + decay)" : "decay";
            w.Line($$"""
                { var decay = Unsafe.Add(ref decays, {{k}}); g{{k}} = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref bc, {{n + k}})), dy, g{{k}});
                  Unsafe.Add(ref dC, {{k}}) = Vector512.FusedMultiplyAdd(dy, Unsafe.Add(ref prev, {{n + k}}), Unsafe.Add(ref dC, {{k}})); Unsafe.Add(ref dB, {{k}}) = Vector512.FusedMultiplyAdd(g{{k}}, dtu, Unsafe.Add(ref dB, {{k}}));
                  var dDecay = g{{k}} * Unsafe.Add(ref prev, {{k}}) * {{slope}}; Unsafe.Add(ref dA, {{k}}) = Vector512.FusedMultiplyAdd(dDecay, dt, Unsafe.Add(ref dA, {{k}}));
                  dDt{{k % 2}} = Vector512.FusedMultiplyAdd(dDecay, V(at, e0 * {{n}} + {{16 * k}}), dDt{{k % 2}}); gb{{k % 2}} = Vector512.FusedMultiplyAdd(g{{k}}, Vector512.Create(Unsafe.Add(ref bc, {{k}})), gb{{k % 2}});
                  g{{k}} *= {{Transition(l, "decay")}}; }
                """);
        }
        w.Line("var dDt = dDt0 + dDt1; var gb = gb0 + gb1;");
        w.Line("Store(dDt + gb * u, DDelta, o);");
        w.Line("Store(V(DU, o) + d * dy + gb * dt, DU, o);");
        w.Close();
        EachN(w, n, k => $"Unsafe.Add(ref carried, {k}) = g{k};");
        w.Line($$"""
            Unsafe.Add(ref carried, {{2 * n}}) = dD;
            if (k > 0) return;
            for (int n = 0; n < {{n}}; n++) Unsafe.Add(ref dA, n).CopyTo(GradAPart(b, n, e0));
            dD.CopyTo(GradDPart(b, e0));
            """);
        w.Close();
        w.Close();
        w.Line();
    }

    private static void EmitStepKernel(CodeWriter w, MambaLayerPlan l)
    {
        int n = l.N;
        w.Line($"/// <summary>One token of the N = {n} scan for E channels: h (E, {n}) updated in place; a holds A·log₂e (E, {n}) so that a decay is 2^(Δ·a), bc B_t then C_t.</summary>");
        w.Open($"private static void {l.Variant}_Step(ReadOnlySpan<float> a, ReadOnlySpan<float> d, Span<float> h, ReadOnlySpan<float> u, ReadOnlySpan<float> delta, ReadOnlySpan<float> bc, Span<float> y, int e)");
        w.Line("int ch = 0;");
        if (n % 16 == 0)
        {
            // Sixteen channels at a time: each channel's C·h is a vector, and FastMath.SumEach16 sums the sixteen
            // together (one shuffle tree instead of sixteen horizontal sums).
            w.Open("if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported && e >= 16)");
            w.Line($$"""
                if (a.Length < e * {{n}} || h.Length < e * {{n}} || d.Length < e || u.Length < e || delta.Length < e || y.Length < e || bc.Length < {{2 * n}})
                    throw new ArgumentException("A Mamba step's buffers are shorter than its channels need.");
                Span<Vector512<float>> products = stackalloc Vector512<float>[16];
                """);
            for (int j = 0; j < n / 16; j++)
                w.Line($"var b{j} = Vector512.Create(bc.Slice({16 * j}, 16)); var c{j} = Vector512.Create(bc.Slice({n + 16 * j}, 16));");
            w.Open("for (; ch + 16 <= e; ch += 16)");
            w.Open("for (int k = 0; k < 16; k++)");
            w.Line($"int at = (ch + k) * {n};");
            w.Line("float dt = delta[ch + k]; var vdt = Vector512.Create(dt); var vdu = Vector512.Create(dt * u[ch + k]);");
            for (int j = 0; j < n / 16; j++)
                w.Line($$"""
                    var h{{j}} = {{Transition(l, $"FastMath.Exp2Decay(Vector512.LoadUnsafe(ref Unsafe.Add(ref MemoryMarshal.GetReference(a), at + {16 * j})) * vdt)")}} * Vector512.LoadUnsafe(ref Unsafe.Add(ref MemoryMarshal.GetReference(h), at + {{16 * j}})) + vdu * b{{j}};
                    h{{j}}.StoreUnsafe(ref Unsafe.Add(ref MemoryMarshal.GetReference(h), at + {{16 * j}}));
                    """);
            w.Line($"products[k] = {string.Join(" + ", Enumerable.Range(0, n / 16).Select(j => $"h{j} * c{j}"))};");
            w.Close();
            w.Line("(Vector512.Create(d.Slice(ch, 16)) * Vector512.Create(u.Slice(ch, 16)) + FastMath.SumEach16(products)).CopyTo(y.Slice(ch, 16));");
            w.Close();
            w.Close();
        }
        w.Open("for (; ch < e; ch++)");
        w.Line("float dt = delta[ch], du = dt * u[ch], acc = d[ch] * u[ch];");
        w.Line($"var hr = h.Slice(ch * {n}, {n}); var ar = a.Slice(ch * {n}, {n});");
        if (n % 16 == 0)
        {
            w.Open("if (Vector512.IsHardwareAccelerated)");
            w.Line("var vdt = Vector512.Create(dt); var vdu = Vector512.Create(du);");
            for (int j = 0; j < n / 16; j++)
            {
                w.Line($$"""
                    var h{{j}} = {{Transition(l, $"FastMath.Exp2Decay(Vector512.Create(ar.Slice({16 * j}, 16)) * vdt)")}} * Vector512.Create((ReadOnlySpan<float>)hr.Slice({{16 * j}}, 16)) + vdu * Vector512.Create(bc.Slice({{16 * j}}, 16));
                    h{{j}}.CopyTo(hr.Slice({{16 * j}}, 16));
                    acc += Vector512.Sum(h{{j}} * Vector512.Create(bc.Slice({{n + 16 * j}}, 16)));
                    """);
            }
            w.Line("y[ch] = acc;");
            w.Line("continue;");
            w.Close();
        }
        EachN(w, n, k => $"hr[{k}] = {Transition(l, $"float.Exp2(Stability.Log2Decay(ar[{k}] * dt))")} * hr[{k}] + du * bc[{k}]; acc += bc[{n + k}] * hr[{k}];");
        w.Line("y[ch] = acc;");
        w.Close();
        w.Close();
        w.Line();
    }
}
