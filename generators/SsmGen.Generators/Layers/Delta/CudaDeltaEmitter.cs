using SsmGen.Generators.Emitters.Cuda;
using static SsmGen.Generators.Emitters.Cuda.CudaModelEmitter;

namespace SsmGen.Generators.Layers;

/// <summary>
/// The delta-rule layer, GPU backend. The q|k|v, β, gate, g and o projections and every weight gradient are cuBLAS
/// GEMMs; the convolutions, SiLU, L2 norms, gates and the gated per-head RMSNorm are element-wise kernels (one thread
/// per value, per (row, head segment) or per (row, head)). Training runs the recurrence in the chunked WY form, as the
/// CPU does: per chunk of tokens a unit lower-triangular system and products with it, in passes that run every chunk
/// at once but one (the chunks' start states, chunk after chunk per (sequence, head)); the backward mirrors them.
/// Sums run in a fixed order (no atomics). The step goes token by token with a thread per state column.
/// </summary>
internal sealed class CudaDeltaEmitter : GpuRendering<DeltaLayerPlan>
{
    /// <summary>The most Householder rows in a chunk: the chunk's triangular tables and per-row vectors fit one block's shared memory.</summary>
    private const int MaxRows = 32;

    /// <summary>The largest head size the kernels hold: a thread's state column, a block's (rows × head size) tables.</summary>
    private const int MaxHeadSize = 64;

    /// <summary>Tokens per chunk on the device: as many as fill <see cref="MaxRows"/> rows (at least 4: <see cref="DeltaKind.MaxSteps"/>).</summary>
    private static int ChunkTokens(DeltaLayerPlan l) => System.Math.Max(1, MaxRows / l.N);

    private static int Rows(DeltaLayerPlan l) => ChunkTokens(l) * l.N;

    private static string Name(DeltaLayerPlan l) =>
        $"delta_h{l.Heads}_d{l.D}_n{l.N}_w{l.Spec.ConvWidth}{(l.Spec.Gate ? "_gate" : "")}{(l.Spec.NegativeEigenvalues ? "_neg" : "")}";

    private static IEnumerable<DeltaLayerPlan> Variants(ModelPlan plan) => plan.Blocks<DeltaLayerPlan>().GroupBy(Name).Select(g => g.First());

    /// <summary>Head segments of a q|k|v row: h of q, n·h of k, n·h of v.</summary>
    private static int Segments(DeltaLayerPlan l) => l.C / l.D;

    /// <summary>Values of the per-row gate inputs: n·h β then h α.</summary>
    private static int GateValues(DeltaLayerPlan l) => (l.N + 1) * l.Heads;

    /// <summary>Floats of a per-chunk table of <paramref name="perChunk"/> floats for every (sequence, chunk, head) of the largest call.</summary>
    private static string ChunkFloats(DeltaLayerPlan l, int perChunk) =>
        $"(long)maxBatch * ((maxLength + {ChunkTokens(l) - 1}) / {ChunkTokens(l)}) * {(long)l.Heads * perChunk}";

    /// <summary>The chunk blocks of a call, as a C# expression in batch and length.</summary>
    private static string ChunkBlocks(DeltaLayerPlan l) => $"(uint)(batch * ((length + {ChunkTokens(l) - 1}) / {ChunkTokens(l)}) * {l.Heads})";

    public override IEnumerable<string> Unsupported(ModelPlan plan) =>
        plan.Blocks<DeltaLayerPlan>().Where(l => !Supported(l))
            .Select(l => $"block {l.Index} has head size {l.D}, above the GPU path's {MaxHeadSize} (a thread keeps a state column)");

    private static bool Supported(DeltaLayerPlan l) => l.D <= MaxHeadSize;

    public override void EmitKernels(StringBuilder cu, ModelPlan plan)
    {
        foreach (var l in Variants(plan).Where(Supported))
        {
            string v = Name(l);
            cu.Append($$"""

// ---- delta rule, {{l.Heads}} heads of {{l.D}}, {{l.N}} Householder steps, conv {{l.Spec.ConvWidth}}{{(l.Spec.Gate ? ", gated" : "")}} ----
// Rows of q|k|v: C = h·d (q) + n·h·d (k) + n·h·d (v); the state of a head is S[key][value], d × d.

namespace {{v}}
{
    constexpr int HEADS = {{l.Heads}}, D = {{l.D}}, NH = {{l.N}}, W = {{l.Spec.ConvWidth}}, HD = {{l.Hd}}, KD = {{l.Kd}}, C = {{l.C}}, SEGS = {{Segments(l)}}, CT = {{ChunkTokens(l)}}, ROWS = CT * NH;
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

    // Where the rows of one (sequence, chunk, head) block lie: block index (b·chunks + chunk)·HEADS + hd, its first
    // token's row row0, its tokens and R = tokens·NH Householder rows (row r: token r / NH, step r % NH).
    struct chunk_ { int hd, tokens, rows; long row0, at; };

    __device__ __forceinline__ chunk_ chunk_of_(int length)
    {
        int chunks = (length + CT - 1) / CT, bc = blockIdx.x / HEADS, t0 = (bc % chunks) * CT, tokens = min(CT, length - t0);
        return chunk_{ (int)(blockIdx.x % HEADS), tokens, tokens * NH, (long)(bc / chunks) * length + t0, (long)blockIdx.x };
    }

    __device__ __forceinline__ const float* key_(const chunk_& ch, const float* qkv, int r) { return qkv + (ch.row0 + r / NH) * C + HD + ((r % NH) * HEADS + ch.hd) * D; }
    __device__ __forceinline__ const float* query_(const chunk_& ch, const float* qkv, int t) { return qkv + (ch.row0 + t) * C + ch.hd * D; }
    __device__ __forceinline__ long beta_at_(const chunk_& ch, int r) { return ((ch.row0 + r / NH) * NH + r % NH) * HEADS + ch.hd; }

    __device__ __forceinline__ float dot_(const float* a, const float* b)
    {
        float s = 0.0f;
        for (int i = 0; i < D; i++) s += a[i] * b[i];
        return s;
    }

    // A chunk's gates into shared memory: the row gate (the token's α on its first row, 1 on the others),
    // P[r] = ∏ gates of rows 0…r and Dm[r][c] = ∏ gates of rows c+1…r, formed as products so that α = 0 stays exact.
    __device__ void decays_(const chunk_& ch, const float* alpha, float* gate, float* P, float (*Dm)[ROWS])
    {
        for (int r = threadIdx.x; r < ch.rows; r += blockDim.x) gate[r] = r % NH == 0 ? alpha[(ch.row0 + r / NH) * HEADS + ch.hd] : 1.0f;
        __syncthreads();
        for (int r = threadIdx.x; r < ch.rows; r += blockDim.x)
        {
            Dm[r][r] = 1.0f;
            for (int c = r - 1; c >= 0; c--) Dm[r][c] = Dm[r][c + 1] * gate[c + 1];
            P[r] = Dm[r][0] * gate[0];
        }
        __syncthreads();
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

// One token of each (sequence, head) for the step: S ← α·S, then S ← S + β·k·(v − Sᵀk)ᵀ per Householder step,
// o = d^(−½)·Sᵀq; one block per (stream, head), thread j holding column j of the stream's state.
extern "C" __global__ void {{v}}_step(const float* __restrict__ qkv, const float* __restrict__ beta, const float* __restrict__ alpha,
    float* __restrict__ state, float* __restrict__ o)
{
    using namespace {{v}};
    int hd = blockIdx.x, j = threadIdx.x;
    float s[D];
    for (int i = 0; i < D; i++) s[i] = state[(long)hd * D * D + i * D + j] * alpha[hd];
    for (int step = 0; step < NH; step++)
    {
        const float* k = qkv + HD + (step * HEADS + hd) * D;
        float u = beta[step * HEADS + hd] * (k[KD + j] - dot_(s, k));
        for (int i = 0; i < D; i++) s[i] += k[i] * u;
    }
    o[hd * D + j] = SCALE * dot_(s, qkv + hd * D);
    for (int i = 0; i < D; i++) state[(long)hd * D * D + i * D + j] = s[i];
}

// Training runs the recurrence in the chunked WY form, over chunks of CT tokens (R = CT·NH Householder rows), in
// three passes: chunk_prepare (every chunk at once), chunk_states (chunk after chunk per (sequence, head): the only
// sequential pass) and chunk_outputs (every chunk at once). With the gates' products P and Dm of a chunk, its
// start state S₀ and L[r][c] = β_r·Dm[r][c]·(k_r·k_c) for c < r, the pseudo-values U solve (I + L)·U = diag(β)·V −
// diag(β·P)·K·S₀, i.e. U = Ũ − W̃·S₀ with Ũ = (I + L)⁻¹·diag(β)·V and W̃ = (I + L)⁻¹·diag(β·P)·K, which need no S₀;
// then o_t = d^(−½)·(P_r·S₀ᵀq_t + Σ_(c≤r) Dm[r][c]·(k_c·q_t)·U_c) at the token's last row r, and
// S_end = P_last·S₀ + Σ_c Dm[last][c]·k_c·U_cᵀ. Per chunk the passes keep: lower (L), aqk[t][c] = Dm[r_t][c]·(k_c·q_t),
// decay (P, then Dm[last][·]), wt (W̃) and u (Ũ, overwritten by U).

// One block per (sequence, chunk, head) and one thread per column: L, aqk and the gates' products, then W̃ and Ũ by
// forward substitution, column by column.
extern "C" __global__ void {{v}}_chunk_prepare(const float* __restrict__ qkv, const float* __restrict__ beta, const float* __restrict__ alpha,
    float* __restrict__ lower, float* __restrict__ aqk, float* __restrict__ decay, float* __restrict__ wt, float* __restrict__ u, int length)
{
    using namespace {{v}};
    __shared__ float gate[ROWS], P[ROWS], Dm[ROWS][ROWS], L[ROWS][ROWS];
    chunk_ ch = chunk_of_(length);
    int R = ch.rows, j = threadIdx.x;
    decays_(ch, alpha, gate, P, Dm);
    for (int e = threadIdx.x; e < R * R; e += blockDim.x)
    {
        int r = e / R, c = e % R;
        L[r][c] = c < r ? beta[beta_at_(ch, r)] * Dm[r][c] * dot_(key_(ch, qkv, r), key_(ch, qkv, c)) : 0.0f;
        lower[ch.at * ROWS * ROWS + r * ROWS + c] = L[r][c];
    }
    for (int e = threadIdx.x; e < ch.tokens * R; e += blockDim.x)
    {
        int t = e / R, c = e % R;
        aqk[ch.at * CT * ROWS + t * ROWS + c] = c <= t * NH + NH - 1 ? Dm[t * NH + NH - 1][c] * dot_(key_(ch, qkv, c), query_(ch, qkv, t)) : 0.0f;
    }
    for (int r = threadIdx.x; r < R; r += blockDim.x)
    {
        decay[ch.at * 2 * ROWS + r] = P[r];
        decay[ch.at * 2 * ROWS + ROWS + r] = Dm[R - 1][r];
    }
    __syncthreads();
    float w[ROWS], x[ROWS];
    for (int r = 0; r < R; r++)
    {
        const float* k = key_(ch, qkv, r);
        float b = beta[beta_at_(ch, r)];
        w[r] = b * P[r] * k[j];
        x[r] = b * k[KD + j];
        for (int c = 0; c < r; c++) { w[r] -= L[r][c] * w[c]; x[r] -= L[r][c] * x[c]; }
        wt[(ch.at * ROWS + r) * D + j] = w[r];
        u[(ch.at * ROWS + r) * D + j] = x[r];
    }
}

// One block per (sequence, head), thread j holding column j of S, chunk after chunk: S saved in starts, U = Ũ − W̃·S
// written over Ũ, S ← S_end.
extern "C" __global__ void {{v}}_chunk_states(const float* __restrict__ qkv, const float* __restrict__ decay, const float* __restrict__ wt,
    float* __restrict__ u, float* __restrict__ starts, int length)
{
    using namespace {{v}};
    int b = blockIdx.x / HEADS, hd = blockIdx.x % HEADS, j = threadIdx.x, chunks = (length + CT - 1) / CT;
    float s[D], uc[ROWS];
    for (int i = 0; i < D; i++) s[i] = 0.0f;
    for (int chunk = 0; chunk < chunks; chunk++)
    {
        long at = ((long)b * chunks + chunk) * HEADS + hd, row0 = (long)b * length + chunk * CT;
        int R = min(CT, length - chunk * CT) * NH;
        for (int i = 0; i < D; i++) starts[at * D * D + i * D + j] = s[i];
        for (int r = 0; r < R; r++)
        {
            uc[r] = u[(at * ROWS + r) * D + j] - dot_(wt + (at * ROWS + r) * D, s);
            u[(at * ROWS + r) * D + j] = uc[r];
        }
        for (int i = 0; i < D; i++) s[i] *= decay[at * 2 * ROWS + R - 1];
        for (int r = 0; r < R; r++)
        {
            const float* k = qkv + (row0 + r / NH) * C + HD + ((r % NH) * HEADS + hd) * D;
            float f = decay[at * 2 * ROWS + ROWS + r] * uc[r];
            for (int i = 0; i < D; i++) s[i] += k[i] * f;
        }
    }
}

// One block per (sequence, chunk, head), thread j: column j of the chunk's outputs from S₀ and U.
extern "C" __global__ void {{v}}_chunk_outputs(const float* __restrict__ qkv, const float* __restrict__ aqk, const float* __restrict__ decay,
    const float* __restrict__ u, const float* __restrict__ starts, float* __restrict__ o, int length)
{
    using namespace {{v}};
    chunk_ ch = chunk_of_(length);
    int j = threadIdx.x;
    const float* s0 = starts + ch.at * D * D;
    for (int t = 0; t < ch.tokens; t++)
    {
        const float* q = query_(ch, qkv, t);
        int r = t * NH + NH - 1;
        float y = 0.0f;
        for (int i = 0; i < D; i++) y += q[i] * s0[i * D + j];
        y *= decay[ch.at * 2 * ROWS + r];
        for (int c = 0; c <= r; c++) y += aqk[ch.at * CT * ROWS + t * ROWS + c] * u[(ch.at * ROWS + c) * D + j];
        o[(ch.row0 + t) * HD + ch.hd * D + j] = SCALE * y;
    }
}

// The backward's sequential pass, one block per (sequence, head), thread j holding column j of dS = dL/dS, from the
// last chunk to the first: dS at the chunk's end saved in ends; dU (from S_end and the outputs), then dRhs = (I + L)⁻ᵀ·dU
// by back substitution, saved in dr; then dS ← dL/dS₀ = P_last·dS + d^(−½)·Σ_t P_(r_t)·q_t·do_tᵀ − Σ_r β_r·P_r·k_r·dRhs_rᵀ.
extern "C" __global__ void {{v}}_chunk_state_grads(const float* __restrict__ qkv, const float* __restrict__ beta, const float* __restrict__ lower,
    const float* __restrict__ aqk, const float* __restrict__ decay, const float* __restrict__ dO, float* __restrict__ ends, float* __restrict__ dr, int length)
{
    using namespace {{v}};
    int b = blockIdx.x / HEADS, hd = blockIdx.x % HEADS, j = threadIdx.x, chunks = (length + CT - 1) / CT;
    float g[D], x[ROWS];
    for (int i = 0; i < D; i++) g[i] = 0.0f;
    for (int chunk = chunks - 1; chunk >= 0; chunk--)
    {
        long at = ((long)b * chunks + chunk) * HEADS + hd, row0 = (long)b * length + chunk * CT;
        int tokens = min(CT, length - chunk * CT), R = tokens * NH;
        const float* P = decay + at * 2 * ROWS;
        for (int i = 0; i < D; i++) ends[at * D * D + i * D + j] = g[i];
        for (int c = 0; c < R; c++)
        {
            x[c] = P[ROWS + c] * dot_(qkv + (row0 + c / NH) * C + HD + ((c % NH) * HEADS + hd) * D, g);
            for (int t = c / NH; t < tokens; t++) x[c] += SCALE * aqk[at * CT * ROWS + t * ROWS + c] * dO[(row0 + t) * HD + hd * D + j];
        }
        for (int r = R - 1; r >= 0; r--)
        {
            for (int c = r + 1; c < R; c++) x[r] -= lower[at * ROWS * ROWS + c * ROWS + r] * x[c];
            dr[(at * ROWS + r) * D + j] = x[r];
        }
        for (int i = 0; i < D; i++) g[i] *= P[R - 1];
        for (int t = 0; t < tokens; t++)
        {
            const float* q = qkv + (row0 + t) * C + hd * D;
            float f = SCALE * P[t * NH + NH - 1] * dO[(row0 + t) * HD + hd * D + j];
            for (int i = 0; i < D; i++) g[i] += q[i] * f;
        }
        for (int r = 0; r < R; r++)
        {
            const float* k = qkv + (row0 + r / NH) * C + HD + ((r % NH) * HEADS + hd) * D;
            float f = beta[((row0 + r / NH) * NH + r % NH) * HEADS + hd] * P[r] * x[r];
            for (int i = 0; i < D; i++) g[i] -= k[i] * f;
        }
    }
}

// The backward's parallel pass, one block per (sequence, chunk, head), thread i for key index i: from S₀, dS at the
// chunk's end, U and dRhs, the gradients of the chunk's q, k, v (written once each), β and log α. A gradient with
// respect to a product of gates is gathered per row as dg (the product's last row counts +, its first −), and
// d log α of a token is the sum of dg from its first row to the chunk's end.
extern "C" __global__ void {{v}}_chunk_grads(const float* __restrict__ qkv, const float* __restrict__ beta, const float* __restrict__ alpha,
    const float* __restrict__ aqk, const float* __restrict__ u, const float* __restrict__ starts, const float* __restrict__ ends,
    const float* __restrict__ dr, const float* __restrict__ dO, float* __restrict__ dqkv, float* __restrict__ dbeta, float* __restrict__ dlogalpha, int length)
{
    using namespace {{v}};
    __shared__ float gate[ROWS], P[ROWS], Dm[ROWS][ROWS], X[ROWS][D], M[ROWS][D], Z[CT][D];
    __shared__ float PU[CT][ROWS], DA[ROWS][ROWS], DK[ROWS][ROWS], ex[ROWS], km[ROWS], qz[CT], dg[ROWS], both[D];
    chunk_ ch = chunk_of_(length);
    int R = ch.rows, last = R - 1, i = threadIdx.x;
    const float *s0 = starts + ch.at * D * D, *ds = ends + ch.at * D * D, *U = u + ch.at * ROWS * D, *dR = dr + ch.at * ROWS * D;
    const float* A = aqk + ch.at * CT * ROWS;
    decays_(ch, alpha, gate, P, Dm);
    // x_c = dS·U_c, m_r = S₀·dRhs_r, z_t = S₀·do_t (row i of each), and row i of ⟨S₀, dS⟩
    both[i] = 0.0f;
    for (int j = 0; j < D; j++) both[i] += s0[i * D + j] * ds[i * D + j];
    for (int c = 0; c < R; c++)
    {
        X[c][i] = 0.0f;
        M[c][i] = 0.0f;
        for (int j = 0; j < D; j++) { X[c][i] += ds[i * D + j] * U[c * D + j]; M[c][i] += s0[i * D + j] * dR[c * D + j]; }
    }
    for (int t = 0; t < ch.tokens; t++)
    {
        const float* dOt = dO + (ch.row0 + t) * HD + ch.hd * D;
        Z[t][i] = 0.0f;
        for (int j = 0; j < D; j++) Z[t][i] += s0[i * D + j] * dOt[j];
    }
    // PU[t][c] = do_t·U_c, DA[r][c] = −dRhs_r·U_c, DK[r][c] = Dm[r][c]·(k_r·k_c)
    for (int e = threadIdx.x; e < ch.tokens * R; e += blockDim.x)
    {
        int t = e / R, c = e % R;
        PU[t][c] = c <= t * NH + NH - 1 ? dot_(dO + (ch.row0 + t) * HD + ch.hd * D, U + c * D) : 0.0f;
    }
    for (int e = threadIdx.x; e < R * R; e += blockDim.x)
    {
        int r = e / R, c = e % R;
        DA[r][c] = c < r ? -dot_(dR + r * D, U + c * D) : 0.0f;
        DK[r][c] = c < r ? Dm[r][c] * dot_(key_(ch, qkv, r), key_(ch, qkv, c)) : 0.0f;
    }
    __syncthreads();
    for (int r = threadIdx.x; r < R; r += blockDim.x)
    {
        ex[r] = dot_(key_(ch, qkv, r), X[r]);
        km[r] = dot_(key_(ch, qkv, r), M[r]);
    }
    for (int t = threadIdx.x; t < ch.tokens; t += blockDim.x) qz[t] = dot_(query_(ch, qkv, t), Z[t]);
    __syncthreads();
    for (int r = threadIdx.x; r < R; r += blockDim.x)
    {
        float b = beta[beta_at_(ch, r)], g = -Dm[last][r] * ex[r] - b * P[r] * km[r], db = 0.0f;
        if (r == last)
        {
            float s = 0.0f;
            for (int j = 0; j < D; j++) s += both[j];
            g += P[r] * s;
            for (int c = 0; c < R; c++) g += Dm[last][c] * ex[c];
        }
        if (r % NH == NH - 1)
        {
            int t = r / NH;
            g += SCALE * P[r] * qz[t];
            for (int c = 0; c <= r; c++) g += SCALE * A[t * ROWS + c] * PU[t][c];
        }
        for (int t = r / NH; t < ch.tokens; t++) g -= SCALE * A[t * ROWS + r] * PU[t][r];
        for (int c = 0; c < r; c++) { g += DA[r][c] * b * DK[r][c]; db += DA[r][c] * DK[r][c]; }
        for (int later = r + 1; later < R; later++) g -= DA[later][r] * beta[beta_at_(ch, later)] * DK[later][r];
        dg[r] = g;
        const float* v = key_(ch, qkv, r) + KD;
        dbeta[beta_at_(ch, r)] = db + dot_(dR + r * D, v) - P[r] * km[r];
    }
    __syncthreads();
    if (threadIdx.x == 0)
    {
        float tail = 0.0f;
        for (int r = last; r >= 0; r--)
        {
            tail += dg[r];
            if (r % NH == 0) dlogalpha[(ch.row0 + r / NH) * HEADS + ch.hd] = tail;
        }
    }
    for (int c = 0; c < R; c++)
    {
        float b = beta[beta_at_(ch, c)], dk = Dm[last][c] * X[c][i] - b * P[c] * M[c][i];
        for (int t = c / NH; t < ch.tokens; t++) dk += SCALE * Dm[t * NH + NH - 1][c] * PU[t][c] * query_(ch, qkv, t)[i];
        for (int r = c + 1; r < R; r++) dk += DA[r][c] * beta[beta_at_(ch, r)] * Dm[r][c] * key_(ch, qkv, r)[i];
        for (int e = 0; e < c; e++) dk += DA[c][e] * b * Dm[c][e] * key_(ch, qkv, e)[i];
        long key = key_(ch, qkv, c) - qkv;
        dqkv[key + i] = dk;
        dqkv[key + KD + i] = b * dR[c * D + i];
    }
    for (int t = 0; t < ch.tokens; t++)
    {
        int r = t * NH + NH - 1;
        float dq = SCALE * P[r] * Z[t][i];
        for (int c = 0; c <= r; c++) dq += SCALE * Dm[r][c] * PU[t][c] * key_(ch, qkv, c)[i];
        dqkv[(ch.row0 + t) * C + ch.hd * D + i] = dq;
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
        // the chunked form's tables per (sequence, chunk, head): start states, L, aqk, the gates' products, W̃ and U (the pseudo-values)
        int rows = Rows(l);
        yield return ($"{i}Starts", ChunkFloats(l, l.D * l.D));
        yield return ($"{i}Lower", ChunkFloats(l, rows * rows));
        yield return ($"{i}Aqk", ChunkFloats(l, ChunkTokens(l) * rows));
        yield return ($"{i}Decay", ChunkFloats(l, 2 * rows));
        yield return ($"{i}Wt", ChunkFloats(l, rows * l.D));
        yield return ($"{i}Pseudo", ChunkFloats(l, rows * l.D));
    }

    /// <summary>Scratch shared by the delta blocks: the backward's gradients of the block's intermediates, dL/dS at each chunk's end and each chunk's dRhs; the step's rows.</summary>
    public override IEnumerable<(string Field, string Floats, bool Training)> Scratch(ModelPlan plan)
    {
        var ls = plan.Blocks<DeltaLayerPlan>().Where(Supported).ToList();
        if (ls.Count == 0) yield break;
        int c = ls.Max(l => l.C), hd = ls.Max(l => l.Hd), nh = ls.Max(l => l.N * l.Heads), h = ls.Max(l => l.Heads);
        foreach (var (f, floats) in new[] { ("_dlQkv", c), ("_dlRaw", c), ("_dlGated", hd), ("_dlO", hd), ("_dlG", hd), ("_dlNormW", hd), ("_dlBeta", nh), ("_dlBp", nh), ("_dlLogAlpha", h), ("_dlAp", h), ("_dlALog", h) })
            yield return (f, $"rows * {floats}", true);
        string Largest(System.Func<DeltaLayerPlan, int> perChunk) =>
            ls.Select(l => ChunkFloats(l, perChunk(l))).Distinct().Aggregate((a, b) => $"System.Math.Max({a}, {b})");
        yield return ("_dlEnds", Largest(l => l.D * l.D), true);
        yield return ("_dlR", Largest(l => Rows(l) * l.D), true);
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
            Launch_{{v}}_chunk_prepare({{ChunkBlocks(l)}}, {{l.D}}, {{i}}Qkv, {{i}}Beta, {{i}}Alpha, {{i}}Lower, {{i}}Aqk, {{i}}Decay, {{i}}Wt, {{i}}Pseudo, length);
            Launch_{{v}}_chunk_states((uint)(batch * {{l.Heads}}), {{l.D}}, {{i}}Qkv, {{i}}Decay, {{i}}Wt, {{i}}Pseudo, {{i}}Starts, length);
            Launch_{{v}}_chunk_outputs({{ChunkBlocks(l)}}, {{l.D}}, {{i}}Qkv, {{i}}Aqk, {{i}}Decay, {{i}}Pseudo, {{i}}Starts, {{i}}O, length);
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
            Launch_{{v}}_chunk_state_grads((uint)(batch * {{l.Heads}}), {{l.D}}, {{i}}Qkv, {{i}}Beta, {{i}}Lower, {{i}}Aqk, {{i}}Decay, _dlO, _dlEnds, _dlR, length);
            Launch_{{v}}_chunk_grads({{ChunkBlocks(l)}}, {{l.D}}, {{i}}Qkv, {{i}}Beta, {{i}}Alpha, {{i}}Aqk, {{i}}Pseudo, {{i}}Starts, _dlEnds, _dlR, _dlO, _dlQkv, _dlBeta, _dlLogAlpha, length);
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
            Launch_{{v}}_step({{l.Heads}}, {{l.D}}, _dlStepQkv, _dlStepBeta, _dlStepAlpha, heads, _dlStepO);
            Launch_{{v}}_out_forward(Blocks({{l.Heads}}), Threads, _dlStepO, {{M(l, "o_norm.weight")}}, _dlStepG, _dlStepRstd, _dlStepNormed, _dlStepGated, 1);
            Runner.Gpu.CopyOnDevice(next, x, 4L * H);
            Linear(_dlStepGated, {{M(l, "o_proj.weight")}}, 0UL, next, 1, {{l.Hd}}, H, accumulate: true);
            """);
        w.Close();
        w.Line();
    }
}
