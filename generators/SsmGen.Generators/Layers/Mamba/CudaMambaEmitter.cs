using SsmGen.Generators.Emitters.Cuda;
using static SsmGen.Generators.Emitters.Cuda.CudaModelEmitter;

namespace SsmGen.Generators.Layers;

/// <summary>
/// The Mamba layer, GPU backend. in_proj, x_proj, dt_proj and out_proj are cuBLAS GEMMs; the rest are kernels
/// specialized per (N, E, Δ rank, conv width). The selective scan runs in chunks of CHUNK steps along the sequence
/// with each channel's N states in registers:
/// forward — one kernel (scan_fused): a block of 32 channels × SEGS chunks scans each chunk from zero, composes the
/// chunks through shared memory into every chunk's true start state (kept for the backward), and scans each chunk
/// again from its start, fused with discretization (softplus Δ, exp(Δ·A)), the contraction with C, D·u and the
/// SiLU(z) gate, so u, Δ, z, B and C come from memory once;
/// backward — one thread per (batch, chunk, channel): the adjoint λ = dL/dh runs three passes backwards in time
/// (local adjoints per chunk, a carry between chunks, each chunk again), the last one recomputing the
/// chunk's states from its saved start instead of storing (B, L, E, N); the B and C gradients, sums over channels,
/// are reduced across each warp with shuffles and then across warps, so every sum has a fixed order.
/// </summary>
internal sealed class CudaMambaEmitter : GpuRendering<MambaLayerPlan>
{
    private static string Name(MambaLayerPlan l) => $"mamba_n{l.N}_e{l.E}_r{l.R}_w{l.Spec.ConvWidth}{(l.Negative ? "_neg" : "")}";

    /// <summary>Steps per scan chunk: the backward keeps CHUNK·N recomputed states per thread (at most 512 floats).</summary>
    private static int Chunk(MambaLayerPlan l) => System.Math.Max(8, System.Math.Min(64, 512 / l.N));

    /// <summary>Chunks per tile of the fused forward scan: its two (SEGS, N, 32) shared tables stay within 48 KiB.</summary>
    private static int Segments(MambaLayerPlan l) => System.Math.Max(1, System.Math.Min(8, 160 / l.N));

    /// <summary>Channels rounded up to whole warps: a warp never spans two (batch, chunk) pairs.</summary>
    private static int PaddedE(MambaLayerPlan l) => (l.E + 31) / 32 * 32;

    /// <summary>2N rounded up to a power of two: the B and C gradient values a lane reduces per step.</summary>
    private static int Pow2(MambaLayerPlan l) { int p = 1; while (p < 2 * l.N) p *= 2; return p; }

    private static string Constants(MambaLayerPlan l) =>
        $"[[maybe_unused]] constexpr int N = {l.N}, E = {l.E}, R = {l.R}, W = {l.Spec.ConvWidth}, DBC = {l.Dbc}, CHUNK = {Chunk(l)}, EP = {PaddedE(l)}, WARPS = EP / 32, P2 = {Pow2(l)}, SEGS = {Segments(l)};";

    private static IEnumerable<MambaLayerPlan> Variants(ModelPlan plan) => plan.Blocks<MambaLayerPlan>().GroupBy(Name).Select(g => g.First());

    /// <summary>Kernels of every Mamba variant the plan uses, after the helpers they share.</summary>
    public override void EmitKernels(StringBuilder cu, ModelPlan plan)
    {
        if (!plan.Blocks<MambaLayerPlan>().Any()) return;
        cu.Append($"\n// ---- Mamba ----\n\nconstexpr float MAMBA_MAX_LOG = {CodeWriter.D((float)SsmGen.Numerics.Stability.MaxLog)}f, MAMBA_MAX_LOG_DECAY = {CodeWriter.D(SsmGen.Numerics.Stability.MaxLogDecay)}f;\n");
        cu.Append("""

// A = −exp(A_log) with A_log bounded (e^80 stays finite); the decay exp(Δ·A) with Δ·A ≤ −2⁻²³ so it never rounds to 1
// (SsmGen.Numerics.Stability: MaxLog, MaxLogDecay).
__device__ __forceinline__ float mamba_a_(float a_log) { return -expf(fminf(a_log, MAMBA_MAX_LOG)); }
__device__ __forceinline__ float mamba_decay_(float dt, float a) { return expf(fminf(dt * a, MAMBA_MAX_LOG_DECAY)); }
__device__ __forceinline__ float softplus_(float v) { return v > 20.0f ? v : log1pf(expf(v)); }

""");
        if (plan.Blocks<MambaLayerPlan>().Any(l => l.Negative))
            cu.Append($$"""
// Transitions with negative eigenvalues: 2·exp(Δ·A) − 1 with the decay held at or above MinNegativeDecay, so that
// |Ā| < 1 (SsmGen.Numerics.Stability.NegativeTransition), and its slope in Δ·A, 2·exp(Δ·A).
constexpr float MAMBA_MIN_NEG_DECAY = {{CodeWriter.D(SsmGen.Numerics.Stability.MinNegativeDecay)}}f;
__device__ __forceinline__ float mamba_neg_transition_(float dt, float a) { return 2.0f * fmaxf(mamba_decay_(dt, a), MAMBA_MIN_NEG_DECAY) - 1.0f; }
__device__ __forceinline__ float mamba_neg_slope_(float dt, float a) { return 2.0f * mamba_decay_(dt, a); }

""");
        cu.Append("""

// dx = dy·SiLU'(x), SiLU'(x) = σ(x)(1 + x(1 − σ(x))); dx may alias dy.
extern "C" __global__ void silu_backward(const float* __restrict__ x, const float* dy, float* dx, long n)
{
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float s = sigmoid_(x[i]);
    dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
}

""");
        foreach (var l in Variants(plan))
        {
            string v = Name(l), k = Constants(l);
            // the transition Ā(Δ, A) and its slope dĀ/d(Δ·A) at the chunk backward's q = Ā
            string transition = l.Negative ? "mamba_neg_transition_" : "mamba_decay_", slope = l.Negative ? "mamba_neg_slope_(dt, a[n])" : "q";
            cu.Append($$"""

// ---- Mamba, N = {{l.N}}, E = {{l.E}}, Δ rank {{l.R}}, conv width {{l.Spec.ConvWidth}}: scan chunks of {{Chunk(l)}} steps ----
// in_proj rows are (x | z), width 2E; x_proj rows are (Δ in | B | C), width DBC; chunk tensors are (B, chunks, N, E).

// c = bias + causal depthwise conv of x along time (zeros before t = 0); act = SiLU(c). One thread per (row, channel).
extern "C" __global__ void {{v}}_conv_forward(const float* __restrict__ xz, const float* __restrict__ w, const float* __restrict__ bias,
    float* __restrict__ c, float* __restrict__ act, int rows, int length)
{
    {{k}}
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)rows * E) return;
    long r = i / E; int e = (int)(i % E), t = (int)(r % length);
    float s = bias[e];
#pragma unroll
    for (int j = 0; j < W; j++)
        if (t - (W - 1) + j >= 0) s += w[e * W + j] * xz[(r - (W - 1) + j) * 2 * E + e];
    c[i] = s;
    act[i] = s * sigmoid_(s);
}

// The forward scan in one pass, fused with the discretization (softplus Δ, exp(Δ·A)), the contraction with C, D·u
// and the SiLU(z) gate. A block of 32 channels × SEGS chunks walks its batch row's sequence in tiles of SEGS·CHUNK
// steps; thread (channel, segment) owns one chunk of the tile: (1) its chunk from a zero state gives the chunk's
// end state and Π exp(Δ·A); (2) through shared memory it composes the chunks before it onto the state entering the
// tile — its chunk's true start, kept in h0 for the backward; (3) its chunk again from there, writing y (for the
// backward) and g. The second read of u, Δ and B follows the first closely, so it comes from cache.
extern "C" __global__ void {{v}}_scan_fused(const float* __restrict__ u, const float* __restrict__ dtpre, const float* __restrict__ dbc,
    const float* __restrict__ a_log, const float* __restrict__ d, const float* __restrict__ xz, float* __restrict__ h0,
    float* __restrict__ ys, float* __restrict__ g, int batch, int length)
{
    {{k}}
    __shared__ float sp[SEGS][N][32], ss[SEGS][N][32], carry[N][32];
    int lane = threadIdx.x, seg = threadIdx.y, e = blockIdx.x * 32 + lane, chunks = (length + CHUNK - 1) / CHUNK;
    bool on = e < E;
    float a[N];
#pragma unroll
    for (int n = 0; n < N; n++) a[n] = on ? mamba_a_(a_log[e * N + n]) : 0.0f;
    float dd = on ? d[e] : 0.0f;
    for (long b = blockIdx.y; b < batch; b += gridDim.y) // the grid's y extent is capped at 65535
    {
        __syncthreads(); // the previous row's last carry is written
        if (seg == 0)
#pragma unroll
            for (int n = 0; n < N; n++) carry[n][lane] = 0.0f;
        for (int kc0 = 0; kc0 < chunks; kc0 += SEGS)
        {
            int kc = kc0 + seg, t0 = kc * CHUNK, t1 = min(length, t0 + CHUNK); // a chunk past the end is empty: the identity
            float h[N], pr[N];
#pragma unroll
            for (int n = 0; n < N; n++) { h[n] = 0.0f; pr[n] = 1.0f; }
            if (on)
                for (int t = t0; t < t1; t++)
                {
                    long row = b * length + t;
                    float dt = softplus_(dtpre[row * E + e]), du = dt * u[row * E + e];
                    const float* bc = dbc + row * DBC + R;
#pragma unroll
                    for (int n = 0; n < N; n++) { float q = {{transition}}(dt, a[n]); h[n] = q * h[n] + du * bc[n]; pr[n] *= q; }
                }
#pragma unroll
            for (int n = 0; n < N; n++) { sp[seg][n][lane] = pr[n]; ss[seg][n][lane] = h[n]; }
            __syncthreads(); // the carry from the last tile is written too
#pragma unroll
            for (int n = 0; n < N; n++)
            {
                float c = carry[n][lane];
                for (int j = 0; j < seg; j++) c = sp[j][n][lane] * c + ss[j][n][lane];
                h[n] = c;
            }
            __syncthreads(); // every thread has read the carry and the chunks before it
            if (seg == SEGS - 1)
#pragma unroll
                for (int n = 0; n < N; n++) carry[n][lane] = pr[n] * h[n] + ss[seg][n][lane];
            if (!on || kc >= chunks) continue;
#pragma unroll
            for (int n = 0; n < N; n++) h0[((b * chunks + kc) * N + n) * E + e] = h[n];
            for (int t = t0; t < t1; t++)
            {
                long row = b * length + t;
                float uu = u[row * E + e], dt = softplus_(dtpre[row * E + e]), du = dt * uu, y = dd * uu;
                const float* bc = dbc + row * DBC + R;
#pragma unroll
                for (int n = 0; n < N; n++) { h[n] = {{transition}}(dt, a[n]) * h[n] + du * bc[n]; y += bc[N + n] * h[n]; }
                float z = xz[row * 2 * E + E + e];
                ys[row * E + e] = y;
                g[row * E + e] = y * z * sigmoid_(z);
            }
        }
    }
}

// The backward's carry, one thread per (b, n, e) walking the chunks from the last: s[chunk] ← what flows into the
// chunk (λ arriving from the right), carried as c ← p·c + s.
extern "C" __global__ void {{v}}_chunk_carry(const float* __restrict__ p, float* __restrict__ s, int batch, int length)
{
    {{k}}
    int chunks = (length + CHUNK - 1) / CHUNK;
    long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)batch * N * E) return;
    int e = (int)(idx % E), n = (int)(idx / E % N); long b = idx / ((long)N * E);
    float c = 0.0f;
    for (int kc = chunks - 1; kc >= 0; kc--)
    {
        long at = ((b * chunks + kc) * N + n) * E + e;
        bool last = kc == 0; // its own contribution flows nowhere, so it was not computed
        float local = last ? 0.0f : s[at];
        s[at] = c;
        if (!last) c = p[at] * c + local;
    }
}

// One token of a stream, one thread per channel: c = bias + Σ_j w_j·[window, x]_j over the conv window of the
// state (E, W−1, oldest first), which then shifts by one to take x; act = SiLU(c).
extern "C" __global__ void {{v}}_conv_step(const float* __restrict__ xz, const float* __restrict__ w, const float* __restrict__ bias,
    float* __restrict__ window, float* __restrict__ act)
{
    {{k}}
    int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= E) return;
    float x = xz[e], s = bias[e] + w[e * W + W - 1] * x;
    float* win = window + e * (W - 1);
#pragma unroll
    for (int j = 0; j < W - 1; j++) s += w[e * W + j] * win[j];
#pragma unroll
    for (int j = 0; j + 1 < W - 1; j++) win[j] = win[j + 1];
    if (W > 1) win[W - 2] = x;
    act[e] = s * sigmoid_(s);
}

// One token of the selective scan, one thread per channel, h (E, N) of the state: Δ = softplus(dt_pre),
// h ← exp(Δ·A)·h + Δ·u·B, y = Σ_n C_n·h_n + D·u, g = y·SiLU(z).
extern "C" __global__ void {{v}}_scan_step(const float* __restrict__ u, const float* __restrict__ dtpre, const float* __restrict__ dbc,
    const float* __restrict__ a_log, const float* __restrict__ d, const float* __restrict__ xz, float* __restrict__ h, float* __restrict__ g)
{
    {{k}}
    int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= E) return;
    float uu = u[e], dt = softplus_(dtpre[e]), du = dt * uu, y = d[e] * uu;
    const float* bc = dbc + R;
#pragma unroll
    for (int n = 0; n < N; n++)
    {
        float hn = {{transition}}(dt, mamba_a_(a_log[e * N + n])) * h[e * N + n] + du * bc[n];
        h[e * N + n] = hn;
        y += bc[N + n] * hn;
    }
    float z = xz[E + e];
    g[e] = y * z * sigmoid_(z);
}

// Gate backward: dy = dg·SiLU(z), dz = dg·y·SiLU'(z) (into the z half of dxz).
extern "C" __global__ void {{v}}_gate_backward(const float* __restrict__ ys, const float* __restrict__ xz, const float* __restrict__ dg,
    float* __restrict__ dys, float* __restrict__ dxz, int rows)
{
    {{k}}
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)rows * E) return;
    long r = i / E; int e = (int)(i % E);
    float z = xz[r * 2 * E + E + e], s = sigmoid_(z);
    dys[i] = dg[i] * z * s;
    dxz[r * 2 * E + E + e] = dg[i] * ys[i] * s * (1.0f + z * (1.0f - s));
}

// Backward pass 1: every chunk but the first, backwards from λ = 0: λ leaving its start (into gl) and Π exp(Δ·A).
extern "C" __global__ void {{v}}_chunk_adjoint(const float* __restrict__ dys, const float* __restrict__ dtpre, const float* __restrict__ dbc,
    const float* __restrict__ a_log, float* __restrict__ gl, float* __restrict__ p, int batch, int length)
{
    {{k}}
    int chunks = (length + CHUNK - 1) / CHUNK;
    long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)batch * chunks * EP) return;
    int e = (int)(idx % EP); long bk = idx / EP; int kc = (int)(bk % chunks); long b = bk / chunks;
    if (e >= E || kc == 0) return;
    float a[N], lam[N], pr[N];
#pragma unroll
    for (int n = 0; n < N; n++) { a[n] = mamba_a_(a_log[e * N + n]); lam[n] = 0.0f; pr[n] = 1.0f; }
    for (int t = min(length, (kc + 1) * CHUNK) - 1; t >= kc * CHUNK; t--)
    {
        long row = b * length + t;
        float dt = softplus_(dtpre[row * E + e]), dy = dys[row * E + e];
        const float* cc = dbc + row * DBC + R + N;
#pragma unroll
        for (int n = 0; n < N; n++) { float q = {{transition}}(dt, a[n]); lam[n] = (lam[n] + cc[n] * dy) * q; pr[n] *= q; }
    }
#pragma unroll
    for (int n = 0; n < N; n++) { long at = (bk * N + n) * E + e; gl[at] = lam[n]; p[at] = pr[n]; }
}

// Backward pass 3: recompute the chunk's states from its start, then run it backwards from the λ arriving from the
// right. Writes du (overwrites), d(Δ pre-activation), this warp's B and C gradient sums (bc_part: rows, WARPS, P2),
// and per (b, chunk) partial gradients of A_log (a_part: (E, N) each) and D (d_part). Lanes past E run along with
// zeros, since every lane of a warp takes part in the shuffles.
extern "C" __global__ void {{v}}_chunk_backward(const float* __restrict__ u, const float* __restrict__ dtpre, const float* __restrict__ dbc,
    const float* __restrict__ a_log, const float* __restrict__ d, const float* __restrict__ dys, const float* __restrict__ h0,
    const float* __restrict__ carry, float* __restrict__ du_out, float* __restrict__ dpre_out, float* __restrict__ bc_part,
    float* __restrict__ a_part, float* __restrict__ d_part, int batch, int length)
{
    {{k}}
    int chunks = (length + CHUNK - 1) / CHUNK;
    long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)batch * chunks * EP) return; // whole warps only: EP is a multiple of 32
    int e = (int)(idx % EP); long bk = idx / EP; int kc = (int)(bk % chunks); long b = bk / chunks;
    int lane = threadIdx.x & 31, warp = e / 32;
    bool on = e < E;
    int ec = on ? e : E - 1;
    float a[N], st[N], lam[N], dA[N], hs[CHUNK][N];
#pragma unroll
    for (int n = 0; n < N; n++)
    {
        long at = (bk * N + n) * E + ec;
        a[n] = mamba_a_(a_log[ec * N + n]); st[n] = h0[at]; lam[n] = on ? carry[at] : 0.0f; dA[n] = 0.0f;
    }
    int t0 = kc * CHUNK, t1 = min(length, t0 + CHUNK);
    for (int t = t0; t < t1; t++)
    {
        long row = b * length + t;
        float dt = softplus_(dtpre[row * E + ec]), du = dt * u[row * E + ec];
        const float* bc = dbc + row * DBC + R;
#pragma unroll
        for (int n = 0; n < N; n++) hs[t - t0][n] = {{transition}}(dt, a[n]) * (t == t0 ? st[n] : hs[t - t0 - 1][n]) + du * bc[n];
    }
    float dd = d[ec], dD = 0.0f;
    for (int t = t1 - 1; t >= t0; t--)
    {
        long row = b * length + t;
        float dt = softplus_(dtpre[row * E + ec]), uu = u[row * E + ec], dy = on ? dys[row * E + ec] : 0.0f, du = dt * uu;
        const float* bc = dbc + row * DBC + R;
        float dDt = 0.0f, dU = dd * dy, v[P2];
        dD += dy * uu;
#pragma unroll
        for (int n = 0; n < N; n++)
        {
            float q = {{transition}}(dt, a[n]), prev = t == t0 ? st[n] : hs[t - t0 - 1][n];
            lam[n] += bc[N + n] * dy;           // dL/dh_t
            v[n] = lam[n] * du;                 // this channel's share of dL/dB_t[n]
            v[N + n] = dy * hs[t - t0][n];      // ... and of dL/dC_t[n]
            float gq = lam[n] * prev * {{slope}}; // dL/d(Δ·A)
            dA[n] += gq * dt;
            dDt += gq * a[n] + lam[n] * bc[n] * uu;
            dU += lam[n] * dt * bc[n];
            lam[n] *= q;                        // carried to h_{t−1}
        }
{{WarpReduce(l)}}
        if (on)
        {
            du_out[row * E + e] = dU;
            dpre_out[row * E + e] = dDt * -expm1f(-dt); // softplus' = σ(pre) = 1 − e^{−Δ}
        }
    }
    if (on)
    {
#pragma unroll
        for (int n = 0; n < N; n++) a_part[bk * E * N + e * N + n] = dA[n] * a[n]; // dA/dA_log = A
        d_part[bk * E + e] = dD;
    }
}

// dDbc[row, R + j] = Σ_warps bc_part[row, warp, j]: the B and C columns of the x_proj output gradient (overwritten).
extern "C" __global__ void {{v}}_bc_reduce(const float* __restrict__ bc_part, float* __restrict__ ddbc, int rows)
{
    {{k}}
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)rows * 2 * N) return;
    long row = i / (2 * N); int j = (int)(i % (2 * N));
    float s = 0.0f;
    for (int w = 0; w < WARPS; w++) s += bc_part[(row * WARPS + w) * P2 + j];
    ddbc[row * DBC + R + j] = s;
}

// Conv backward to its input: dx[t] = Σ_j w[e, j]·dc[t + (W − 1) − j] (into the x half of dxz).
extern "C" __global__ void {{v}}_conv_backward_input(const float* __restrict__ dc, const float* __restrict__ w, float* __restrict__ dxz,
    int rows, int length)
{
    {{k}}
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)rows * E) return;
    long r = i / E; int e = (int)(i % E), t = (int)(r % length);
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < W; j++)
        if (t + (W - 1) - j < length) s += w[e * W + j] * dc[(r + (W - 1) - j) * E + e];
    dxz[r * 2 * E + e] = s;
}

// Conv weight and bias gradients, per chunk of ROW_CHUNK rows: partial[chunk, e·W + j] and, after all chunks·E·W of
// those, partial[chunk, e] for the bias; column_finish adds them up in a fixed order.
extern "C" __global__ void {{v}}_conv_weight_partials(const float* __restrict__ xz, const float* __restrict__ dc, float* __restrict__ partial,
    int rows, int length)
{
    {{k}}
    int chunks = (rows + ROW_CHUNK - 1) / ROW_CHUNK;
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)chunks * E) return;
    int chunk = (int)(i / E), e = (int)(i % E);
    float acc[W], bacc = 0.0f;
#pragma unroll
    for (int j = 0; j < W; j++) acc[j] = 0.0f;
    for (long r = (long)chunk * ROW_CHUNK; r < min(rows, (chunk + 1) * ROW_CHUNK); r++)
    {
        int t = (int)(r % length);
        float g = dc[r * E + e];
        bacc += g;
#pragma unroll
        for (int j = 0; j < W; j++)
            if (t - (W - 1) + j >= 0) acc[j] += g * xz[(r - (W - 1) + j) * 2 * E + e];
    }
#pragma unroll
    for (int j = 0; j < W; j++) partial[(long)chunk * E * W + e * W + j] = acc[j];
    partial[(long)chunks * E * W + (long)chunk * E + e] = bacc;
}

""");
        }
    }

    /// <summary>
    /// Sums v[0..P2) over the 32 lanes of the warp by halving: at each of the five shuffle distances a lane keeps half
    /// of its values and sends the other half to its partner, so ≈ P2 shuffles instead of 5·P2. Afterwards lane ℓ
    /// holds the warp's totals of indices [ℓ·P2/32, …) when P2 ≥ 32; for smaller P2 the lanes 32/P2 apart share one
    /// index and the first of them writes it.
    /// </summary>
    private static string WarpReduce(MambaLayerPlan l)
    {
        int p2 = Pow2(l), m = p2;
        var w = new CodeWriter(indent: 2);
        for (int j = 2 * l.N; j < p2; j++) w.Line($"v[{j}] = 0.0f;");
        w.Open(null);
        for (int o = 16; o >= 1; o /= 2)
        {
            if (m > 1)
            {
                int half = m / 2;
                w.Line($"bool hi{o} = (lane & {o}) != 0;");
                for (int j = 0; j < half; j++)
                    w.Line($"{{ float send = hi{o} ? v[{j}] : v[{j + half}]; v[{j}] = (hi{o} ? v[{j + half}] : v[{j}]) + __shfl_xor_sync(0xffffffffu, send, {o}); }}");
                m = half;
            }
            else w.Line($"v[0] += __shfl_xor_sync(0xffffffffu, v[0], {o});");
        }
        w.Line("float* out = bc_part + (row * WARPS + warp) * P2;");
        if (p2 >= 32)
            for (int j = 0; j < m; j++) w.Line($"out[lane * {p2 / 32} + {j}] = v[{j}];");
        else
            w.Line($"if (lane % {32 / p2} == 0) out[lane / {32 / p2}] = v[0];");
        w.Close();
        return w.ToString().TrimEnd('\n');
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Field, string Floats)> Buffers(MambaLayerPlan l)
    {
        string i = "_l" + l.Index;
        yield return ($"{i}XZ", $"rows * {2 * l.E}");
        yield return ($"{i}C", $"rows * {l.E}");
        yield return ($"{i}Act", $"rows * {l.E}");
        yield return ($"{i}Dbc", $"rows * {l.Dbc}");
        yield return ($"{i}DtPre", $"rows * {l.E}");
        yield return ($"{i}Ys", $"rows * {l.E}");
        yield return ($"{i}G", $"rows * {l.E}");
        yield return ($"{i}H0", $"ChunkStates(maxBatch, maxLength, {Chunk(l)}, {l.N * l.E})");
    }

    /// <summary>
    /// Scratch shared by the Mamba blocks: the chunk products/partials (forward and backward), and the backward's
    /// gradients of the block's intermediates. Each entry is (field, size in floats as a C# expression, training only).
    /// </summary>
    public override IEnumerable<(string Field, string Floats, bool Training)> Scratch(ModelPlan plan)
    {
        var ls = plan.Blocks<MambaLayerPlan>().ToList();
        if (ls.Count == 0) yield break;
        string Max(System.Func<MambaLayerPlan, string> f) => ls.Select(f).Distinct().Aggregate((acc, x) => $"Math.Max({acc}, {x})");
        string states = Max(l => $"ChunkStates(maxBatch, maxLength, {Chunk(l)}, {l.N * l.E})");
        yield return ("_mP", states, true);
        yield return ("_mGl", states, true);
        yield return ("_mdXZ", $"rows * {ls.Max(l => 2 * l.E)}", true);
        yield return ("_mdG", $"rows * {ls.Max(l => l.E)}", true);
        yield return ("_mdYs", $"rows * {ls.Max(l => l.E)}", true);
        yield return ("_mdU", $"rows * {ls.Max(l => l.E)}", true);
        yield return ("_mdPre", $"rows * {ls.Max(l => l.E)}", true);
        yield return ("_mdDbc", $"rows * {ls.Max(l => l.Dbc)}", true);
        yield return ("_mBc", $"rows * {ls.Max(l => PaddedE(l) / 32 * Pow2(l))}", true);
        yield return ("_mdD", Max(l => $"ChunkStates(maxBatch, maxLength, {Chunk(l)}, {l.E})"), true);
        // Step's rows, one token: (x | z), SiLU(conv), (Δ in | B | C), Δ before softplus, the gated y
        foreach (var (f, floats) in new[] { ("_mambaStepXz", ls.Max(l => 2 * l.E)), ("_mambaStepAct", ls.Max(l => l.E)), ("_mambaStepDbc", ls.Max(l => l.Dbc)), ("_mambaStepDt", ls.Max(l => l.E)), ("_mambaStepY", ls.Max(l => l.E)) })
            yield return (f, LayerArgs.Text(floats), false);
    }

    /// <summary>The widest column sum a Mamba block asks of the shared partial-sum buffer.</summary>
    public override int MaxColumnWidth(ModelPlan plan) =>
        plan.Blocks<MambaLayerPlan>().Select(l => System.Math.Max(l.E * l.N, l.E * (l.Spec.ConvWidth + 1))).DefaultIfEmpty(1).Max();

    public override void EmitHelpers(CodeWriter w, ModelPlan plan)
    {
        w.Line("/// <summary>Floats of a (batch, chunk)-indexed tensor with perChunk values per chunk.</summary>");
        w.Line("private static long ChunkStates(int maxBatch, int maxLength, int chunk, int perChunk) => (long)maxBatch * ((maxLength + chunk - 1) / chunk) * perChunk;");
        w.Line();
    }

    /// <summary>Block forward: x → norm → in_proj → conv, SiLU → x_proj → dt_proj → chunked scan with gate → out_proj + x.</summary>
    public override void EmitForward(CodeWriter w, ModelPlan plan, MambaLayerPlan l)
    {
        string i = "_l" + l.Index, v = Name(l), x = $"_l{l.Index}X", next = ModelEmitter.Next(plan, l), m = "mixer.";
        OpenForward(w, l, l.Rms);
        w.Line($"Linear({i}U, {Param(l, m + "in_proj.weight")}, 0UL, {i}XZ, rows, H, {2 * l.E});");
        w.Line($"Launch_{v}_conv_forward(Blocks((long)rows * {l.E}), Threads, {i}XZ, {Param(l, m + "conv1d.weight")}, {Param(l, m + "conv1d.bias")}, {i}C, {i}Act, rows, length);");
        w.Line($"Linear({i}Act, {Param(l, m + "x_proj.weight")}, 0UL, {i}Dbc, rows, {l.E}, {l.Dbc});");
        w.Line($"Linear({i}Dbc, {Param(l, m + "dt_proj.weight")}, {Param(l, m + "dt_proj.bias")}, {i}DtPre, rows, {l.R}, {l.E}, ldx: {l.Dbc});");
        w.Line($"Launch_{v}_scan_fused(new Dim3({(l.E + 31) / 32}, (uint)Math.Min(batch, MaxGridY)), new Dim3(32, {Segments(l)}), {i}Act, {i}DtPre, {i}Dbc, {Param(l, m + "A_log")}, {Param(l, m + "D")}, {i}XZ, {i}H0, {i}Ys, {i}G, batch, length);");
        ProjectOntoResidual(w, $"{i}G", Param(l, m + "out_proj.weight"), "0UL", l.E, next, x);
        CloseForward(w);
    }

    /// <summary>Block backward: _dX holds dL/d(block output) and gains the path through the block.</summary>
    public override void EmitBackward(CodeWriter w, ModelPlan plan, MambaLayerPlan l)
    {
        string i = "_l" + l.Index, v = Name(l), m = "mixer.";
        int e = l.E;
        w.Open($"private void Layer{l.Index}Backward(int batch, int length)");
        w.Line($"int rows = batch * length, chunks = (length + {Chunk(l) - 1}) / {Chunk(l)}, rowChunks = (rows + RowChunk - 1) / RowChunk;");
        w.Line($"uint scan = Blocks((long)batch * chunks * {PaddedE(l)});");
        w.Line($"LinearBackward({i}G, {Param(l, m + "out_proj.weight")}, _dX, _mdG, {Param(l, m + "out_proj.weight", "G")}, 0UL, rows, {e}, H);");
        w.Line($"Launch_{v}_gate_backward(Blocks((long)rows * {e}), Threads, {i}Ys, {i}XZ, _mdG, _mdYs, _mdXZ, rows);");
        w.Line("// the scan backwards: local adjoints per chunk, the carry between chunks, then each chunk with recomputed states");
        w.Line($"Launch_{v}_chunk_adjoint(scan, Threads, _mdYs, {i}DtPre, {i}Dbc, {Param(l, m + "A_log")}, _mGl, _mP, batch, length);");
        w.Line($"Launch_{v}_chunk_carry(Blocks((long)batch * {l.N * e}), Threads, _mP, _mGl, batch, length);");
        w.Line($"Launch_{v}_chunk_backward(scan, Threads, {i}Act, {i}DtPre, {i}Dbc, {Param(l, m + "A_log")}, {Param(l, m + "D")}, _mdYs, {i}H0, _mGl, _mdU, _mdPre, _mBc, _mP, _mdD, batch, length);");
        w.Line($"Launch_{v}_bc_reduce(Blocks((long)rows * {2 * l.N}), Threads, _mBc, _mdDbc, rows);");
        w.Line($"ColumnSums(_mP, {Param(l, m + "A_log", "G")}, batch * chunks, {e * l.N});");
        w.Line($"ColumnSums(_mdD, {Param(l, m + "D", "G")}, batch * chunks, {e});");
        w.Line("// dt_proj reads and writes the Δ-input columns of the x_proj rows in place (leading dimension DBC)");
        w.Line($"LinearBackward({i}Dbc, {Param(l, m + "dt_proj.weight")}, _mdPre, _mdDbc, {Param(l, m + "dt_proj.weight", "G")}, {Param(l, m + "dt_proj.bias", "G")}, rows, {l.R}, {e}, ldx: {l.Dbc});");
        w.Line($"LinearBackward({i}Act, {Param(l, m + "x_proj.weight")}, _mdDbc, _mdU, {Param(l, m + "x_proj.weight", "G")}, 0UL, rows, {e}, {l.Dbc}, accumulate: true);");
        w.Line($"Launch_silu_backward(Blocks((long)rows * {e}), Threads, {i}C, _mdU, _mdU, (long)rows * {e});");
        w.Line($"Launch_{v}_conv_backward_input(Blocks((long)rows * {e}), Threads, _mdU, {Param(l, m + "conv1d.weight")}, _mdXZ, rows, length);");
        w.Line($"Launch_{v}_conv_weight_partials(Blocks((long)rowChunks * {e}), Threads, {i}XZ, _mdU, _partial, rows, length);");
        w.Line($"ColumnFinish(_partial, {Param(l, m + "conv1d.weight", "G")}, rowChunks, {e * l.Spec.ConvWidth});");
        w.Line($"ColumnFinish(_partial + 4UL * (ulong)rowChunks * {e * l.Spec.ConvWidth}, {Param(l, m + "conv1d.bias", "G")}, rowChunks, {e});");
        w.Line($"LinearBackward({i}U, {Param(l, m + "in_proj.weight")}, _mdXZ, _dU, {Param(l, m + "in_proj.weight", "G")}, 0UL, rows, H, {2 * e});");
        CloseBackward(w, l, l.Rms);
    }

    /// <summary>Block step, one token: x → norm → in_proj → conv step, SiLU → x_proj → dt_proj → scan step with gate → out_proj + x.</summary>
    public override void EmitStep(CodeWriter w, ModelPlan plan, MambaLayerPlan l)
    {
        string v = Name(l), m = "mixer.";
        int e = l.E;
        w.Open($"private void Layer{l.Index}Step(ulong state, int t, ulong x, ulong next)");
        w.Line($"ulong window = At(state, {plan.State.Of(l, "window").Const}), h = At(state, {plan.State.Of(l, "h").Const});");
        w.Line(NormForward(l.Rms, l.Prefix + "norm", "x", "_sU", "_sMean", "_sRstd", "1"));
        w.Line($"Linear(_sU, {Param(l, m + "in_proj.weight")}, 0UL, _mambaStepXz, 1, H, {2 * e});");
        w.Line($"Launch_{v}_conv_step(Blocks({e}), Threads, _mambaStepXz, {Param(l, m + "conv1d.weight")}, {Param(l, m + "conv1d.bias")}, window, _mambaStepAct);");
        w.Line($"Linear(_mambaStepAct, {Param(l, m + "x_proj.weight")}, 0UL, _mambaStepDbc, 1, {e}, {l.Dbc});");
        w.Line($"Linear(_mambaStepDbc, {Param(l, m + "dt_proj.weight")}, {Param(l, m + "dt_proj.bias")}, _mambaStepDt, 1, {l.R}, {e}, ldx: {l.Dbc});");
        w.Line($"Launch_{v}_scan_step(Blocks({e}), Threads, _mambaStepAct, _mambaStepDt, _mambaStepDbc, {Param(l, m + "A_log")}, {Param(l, m + "D")}, _mambaStepXz, h, _mambaStepY);");
        w.Line("Runner.Gpu.CopyOnDevice(next, x, 4L * H);");
        w.Line($"Linear(_mambaStepY, {Param(l, m + "out_proj.weight")}, 0UL, next, 1, {e}, H, accumulate: true);");
        w.Close();
        w.Line();
    }
}
