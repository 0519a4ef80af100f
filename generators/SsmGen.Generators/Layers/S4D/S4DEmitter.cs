using System;

namespace SsmGen.Generators.Layers;

/// <summary>
/// The S4D layer, CPU backend: the block's buffers and passes (pre-LayerNorm, S4D, GELU, Linear H→2H, GLU,
/// dropout, residual), and the specialized kernels one S4D variant needs, with the number of complex
/// modes M = N/2 a constant and the mode loop held in fixed-width vector registers (Vector512 or
/// Vector256 where M divides, a scalar loop otherwise). Mode tables are laid out
/// [Re Ā | Im Ā | Re W | Im W | Re Ā^32 | Im Ā^32], each (H, M), W = C·B̄.
/// </summary>
internal sealed class S4DEmitter : CpuRendering<S4DLayerPlan>
{
    /// <summary>Tables per mode: Re/Im of Ā, of W = C·B̄, and of the anchor Ā^32.</summary>
    public const int ModeTables = 6;

    private static int MaxModes(ModelPlan plan) => plan.Blocks<S4DLayerPlan>().Max(l => l.Modes);

    protected override string[] FieldNotes =>
    [
        "S4D blocks: norm stats, norm out, S4D out (after a training forward GELU's slope at it), GELU out, linear out, GLU out, kernel, mode tables;",
        "shared: dL/d(the scan's output, input), dL/d(kernel), Horner sums; the step's rows.",
    ];

    private static readonly ConvolutionBlock.Names Names = new("_conv", "_dY", "_dU", "_dk", "_s4dStepU", "_s4dStepY", "_s4dStepAct", "_s4dStepO", "_s4dStepGlu");

    protected override IEnumerable<(string Name, string Floats)> BlockBuffers(S4DLayerPlan l) =>
        ConvolutionBlock.BlockBuffers.Append(("Modes", $"{ModeTables} * H * {l.Modes}"));

    protected override IEnumerable<HostBuffer> SharedBuffers(ModelPlan plan) => Names.Shared([("_sums", $"4 * H * {MaxModes(plan)}")]);

    /// <summary>Blocks whose forward may take the recurrent path (S4DRecurrence runs four modes at a time).</summary>
    private static bool MayRecur(S4DLayerPlan l) => l.Modes % 4 == 0;

    public override void EmitFields(CodeWriter w, ModelPlan plan)
    {
        base.EmitFields(w, plan);
        w.Line("private readonly CausalConvolution _conv;");
        if (!plan.Blocks<S4DLayerPlan>().Any(MayRecur)) return;
        w.Line("private readonly S4DRecurrence? _recurrence; // the SSM in its recurrent view, where this CPU runs it (S4DRecurrence.Supports)");
        foreach (var l in plan.Blocks<S4DLayerPlan>().Where(MayRecur))
            w.Line($"private bool _l{l.Index}KernelBuilt; // whether _l{l.Index}K holds the last forward's kernel (the recurrent path builds none)");
    }

    public override void EmitAllocations(CodeWriter w, ModelPlan plan)
    {
        w.Line("_conv = new CausalConvolution(H, maxBatch, maxLength);");
        if (plan.Blocks<S4DLayerPlan>().Any(MayRecur))
            w.Line($"_recurrence = S4DRecurrence.Supports(H, 4) ? new S4DRecurrence(H, {plan.Blocks<S4DLayerPlan>().Where(MayRecur).Max(l => l.Modes)}) : null;");
        base.EmitAllocations(w, plan);
    }

    /// <summary>A new stream discretizes every S4D block's modes into its state once (the device path discretizes there).</summary>
    public override string StreamStart => "if (t == 0 && _gpu is null) { DiscretizeInto(state.Values); state.MarkStarted(_stepWeights); } // a new stream takes the current SSM parameters (the device path discretizes there)";

    /// <summary>Where block <paramref name="l"/>'s modes start in the shared copy of every block's modes.</summary>
    private static int ModesAt(ModelPlan plan, S4DLayerPlan l) =>
        plan.Blocks<S4DLayerPlan>().TakeWhile(b => b != l).Sum(b => plan.State.Of(b, "modes").Floats);

    public override void EmitStepHelpers(CodeWriter w, ModelPlan plan)
    {
        w.Open("private void DiscretizeInto(float[] state)");
        foreach (var l in plan.Blocks<S4DLayerPlan>()) w.Line($"{l.Variant}_Discretize({MixerArgs(plan, l, "_p")}, {plan.State.Of(l, "modes").Slice("state.AsSpan()")});");
        w.Close();
        w.Line();
        int all = plan.Blocks<S4DLayerPlan>().Sum(l => plan.State.Of(l, "modes").Floats);
        w.Line($$"""
            private float[]? _stepModes; // every S4D block's discretized modes for the compact copy _stepModesOf, made on its first step
            private CompactWeights? _stepModesOf;

            /// <summary>
            /// The modes a stream steps with: its own; or, for a stream that discretized them under the compact copy in force
            /// (an inference copy, which fixes the parameters), the same values from one copy shared by all such streams,
            /// so that a step of many streams reads them once rather than once per stream.
            /// </summary>
            private ReadOnlySpan<float> StepModes(SsmState state, Span<float> values, int offset, int length, int at)
            {
                if (!state.StartedUnder(_stepWeights)) return values.Slice(offset, length);
                if (_stepModesOf != _stepWeights)
                {
                    _stepModes ??= new float[{{all}}];
            """);
        foreach (var l in plan.Blocks<S4DLayerPlan>())
            w.Line($"        {l.Variant}_Discretize({MixerArgs(plan, l, "_p")}, _stepModes.AsSpan({ModesAt(plan, l)}, {plan.State.Of(l, "modes").Floats}));");
        w.Line("""
                    _stepModesOf = _stepWeights;
                }
                return _stepModes.AsSpan(at, length);
            }

            """);
    }

    protected override (string Type, string Arguments)? StatePassing(S4DLayerPlan l) => ("S4DStatePassing", $"{l.Index}, H, {l.Modes}");
    public override bool PassesState => true;

    /// <summary>The block's forward, backward and step passes.</summary>
    public override void EmitLayer(CodeWriter w, ModelPlan plan, S4DLayerPlan l)
    {
        string i = "_l" + l.Index, p = l.Prefix;
        int hm = plan.Spec.DModel * l.Modes;
        bool recur = MayRecur(l);
        void Discretize() => w.Line($"{l.Variant}_Discretize({MixerArgs(plan, l, "_p")}, {i}Modes);");
        string entering = $"{Pass(l)}.Forward(_seq, {i}Modes, u, y, batch, length)"; // adds what the state entering this rank's piece contributes
        var direct = recur ? new ConvolutionBlock.Direct($"_recurrence is not null && S4DRecurrence.Faster({l.Modes}, length, batch)", () =>
        {
            w.Line("// S4D in its recurrent view, x ← Ā·x + u, y = 2·Re Σ W·x + D·u, GELU in the same pass: no kernel, no transforms");
            Discretize();
            w.Line($"_recurrence.Forward({i}Modes, {l.Modes}, {ModelEmitter.Span("_p", p + "mixer.D", "H")}, u, y, _seq is null ? {i}G.AsSpan(0, rows * H) : Span<float>.Empty, batch, length, _seq is null ? {ConvolutionBlock.Slope} : Span<float>.Empty);");
            w.Line($"{i}KernelBuilt = false;");
            w.Line($"if (_seq is not null) {{ {entering}; BlockKernels.GeluForward(y, {i}G.AsSpan(0, rows * H), _ws, {ConvolutionBlock.Slope}); }} // the state entering this rank's piece, then GELU");
        }) : null;
        ConvolutionBlock.EmitForward(w, plan, l, l.Spec.Dropout, Names, $"S4D (N = {l.Spec.N}, {S4DKind.DiscretizationNames[l.Spec.Discretization]})", () =>
        {
            w.Line("// S4D: discretize the modes, build the kernel K (H, L), convolve each channel along time, add D·u");
            Discretize();
            w.Line(Kernel(l));
            if (recur) w.Line($"{i}KernelBuilt = true;");
        }, new ConvolutionBlock.BeforeGelu("_seq is not null", () => w.Line($"{entering}; // the state entering this rank's piece")), direct);
        ConvolutionBlock.EmitBackward(w, l, l.Spec.Dropout, Names, () =>
        {
            w.Line("// kernel backward: Horner sums per mode, then the chain rule to log Δ, A, B, C");
            w.Line($"ChannelParallel.Run(S4D_N{l.Spec.N}_Horner, {i}Modes, _dk, _sums, length, H, _ws, flops: {HornerFlopsPerModeStep}.0 * H * {l.Modes} * length);");
            w.Line($"if (_seq is not null) TensorPrimitives.Multiply(dY, {i}Y.AsSpan(0, rows * H), dY); // dL/dy for the state passing (the convolution scaled dY by GELU's slope as it read it)");
            w.Line($"var gZPieces = _seq is null ? ReadOnlySpan<float>.Empty : {Pass(l)}.Backward(_seq, {i}Modes, dY, dU, _sums, batch, length); // what the states crossing this rank's piece owe");
            string gb = l.Spec.TrainB ? ModelEmitter.Span("_g", p + "mixer.B", (2 * hm).ToString()) : "Span<float>.Empty";
            w.Line($"{l.Variant}_ChainRule({MixerArgs(plan, l, "_p")}, _sums, gZPieces, {ModelEmitter.Span("_g", p + "mixer.log_dt", "H")}, {ModelEmitter.Span("_g", p + "mixer.log_A_real", hm.ToString())}, {ModelEmitter.Span("_g", p + "mixer.A_imag", hm.ToString())}, {gb}, {ModelEmitter.Span("_g", p + "mixer.C", (2 * hm).ToString())});");
        }, recur ? () => w.Line($"if (!{i}KernelBuilt) {{ {Kernel(l)} {i}KernelBuilt = true; }} // the forward ran the recurrence") : null);
        ConvolutionBlock.EmitStep(w, l, Names, $"{plan.State.Of(l, "x").What}, and {plan.State.Of(l, "modes").What}", (u, y) =>
            w.Line($"S4D_N{l.Spec.N}_Step(StepModes(streams[s], stream, {plan.State.Of(l, "modes").Const}, {plan.State.Of(l, "modes").Floats}, {ModesAt(plan, l)}), {ModelEmitter.Span("_p", p + "mixer.D", "H")}, {plan.State.Of(l, "x").Slice("stream")}, {u}, {y});"));
    }

    /// <summary>Emits every kernel the plan's S4D layers use, each variant once.</summary>
    public override void EmitKernels(CodeWriter w, ModelPlan plan)
    {
        foreach (int n in plan.Blocks<S4DLayerPlan>().Select(l => l.Spec.N).Distinct())
        {
            EmitKernel(w, n);
            EmitHorner(w, n);
            EmitStep(w, n);
        }
        foreach (var l in plan.Blocks<S4DLayerPlan>().GroupBy(l => l.Variant).Select(g => g.First()))
        {
            EmitDiscretize(w, l);
            EmitChainRule(w, l);
        }
    }

    /// <summary>Vector widths to try, widest first, for M modes.</summary>
    private static IEnumerable<(string Type, int Width)> Widths(int m)
    {
        if (m % 16 == 0) yield return ("Vector512", 16);
        if (m % 8 == 0) yield return ("Vector256", 8);
    }

    /// <summary>One line per vector register, so the emitted code reads like hand-unrolled code.</summary>
    private static void EachLine(CodeWriter w, int count, Func<int, string> f)
    {
        for (int v = 0; v < count; v++) w.Line(f(v));
    }

    private static void Load(CodeWriter w, string vt, int vw, int nv, string name, string table, string src = "modes")
    {
        EachLine(w, nv, v => $"var {name}{v} = {vt}.Create({src}.Slice({table}m0 + {v * vw}, {vw}));");
    }

    private static void Store(CodeWriter w, int vw, int nv, string name, string table, string dst)
    {
        EachLine(w, nv, v => $"{name}{v}.CopyTo({dst}.Slice({table}m0 + {v * vw}, {vw}));");
    }

    /// <summary>Opens the vector path: taken when the CPU accelerates this width, a loop over channels h.</summary>
    /// <param name="channelRange">The kernel runs channels [h0, h1) (a <c>ChannelRange</c>), not all H.</param>
    private static void BeginVectorPath(CodeWriter w, string vt, bool channelRange = false)
    {
        w.Open($"if ({vt}.IsHardwareAccelerated)");
        w.Open(channelRange ? "for (int h = h0; h < h1; h++)" : "for (int h = 0; h < H; h++)");
        w.Line("int m0 = h * M;");
    }

    private static void EndVectorPath(CodeWriter w)
    {
        w.Close();
        w.Line("return;");
        w.Close();
    }

    /// <summary>The call building block l's kernel K (H, L) from its modes, channels shared over the worker pool.</summary>
    private static string Kernel(S4DLayerPlan l) =>
        $"ChannelParallel.Run(S4D_N{l.Spec.N}_Kernel, _l{l.Index}Modes, ReadOnlySpan<float>.Empty, _l{l.Index}K, length, H, _ws, flops: H * {l.Modes} * ({KernelFlopsPerModeStep}.0 * length + {AnchorFlops}.0 * ((length + 31) / 32)));";

    // The operations the kernels below execute, for the pass profile: per mode and step, the kernel's power Ā^l·W (a
    // complex product, 6) and its share of the sum over modes (1), with a complex product (6) per mode at each of the
    // anchors every 32 steps; Horner's two complex multiply-adds, p' ← p'·Ā + p (8) and p ← p·Ā + dK[l] (7).
    private const int KernelFlopsPerModeStep = 7, AnchorFlops = 6, HornerFlopsPerModeStep = 15;

    private static void Header(CodeWriter w, int m) => w.Line($"const int M = {m}, HM = H * M;");

    private static void EmitKernel(CodeWriter w, int n)
    {
        int m = n / 2;
        w.Line($$"""
            /// <summary>S4D kernel for N = {{n}}: K[h, l] = 2·Re Σ_m W[h,m]·Ā[h,m]^l, (H, L). The power chain restarts
            /// every 32 steps from an anchor advanced by Ā^32 (computed in double), which keeps float rounding well
            /// below that of one chain of L multiplications.</summary>
            """);
        w.Open($"private static void S4D_N{n}_Kernel(ReadOnlySpan<float> modes, ReadOnlySpan<float> none, Span<float> k, int length, int h0, int h1)");
        Header(w, m);
        foreach (var (vt, vw) in Widths(m))
        {
            int nv = m / vw;
            BeginVectorPath(w, vt, channelRange: true);
            Load(w, vt, vw, nv, "zr", ""); Load(w, vt, vw, nv, "zi", "HM + ");
            Load(w, vt, vw, nv, "pr", "2 * HM + "); Load(w, vt, vw, nv, "pi", "3 * HM + ");
            Load(w, vt, vw, nv, "ar", "4 * HM + "); Load(w, vt, vw, nv, "ai", "5 * HM + ");
            w.Line("var kh = k.Slice(h * length, length);");
            w.Open("for (int l0 = 0; l0 < length; l0 += 32)");
            EachLine(w, nv, v => $"var qr{v} = pr{v}; var qi{v} = pi{v};");
            w.Line("int end = Math.Min(32, length - l0);");
            w.Open("for (int j = 0; j < end; j++)");
            w.Line($"kh[l0 + j] = 2f * {vt}.Sum({string.Join(" + ", Enumerable.Range(0, nv).Select(v => $"qr{v}"))});");
            EachLine(w, nv, v => $"var t{v} = qr{v} * zr{v} - qi{v} * zi{v}; qi{v} = qr{v} * zi{v} + qi{v} * zr{v}; qr{v} = t{v};");
            w.Close();
            EachLine(w, nv, v => $"var u{v} = pr{v} * ar{v} - pi{v} * ai{v}; pi{v} = pr{v} * ai{v} + pi{v} * ar{v}; pr{v} = u{v};");
            w.Close();
            EndVectorPath(w);
        }
        w.Line("// Scalar fallback: the same anchored chain, one mode at a time.");
        w.Open("for (int h = h0; h < h1; h++)");
        w.Line("var kh = k.Slice(h * length, length);");
        w.Line("kh.Clear();");
        w.Open("for (int i = h * M; i < h * M + M; i++)");
        w.Line("float zr = modes[i], zi = modes[HM + i], pr = modes[2 * HM + i], pi = modes[3 * HM + i];");
        w.Line("float ar = modes[4 * HM + i], ai = modes[5 * HM + i];");
        w.Open("for (int l0 = 0; l0 < length; l0 += 32)");
        w.Line("""
            float qr = pr, qi = pi;
            int end = Math.Min(32, length - l0);
            for (int j = 0; j < end; j++) { kh[l0 + j] += 2f * qr; float t = qr * zr - qi * zi; qi = qr * zi + qi * zr; qr = t; }
            float u = pr * ar - pi * ai; pi = pr * ai + pi * ar; pr = u;
            """);
        w.Close();
        w.Close();
        w.Close();
        w.Close();
        w.Line();
    }

    private static void EmitHorner(CodeWriter w, int n)
    {
        int m = n / 2;
        w.Line($"/// <summary>For N = {n}: p(Ā) = Σ_l dK[l]·Ā^l and p'(Ā) per mode by Horner's rule, into");
        w.Line("/// sums [Re p | Im p | Re p' | Im p'] (H, M): what the kernel's gradient needs.</summary>");
        w.Open($"private static void S4D_N{n}_Horner(ReadOnlySpan<float> modes, ReadOnlySpan<float> dk, Span<float> sums, int length, int h0, int h1)");
        Header(w, m);
        foreach (var (vt, vw) in Widths(m))
        {
            int nv = m / vw;
            BeginVectorPath(w, vt, channelRange: true);
            Load(w, vt, vw, nv, "zr", ""); Load(w, vt, vw, nv, "zi", "HM + ");
            EachLine(w, nv, v => $"var pr{v} = {vt}<float>.Zero; var pi{v} = {vt}<float>.Zero; var dr{v} = {vt}<float>.Zero; var di{v} = {vt}<float>.Zero;");
            w.Line("var dkh = dk.Slice(h * length, length);");
            w.Open("for (int l = length - 1; l >= 0; l--)");
            w.Line($"var d = {vt}.Create(dkh[l]);");
            w.Line("// p' ← p'·Ā + p, then p ← p·Ā + dK[l]");
            EachLine(w, nv, v => $"var t{v} = dr{v} * zr{v} - di{v} * zi{v} + pr{v}; di{v} = dr{v} * zi{v} + di{v} * zr{v} + pi{v}; dr{v} = t{v};");
            EachLine(w, nv, v => $"var s{v} = pr{v} * zr{v} - pi{v} * zi{v} + d; pi{v} = pr{v} * zi{v} + pi{v} * zr{v}; pr{v} = s{v};");
            w.Close();
            Store(w, vw, nv, "pr", "", "sums"); Store(w, vw, nv, "pi", "HM + ", "sums");
            Store(w, vw, nv, "dr", "2 * HM + ", "sums"); Store(w, vw, nv, "di", "3 * HM + ", "sums");
            EndVectorPath(w);
        }
        w.Open("for (int h = h0; h < h1; h++)");
        w.Open("for (int i = h * M; i < h * M + M; i++)");
        w.Line("float zr = modes[i], zi = modes[HM + i], pr = 0, pi = 0, dr = 0, di = 0;");
        w.Open("for (int l = length - 1; l >= 0; l--)");
        w.Line("float t = dr * zr - di * zi + pr; di = dr * zi + di * zr + pi; dr = t;");
        w.Line("float s = pr * zr - pi * zi + dk[h * length + l]; pi = pr * zi + pi * zr; pr = s;");
        w.Close();
        w.Line("sums[i] = pr; sums[HM + i] = pi; sums[2 * HM + i] = dr; sums[3 * HM + i] = di;");
        w.Close();
        w.Close();
        w.Close();
        w.Line();
    }

    private static void EmitStep(CodeWriter w, int n)
    {
        int m = n / 2;
        w.Line($"/// <summary>One recurrent step for N = {n}: x ← Ā·x + u, y = 2·Re Σ_m W·x + D·u, per channel.");
        w.Line("/// State [Re x | Im x] (H, M).</summary>");
        w.Open($"private static void S4D_N{n}_Step(ReadOnlySpan<float> modes, ReadOnlySpan<float> d, Span<float> state, ReadOnlySpan<float> u, Span<float> y)");
        Header(w, m);
        foreach (var (vt, vw) in Widths(m))
        {
            int nv = m / vw;
            BeginVectorPath(w, vt);
            w.Line($"var uu = {vt}.Create(u[h]);");
            w.Line("ReadOnlySpan<float> current = state;");
            Load(w, vt, vw, nv, "zr", ""); Load(w, vt, vw, nv, "zi", "HM + ");
            Load(w, vt, vw, nv, "wr", "2 * HM + "); Load(w, vt, vw, nv, "wi", "3 * HM + ");
            Load(w, vt, vw, nv, "sr", "", "current"); Load(w, vt, vw, nv, "si", "HM + ", "current");
            EachLine(w, nv, v => $"var t{v} = zr{v} * sr{v} - zi{v} * si{v} + uu; si{v} = zr{v} * si{v} + zi{v} * sr{v}; sr{v} = t{v};");
            Store(w, vw, nv, "sr", "", "state"); Store(w, vw, nv, "si", "HM + ", "state");
            w.Line($"var acc = {string.Join(" + ", Enumerable.Range(0, nv).Select(v => $"(wr{v} * sr{v} - wi{v} * si{v})"))};");
            w.Line($"y[h] = 2f * {vt}.Sum(acc) + d[h] * u[h];");
            EndVectorPath(w);
        }
        w.Open("for (int h = 0; h < H; h++)");
        w.Line("float acc = 0;");
        w.Open("for (int i = h * M; i < h * M + M; i++)");
        w.Line("""
            float sr = modes[i] * state[i] - modes[HM + i] * state[HM + i] + u[h];
            float si = modes[i] * state[HM + i] + modes[HM + i] * state[i];
            state[i] = sr; state[HM + i] = si;
            acc += modes[2 * HM + i] * sr - modes[3 * HM + i] * si;
            """);
        w.Close();
        w.Line("y[h] = 2f * acc + d[h] * u[h];");
        w.Close();
        w.Close();
        w.Line();
    }

    private static string ParamArgs => "ReadOnlySpan<float> logDt, ReadOnlySpan<float> logAReal, ReadOnlySpan<float> aImag, ReadOnlySpan<float> bb, ReadOnlySpan<float> cc";

    private static void EmitDiscretize(CodeWriter w, S4DLayerPlan l)
    {
        bool zoh = l.Spec.Discretization == 0;
        w.Line($"/// <summary>{l.Variant}: Ā, W = C·B̄ and Ā^32 of every mode, computed in double, stored as float (S4DModes).");
        w.Line(zoh ? "/// ZOH: Ā = exp(ΔA), B̄ = (exp(ΔA) − 1)/A · B.</summary>" : "/// Bilinear: Ā = (1 + ΔA/2)/(1 − ΔA/2), B̄ = Δ/(1 − ΔA/2) · B.</summary>");
        w.Line($"private static void {l.Variant}_Discretize({ParamArgs}, Span<float> modes) =>");
        w.Line($"    S4DModes.Discretize({Method(l)}, logDt, logAReal, aImag, bb, cc, modes, H, {l.Modes});");
        w.Line();
    }

    private static string Method(S4DLayerPlan l) => l.Spec.Discretization == 0 ? "Discretization.Zoh" : "Discretization.Bilinear";

    private static void EmitChainRule(CodeWriter w, S4DLayerPlan l)
    {
        w.Line($"/// <summary>{l.Variant}: from the Horner sums to the parameter gradients (S4DModes).</summary>");
        w.Line($"private static void {l.Variant}_ChainRule({ParamArgs}, ReadOnlySpan<float> sums, ReadOnlySpan<float> gZPieces, Span<float> gLogDt, Span<float> gLogAReal, Span<float> gAImag, Span<float> gB, Span<float> gC) =>");
        w.Line($"    S4DModes.ChainRule({Method(l)}, logDt, logAReal, aImag, bb, cc, sums, gZPieces, gLogDt, gLogAReal, gAImag, gB, gC, H, {l.Modes});");
        w.Line();
    }

    private static string MixerArgs(ModelPlan plan, S4DLayerPlan l, string buf)
    {
        string m = l.Prefix + "mixer.";
        int hm = plan.Spec.DModel * l.Modes;
        string b = l.Spec.TrainB ? ModelEmitter.Span(buf, m + "B", (2 * hm).ToString()) : "ReadOnlySpan<float>.Empty";
        return $"{ModelEmitter.Span(buf, m + "log_dt", "H")}, {ModelEmitter.Span(buf, m + "log_A_real", hm.ToString())}, {ModelEmitter.Span(buf, m + "A_imag", hm.ToString())}, {b}, {ModelEmitter.Span(buf, m + "C", (2 * hm).ToString())}";
    }
}
