using SsmGen.Generators.Emitters.Cuda;
using static SsmGen.Generators.Emitters.Cuda.CudaModelEmitter;

namespace SsmGen.Generators.Layers;

/// <summary>
/// The transformer layer, GPU backend: in_proj, out_proj, the MLP and every weight gradient are cuBLAS GEMMs; rotary
/// positions are one kernel (angles in double, as the CPU's tables); causal attention is one thread per (batch, head,
/// query) keeping the probabilities (B, heads, L, L) for the backward, which runs per query (dq and the row sums
/// Σ_u p·dP) and then per key (dk, dv), so no two threads add to one value.
/// </summary>
internal sealed class CudaAttentionEmitter : GpuRendering<AttentionLayerPlan>
{
    private static string Name(AttentionLayerPlan l) => $"attn_heads{l.Heads}_d{l.HeadSize}";

    private static IEnumerable<AttentionLayerPlan> Variants(ModelPlan plan) => plan.Blocks<AttentionLayerPlan>().GroupBy(Name).Select(g => g.First());

    public override void EmitKernels(StringBuilder cu, ModelPlan plan)
    {
        foreach (var l in Variants(plan))
        {
            string v = Name(l), k = $"[[maybe_unused]] constexpr int HEADS = {l.Heads}, D = {l.HeadSize};";
            cu.Append($$"""

// ---- Attention, {{l.Heads}} heads of {{l.HeadSize}} ----
// Rows of qkv are [q | k | v], each H wide, heads of D consecutive values.

// Rotary positions on q and k: pair i of a head turns by t·10000^(−2i/D), t = start + the row's position in its
// sequence; inverse turns back (the backward).
extern "C" __global__ void {{v}}_rotate(float* __restrict__ qkv, int rows, int length, int inverse, int start)
{
    {{k}}
    long j = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= (long)rows * H) return;          // H pairs per row: H/2 in q, H/2 in k
    long r = j / H; int p = (int)(j % H), i = p % (D / 2), t = start + (int)(r % length);
    double theta = t * pow(10000.0, -2.0 * i / D);
    float c = (float)cos(theta), s = inverse ? -(float)sin(theta) : (float)sin(theta);
    float* v = qkv + r * 3 * H + 2 * p;
    float a = v[0], b = v[1];
    v[0] = a * c - b * s;
    v[1] = a * s + b * c;
}

// One thread per (b, head, t): scores over u ≤ t, softmax (kept in probs, zeros after t), o_t = Σ_u p_u v_u.
extern "C" __global__ void {{v}}_forward(const float* __restrict__ qkv, float* __restrict__ probs, float* __restrict__ o, int batch, int length)
{
    {{k}}
    long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)batch * HEADS * length) return;
    int t = (int)(idx % length), head = (int)(idx / length % HEADS); long b = idx / ((long)length * HEADS);
    const float scale = 1.0f / sqrtf((float)D);
    const float* q = qkv + (b * length + t) * 3 * H + head * D;
    float* p = probs + idx * length;
    float m = -3.0e38f;
    for (int u = 0; u <= t; u++)
    {
        const float* kr = qkv + (b * length + u) * 3 * H + H + head * D;
        float s = 0.0f;
        for (int j = 0; j < D; j++) s += q[j] * kr[j];
        p[u] = scale * s;
        m = fmaxf(m, p[u]);
    }
    float sum = 0.0f;
    for (int u = 0; u <= t; u++) { p[u] = expf(p[u] - m); sum += p[u]; }
    for (int u = 0; u <= t; u++) p[u] /= sum;
    for (int u = t + 1; u < length; u++) p[u] = 0.0f;
    float acc[D];
    for (int j = 0; j < D; j++) acc[j] = 0.0f;
    for (int u = 0; u <= t; u++)
    {
        const float* vr = qkv + (b * length + u) * 3 * H + 2 * H + head * D;
        for (int j = 0; j < D; j++) acc[j] += p[u] * vr[j];
    }
    float* ot = o + (b * length + t) * H + head * D;
    for (int j = 0; j < D; j++) ot[j] = acc[j];
}

// One token of a stream, one thread per head: k and v of position t go into the stream's cache (keys at u·H,
// values at (max_length + u)·H), then o = Σ_{u ≤ t} softmax_u(q·k_u/√D)·v_u.
extern "C" __global__ void {{v}}_step(const float* __restrict__ qkv, float* __restrict__ cache, float* __restrict__ o, int t, int max_length)
{
    {{k}}
    int head = blockIdx.x * blockDim.x + threadIdx.x;
    if (head >= HEADS) return;
    float* keys = cache + head * D;
    float* values = cache + (long)max_length * H + head * D;
    for (int j = 0; j < D; j++) { keys[(long)t * H + j] = qkv[H + head * D + j]; values[(long)t * H + j] = qkv[2 * H + head * D + j]; }
    const float scale = 1.0f / sqrtf((float)D);
    const float* q = qkv + head * D;
    float m = -3.0e38f;
    for (int u = 0; u <= t; u++)
    {
        float s = 0.0f;
        for (int j = 0; j < D; j++) s += q[j] * keys[(long)u * H + j];
        m = fmaxf(m, scale * s);
    }
    float sum = 0.0f, acc[D];
    for (int j = 0; j < D; j++) acc[j] = 0.0f;
    for (int u = 0; u <= t; u++)
    {
        float s = 0.0f;
        for (int j = 0; j < D; j++) s += q[j] * keys[(long)u * H + j];
        float p = expf(scale * s - m);
        sum += p;
        for (int j = 0; j < D; j++) acc[j] += p * values[(long)u * H + j];
    }
    for (int j = 0; j < D; j++) o[head * D + j] = acc[j] / sum;
}

// Backward, per query (b, head, t): row[t] = Σ_u p_u·(dO_t·v_u); dq_t = scale·Σ_u p_u (dO_t·v_u − row[t]) k_u.
extern "C" __global__ void {{v}}_backward_queries(const float* __restrict__ qkv, const float* __restrict__ probs, const float* __restrict__ d_o,
    float* __restrict__ dqkv, float* __restrict__ row, int batch, int length)
{
    {{k}}
    long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)batch * HEADS * length) return;
    int t = (int)(idx % length), head = (int)(idx / length % HEADS); long b = idx / ((long)length * HEADS);
    const float scale = 1.0f / sqrtf((float)D);
    const float* p = probs + idx * length;
    const float* g = d_o + (b * length + t) * H + head * D;
    float sum = 0.0f;
    for (int u = 0; u <= t; u++)
    {
        const float* vr = qkv + (b * length + u) * 3 * H + 2 * H + head * D;
        float dp = 0.0f;
        for (int j = 0; j < D; j++) dp += g[j] * vr[j];
        sum += p[u] * dp;
    }
    row[idx] = sum;
    float acc[D];
    for (int j = 0; j < D; j++) acc[j] = 0.0f;
    for (int u = 0; u <= t; u++)
    {
        const float* vr = qkv + (b * length + u) * 3 * H + 2 * H + head * D;
        const float* kr = qkv + (b * length + u) * 3 * H + H + head * D;
        float dp = 0.0f;
        for (int j = 0; j < D; j++) dp += g[j] * vr[j];
        float ds = p[u] * (dp - sum) * scale;
        for (int j = 0; j < D; j++) acc[j] += ds * kr[j];
    }
    float* dq = dqkv + (b * length + t) * 3 * H + head * D;
    for (int j = 0; j < D; j++) dq[j] = acc[j];
}

// Backward, per key (b, head, u): dk_u = scale·Σ_{t ≥ u} p_tu (dO_t·v_u − row[t]) q_t, dv_u = Σ_{t ≥ u} p_tu dO_t.
extern "C" __global__ void {{v}}_backward_keys(const float* __restrict__ qkv, const float* __restrict__ probs, const float* __restrict__ d_o,
    float* __restrict__ dqkv, const float* __restrict__ row, int batch, int length)
{
    {{k}}
    long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)batch * HEADS * length) return;
    int u = (int)(idx % length), head = (int)(idx / length % HEADS); long b = idx / ((long)length * HEADS);
    const float scale = 1.0f / sqrtf((float)D);
    const float* vr = qkv + (b * length + u) * 3 * H + 2 * H + head * D;
    float dk[D], dv[D];
    for (int j = 0; j < D; j++) { dk[j] = 0.0f; dv[j] = 0.0f; }
    for (int t = u; t < length; t++)
    {
        long qi = idx - u + t; // the (b, head, t) item
        float p = probs[qi * length + u];
        const float* g = d_o + (b * length + t) * H + head * D;
        const float* q = qkv + (b * length + t) * 3 * H + head * D;
        float dp = 0.0f;
        for (int j = 0; j < D; j++) dp += g[j] * vr[j];
        float ds = p * (dp - row[qi]) * scale;
        for (int j = 0; j < D; j++) { dk[j] += ds * q[j]; dv[j] += p * g[j]; }
    }
    float* out = dqkv + (b * length + u) * 3 * H + head * D;
    for (int j = 0; j < D; j++) { out[H + j] = dk[j]; out[2 * H + j] = dv[j]; }
}

""");
        }
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Field, string Floats)> Buffers(AttentionLayerPlan l)
    {
        string i = "_l" + l.Index;
        yield return ($"{i}Qkv", "rows * 3 * H");
        yield return ($"{i}O", "rows * H");
        yield return ($"{i}Probs", $"rows * {l.Heads} * (long)maxLength");
        yield return ($"{i}X1", "rows * H");
        yield return ($"{i}Mean2", "rows");
        yield return ($"{i}Rstd2", "rows");
        yield return ($"{i}U2", "rows * H");
        yield return ($"{i}F1", $"rows * {l.Mlp}");
        yield return ($"{i}Act", $"rows * {l.Mlp}");
    }

    /// <summary>Scratch shared by the transformer blocks: the backward's, and the step's rows.</summary>
    public override IEnumerable<(string Field, string Floats, bool Training)> Scratch(ModelPlan plan)
    {
        if (!plan.Blocks<AttentionLayerPlan>().Any()) yield break;
        int mlp = plan.Blocks<AttentionLayerPlan>().Max(l => l.Mlp), heads = plan.Blocks<AttentionLayerPlan>().Max(l => l.Heads);
        yield return ("_adAct", $"rows * {mlp}", true);
        yield return ("_adF1", $"rows * {mlp}", true);
        yield return ("_adU2", "rows * H", true);
        yield return ("_adO", "rows * H", true);
        yield return ("_adQkv", "rows * 3 * H", true);
        yield return ("_adRow", $"rows * {heads}", true);
        // Step's rows, one token: rotated [q | k | v], attention out, the stream after attention, second norm out, fc1 out, GELU out
        foreach (var (f, floats) in new[] { ("_attnStepQkv", "3 * H"), ("_attnStepO", "H"), ("_attnStepX1", "H"), ("_attnStepU2", "H"), ("_attnStepF1", $"{mlp}"), ("_attnStepAct", $"{mlp}") })
            yield return (f, floats, false);
    }

    public override int MaxColumnWidth(ModelPlan plan) => plan.Blocks<AttentionLayerPlan>().Select(l => System.Math.Max(3 * l.H, l.Mlp)).DefaultIfEmpty(1).Max();

    /// <summary>Block forward: x → LayerNorm → qkv, rotary → causal attention → out_proj + x = x1 → LayerNorm → MLP + x1.</summary>
    public override void EmitForward(CodeWriter w, ModelPlan plan, AttentionLayerPlan l)
    {
        string i = "_l" + l.Index, v = Name(l), x = $"_l{l.Index}X", next = ModelEmitter.Next(plan, l);
        OpenForward(w, l);
        w.Line($"uint items = Blocks((long)batch * {l.Heads} * length);");
        w.Line($"Linear({i}U, {Param(l, "mixer.in_proj.weight")}, {Param(l, "mixer.in_proj.bias")}, {i}Qkv, rows, H, 3 * H);");
        w.Line($"Launch_{v}_rotate(Blocks((long)rows * H), Threads, {i}Qkv, rows, length, 0, 0);");
        w.Line($"Launch_{v}_forward(items, Threads, {i}Qkv, {i}Probs, {i}O, batch, length);");
        ProjectOntoResidual(w, $"{i}O", Param(l, "mixer.out_proj.weight"), Param(l, "mixer.out_proj.bias"), "H", $"{i}X1", x);
        w.Line("// the MLP half");
        w.Line($"Launch_layernorm_forward((uint)rows, NormThreads, {i}X1, {Param(l, "norm2.weight")}, {Param(l, "norm2.bias")}, {i}U2, {i}Mean2, {i}Rstd2);");
        w.Line($"Linear({i}U2, {Param(l, "mlp.fc1.weight")}, {Param(l, "mlp.fc1.bias")}, {i}F1, rows, H, {l.Mlp});");
        w.Line($"Launch_gelu_forward(Blocks((long)rows * {l.Mlp}), Threads, {i}F1, {i}Act, (long)rows * {l.Mlp});");
        ProjectOntoResidual(w, $"{i}Act", Param(l, "mlp.fc2.weight"), Param(l, "mlp.fc2.bias"), l.Mlp, next, $"{i}X1");
        CloseForward(w);
    }

    /// <summary>Block backward: _dX holds dL/d(block output) and gains the paths through both halves.</summary>
    public override void EmitBackward(CodeWriter w, ModelPlan plan, AttentionLayerPlan l)
    {
        string i = "_l" + l.Index, v = Name(l);
        int m = l.Mlp;
        OpenBackward(w, l);
        w.Line($"uint items = Blocks((long)batch * {l.Heads} * length);");
        w.Line($"LinearBackward({i}Act, {Param(l, "mlp.fc2.weight")}, _dX, _adAct, {Param(l, "mlp.fc2.weight", "G")}, {Param(l, "mlp.fc2.bias", "G")}, rows, {m}, H);");
        w.Line($"Launch_gelu_backward(Blocks((long)rows * {m}), Threads, _adAct, {i}F1, _adF1, (long)rows * {m});");
        w.Line($"LinearBackward({i}U2, {Param(l, "mlp.fc1.weight")}, _adF1, _adU2, {Param(l, "mlp.fc1.weight", "G")}, {Param(l, "mlp.fc1.bias", "G")}, rows, H, {m});");
        w.Line("// _dX becomes dL/d(stream after attention): the residual plus the path through the second norm");
        w.Line($"LayerNormBackward({i}X1, {Param(l, "norm2.weight")}, {i}Mean2, {i}Rstd2, _adU2, _dX, {Param(l, "norm2.weight", "G")}, {Param(l, "norm2.bias", "G")}, rows);");
        w.Line($"LinearBackward({i}O, {Param(l, "mixer.out_proj.weight")}, _dX, _adO, {Param(l, "mixer.out_proj.weight", "G")}, {Param(l, "mixer.out_proj.bias", "G")}, rows, H, H);");
        w.Line($$"""
            Launch_{{v}}_backward_queries(items, Threads, {{i}}Qkv, {{i}}Probs, _adO, _adQkv, _adRow, batch, length);
            Launch_{{v}}_backward_keys(items, Threads, {{i}}Qkv, {{i}}Probs, _adO, _adQkv, _adRow, batch, length);
            // the rotation is orthogonal: its backward turns the q and k gradients back by the same angle
            Launch_{{v}}_rotate(Blocks((long)rows * H), Threads, _adQkv, rows, length, 1, 0);
            """);
        w.Line($"LinearBackward({i}U, {Param(l, "mixer.in_proj.weight")}, _adQkv, _dU, {Param(l, "mixer.in_proj.weight", "G")}, {Param(l, "mixer.in_proj.bias", "G")}, rows, H, 3 * H);");
        CloseBackward(w, l);
    }

    /// <summary>
    /// Block step, one token: x → LayerNorm → qkv, rotary at position t → attention over the stream's cache →
    /// out_proj + x = x1 → LayerNorm → MLP + x1.
    /// </summary>
    public override void EmitStep(CodeWriter w, ModelPlan plan, AttentionLayerPlan l)
    {
        string v = Name(l);
        w.Open($"private void Layer{l.Index}Step(ulong state, int t, ulong x, ulong next)");
        w.Line($"ulong cache = At(state, KeyValueCacheAt({plan.State.CacheOf(l)}, _maxLength));");
        w.Line($"Launch_layernorm_forward(1, NormThreads, x, {Param(l, "norm.weight")}, {Param(l, "norm.bias")}, _sU, _sMean, _sRstd);");
        w.Line($"Linear(_sU, {Param(l, "mixer.in_proj.weight")}, {Param(l, "mixer.in_proj.bias")}, _attnStepQkv, 1, H, 3 * H);");
        w.Line($$"""
            Launch_{{v}}_rotate(Blocks(H), Threads, _attnStepQkv, 1, 1, 0, t);
            Launch_{{v}}_step(Blocks({{l.Heads}}), Threads, _attnStepQkv, cache, _attnStepO, t, _maxLength);
            Runner.Gpu.CopyOnDevice(_attnStepX1, x, 4L * H);
            """);
        w.Line($"Linear(_attnStepO, {Param(l, "mixer.out_proj.weight")}, {Param(l, "mixer.out_proj.bias")}, _attnStepX1, 1, H, H, accumulate: true);");
        w.Line($"Launch_layernorm_forward(1, NormThreads, _attnStepX1, {Param(l, "norm2.weight")}, {Param(l, "norm2.bias")}, _attnStepU2, _sMean, _sRstd);");
        w.Line($"Linear(_attnStepU2, {Param(l, "mlp.fc1.weight")}, {Param(l, "mlp.fc1.bias")}, _attnStepF1, 1, H, {l.Mlp});");
        w.Line($"Launch_gelu_forward(Blocks({l.Mlp}), Threads, _attnStepF1, _attnStepAct, {l.Mlp}L);");
        w.Line("Runner.Gpu.CopyOnDevice(next, _attnStepX1, 4L * H);");
        w.Line($"Linear(_attnStepAct, {Param(l, "mlp.fc2.weight")}, {Param(l, "mlp.fc2.bias")}, next, 1, {l.Mlp}, H, accumulate: true);");
        w.Close();
        w.Line();
    }
}
