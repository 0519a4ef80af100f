using SsmGen.Generators.Emitters.Cuda;
using static SsmGen.Generators.Emitters.Cuda.CudaModelEmitter;

namespace SsmGen.Generators.Layers;

/// <summary>
/// The delta-rule layer, GPU backend. The q|k|v, β, gate, g and o projections and every weight gradient are cuBLAS
/// GEMMs; the convolutions, SiLU, L2 norms, gates and the gated per-head RMSNorm are element-wise kernels (one thread
/// per value, per (row, head segment) or per (row, head)). The recurrence is one block per (sequence, head) with one
/// thread per value column of the d × d state, which the thread keeps in registers: the forward needs no exchange
/// between threads (k, v and q are read by all); it saves the state at every CHUNK tokens' start. The backward
/// recomputes a chunk's states from there into global scratch and walks them backwards; the sums over the value
/// index (dq, dk, dβ, dα) go through shared memory in a fixed order. This is the token-by-token form on the device
/// (the CPU trains in the chunked WY form; both are checked against the same reference).
/// </summary>
internal sealed class CudaDeltaEmitter : GpuRendering<DeltaLayerPlan>
{
    /// <summary>Tokens between saved states, as on the CPU.</summary>
    private const int Chunk = 16;

    /// <summary>The largest head size the recurrence kernels hold: a thread's state column and the d × d reduction table.</summary>
    private const int MaxHeadSize = 64;

    private static string Name(DeltaLayerPlan l) =>
        $"delta_h{l.Heads}_d{l.D}_n{l.N}_w{l.Spec.ConvWidth}{(l.Spec.Gate ? "_gate" : "")}{(l.Spec.NegativeEigenvalues ? "_neg" : "")}";

    private static IEnumerable<DeltaLayerPlan> Variants(ModelPlan plan) => plan.Blocks<DeltaLayerPlan>().GroupBy(Name).Select(g => g.First());

    /// <summary>Head segments of a q|k|v row: h of q, n·h of k, n·h of v.</summary>
    private static int Segments(DeltaLayerPlan l) => l.C / l.D;

    /// <summary>Values of the per-row gate inputs: n·h β then h α.</summary>
    private static int GateValues(DeltaLayerPlan l) => (l.N + 1) * l.Heads;

    private static string StartFloats(DeltaLayerPlan l) => $"(long)maxBatch * ((maxLength + {Chunk - 1}) / {Chunk}) * {l.Heads * l.D * l.D}";

    public override IEnumerable<string> Unsupported(ModelPlan plan) =>
        plan.Blocks<DeltaLayerPlan>().Where(l => l.D > MaxHeadSize)
            .Select(l => $"block {l.Index} has head size {l.D}, above the GPU path's {MaxHeadSize} (a thread keeps a state column)");

    public override void EmitKernels(StringBuilder cu, ModelPlan plan)
    {
        foreach (var l in Variants(plan).Where(l => l.D <= MaxHeadSize))
        {
            string v = Name(l);
            cu.Append($$"""

// ---- delta rule, {{l.Heads}} heads of {{l.D}}, {{l.N}} Householder steps, conv {{l.Spec.ConvWidth}}{{(l.Spec.Gate ? ", gated" : "")}} ----
// Rows of q|k|v: C = h·d (q) + n·h·d (k) + n·h·d (v); the state of a head is S[key][value], d × d.

namespace {{v}}
{
    constexpr int HEADS = {{l.Heads}}, D = {{l.D}}, NH = {{l.N}}, W = {{l.Spec.ConvWidth}}, HD = {{l.Hd}}, KD = {{l.Kd}}, C = {{l.C}}, SEGS = {{Segments(l)}}, CHUNK = {{Chunk}};
    constexpr bool GATE = {{(l.Spec.Gate ? "true" : "false")}};
    constexpr float BETA_SCALE = {{(l.Spec.NegativeEigenvalues ? "2.0f" : "1.0f")}}, SCALE = {{CodeWriter.F(1 / System.Math.Sqrt(l.D))}}, NORM_EPS = 1e-6f;

    __device__ __forceinline__ float softplus_(float x) { return x > 20.0f ? x : logf(1.0f + expf(x)); }

    // This thread's value i of rows·C, its row r, channel c and the row's position t in its sequence; false past the end.
    __device__ __forceinline__ bool row_channel_(int rows, int length, long& i, long& r, int& c, int& t)
    {
        i = (long)blockIdx.x * blockDim.x + threadIdx.x;
        if (i >= (long)rows * C) return false;
        r = i / C;
        c = (int)(i % C);
        t = (int)(r % length);
        return true;
    }

    // Sum over the D threads of the block of each thread's D values c[i]: thread i gets the total of index i.
    __device__ __forceinline__ float sum_columns_(const float* c, float (*red)[D + 1])
    {
        for (int i = 0; i < D; i++) red[i][threadIdx.x] = c[i];
        __syncthreads();
        float total = 0.0f;
        for (int j = 0; j < D; j++) total += red[threadIdx.x][j];
        __syncthreads();
        return total;
    }

    // Sum over the D threads of one value each; every thread gets the total.
    __device__ __forceinline__ float sum_threads_(float x, float (*red)[D + 1])
    {
        red[0][threadIdx.x] = x;
        __syncthreads();
        float total = 0.0f;
        for (int j = 0; j < D; j++) total += red[0][j];
        __syncthreads();
        return total;
    }
}

// conv = causal depthwise convolution of the raw rows (no bias), act = SiLU(conv); one thread per (row, channel).
extern "C" __global__ void {{v}}_conv_forward(const float* __restrict__ raw, const float* __restrict__ w, float* __restrict__ conv,
    float* __restrict__ act, int rows, int length)
{
    using namespace {{v}};
    long i, r;
    int c, t;
    if (!row_channel_(rows, length, i, r, c, t)) return;
    float acc = 0.0f;
    for (int k = 0; k < W; k++)
        if (t - (W - 1) + k >= 0) acc += w[c * W + k] * raw[(r - (W - 1) + k) * C + c];
    conv[i] = acc;
    act[i] = acc * sigmoid_(acc);
}

// q and every k divided by √(Σx² + ε) per head segment, v copied; one thread per (row, segment).
extern "C" __global__ void {{v}}_normalize(const float* __restrict__ act, float* __restrict__ qkv, int rows)
{
    using namespace {{v}};
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)rows * SEGS) return;
    long at = (i / SEGS) * C + (i % SEGS) * D;
    float r = 1.0f;
    if (i % SEGS < (HD + KD) / D)
    {
        float s = 0.0f;
        for (int j = 0; j < D; j++) s += act[at + j] * act[at + j];
        r = 1.0f / sqrtf(s + NORM_EPS);
    }
    for (int j = 0; j < D; j++) qkv[at + j] = act[at + j] * r;
}

// β = BETA_SCALE·σ(b), α = exp(−exp(A_log)·softplus(a + dt_bias)) (1 without the gate); one thread per value.
extern "C" __global__ void {{v}}_gates(const float* __restrict__ bpre, const float* __restrict__ apre, const float* __restrict__ alog,
    const float* __restrict__ dtbias, float* __restrict__ beta, float* __restrict__ alpha, int rows)
{
    using namespace {{v}};
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)rows * (NH + 1) * HEADS) return;
    long r = i / ((NH + 1) * HEADS);
    int j = (int)(i % ((NH + 1) * HEADS));
    if (j < NH * HEADS) beta[r * NH * HEADS + j] = BETA_SCALE * sigmoid_(bpre[r * NH * HEADS + j]);
    else
    {
        int h = j - NH * HEADS;
        alpha[r * HEADS + h] = GATE ? expf(-expf(alog[h]) * softplus_(apre[r * HEADS + h] + dtbias[h])) : 1.0f;
    }
}

// The recurrence of each (sequence, head) — S ← α·S, then S ← S + β·k·(v − Sᵀk)ᵀ per Householder step, o = d^(−½)·Sᵀq —
// one block per (sequence, head), thread j holding column j of S. state (when not null) holds each sequence's
// head states, read at the start and written at the end (the step); starts (when not null) takes S at every
// CHUNK tokens' start.
extern "C" __global__ void {{v}}_forward(const float* __restrict__ qkv, const float* __restrict__ beta, const float* __restrict__ alpha,
    float* __restrict__ state, float* __restrict__ starts, float* __restrict__ o, int length)
{
    using namespace {{v}};
    int b = blockIdx.x / HEADS, hd = blockIdx.x % HEADS, j = threadIdx.x, chunks = (length + CHUNK - 1) / CHUNK;
    float s[D];
    for (int i = 0; i < D; i++) s[i] = state ? state[(long)blockIdx.x * D * D + i * D + j] : 0.0f;
    for (int t = 0; t < length; t++)
    {
        long row = (long)b * length + t;
        if (starts && t % CHUNK == 0)
            for (int i = 0; i < D; i++) starts[(((long)b * chunks + t / CHUNK) * HEADS + hd) * D * D + i * D + j] = s[i];
        float a = alpha[row * HEADS + hd];
        for (int i = 0; i < D; i++) s[i] *= a;
        for (int step = 0; step < NH; step++)
        {
            const float* k = qkv + row * C + HD + (step * HEADS + hd) * D;
            float sk = 0.0f;
            for (int i = 0; i < D; i++) sk += s[i] * k[i];
            float u = beta[(row * NH + step) * HEADS + hd] * (k[KD + j] - sk);
            for (int i = 0; i < D; i++) s[i] += k[i] * u;
        }
        const float* q = qkv + row * C + hd * D;
        float y = 0.0f;
        for (int i = 0; i < D; i++) y += s[i] * q[i];
        o[row * HD + hd * D + j] = SCALE * y;
    }
    if (state)
        for (int i = 0; i < D; i++) state[(long)blockIdx.x * D * D + i * D + j] = s[i];
}

// Its backward, with g = dL/dS (column j in thread j): each chunk's states again from its saved start into stages
// (per block CHUNK·(NH + 1) states: after the gate, after each step), then the tokens backwards. Writes dq, dk, dv
// into dqkv, dβ and d(log α) (every value once).
extern "C" __global__ void {{v}}_backward(const float* __restrict__ qkv, const float* __restrict__ beta, const float* __restrict__ alpha,
    const float* __restrict__ starts, const float* __restrict__ dO, float* __restrict__ stages, float* __restrict__ dqkv,
    float* __restrict__ dbeta, float* __restrict__ dlogalpha, int length)
{
    using namespace {{v}};
    __shared__ float red[D][D + 1];
    int b = blockIdx.x / HEADS, hd = blockIdx.x % HEADS, j = threadIdx.x, chunks = (length + CHUNK - 1) / CHUNK;
    float* mine = stages + (long)blockIdx.x * CHUNK * (NH + 1) * D * D;
    float g[D], s[D], c[D];
    for (int i = 0; i < D; i++) g[i] = 0.0f;
    for (int chunk = chunks - 1; chunk >= 0; chunk--)
    {
        int t0 = chunk * CHUNK, t1 = min(length, t0 + CHUNK);
        const float* start = starts + (((long)b * chunks + chunk) * HEADS + hd) * D * D;
        for (int i = 0; i < D; i++) s[i] = start[i * D + j];
        for (int t = t0; t < t1; t++)
        {
            long row = (long)b * length + t;
            float a = alpha[row * HEADS + hd];
            for (int i = 0; i < D; i++) { s[i] *= a; mine[((long)((t - t0) * (NH + 1)) * D + i) * D + j] = s[i]; }
            for (int step = 0; step < NH; step++)
            {
                const float* k = qkv + row * C + HD + (step * HEADS + hd) * D;
                float sk = 0.0f;
                for (int i = 0; i < D; i++) sk += s[i] * k[i];
                float u = beta[(row * NH + step) * HEADS + hd] * (k[KD + j] - sk);
                for (int i = 0; i < D; i++) { s[i] += k[i] * u; mine[((long)((t - t0) * (NH + 1) + step + 1) * D + i) * D + j] = s[i]; }
            }
        }
        for (int t = t1 - 1; t >= t0; t--)
        {
            long row = (long)b * length + t;
            const float* q = qkv + row * C + hd * D;
            const float* last = mine + (long)((t - t0) * (NH + 1) + NH) * D * D;
            // o = d^(−½)·Sᵀq: dq = d^(−½)·S·do, dS += d^(−½)·q·doᵀ
            float d = SCALE * dO[row * HD + hd * D + j];
            for (int i = 0; i < D; i++) { c[i] = last[i * D + j] * d; g[i] += q[i] * d; }
            dqkv[row * C + hd * D + j] = sum_columns_(c, red);
            for (int step = NH - 1; step >= 0; step--)
            {
                const float* prev = mine + (long)((t - t0) * (NH + 1) + step) * D * D;
                const float* k = qkv + row * C + HD + (step * HEADS + hd) * D;
                float bt = beta[(row * NH + step) * HEADS + hd], gk = 0.0f, pk = k[KD + j];
                for (int i = 0; i < D; i++) { gk += g[i] * k[i]; pk -= prev[i * D + j] * k[i]; }
                float db = sum_threads_(gk * pk, red);
                if (j == 0) dbeta[(row * NH + step) * HEADS + hd] = db;
                dqkv[row * C + HD + KD + (step * HEADS + hd) * D + j] = bt * gk;
                // dk = β·(G·(v − Pᵀk) − P·(Gᵀk)); then dP = (I − β·k·kᵀ)·G
                for (int i = 0; i < D; i++) c[i] = bt * (g[i] * pk - prev[i * D + j] * gk);
                dqkv[row * C + HD + (step * HEADS + hd) * D + j] = sum_columns_(c, red);
                for (int i = 0; i < D; i++) g[i] -= bt * k[i] * gk;
            }
            // the gate: α·S_(t−1)
            float a = alpha[row * HEADS + hd], ga = 0.0f;
            const float* before = t > t0 ? mine + (long)((t - t0 - 1) * (NH + 1) + NH) * D * D : start;
            for (int i = 0; i < D; i++) ga += g[i] * before[i * D + j];
            float da = sum_threads_(ga, red);
            if (j == 0) dlogalpha[row * HEADS + hd] = da * a;
            for (int i = 0; i < D; i++) g[i] *= a;
        }
    }
}

// β and α back to their inputs: db = dβ·BETA_SCALE·σ(1 − σ); with the gate, log α = −exp(A_log)·softplus(a + dt_bias)
// gives da (also dL/d dt_bias per row) and dL/dA_log per row (summed over rows by the caller).
extern "C" __global__ void {{v}}_gates_backward(const float* __restrict__ beta, const float* __restrict__ apre, const float* __restrict__ alog,
    const float* __restrict__ dtbias, const float* __restrict__ dbeta, const float* __restrict__ dlogalpha, float* __restrict__ dbpre,
    float* __restrict__ dapre, float* __restrict__ dalog_rows, int rows)
{
    using namespace {{v}};
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)rows * (NH + 1) * HEADS) return;
    long r = i / ((NH + 1) * HEADS);
    int j = (int)(i % ((NH + 1) * HEADS));
    if (j < NH * HEADS)
    {
        float sg = beta[r * NH * HEADS + j] / BETA_SCALE;
        dbpre[r * NH * HEADS + j] = dbeta[r * NH * HEADS + j] * BETA_SCALE * sg * (1.0f - sg);
    }
    else if (GATE)
    {
        int h = j - NH * HEADS;
        float pre = apre[r * HEADS + h] + dtbias[h], rate = expf(alog[h]), dl = dlogalpha[r * HEADS + h];
        dalog_rows[r * HEADS + h] = dl * -rate * softplus_(pre);
        dapre[r * HEADS + h] = dl * -rate * sigmoid_(pre);
    }
}

// The L2 norms and SiLU backwards, in place: dqkv (dL/d normalized q|k|v) becomes dL/d conv. One thread per (row, segment).
extern "C" __global__ void {{v}}_normalize_backward(const float* __restrict__ conv, const float* __restrict__ act, const float* __restrict__ qkv,
    float* __restrict__ dqkv, int rows)
{
    using namespace {{v}};
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)rows * SEGS) return;
    long at = (i / SEGS) * C + (i % SEGS) * D;
    float r = 1.0f, yd = 0.0f;
    bool normed = i % SEGS < (HD + KD) / D;
    if (normed)
    {
        float s = 0.0f;
        for (int j = 0; j < D; j++) { s += act[at + j] * act[at + j]; yd += qkv[at + j] * dqkv[at + j]; }
        r = 1.0f / sqrtf(s + NORM_EPS);
    }
    for (int j = 0; j < D; j++)
    {
        float dx = normed ? r * (dqkv[at + j] - qkv[at + j] * yd) : dqkv[at + j], x = conv[at + j], sg = sigmoid_(x);
        dqkv[at + j] = dx * sg * (1.0f + x * (1.0f - sg));
    }
}

// dL/d raw = the convolution's transpose of dL/d conv; one thread per (row, channel).
extern "C" __global__ void {{v}}_conv_backward_input(const float* __restrict__ dconv, const float* __restrict__ w, float* __restrict__ draw,
    int rows, int length)
{
    using namespace {{v}};
    long i, r;
    int c, t;
    if (!row_channel_(rows, length, i, r, c, t)) return;
    float acc = 0.0f;
    for (int later = 0; later < W; later++) // the output `later` rows on read this row through tap W − 1 − later
        if (t + later < length) acc += dconv[(r + later) * C + c] * w[c * W + W - 1 - later];
    draw[i] = acc;
}

// The convolution weights' gradient per chunk of ROW_CHUNK rows: partial[chunk, c·W + k]; one thread per (chunk, channel).
extern "C" __global__ void {{v}}_conv_weight_partials(const float* __restrict__ raw, const float* __restrict__ dconv, float* __restrict__ partial,
    int rows, int length)
{
    using namespace {{v}};
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    int chunks = (rows + ROW_CHUNK - 1) / ROW_CHUNK;
    if (i >= (long)chunks * C) return;
    int chunk = (int)(i / C), c = (int)(i % C);
    float acc[W];
    for (int k = 0; k < W; k++) acc[k] = 0.0f;
    long end = (long)(chunk + 1) * ROW_CHUNK < rows ? (long)(chunk + 1) * ROW_CHUNK : rows;
    for (long r = (long)chunk * ROW_CHUNK; r < end; r++)
    {
        int t = (int)(r % length);
        float g = dconv[r * C + c];
        for (int k = 0; k < W; k++)
            if (t - (W - 1) + k >= 0) acc[k] += g * raw[(r - (W - 1) + k) * C + c];
    }
    for (int k = 0; k < W; k++) partial[(long)chunk * C * W + c * W + k] = acc[k];
}

// Per head: normed = RMSNorm(o)·w (ε 1e-5), gated = normed·SiLU(g); one thread per (row, head).
extern "C" __global__ void {{v}}_out_forward(const float* __restrict__ o, const float* __restrict__ w, const float* __restrict__ g,
    float* __restrict__ rstd, float* __restrict__ normed, float* __restrict__ gated, int rows)
{
    using namespace {{v}};
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)rows * HEADS) return;
    long at = i * D;
    float s = 0.0f;
    for (int j = 0; j < D; j++) s += o[at + j] * o[at + j];
    float rs = 1.0f / sqrtf(s / D + 1e-5f);
    rstd[i] = rs;
    for (int j = 0; j < D; j++)
    {
        float y = o[at + j] * rs * w[j], z = g[at + j];
        normed[at + j] = y;
        gated[at + j] = y * z * sigmoid_(z);
    }
}

// Its backward from dgated: dg, do, and dw's terms per (row, head, j) for the caller's column sums.
extern "C" __global__ void {{v}}_out_backward(const float* __restrict__ o, const float* __restrict__ w, const float* __restrict__ g,
    const float* __restrict__ rstd, const float* __restrict__ normed, const float* __restrict__ dgated, float* __restrict__ dout,
    float* __restrict__ dg, float* __restrict__ dw_rows, int rows)
{
    using namespace {{v}};
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)rows * HEADS) return;
    long at = i * D;
    float rs = rstd[i], m = 0.0f;
    for (int j = 0; j < D; j++)
    {
        float z = g[at + j], sg = sigmoid_(z), dy = dgated[at + j] * z * sg;   // dL/d normed
        dg[at + j] = dgated[at + j] * normed[at + j] * sg * (1.0f + z * (1.0f - sg));
        dw_rows[at + j] = dy * o[at + j] * rs;
        m += dy * w[j] * o[at + j];
    }
    float k = rs * rs * m / D;
    for (int j = 0; j < D; j++)
    {
        float dy = dgated[at + j] * g[at + j] * sigmoid_(g[at + j]);
        dout[at + j] = rs * (dy * w[j] - o[at + j] * k);
    }
}

// One token of the convolution for a stream: conv and act from the raw row and the window of the last W−1 raw rows
// (oldest first), which then moves on by one; one thread per channel.
extern "C" __global__ void {{v}}_conv_step(const float* __restrict__ raw, const float* __restrict__ w, float* __restrict__ window,
    float* __restrict__ conv, float* __restrict__ act)
{
    using namespace {{v}};
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc = w[c * W + W - 1] * raw[c];
    for (int k = 0; k < W - 1; k++) acc += w[c * W + k] * window[k * C + c];
    for (int k = 0; k + 1 < W - 1; k++) window[k * C + c] = window[(k + 1) * C + c];
    if (W > 1) window[(W - 2) * C + c] = raw[c];
    conv[c] = acc;
    act[c] = acc * sigmoid_(acc);
}

""");
        }
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Field, string Floats)> Buffers(DeltaLayerPlan l)
    {
        string i = "_l" + l.Index;
        foreach (string f in new[] { "Raw", "Conv", "Act", "Qkv" }) yield return ($"{i}{f}", $"rows * {l.C}");
        yield return ($"{i}Bp", $"rows * {l.N * l.Heads}");
        yield return ($"{i}Beta", $"rows * {l.N * l.Heads}");
        yield return ($"{i}Ap", $"rows * {l.Heads}");
        yield return ($"{i}Alpha", $"rows * {l.Heads}");
        yield return ($"{i}ORstd", $"rows * {l.Heads}");
        foreach (string f in new[] { "Gp", "O", "Normed", "Gated" }) yield return ($"{i}{f}", $"rows * {l.Hd}");
        yield return ($"{i}Starts", StartFloats(l));
    }

    /// <summary>Scratch shared by the delta blocks: the backward's gradients of the block's intermediates and the recomputed chunk states; the step's rows.</summary>
    public override IEnumerable<(string Field, string Floats, bool Training)> Scratch(ModelPlan plan)
    {
        var ls = plan.Blocks<DeltaLayerPlan>().Where(l => l.D <= MaxHeadSize).ToList();
        if (ls.Count == 0) yield break;
        int c = ls.Max(l => l.C), hd = ls.Max(l => l.Hd), nh = ls.Max(l => l.N * l.Heads), h = ls.Max(l => l.Heads);
        foreach (var (f, floats) in new[] { ("_dlQkv", c), ("_dlRaw", c), ("_dlGated", hd), ("_dlO", hd), ("_dlG", hd), ("_dlNormW", hd), ("_dlBeta", nh), ("_dlBp", nh), ("_dlLogAlpha", h), ("_dlAp", h), ("_dlALog", h) })
            yield return (f, $"rows * {floats}", true);
        yield return ("_dlStages", $"(long)maxBatch * {ls.Max(l => (long)l.Heads * Chunk * (l.N + 1) * l.D * l.D)}", true);
        foreach (var (f, floats) in new[] { ("_dlStepRaw", c), ("_dlStepConv", c), ("_dlStepAct", c), ("_dlStepQkv", c), ("_dlStepBp", nh), ("_dlStepBeta", nh), ("_dlStepAp", h), ("_dlStepAlpha", h), ("_dlStepRstd", h), ("_dlStepG", hd), ("_dlStepO", hd), ("_dlStepNormed", hd), ("_dlStepGated", hd) })
            yield return (f, LayerArgs.Text(floats), false);
    }

    /// <summary>The widest column sum a delta block asks of the shared partial-sum buffer: its convolution weights.</summary>
    public override int MaxColumnWidth(ModelPlan plan) => plan.Blocks<DeltaLayerPlan>().Select(l => System.Math.Max(l.C * l.Spec.ConvWidth, l.D)).DefaultIfEmpty(1).Max();

    private static string M(DeltaLayerPlan l, string name, string buf = "P") => Param(l, "mixer." + name, buf);

    private static string GateParam(DeltaLayerPlan l, string name, string buf = "P") => l.Spec.Gate ? M(l, name, buf) : "0UL";

    /// <summary>The input projections of u (rows of it) into the q|k|v, β, gate and g rows.</summary>
    private static void Projections(CodeWriter w, DeltaLayerPlan l, string u, string rows, string raw, string bp, string ap, string gp)
    {
        w.Line($"Linear({u}, {M(l, "q_proj.weight")}, 0UL, {raw}, {rows}, H, {l.C}); // q_proj, k_proj and v_proj lie back to back");
        w.Line($"Linear({u}, {M(l, "b_proj.weight")}, 0UL, {bp}, {rows}, H, {l.N * l.Heads});");
        if (l.Spec.Gate) w.Line($"Linear({u}, {M(l, "a_proj.weight")}, 0UL, {ap}, {rows}, H, {l.Heads});");
        w.Line($"Linear({u}, {M(l, "g_proj.weight")}, 0UL, {gp}, {rows}, H, {l.Hd});");
    }

    /// <summary>Block forward: x → RMSNorm → projections → conv, SiLU, L2 norms, gates → recurrence → gated RMSNorm → o_proj + x.</summary>
    public override void EmitForward(CodeWriter w, ModelPlan plan, DeltaLayerPlan l)
    {
        string i = "_l" + l.Index, v = Name(l), x = $"_l{l.Index}X", next = ModelEmitter.Next(plan, l);
        OpenForward(w, l, rms: true);
        Projections(w, l, $"{i}U", "rows", $"{i}Raw", $"{i}Bp", $"{i}Ap", $"{i}Gp");
        w.Line($$"""
            Launch_{{v}}_conv_forward(Blocks((long)rows * {{l.C}}), Threads, {{i}}Raw, {{M(l, "q_conv1d.weight")}}, {{i}}Conv, {{i}}Act, rows, length);
            Launch_{{v}}_normalize(Blocks((long)rows * {{Segments(l)}}), Threads, {{i}}Act, {{i}}Qkv, rows);
            Launch_{{v}}_gates(Blocks((long)rows * {{GateValues(l)}}), Threads, {{i}}Bp, {{i}}Ap, {{GateParam(l, "A_log")}}, {{GateParam(l, "dt_bias")}}, {{i}}Beta, {{i}}Alpha, rows);
            Launch_{{v}}_forward((uint)(batch * {{l.Heads}}), {{l.D}}, {{i}}Qkv, {{i}}Beta, {{i}}Alpha, 0UL, {{i}}Starts, {{i}}O, length);
            Launch_{{v}}_out_forward(Blocks((long)rows * {{l.Heads}}), Threads, {{i}}O, {{M(l, "o_norm.weight")}}, {{i}}Gp, {{i}}ORstd, {{i}}Normed, {{i}}Gated, rows);
            """);
        ProjectOntoResidual(w, $"{i}Gated", M(l, "o_proj.weight"), "0UL", l.Hd, next, x);
        CloseForward(w);
    }

    /// <summary>Block backward: _dX holds dL/d(block output) and gains the path through the block.</summary>
    public override void EmitBackward(CodeWriter w, ModelPlan plan, DeltaLayerPlan l)
    {
        string i = "_l" + l.Index, v = Name(l);
        OpenBackward(w, l);
        w.Line($$"""
            int rowChunks = (rows + RowChunk - 1) / RowChunk;
            LinearBackward({{i}}Gated, {{M(l, "o_proj.weight")}}, _dX, _dlGated, {{M(l, "o_proj.weight", "G")}}, 0UL, rows, {{l.Hd}}, H);
            Launch_{{v}}_out_backward(Blocks((long)rows * {{l.Heads}}), Threads, {{i}}O, {{M(l, "o_norm.weight")}}, {{i}}Gp, {{i}}ORstd, {{i}}Normed, _dlGated, _dlO, _dlG, _dlNormW, rows);
            ColumnSums(_dlNormW, {{M(l, "o_norm.weight", "G")}}, rows * {{l.Heads}}, {{l.D}});
            Launch_{{v}}_backward((uint)(batch * {{l.Heads}}), {{l.D}}, {{i}}Qkv, {{i}}Beta, {{i}}Alpha, {{i}}Starts, _dlO, _dlStages, _dlQkv, _dlBeta, _dlLogAlpha, length);
            Launch_{{v}}_gates_backward(Blocks((long)rows * {{GateValues(l)}}), Threads, {{i}}Beta, {{i}}Ap, {{GateParam(l, "A_log")}}, {{GateParam(l, "dt_bias")}}, _dlBeta, _dlLogAlpha, _dlBp, _dlAp, _dlALog, rows);
            """);
        if (l.Spec.Gate)
            w.Line($$"""
                ColumnSums(_dlALog, {{M(l, "A_log", "G")}}, rows, {{l.Heads}});
                ColumnSums(_dlAp, {{M(l, "dt_bias", "G")}}, rows, {{l.Heads}});
                """);
        w.Line($$"""
            Launch_{{v}}_normalize_backward(Blocks((long)rows * {{Segments(l)}}), Threads, {{i}}Conv, {{i}}Act, {{i}}Qkv, _dlQkv, rows);
            Launch_{{v}}_conv_backward_input(Blocks((long)rows * {{l.C}}), Threads, _dlQkv, {{M(l, "q_conv1d.weight")}}, _dlRaw, rows, length);
            Launch_{{v}}_conv_weight_partials(Blocks((long)rowChunks * {{l.C}}), Threads, {{i}}Raw, _dlQkv, _partial, rows, length);
            ColumnFinish(_partial, {{M(l, "q_conv1d.weight", "G")}}, rowChunks, {{l.C * l.Spec.ConvWidth}});
            LinearBackward({{i}}U, {{M(l, "q_proj.weight")}}, _dlRaw, _dU, {{M(l, "q_proj.weight", "G")}}, 0UL, rows, H, {{l.C}});
            LinearBackward({{i}}U, {{M(l, "b_proj.weight")}}, _dlBp, _dU, {{M(l, "b_proj.weight", "G")}}, 0UL, rows, H, {{l.N * l.Heads}}, accumulate: true);
            """);
        if (l.Spec.Gate) w.Line($"LinearBackward({i}U, {M(l, "a_proj.weight")}, _dlAp, _dU, {M(l, "a_proj.weight", "G")}, 0UL, rows, H, {l.Heads}, accumulate: true);");
        w.Line($"LinearBackward({i}U, {M(l, "g_proj.weight")}, _dlG, _dU, {M(l, "g_proj.weight", "G")}, 0UL, rows, H, {l.Hd}, accumulate: true);");
        CloseBackward(w, l, rms: true);
    }

    /// <summary>Block step, one token: the forward's kernels over one position, the convolution window and head states in the stream's state.</summary>
    public override void EmitStep(CodeWriter w, ModelPlan plan, DeltaLayerPlan l)
    {
        string v = Name(l);
        w.Open($"private void Layer{l.Index}Step(ulong state, int t, ulong x, ulong next)");
        w.Line($"ulong window = At(state, {plan.State.Of(l, "state").Const}), heads = window + 4UL * {(l.Spec.ConvWidth - 1) * l.C};");
        w.Line(NormForward(true, l.Prefix + "norm", "x", "_sU", "_sMean", "_sRstd", "1"));
        Projections(w, l, "_sU", "1", "_dlStepRaw", "_dlStepBp", "_dlStepAp", "_dlStepG");
        w.Line($$"""
            Launch_{{v}}_conv_step(Blocks({{l.C}}), Threads, _dlStepRaw, {{M(l, "q_conv1d.weight")}}, window, _dlStepConv, _dlStepAct);
            Launch_{{v}}_normalize(Blocks({{Segments(l)}}), Threads, _dlStepAct, _dlStepQkv, 1);
            Launch_{{v}}_gates(Blocks({{GateValues(l)}}), Threads, _dlStepBp, _dlStepAp, {{GateParam(l, "A_log")}}, {{GateParam(l, "dt_bias")}}, _dlStepBeta, _dlStepAlpha, 1);
            Launch_{{v}}_forward({{l.Heads}}, {{l.D}}, _dlStepQkv, _dlStepBeta, _dlStepAlpha, heads, 0UL, _dlStepO, 1);
            Launch_{{v}}_out_forward(Blocks({{l.Heads}}), Threads, _dlStepO, {{M(l, "o_norm.weight")}}, _dlStepG, _dlStepRstd, _dlStepNormed, _dlStepGated, 1);
            Runner.Gpu.CopyOnDevice(next, x, 4L * H);
            Linear(_dlStepGated, {{M(l, "o_proj.weight")}}, 0UL, next, 1, {{l.Hd}}, H, accumulate: true);
            """);
        w.Close();
        w.Line();
    }
}
