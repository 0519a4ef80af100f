using System;

namespace SsmGen.Generators.Layers;

/// <summary>
/// The C# passes of a long-convolution block, which S4D and S4 share: pre-LayerNorm, the SSM as a causal convolution
/// with a kernel K (H, L) plus D·u, GELU, Linear H→2H, GLU, dropout, residual; and its one-token step around the SSM's
/// own recurrence. A kind supplies how its kernel is built, differentiated and stepped, and the names of its buffers.
/// </summary>
internal static class ConvolutionBlock
{
    /// <summary>
    /// The kind's fields the passes use: its CausalConvolution, the shared backward scratch (dL/d the SSM's output,
    /// input, the kernel; dL/d the linear's output lives in the workspace, a block of rows at a time) and the step's
    /// one-token rows.
    /// </summary>
    internal sealed record Names(string Conv, string DY, string DU, string DK, string StepU, string StepY, string StepAct, string StepO, string StepGlu)
    {
        /// <summary>The shared buffers, training-only ones first.</summary>
        public IEnumerable<HostBuffer> Shared(IEnumerable<(string Field, string Floats)> moreTraining)
        {
            foreach (var (f, floats) in new[] { (DY, "rows * H"), (DU, "rows * H"), (DK, "H * maxLength") }.Concat(moreTraining))
                yield return new(f, floats, Training: true);
            foreach (var (f, floats) in new[] { (StepU, "maxBatch * H"), (StepY, "maxBatch * H"), (StepAct, "maxBatch * H"), (StepO, "maxBatch * 2 * H"), (StepGlu, "maxBatch * H") })
                yield return new(f, floats);
        }
    }

    /// <summary>
    /// A block's own buffers: the SSM's output y (after a training forward GELU'(y) in its place, all the backward needs of
    /// y), GELU's output, the linear's, and the kernel.
    /// </summary>
    public static IEnumerable<(string Name, string Floats)> BlockBuffers => [("Y", "rows * H"), ("G", "rows * H"), ("O", "rows * 2 * H"), ("K", "H * maxLength")];

    /// <summary>Where a forward's GELU writes its slope: over y when training (the backward scales dy by it), nowhere otherwise.</summary>
    public const string Slope = "(_training ? y : Span<float>.Empty)";

    /// <summary>The dropout threshold as a uint literal, by the runtime's rule (Rng.Dropout.cs is linked in).</summary>
    private static string DropThreshold(double p) => SsmGen.Rng.DropoutThreshold(p).ToString(System.Globalization.CultureInfo.InvariantCulture) + "u";
    private static string DropScale(double p) => CodeWriter.F(1 / (1 - p));

    /// <summary>The dropout arguments of the GLU kernels (key, threshold, scale): the block's mask when training, none otherwise.</summary>
    private static string Mask(LayerPlan l, double dropout) => dropout > 0
        ? $"_training ? Rng.DropoutKey(DropoutSeed, _maskStep, {l.Index}) : 0u, _training ? {DropThreshold(dropout)} : 0u, _training ? {DropScale(dropout)} : 1f"
        : "0u, 0u, 1f";

    /// <summary>
    /// A path around the kernel and the convolution: when <paramref name="Condition"/> holds at run time, <paramref name="Lines"/>
    /// take u to y (the SSM plus D·u) and to G = GELU(y) themselves, and when training leave GELU'(y) in y's place
    /// (<see cref="Slope"/>: the backward scales dy by it).
    /// </summary>
    internal sealed record Direct(string Condition, Action Lines);

    /// <summary>
    /// Lines that add to y between the convolution and GELU where <paramref name="Condition"/> holds at run time; elsewhere
    /// the convolution's transforms write GELU (and its slope) themselves as they make y.
    /// </summary>
    internal sealed record BeforeGelu(string Condition, Action Lines);

    /// <summary>Block forward; <paramref name="kernel"/> writes the lines that fill _l{i}K (H, length).</summary>
    /// <remarks><paramref name="beforeGelu"/>, when given, lines that run between the convolution into _l{i}Y and GELU;
    /// <paramref name="direct"/>, when given, a path taken instead of kernel, convolution and GELU where its condition holds.</remarks>
    public static void EmitForward(CodeWriter w, ModelPlan plan, LayerPlan l, double dropout, Names n, string ssm, Action kernel, BeforeGelu? beforeGelu = null, Direct? direct = null)
    {
        string i = "_l" + l.Index, p = l.Prefix;
        w.Line($"/// <summary>Block {l.Index}, (B, L, H) → (B, L, H): pre-LayerNorm, {ssm}, GELU,");
        w.Line($"/// Linear(H → 2H), GLU, dropout (p = {dropout}), residual.</summary>");
        ModelEmitter.OptimizedAtFirstCall(w);
        w.Open($"private void Layer{l.Index}Forward(int batch, int length)");
        w.Line($$"""
            int rows = batch * length;
            var x = {{i}}X.AsSpan(0, rows * H);
            var u = {{i}}U.AsSpan(0, rows * H);
            var y = {{i}}Y.AsSpan(0, rows * H);
            """);
        w.Line($"BlockKernels.LayerNormForward(x, {ModelEmitter.Span("_p", p + "norm.weight", "H")}, {ModelEmitter.Span("_p", p + "norm.bias", "H")}, u, {i}Mean, {i}Rstd, rows, H, _ws);");
        if (direct is not null)
        {
            w.Open($"if ({direct.Condition})");
            direct.Lines();
            w.Close();
            w.Open("else");
        }
        kernel();
        string d = ModelEmitter.Span("_p", p + "mixer.D", "H"), g = $"{i}G.AsSpan(0, rows * H)";
        string fused = $"{n.Conv}.Forward({i}K, u, {d}, y, {g}, batch, length, {Slope}); // K ∗ u + D·u, and GELU as the transforms write y (GELU'(y) over y when training)";
        if (beforeGelu is null) w.Line(fused);
        else
        {
            w.Open($"if ({beforeGelu.Condition})");
            w.Line($"{n.Conv}.Forward({i}K, u, {d}, y, batch, length); // K ∗ u + D·u");
            beforeGelu.Lines();
            w.Line($"BlockKernels.GeluForward(y, {g}, _ws, {Slope}); // GELU'(y) over y when training");
            w.Close();
            w.Line("else " + fused);
        }
        if (direct is not null) w.Close();
        string weight = ModelEmitter.Span("_p", p + "mixer.output_linear.weight", "2 * H * H"), bias = ModelEmitter.Span("_p", p + "mixer.output_linear.bias", "2 * H");
        w.Line($"var next = {ModelEmitter.Next(plan, l)}.AsSpan(0, rows * H);");
        w.Line($"if (!_training && Gemm.FusesGlu(rows, H, H)) Gemm.LinearGluResidual({i}G.AsSpan(0, rows * H), {weight}, {bias}, x, next, rows, H, H, _ws); // inference: next = x + GLU(linear), O never stored");
        w.Open("else");
        w.Line($"Gemm.LinearForward({i}G.AsSpan(0, rows * H), {weight}, {bias}, {i}O, rows, H, 2 * H, _ws);");
        w.Line($"// GLU, dropout (p = {dropout}) and the residual in one pass: next = x + GLU(O)·mask");
        w.Line($"BlockKernels.GluResidual({i}O, x, next, rows, H, {Mask(l, dropout)}, _ws);");
        w.Close();
        w.Close();
        w.Line();
    }

    /// <summary>
    /// Block backward; <paramref name="kernelBackward"/> writes the lines from dL/dK (in the DK buffer) to the SSM's parameter
    /// gradients, <paramref name="beforeConvolution"/> (when given) lines that run before the convolution's backward reads K.
    /// </summary>
    public static void EmitBackward(CodeWriter w, LayerPlan l, double dropout, Names n, Action kernelBackward, Action? beforeConvolution = null)
    {
        string i = "_l" + l.Index, p = l.Prefix;
        ModelEmitter.OpenBackward(w, l);
        w.Line($"var u = {i}U.AsSpan(0, rows * H);");
        w.Line($"var dY = {n.DY}.AsSpan(0, rows * H);");
        w.Line("// GLU, dropout (the forward's mask) and the linear backward: dL/dG into dY, the linear's weight and bias gradients;");
        w.Line("// dL/dO made a block of rows at a time and used in cache");
        w.Line($"Gemm.GluResidualLinearBackward({i}O, dX, {i}G, {ModelEmitter.Span("_p", p + "mixer.output_linear.weight", "2 * H * H")}, dY, {ModelEmitter.Span("_g", p + "mixer.output_linear.weight", "2 * H * H")}, {ModelEmitter.Span("_g", p + "mixer.output_linear.bias", "2 * H")}, rows, H, H, {Mask(l, dropout)}, _ws);");
        w.Line($"var dU = {n.DU}.AsSpan(0, rows * H);");
        beforeConvolution?.Invoke();
        w.Line("// GELU, convolution and D backward: dy = dY ⊙ GELU'(y) (the forward left the slope in Y) as the transforms read dY,");
        w.Line("// du = Σ dy[s]·K[s−t] + D·dy, dK[l] = Σ dy[t]·u[t−l], dD += Σ dy·u");
        w.Line($"{n.Conv}.BackwardScaled({i}K, u, {ModelEmitter.Span("_p", p + "mixer.D", "H")}, {i}Y.AsSpan(0, rows * H), dY, dU, {n.DK}, {ModelEmitter.Span("_g", p + "mixer.D", "H")}, batch, length);");
        kernelBackward();
        w.Line("// pre-norm: the residual already carries dX; add the path through the norm");
        ModelEmitter.CloseBackward(w, l);
    }

    /// <summary>
    /// Block step over the streams' rows (count, H) of _sx, updated in place; <paramref name="ssmStep"/> writes, for stream s
    /// (its state span <c>stream</c>), the line that takes its row u to its row y through the SSM's recurrence and D.
    /// </summary>
    public static void EmitStep(CodeWriter w, LayerPlan l, Names n, string stateNote, Action<string, string> ssmStep)
    {
        string Weights(string tensor, string length) => ModelEmitter.Span("_p", l.Prefix + tensor, length);
        w.Line($"/// <summary>Block {l.Index}, one token of each stream: the rows of _sx (count, H) are updated in place; O(H·N) work per stream.");
        w.Line($"/// State: {stateNote}.</summary>");
        w.Open($"private void Layer{l.Index}Step(ReadOnlySpan<SsmState> streams)");
        w.Line("int count = streams.Length;");
        w.Line(ModelEmitter.NormForward(false, l.Prefix + "norm", "_sx.AsSpan(0, count * H)", n.StepU, ModelEmitter.StepMean, ModelEmitter.StepRstd, "count"));
        w.Open("for (int s = 0; s < count; s++)");
        w.Line("var stream = streams[s].Values.AsSpan();");
        ssmStep($"{n.StepU}.AsSpan(s * H, H)", $"{n.StepY}.AsSpan(s * H, H)");
        w.Close();
        w.Line($"BlockKernels.GeluForward({n.StepY}.AsSpan(0, count * H), {n.StepAct}, _ws);");
        w.Line($"StepProduct({n.StepAct}.AsSpan(0, count * H), {Weights("mixer.output_linear.weight", "2 * H * H")}, {Weights("mixer.output_linear.bias", "2 * H")}, {n.StepO}, count, H, 2 * H);");
        w.Line($"BlockKernels.GluForward({n.StepO}, {n.StepGlu}, count, H, _ws);");
        w.Line($"TensorPrimitives.Add(_sx.AsSpan(0, count * H), {n.StepGlu}.AsSpan(0, count * H), _sx);");
        w.Close();
        w.Line();
    }
}
