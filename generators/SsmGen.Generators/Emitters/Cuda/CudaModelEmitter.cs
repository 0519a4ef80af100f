namespace SsmGen.Generators.Emitters.Cuda;

/// <summary>
/// The model shell, GPU backend ({Model}.Cuda.g.cs): the CUDA C source of every kernel the model runs (sizes as
/// compile-time constants), emitted as a C# constant and compiled on first use; the device buffer layout; and
/// Forward/Backward as sequences of launches and cuBLAS GEMMs mirroring the CPU passes. Each layer kind's
/// GPU emitter (through <see cref="LayerKinds"/>) writes its kernels and its block's launches.
/// </summary>
internal static class CudaModelEmitter
{
    /// <summary>Threads of a row-wise kernel (norms): a power of two between 32 and 256.</summary>
    private static int NormThreads(int h) { int t = 32; while (t < h && t < 256) t *= 2; return t; }

    /// <summary>The CUDA C of the model and its kernels, read from the source (each is written once, at its definition).</summary>
    public static (string Source, List<CudaKernel> Kernels) Source(ModelPlan plan)
    {
        var cu = new StringBuilder();
        int h = plan.Spec.DModel;
        cu.Append($$"""
// SsmGen: CUDA kernels specialized for model '{{plan.Spec.ClassName}}'. Sizes are compile-time constants.
// Sequences are (B, L, H) row-major; one thread per element unless a kernel says otherwise.
constexpr int H = {{h}};
constexpr int NORM_THREADS = {{NormThreads(h)}};
constexpr int ROW_CHUNK = 256;

struct cf { float re, im; };
__device__ __forceinline__ cf cadd(cf a, cf b) { return cf{ a.re + b.re, a.im + b.im }; }
__device__ __forceinline__ cf csub(cf a, cf b) { return cf{ a.re - b.re, a.im - b.im }; }
__device__ __forceinline__ cf cmul(cf a, cf b) { return cf{ a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re }; }
__device__ __forceinline__ cf cscale(float s, cf a) { return cf{ s * a.re, s * a.im }; }
__device__ __forceinline__ cf cconj(cf a) { return cf{ a.re, -a.im }; }
__device__ __forceinline__ cf cdiv(cf a, cf b) { float d = b.re * b.re + b.im * b.im; return cf{ (a.re * b.re + a.im * b.im) / d, (a.im * b.re - a.re * b.im) / d }; }
__device__ __forceinline__ cf cexp_(cf a) { float s, c; sincosf(a.im, &s, &c); float e = expf(a.re); return cf{ e * c, e * s }; }

__device__ __forceinline__ float sigmoid_(float x) { return 1.0f / (1.0f + expf(-x)); }
// GELU, tanh form, and its derivative.
__device__ __forceinline__ float gelu_(float x) { return 0.5f * x * (1.0f + tanhf(0.7978845608f * (x + 0.044715f * x * x * x))); }
__device__ __forceinline__ float gelu_grad_(float x)
{
    float t = tanhf(0.7978845608f * (x + 0.044715f * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * 0.7978845608f * (1.0f + 3.0f * 0.044715f * x * x);
}
// Inverted dropout: the same hash of (key, index) as the CPU code, so masks agree bit for bit.
__device__ __forceinline__ float dropout_scale_(unsigned key, unsigned index, unsigned threshold, float scale)
{
    unsigned x = index * 0x{{Rng.DropoutGolden:X8}}u + key;
    x ^= x >> 16; x *= 0x{{Rng.DropoutMix1:X8}}u; x ^= x >> 13; x *= 0x{{Rng.DropoutMix2:X8}}u; x ^= x >> 16;
    return x < threshold ? 0.0f : scale;
}
// Sum over the THREADS threads of a block (a power of two) in a fixed order; every thread gets the total.
template <int THREADS, typename T>
__device__ __forceinline__ T block_sum_(T v, T* shared)
{
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s >>= 1)
    {
        if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
        __syncthreads();
    }
    T total = shared[0];
    __syncthreads();
    return total;
}

// y[r, :] = b, before a GEMM adds x·Wᵀ.
extern "C" __global__ void fill_rows(const float* __restrict__ b, float* __restrict__ y, int rows, int width)
{
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (long)rows * width) y[i] = b[i % width];
}

// y[r, :] += b, when a GEMM adds x·Wᵀ onto a residual already in y.
extern "C" __global__ void add_rows(const float* __restrict__ b, float* __restrict__ y, int rows, int width)
{
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (long)rows * width) y[i] += b[i % width];
}

// Column sums in two deterministic passes: partial sums over chunks of ROW_CHUNK rows (block 32 × 8)...
extern "C" __global__ void column_partials(const float* __restrict__ x, float* __restrict__ partial, int rows, int width)
{
    __shared__ float s[8][33];
    int col = blockIdx.x * 32 + threadIdx.x, chunks = (rows + ROW_CHUNK - 1) / ROW_CHUNK;
    for (int chunk = blockIdx.y; chunk < chunks; chunk += gridDim.y) // the grid's y extent is capped at 65535
    {
        int r0 = chunk * ROW_CHUNK, r1 = min(rows, r0 + ROW_CHUNK);
        float acc = 0.0f;
        if (col < width)
            for (int r = r0 + threadIdx.y; r < r1; r += 8) acc += x[(long)r * width + col];
        s[threadIdx.y][threadIdx.x] = acc;
        __syncthreads();
        if (threadIdx.y == 0 && col < width)
        {
            float t = 0.0f;
            for (int k = 0; k < 8; k++) t += s[k][threadIdx.x];
            partial[(long)chunk * width + col] = t;
        }
        __syncthreads();
    }
}

// ...then sum[col] += Σ over chunks.
extern "C" __global__ void column_finish(const float* __restrict__ partial, float* __restrict__ sum, int chunks, int width)
{
    int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= width) return;
    float t = 0.0f;
    for (int c = 0; c < chunks; c++) t += partial[(long)c * width + col];
    sum[col] += t;
}

// LayerNorm over H (eps 1e-5), one block of NORM_THREADS per row; keeps mean and 1/std.
extern "C" __global__ void layernorm_forward(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b,
    float* __restrict__ y, float* __restrict__ mean, float* __restrict__ rstd)
{
    __shared__ float red[NORM_THREADS];
    const float* xr = x + (long)blockIdx.x * H;
    float s = 0.0f;
    for (int i = threadIdx.x; i < H; i += NORM_THREADS) s += xr[i];
    float m = block_sum_<NORM_THREADS>(s, red) / H;
    float v = 0.0f;
    for (int i = threadIdx.x; i < H; i += NORM_THREADS) { float d = xr[i] - m; v += d * d; }
    float rs = rsqrtf(block_sum_<NORM_THREADS>(v, red) / H + 1e-5f);
    for (int i = threadIdx.x; i < H; i += NORM_THREADS) y[(long)blockIdx.x * H + i] = (xr[i] - m) * rs * w[i] + b[i];
    if (threadIdx.x == 0) { mean[blockIdx.x] = m; rstd[blockIdx.x] = rs; }
}

// dx += rstd·(dy·w − mean(dy·w) − x̂·mean(dy·w·x̂)); dyxhat = dy·x̂ for the weight gradient's column sums.
extern "C" __global__ void layernorm_backward(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ mean,
    const float* __restrict__ rstd, const float* __restrict__ dy, float* __restrict__ dx, float* __restrict__ dyxhat)
{
    __shared__ float red[NORM_THREADS];
    long r = blockIdx.x;
    float m = mean[r], rs = rstd[r], sg = 0.0f, sgx = 0.0f;
    for (int i = threadIdx.x; i < H; i += NORM_THREADS)
    {
        float xh = (x[r * H + i] - m) * rs, g = dy[r * H + i] * w[i];
        sg += g; sgx += g * xh;
    }
    float mg = block_sum_<NORM_THREADS>(sg, red) / H, mgx = block_sum_<NORM_THREADS>(sgx, red) / H;
    for (int i = threadIdx.x; i < H; i += NORM_THREADS)
    {
        float xh = (x[r * H + i] - m) * rs;
        dx[r * H + i] += rs * (dy[r * H + i] * w[i] - mg - xh * mgx);
        dyxhat[r * H + i] = dy[r * H + i] * xh;
    }
}

// RMSNorm: y = x·rstd·w, rstd = 1/√(mean(x²) + 1e-5).
extern "C" __global__ void rmsnorm_forward(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y, float* __restrict__ rstd)
{
    __shared__ float red[NORM_THREADS];
    const float* xr = x + (long)blockIdx.x * H;
    float s = 0.0f;
    for (int i = threadIdx.x; i < H; i += NORM_THREADS) s += xr[i] * xr[i];
    float rs = rsqrtf(block_sum_<NORM_THREADS>(s, red) / H + 1e-5f);
    for (int i = threadIdx.x; i < H; i += NORM_THREADS) y[(long)blockIdx.x * H + i] = xr[i] * rs * w[i];
    if (threadIdx.x == 0) rstd[blockIdx.x] = rs;
}

// dx += rstd·(dy·w − x·rstd²·mean(dy·w·x)); dyxhat = dy·x·rstd.
extern "C" __global__ void rmsnorm_backward(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ rstd,
    const float* __restrict__ dy, float* __restrict__ dx, float* __restrict__ dyxhat)
{
    __shared__ float red[NORM_THREADS];
    long r = blockIdx.x;
    float rs = rstd[r], s = 0.0f;
    for (int i = threadIdx.x; i < H; i += NORM_THREADS) s += dy[r * H + i] * w[i] * x[r * H + i];
    float k = rs * rs * block_sum_<NORM_THREADS>(s, red) / H;
    for (int i = threadIdx.x; i < H; i += NORM_THREADS)
    {
        dx[r * H + i] += rs * (dy[r * H + i] * w[i] - x[r * H + i] * k);
        dyxhat[r * H + i] = dy[r * H + i] * x[r * H + i] * rs;
    }
}

extern "C" __global__ void gelu_forward(const float* __restrict__ y, float* __restrict__ g, long n)
{
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) g[i] = gelu_(y[i]);
}

extern "C" __global__ void gelu_backward(const float* __restrict__ dg, const float* __restrict__ y, float* __restrict__ dy, long n)
{
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dy[i] = dg[i] * gelu_grad_(y[i]);
}

// next = x + GLU(o)·dropout, GLU(o) = a·σ(g) over rows of width 2H (a first, g second); n = rows·H.
extern "C" __global__ void glu_residual_forward(const float* __restrict__ o, const float* __restrict__ x, float* __restrict__ next,
    int n, int key, int threshold, float scale)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) return;
    long r = j / H; int i = j % H;
    float glu = o[r * 2 * H + i] * sigmoid_(o[r * 2 * H + H + i]);
    next[j] = x[j] + glu * dropout_scale_((unsigned)key, (unsigned)j, (unsigned)threshold, scale);
}

// dO from d(next) through dropout and GLU (overwrites dO).
extern "C" __global__ void glu_backward(const float* __restrict__ o, const float* __restrict__ dnext, float* __restrict__ d_o,
    int n, int key, int threshold, float scale)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) return;
    long r = j / H; int i = j % H;
    float g = dnext[j] * dropout_scale_((unsigned)key, (unsigned)j, (unsigned)threshold, scale);
    float a = o[r * 2 * H + i], s = sigmoid_(o[r * 2 * H + H + i]);
    d_o[r * 2 * H + i] = g * s;
    d_o[r * 2 * H + H + i] = g * a * s * (1.0f - s);
}

// Embedding rows: x[r, :] = table[tokens[r], :]; n = rows·H.
extern "C" __global__ void embedding_forward(const int* __restrict__ tokens, const float* __restrict__ table, float* __restrict__ x, int n)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j < n) x[j] = table[(long)tokens[j / H] * H + j % H];
}

// The embedding's gradient: rows that share a token add into the same row, hence atomics.
extern "C" __global__ void embedding_backward(const int* __restrict__ tokens, const float* __restrict__ dx, float* __restrict__ g_table, int n)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j < n) atomicAdd(&g_table[(long)tokens[j / H] * H + j % H], dx[j]);
}

// Mean over time: (B, L, H) → (B, H), one thread per (b, k).
extern "C" __global__ void pool_mean_forward(const float* __restrict__ x, float* __restrict__ pooled, int batch, int length)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= batch * H) return;
    int b = j / H, k = j % H;
    float s = 0.0f;
    for (int t = 0; t < length; t++) s += x[((long)b * length + t) * H + k];
    pooled[j] = s / length;
}

extern "C" __global__ void pool_mean_backward(const float* __restrict__ d_pooled, float* __restrict__ dx, int batch, int length)
{
    long j = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= (long)batch * length * H) return;
    long b = j / ((long)length * H);
    dx[j] = d_pooled[b * H + j % H] / length;
}

// A stream's running mean over time, one token: sum += x (the state's pooled sum), out = sum/(t + 1).
extern "C" __global__ void pool_mean_step(float* __restrict__ sum, const float* __restrict__ x, float* __restrict__ out, int t)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= H) return;
    float s = sum[j] + x[j];
    sum[j] = s;
    out[j] = s * (1.0f / (t + 1));
}

// Last position: (B, L, H) → (B, H).
extern "C" __global__ void pool_last_forward(const float* __restrict__ x, float* __restrict__ pooled, int batch, int length)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j < batch * H) pooled[j] = x[((long)(j / H) * length + length - 1) * H + j % H];
}

extern "C" __global__ void pool_last_backward(const float* __restrict__ d_pooled, float* __restrict__ dx, int batch, int length)
{
    long j = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= (long)batch * length * H) return;
    long b = j / ((long)length * H), t = j / H % length;
    dx[j] = t == length - 1 ? d_pooled[b * H + j % H] : 0.0f;
}

""");
        EmitTrainingStepKernels(cu, plan);
        foreach (var kind in LayerKinds.All) kind.EmitCudaKernels(cu, plan);
        string source = cu.ToString();
        return (source, CudaKernel.Read(source));
    }

    /// <summary>Threads of the training step's reductions (loss, gradient norm).</summary>
    private const int StatThreads = 256;

    /// <summary>
    /// The parameter buffer as ranges of one optimizer group each (consecutive tensors of a group merged): the AdamW
    /// kernel gives each range a row of blocks, so no thread looks its group up.
    /// </summary>
    private static List<(int Start, int End, int Group)> OptimizerRanges(ModelPlan plan)
    {
        var ranges = new List<(int Start, int End, int Group)>();
        foreach (var p in plan.Parameters)
        {
            int group = p.Group switch { "Default" => 0, "NoDecay" => 1, "Ssm" => 2, _ => throw new System.InvalidOperationException("unknown optimizer group " + p.Group) };
            if (ranges.Count > 0 && ranges[ranges.Count - 1].Group == group && ranges[ranges.Count - 1].End == p.Offset)
                ranges[ranges.Count - 1] = (ranges[ranges.Count - 1].Start, p.Offset + p.Length, group);
            else ranges.Add((p.Offset, p.Offset + p.Length, group));
        }
        return ranges;
    }

    /// <summary>Blocks along one optimizer range: enough for the longest range, at most 128 (the rest loop).</summary>
    private static int OptimizerBlocks(ModelPlan plan) => System.Math.Max(1, System.Math.Min(128, (OptimizerRanges(plan).Max(r => r.End - r.Start) + 255) / 256));

    /// <summary>Blocks of the gradient norm's first pass.</summary>
    private static int NormBlocks(ModelPlan plan) => System.Math.Max(1, System.Math.Min(1024, (plan.ParameterCount + StatThreads - 1) / StatThreads));

    /// <summary>The tail of a training step on the device: cross-entropy, the global gradient norm and clipping, AdamW.</summary>
    private static void EmitTrainingStepKernels(StringBuilder cu, ModelPlan plan)
    {
        var ranges = OptimizerRanges(plan);
        cu.Append($$"""
// ---- The training step's tail: loss, gradient norm and clipping, AdamW (the Trainer's arithmetic) ----
constexpr int OUT = {{plan.Spec.Output}};
constexpr int PARAMS = {{plan.ParameterCount}};
constexpr int STAT_THREADS = {{StatThreads}};
constexpr int OPT_RANGES = {{ranges.Count}};
// The parameter buffer as ranges of one optimizer group each (0 weight-decayed, 1 no decay, 2 SSM), in order.
__constant__ int OPT_START[OPT_RANGES + 1] = { {{string.Join(", ", ranges.Select(r => r.Start).Concat(new[] { plan.ParameterCount }))}} };
__constant__ int OPT_GROUP[OPT_RANGES] = { {{string.Join(", ", ranges.Select(r => r.Group))}} };

// Softmax cross-entropy of each output row (one thread per row): its loss, whether its arg-max (lowest index on
// ties) is the target, and dL/dlogits = (softmax − onehot)/rows of the mean loss.
extern "C" __global__ void cross_entropy(const float* __restrict__ logits, const int* __restrict__ targets, float* __restrict__ dlogits,
    double* __restrict__ row_loss, int* __restrict__ row_hit, int rows)
{
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const float* z = logits + (long)r * OUT;
    float* d = dlogits + (long)r * OUT;
    int best = 0;
    for (int k = 1; k < OUT; k++) if (z[k] > z[best]) best = k;
    double sum = 0.0;
    for (int k = 0; k < OUT; k++) sum += exp((double)(z[k] - z[best]));
    double logZ = z[best] + log(sum);
    int t = targets[r];
    row_loss[r] = logZ - z[t];
    row_hit[r] = best == t;
    for (int k = 0; k < OUT; k++) d[k] = (float)(exp(z[k] - logZ) / rows);
    d[t] -= 1.0f / rows;
}

// stats[0] = mean loss, stats[1] = rows classified correctly (one block, fixed order).
extern "C" __global__ void loss_finish(const double* __restrict__ row_loss, const int* __restrict__ row_hit, int rows, float* __restrict__ stats)
{
    __shared__ double red[STAT_THREADS];
    __shared__ int hits[STAT_THREADS];
    double s = 0.0;
    int h = 0;
    for (int r = threadIdx.x; r < rows; r += STAT_THREADS) { s += row_loss[r]; h += row_hit[r]; }
    s = block_sum_<STAT_THREADS>(s, red);
    h = block_sum_<STAT_THREADS>(h, hits);
    if (threadIdx.x == 0) { stats[0] = (float)(s / rows); stats[1] = (float)h; }
}

// Σ g² in double: one partial per block...
extern "C" __global__ void square_partials(const float* __restrict__ g, double* __restrict__ partial)
{
    __shared__ double red[STAT_THREADS];
    double s = 0.0;
    for (long i = (long)blockIdx.x * STAT_THREADS + threadIdx.x; i < PARAMS; i += (long)gridDim.x * STAT_THREADS) s += (double)g[i] * g[i];
    s = block_sum_<STAT_THREADS>(s, red);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// ...then stats[2] = the global norm and stats[3] = the clipping factor (1 unless the norm exceeds max_norm).
extern "C" __global__ void norm_finish(const double* __restrict__ partial, int blocks, float* __restrict__ stats, float max_norm)
{
    __shared__ double red[STAT_THREADS];
    double s = 0.0;
    for (int b = threadIdx.x; b < blocks; b += STAT_THREADS) s += partial[b];
    s = block_sum_<STAT_THREADS>(s, red);
    if (threadIdx.x == 0)
    {
        float norm = (float)sqrt(s);
        stats[2] = norm;
        stats[3] = norm > max_norm && norm > 0.0f ? max_norm / norm : 1.0f;
    }
}

// AdamW with decoupled weight decay; blockIdx.y picks an optimizer range. Gradients are clipped first (by
// stats[3]) and left clipped, as the host clipping leaves them. A NaN or infinite loss or norm changes nothing
// (the Trainer then throws or skips the step, as on the host).
extern "C" __global__ void adamw_update(float* __restrict__ p, float* __restrict__ g, float* __restrict__ m, float* __restrict__ v,
    const float* __restrict__ stats, float lr0, float wd0, float lr1, float wd1, float lr2, float wd2,
    float beta1, float beta2, float eps, float c1, float c2)
{
    if (!isfinite(stats[0]) || !isfinite(stats[2])) return;
    int range = blockIdx.y, group = OPT_GROUP[range];
    float lr = group == 0 ? lr0 : group == 1 ? lr1 : lr2, wd = group == 0 ? wd0 : group == 1 ? wd1 : wd2;
    float decay = 1.0f - lr * wd, scale = stats[3];
    for (int i = OPT_START[range] + blockIdx.x * blockDim.x + threadIdx.x; i < OPT_START[range + 1]; i += gridDim.x * blockDim.x)
    {
        float gi = g[i] * scale;
        g[i] = gi;
        float mi = beta1 * m[i] + (1.0f - beta1) * gi, vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - lr * (mi * c1) / (sqrtf(vi * c2) + eps);
    }
}

""");
    }

    public static string Emit(ModelPlan plan)
    {
        var s = plan.Spec;
        var (source, kernels) = Source(plan);
        var w = new CodeWriter();
        ModelEmitter.FileHeader(w, $"the GPU path of model '{s.ClassName}' (CUDA C compiled through NVRTC)");
        w.Line("""
        using GpuModelRunner = global::SsmGen.Cuda.GpuModelRunner;
        using ComputeDevice = global::SsmGen.Cuda.ComputeDevice;
        using Dim3 = global::SsmGen.Cuda.Dim3;

        """);
        if (s.Namespace.Length > 0) { w.Line($"namespace {s.Namespace};"); w.Line(); }
        w.Open($"partial {s.Keyword} {s.ClassName} : global::SsmGen.Training.IDeviceTrainingStep");
        w.Line("""
            /// <summary>The CUDA C this model runs on a GPU: every kernel, with the declared sizes as constants.</summary>
            public static string CudaSource => GpuPath.Source;
            /// <summary>The kernels in <see cref="CudaSource"/>.</summary>
            public static IReadOnlyList<string> CudaKernels => GpuPath.KernelNames;
            """);
        w.Line();
        EmitDeviceTrainingStep(w);
        w.Line("/// <summary>The model on a GPU device: device buffers, and each pass as launches of the generated kernels.</summary>");
        w.Open("private sealed class GpuPath : IDisposable");
        w.Verbatim("internal const string Source = @\"" + source.Replace("\"", "\"\"") + "\";");
        w.Line($"internal static readonly string[] KernelNames = {{ {string.Join(", ", kernels.Select(k => "\"" + k.Name + "\""))} }};");
        w.Line($$"""
            private const uint NormThreads = {{NormThreads(s.DModel)}};
            private const int RowChunk = 256;
            private const uint StatThreads = {{StatThreads}}, NormBlocks = {{NormBlocks(plan)}}, OptimizerBlocks = {{OptimizerBlocks(plan)}}, OptimizerRanges = {{OptimizerRanges(plan).Count}};
            private readonly int _maxLength;
            private bool _training; // the last Forward's: its dropout masks are the ones Backward replays
            private ulong _dropoutSeed, _maskStep;
            internal readonly GpuModelRunner Runner;
            private long _used; // floats laid out so far in the activation arena
            """);
        var layerBuffers = plan.Layers.SelectMany(l => PreNormBuffers(l).Concat(LayerKinds.Of(l).GpuBuffers(l))).ToList();
        var layerScratch = LayerKinds.All.SelectMany(k => k.GpuScratch(plan)).ToList();
        string shell = $"_input, _tokens, {string.Join(", ", plan.Layers.Select(l => $"_l{l.Index}X"))}, _xf, _meanF, _rstdF, _nf, _pooled, _out, _dOut, _dPooled, _dNf, _dX, _dO, _dG, _dY, _dU, _scratch, _partial";
        const string stepShell = "_targets, _rowLoss, _rowHit, _normPartial, _stats"; // the training step's tail
        const string streamShell = "_sIn, _sTok, _sX0, _sX1, _sMean, _sRstd, _sU, _sN, _sP, _sOut"; // Step: one token
        w.Line($"private readonly ulong {shell};");
        w.Line($$"""
            private readonly ulong {{stepShell}};
            // Step's buffers, one token wide: the input, the residual stream (two, each block reads one and writes the other),
            // norm statistics, a block's normalized input, final norm, pooled row, output (the kinds' own rows are among their scratch).
            private readonly ulong {{streamShell}};
            """);
        w.Line($"private readonly ulong {string.Join(", ", layerBuffers.Select(x => x.Field))};");
        if (layerScratch.Count > 0) w.Line($"private readonly ulong {string.Join(", ", layerScratch.Select(x => x.Field))};");
        int maxWidth = new[] { 2 * s.DModel, s.Output, plan.InputWidth }.Concat(LayerKinds.All.Select(k => k.GpuColumnWidth(plan))).Max();
        w.Line();
        var unsupported = LayerKinds.All.SelectMany(k => k.GpuUnsupported(plan)).ToList();
        if (unsupported.Count > 0)
        {
            w.Line("/// <summary>Why this model cannot run on a GPU (it runs on the CPU).</summary>");
            w.Line($"private static readonly string? Unsupported = \"{string.Join("; ", unsupported)}\"; // no quotes or escapes inside");
            w.Line();
        }
        w.Open("public GpuPath(float[] parameters, float[] gradients, ComputeDevice device, int maxBatch, int maxLength, bool training)");
        {
            if (unsupported.Count > 0) w.Line($"if (Unsupported is not null) throw new NotSupportedException($\"{s.ClassName} cannot run on a GPU: {{Unsupported}}; build it without a device to run it on the CPU.\");");
            w.Line("""
                _maxLength = maxLength;
                long rows = (long)maxBatch * maxLength, outRows = PerToken ? rows : maxBatch;
                long Take(long floats) { long at = _used; _used += (floats + 63) / 64 * 64; return 4 * at; } // a byte offset, 256-byte aligned
                _input = (ulong)Take(rows * InputSize); _tokens = (ulong)Take(rows);
                """);
            foreach (var l in plan.Layers) w.Line($"_l{l.Index}X = (ulong)Take(rows * H);");
            w.Line("_xf = (ulong)Take(rows * H); _meanF = (ulong)Take(rows); _rstdF = (ulong)Take(rows); _nf = (ulong)Take(rows * H);");
            w.Line("_pooled = PerToken ? _nf : (ulong)Take(maxBatch * H); _out = (ulong)Take(outRows * OutputSize);");
            foreach (var (f, floats) in layerBuffers) w.Line($"{f} = (ulong)Take({floats});");
            foreach (var (f, floats, training) in layerScratch) w.Line(training ? $"if (training) {f} = (ulong)Take({floats});" : $"{f} = (ulong)Take({floats});");
            w.Line($$"""
                // backward scratch (training only)
                if (training)
                {
                    _dOut = (ulong)Take(outRows * OutputSize); _dPooled = (ulong)Take(outRows * H); _dNf = (ulong)Take(rows * H); _dX = (ulong)Take(rows * H);
                    _dO = (ulong)Take(rows * 2 * H); _dG = (ulong)Take(rows * H); _dY = (ulong)Take(rows * H); _dU = (ulong)Take(rows * H); _scratch = (ulong)Take(rows * H);
                    _partial = (ulong)Take((rows + RowChunk - 1) / RowChunk * {{maxWidth}});
                    _targets = (ulong)Take(outRows); _rowLoss = (ulong)Take(2 * outRows); _rowHit = (ulong)Take(outRows); _normPartial = (ulong)Take(2 * NormBlocks); _stats = (ulong)Take(4);
                }
                _sIn = (ulong)Take(InputSize); _sTok = (ulong)Take(1); _sX0 = (ulong)Take(H); _sX1 = (ulong)Take(H); _sMean = (ulong)Take(1); _sRstd = (ulong)Take(1);
                _sU = (ulong)Take(H); _sN = (ulong)Take(H); _sP = (ulong)Take(H); _sOut = (ulong)Take(OutputSize);
                // inputs and outputs in one piece; parameters and gradients in pieces of at most 4 MiB
                long staging = 4 * Math.Max(Math.Max(rows * InputSize, Math.Max(outRows * OutputSize, rows)), Math.Min(ParameterCount, 1 << 20));
                Runner = new GpuModelRunner(device, Source, "{{s.ClassName}}.cu", KernelNames, parameters, gradients, 4 * _used, staging);
                ulong a = Runner.Activations;
                """);
            foreach (string f in shell.Split(',').Select(x => x.Trim()))
                w.Line(f == "_pooled" ? "_pooled = PerToken ? _nf : _pooled + a; // _nf has its base already" : f.StartsWith("_d") || f is "_scratch" or "_partial" ? $"if (training) {f} += a;" : $"{f} += a;");
            foreach (string f in stepShell.Split(',').Select(x => x.Trim())) w.Line($"if (training) {f} += a;");
            w.Line(string.Join(" ", streamShell.Split(',').Select(x => $"{x.Trim()} += a;")));
            foreach (var (f, _) in layerBuffers) w.Line($"{f} += a;");
            foreach (var (f, _, training) in layerScratch) w.Line(training ? $"if (training) {f} += a;" : $"{f} += a;");
        }
        w.Close();
        w.Line();
        EmitHelpers(w);
        w.Line("// ---- Launchers: one per kernel of Source, typed from its CUDA parameters ----");
        foreach (var kernel in kernels) kernel.EmitLauncher(w);
        w.Line();
        foreach (var kind in LayerKinds.In(plan)) kind.EmitGpuHelpers(w, plan);
        EmitForward(w, plan);
        EmitBackward(w, plan);
        EmitTrainingStep(w);
        EmitStep(w, plan);
        foreach (var l in plan.Layers)
        {
            if (unsupported.Count == 0) { LayerKinds.Of(l).EmitGpuLayer(w, plan, l); continue; }
            // The constructor refuses such a model, and its kernels are not all in Source: its blocks launch nothing.
            w.Line($$"""
                private void Layer{{l.Index}}Forward(int batch, int length) => throw new NotSupportedException(Unsupported);
                private void Layer{{l.Index}}Backward(int batch, int length) => throw new NotSupportedException(Unsupported);
                private void Layer{{l.Index}}Step(ulong state, int t, ulong x, ulong next) => throw new NotSupportedException(Unsupported);
                """);
        }
        w.Line("public void Dispose() => Runner?.Dispose();");
        w.Close();
        w.Close();
        return w.ToString();
    }

    /// <summary>The model's side of IDeviceTrainingStep: checks everything, then hands the step to the device path.</summary>
    private static void EmitDeviceTrainingStep(CodeWriter w)
    {
        w.Line("""
        /// <summary>True for a training model on a GPU device: the Trainer then finishes each step there.</summary>
        public bool TrainsOnDevice => _gpu is not null && _use == global::SsmGen.ModelUse.Training;

        /// <summary>Loss, backward, clipping and AdamW on the device after a Forward (see <see cref="global::SsmGen.Training.IDeviceTrainingStep"/>).</summary>
        public global::SsmGen.Training.StepResult FinishTrainingStep(ReadOnlySpan<int> targets, global::SsmGen.Training.AdamW optimizer, float lrScale, float maxGradNorm)
        {
            if (_gpu is null) throw new InvalidOperationException("This model runs on the CPU: the Trainer finishes its steps on the host.");
            if (_use != global::SsmGen.ModelUse.Training) throw new InvalidOperationException("This model was built for inference only: it has no gradients to train with.");
            if (!_hasForward) throw new InvalidOperationException("A training step needs a Forward first.");
            ArgumentNullException.ThrowIfNull(optimizer);
            if (!(maxGradNorm > 0)) throw new ArgumentOutOfRangeException(nameof(maxGradNorm), maxGradNorm, "The clipping norm must be positive (infinity for no clipping).");
            int outRows = PerToken ? _batch * _length : _batch;
            if (targets.Length != outRows) throw new ArgumentException($"Got {targets.Length} targets; the last Forward has {outRows} output rows.", nameof(targets));
            foreach (int t in targets) if ((uint)t >= OutputSize) throw new ArgumentOutOfRangeException(nameof(targets), t, $"Targets must be in [0, {OutputSize}).");
            return _gpu.FinishTrainingStep(targets, _batch, _length, optimizer, lrScale, maxGradNorm);
        }

        """);
    }

    private static void EmitTrainingStep(CodeWriter w)
    {
        w.Line("""
        /// <summary>
        /// The training step's tail on the device: cross-entropy of the last forward's outputs (dL/d(output) straight into
        /// the backward's buffer), gradients zeroed and recomputed, their global norm and clipping, AdamW on the device's
        /// copy of the optimizer's moments; downloads only the loss, the correct count and the norm.
        /// </summary>
        public global::SsmGen.Training.StepResult FinishTrainingStep(ReadOnlySpan<int> targets, int batch, int length, global::SsmGen.Training.AdamW optimizer, float lrScale, float maxGradNorm)
        {
            var adam = Runner.BeginAdamWStep(optimizer, lrScale); // checks the optimizer before anything runs
            int outRows = PerToken ? batch * length : batch;
            Runner.Upload(targets, _targets);
            Launch_cross_entropy(Blocks(outRows), Threads, _out, _targets, _dOut, _rowLoss, _rowHit, outRows);
            Launch_loss_finish(1, StatThreads, _rowLoss, _rowHit, outRows, _stats);
            Runner.ZeroGradients();
            Runner.BeforeDeviceUse(gradients: true);
            BackwardFromDeviceOutput(batch, length);
            Launch_square_partials(NormBlocks, StatThreads, Runner.Gradients, _normPartial);
            Launch_norm_finish(1, StatThreads, _normPartial, (int)NormBlocks, _stats, maxGradNorm);
            Launch_adamw_update(new Dim3(OptimizerBlocks, OptimizerRanges), new Dim3(256), Runner.Parameters, Runner.Gradients, adam.FirstMoments, adam.SecondMoments, _stats,
                adam.LearningRate0, adam.WeightDecay0, adam.LearningRate1, adam.WeightDecay1, adam.LearningRate2, adam.WeightDecay2, adam.Beta1, adam.Beta2, adam.Epsilon, adam.C1, adam.C2);
            Runner.ParametersWrittenOnDevice();
            Span<float> stats = stackalloc float[4];
            Runner.Download(_stats, stats);
            if (!float.IsFinite(stats[0]) || !float.IsFinite(stats[2])) Runner.AdamWStepNotApplied(optimizer); // the kernel returned early
            return new global::SsmGen.Training.StepResult(stats[0], stats[2], (int)stats[1], outRows);
        }

        """);
    }

    /// <summary>
    /// Step on the device: the stream's values stay in the runner's state copy between tokens (see
    /// <c>GpuModelRunner.StateOnDevice</c>); a token moves its input in and OutputSize values out.
    /// </summary>
    private static void EmitStep(CodeWriter w, ModelPlan plan)
    {
        var n = plan.Names;
        w.Line("/// <summary>One token of a stream on the device; the caller checked the input and moved the stream's position to t + 1.</summary>");
        w.Open("public void Step(ReadOnlySpan<float> x, int token, global::SsmGen.SsmState state, int t, Span<float> y)");
        w.Line("Runner.BeforeDeviceUse(gradients: false);");
        w.Line("ulong s = Runner.StateOnDevice(state);");
        EmitEncoder(w, plan, "x", "new ReadOnlySpan<int>(in token)", "_sIn", "_sTok", "_sX0", "1");
        int k = 0;
        foreach (var l in plan.Layers)
        {
            string from = k % 2 == 0 ? "_sX0" : "_sX1", to = k % 2 == 0 ? "_sX1" : "_sX0";
            w.Line($"Layer{l.Index}Step(s, t, {from}, {to});");
            k++;
        }
        w.Line(NormForward(n.FinalRms, n.FinalNorm, k % 2 == 0 ? "_sX0" : "_sX1", "_sN", "_sMean", "_sRstd", "1"));
        if (plan.Spec.Pooling == 0) w.Line("Launch_pool_mean_step(Blocks(H), Threads, At(s, S_pool), _sN, _sP, t);");
        w.Line($"Linear({(plan.Spec.Pooling == 0 ? "_sP" : "_sN")}, {P(n.Decoder + ".weight")}, {(n.DecoderBias ? P(n.Decoder + ".bias") : "0UL")}, _sOut, 1, H, OutputSize);");
        w.Line("Runner.Download(_sOut, y.Slice(0, OutputSize));");
        w.Close();
        w.Line();
        w.Line("/// <summary>The device address <paramref name=\"floats\"/> floats into the stream's state.</summary>");
        w.Line("private static ulong At(ulong state, long floats) => state + 4UL * (ulong)floats;");
        w.Line();
    }

    private static void EmitHelpers(CodeWriter w)
    {
        w.Line($$"""
            private ulong P(int offset) => Runner.Parameters + 4UL * (uint)offset;
            private ulong G(int offset) => Runner.Gradients + 4UL * (uint)offset;
            private const int Threads = {{GpuLimits.Threads}}, MaxGridY = {{GpuLimits.MaxGridY}}; // threads per block of the element-wise kernels; CUDA's largest grid y extent
            """);
        w.Line("""
        private static uint Blocks(long n) => (uint)((n + Threads - 1) / Threads);

        /// <summary>The dropout key, threshold and scale of a layer in this forward: (0, 0, 1) keeps everything.</summary>
        private (int Key, int Threshold, float Scale) Dropout(int layer, double p)
        {
            if (!_training || p <= 0) return (0, 0, 1f);
            return (unchecked((int)global::SsmGen.Rng.DropoutKey(_dropoutSeed, _maskStep, layer)), unchecked((int)global::SsmGen.Rng.DropoutThreshold(p)), (float)(1 / (1 - p)));
        }

        /// <summary>
        /// y (rows, outF) = x (rows, inF)·Wᵀ + b on cuBLAS (row-major y is column-major yᵀ = W'ᵀ·x' with W' = Wᵀ); x's rows are
        /// ldx floats apart (default inF); accumulate adds to y instead of overwriting it.
        /// </summary>
        private void Linear(ulong x, ulong weight, ulong bias, ulong y, int rows, int inF, int outF, int ldx = 0, bool accumulate = false)
        {
            if (bias != 0 && accumulate) Launch_add_rows(Blocks((long)rows * outF), Threads, bias, y, rows, outF);
            else if (bias != 0) Launch_fill_rows(Blocks((long)rows * outF), Threads, bias, y, rows, outF);
            Runner.Gpu.Sgemm(true, false, outF, rows, inF, 1f, weight, inF, x, ldx > 0 ? ldx : inF, bias != 0 || accumulate ? 1f : 0f, y, outF);
        }

        /// <summary>
        /// dx = dy·W (overwrites, or adds when accumulate; skipped when dx is 0), dW += dyᵀ·x, db += Σ_rows dy (skipped when db
        /// is 0). x's and dx's rows are ldx floats apart (default inF).
        /// </summary>
        private void LinearBackward(ulong x, ulong weight, ulong dy, ulong dx, ulong dWeight, ulong dBias, int rows, int inF, int outF, int ldx = 0, bool accumulate = false)
        {
            int ld = ldx > 0 ? ldx : inF;
            if (dx != 0) Runner.Gpu.Sgemm(false, false, inF, rows, outF, 1f, weight, inF, dy, outF, accumulate ? 1f : 0f, dx, ld);
            Runner.Gpu.Sgemm(false, true, inF, outF, rows, 1f, x, ld, dy, outF, 1f, dWeight, inF);
            if (dBias != 0) ColumnSums(dy, dBias, rows, outF);
        }

        /// <summary>sum[c] += Σ_r x[r, c], in two deterministic passes.</summary>
        private void ColumnSums(ulong x, ulong sum, int rows, int width)
        {
            int chunks = (rows + RowChunk - 1) / RowChunk;
            Launch_column_partials(new Dim3((uint)((width + 31) / 32), (uint)Math.Min(chunks, MaxGridY)), new Dim3(32, 8), x, _partial, rows, width);
            ColumnFinish(_partial, sum, chunks, width);
        }

        /// <summary>sum[c] += Σ_k partial[k, c] over the chunks' partial sums.</summary>
        private void ColumnFinish(ulong partial, ulong sum, int chunks, int width) => Launch_column_finish(Blocks(width), Threads, partial, sum, chunks, width);

        private void LayerNormBackward(ulong x, ulong weight, ulong mean, ulong rstd, ulong dy, ulong dx, ulong dWeight, ulong dBias, int rows)
        {
            Launch_layernorm_backward((uint)rows, NormThreads, x, weight, mean, rstd, dy, dx, _scratch);
            ColumnSums(_scratch, dWeight, rows, H);
            ColumnSums(dy, dBias, rows, H);
        }

        private void RmsNormBackward(ulong x, ulong weight, ulong rstd, ulong dy, ulong dx, ulong dWeight, int rows)
        {
            Launch_rmsnorm_backward((uint)rows, NormThreads, x, weight, rstd, dy, dx, _scratch);
            ColumnSums(_scratch, dWeight, rows, H);
        }

        """);
    }

    private static string P(string name, string buf = "P") => $"{buf}({ParamPlan.ConstOf(name)})";

    /// <summary>The device address of a block's parameter (buf "P") or its gradient ("G"), by its name in the block.</summary>
    internal static string Param(LayerPlan l, string name, string buf = "P") => P(l.Prefix + name, buf);

    /// <summary>Host input (real rows or token ids) up to the device and through the encoder into <paramref name="x"/>.</summary>
    private static void EmitEncoder(CodeWriter w, ModelPlan plan, string hostInput, string hostTokens, string input, string tokens, string x, string rows)
    {
        var n = plan.Names;
        if (plan.TokenInput)
        {
            w.Line($"Runner.Upload({hostTokens}, {tokens});");
            w.Line($"Launch_embedding_forward(Blocks((long){rows} * H), Threads, {tokens}, {P(n.Encoder + ".weight")}, {x}, {rows} * H);");
        }
        else
        {
            w.Line($"Runner.Upload({hostInput}, {input});");
            w.Line($"Linear({input}, {P(n.Encoder + ".weight")}, {P(n.Encoder + ".bias")}, {x}, {rows}, InputSize, H);");
        }
    }

    /// <summary>
    /// The launch of a RMSNorm or LayerNorm forward over <paramref name="rows"/> rows; <paramref name="norm"/> is the
    /// norm's full parameter prefix (its ".weight", and ".bias" for LayerNorm).
    /// </summary>
    /// <summary>A block's pre-norm buffers on the device, which <see cref="OpenForward"/> writes: its statistics and output.</summary>
    private static IEnumerable<(string Field, string Floats)> PreNormBuffers(LayerPlan l) =>
        [($"_l{l.Index}Mean", "rows"), ($"_l{l.Index}Rstd", "rows"), ($"_l{l.Index}U", "rows * H")];

    /// <summary>The head of block l's forward on the device: rows, then the pre-norm of _l{i}X into _l{i}U.</summary>
    internal static void OpenForward(CodeWriter w, LayerPlan l, bool rms = false)
    {
        string i = "_l" + l.Index;
        w.Open($"private void Layer{l.Index}Forward(int batch, int length)");
        w.Line("int rows = batch * length;");
        w.Line(NormForward(rms, l.Prefix + "norm", $"{i}X", $"{i}U", $"{i}Mean", $"{i}Rstd", "rows"));
    }

    /// <summary>
    /// The residual add of a block's half on the device: <paramref name="into"/> (the next stream buffer) takes the
    /// half's input <paramref name="residual"/>, then the half's output projection of <paramref name="input"/> (rows,
    /// <paramref name="width"/>) is added onto it.
    /// </summary>
    internal static void ProjectOntoResidual(CodeWriter w, string input, string weight, string bias, object width, string into, string residual)
    {
        w.Line($"Runner.Gpu.CopyOnDevice({into}, {residual}, 4L * rows * H);");
        w.Line($"Linear({input}, {weight}, {bias}, {into}, rows, {width}, H, accumulate: true);");
    }

    /// <summary>The end of block l's forward on the device.</summary>
    internal static void CloseForward(CodeWriter w) => w.Close().Line();

    /// <summary>The head of block l's backward on the device: _dX holds dL/d(block output); rows.</summary>
    internal static void OpenBackward(CodeWriter w, LayerPlan l) =>
        w.Open($"private void Layer{l.Index}Backward(int batch, int length)").Line("int rows = batch * length;");

    /// <summary>The tail of block l's backward on the device: the path through its pre-norm, from _dU, added to _dX.</summary>
    internal static void CloseBackward(CodeWriter w, LayerPlan l, bool rms = false)
    {
        string i = "_l" + l.Index;
        w.Line(rms
            ? $"RmsNormBackward({i}X, {Param(l, "norm.weight")}, {i}Rstd, _dU, _dX, {Param(l, "norm.weight", "G")}, rows);"
            : $"LayerNormBackward({i}X, {Param(l, "norm.weight")}, {i}Mean, {i}Rstd, _dU, _dX, {Param(l, "norm.weight", "G")}, {Param(l, "norm.bias", "G")}, rows);");
        w.Close();
        w.Line();
    }

    internal static string NormForward(bool rms, string norm, string x, string y, string mean, string rstd, string rows)
    {
        string grid = rows.All(char.IsLetterOrDigit) ? $"(uint){rows}" : $"(uint)({rows})";
        return rms
            ? $"Launch_rmsnorm_forward({grid}, NormThreads, {x}, {P(norm + ".weight")}, {y}, {rstd});"
            : $"Launch_layernorm_forward({grid}, NormThreads, {x}, {P(norm + ".weight")}, {P(norm + ".bias")}, {y}, {mean}, {rstd});";
    }

    private static void EmitForward(CodeWriter w, ModelPlan plan)
    {
        var n = plan.Names;
        w.Line("/// <summary>Forward on the device (the caller checked the shapes); a training one draws dropout masks from (seed, step).</summary>");
        w.Open("public void Forward(ReadOnlySpan<float> input, ReadOnlySpan<int> tokens, int batch, int length, Span<float> output, bool training, ulong dropoutSeed, ulong maskStep)");
        w.Line("""
            (_training, _dropoutSeed, _maskStep) = (training, dropoutSeed, maskStep);
            Runner.BeforeDeviceUse(gradients: false);
            int rows = batch * length, outRows = PerToken ? rows : batch;
            """);
        EmitEncoder(w, plan, "input", "tokens", "_input", "_tokens", "_l0X", "rows");
        foreach (var l in plan.Layers) w.Line($"Layer{l.Index}Forward(batch, length);");
        w.Line(NormForward(n.FinalRms, n.FinalNorm, "_xf", "_nf", "_meanF", "_rstdF", "rows"));
        if (plan.Spec.Pooling == 0) w.Line("Launch_pool_mean_forward(Blocks(batch * H), Threads, _nf, _pooled, batch, length);");
        if (plan.Spec.Pooling == 1) w.Line("Launch_pool_last_forward(Blocks(batch * H), Threads, _nf, _pooled, batch, length);");
        w.Line($"Linear(_pooled, {P(n.Decoder + ".weight")}, {(n.DecoderBias ? P(n.Decoder + ".bias") : "0UL")}, _out, outRows, H, OutputSize);");
        w.Line("Runner.Download(_out, output.Slice(0, outRows * OutputSize));");
        w.Close();
        w.Line();
    }

    private static void EmitBackward(CodeWriter w, ModelPlan plan)
    {
        var n = plan.Names;
        w.Line("/// <summary>Backward on the device: adds into the gradient arena, layers in reverse order.</summary>");
        w.Open("public void Backward(ReadOnlySpan<float> dOutput, int batch, int length)");
        w.Line("""
            Runner.BeforeDeviceUse(gradients: true);
            Runner.Upload(dOutput, _dOut);
            BackwardFromDeviceOutput(batch, length);
            """);
        w.Close();
        w.Line();
        w.Line("/// <summary>Backward from dL/d(output) already in the device buffer.</summary>");
        w.Open("private void BackwardFromDeviceOutput(int batch, int length)");
        w.Line("int rows = batch * length, outRows = PerToken ? rows : batch;");
        w.Line($"LinearBackward(_pooled, {P(n.Decoder + ".weight")}, _dOut, _dPooled, {P(n.Decoder + ".weight", "G")}, {(n.DecoderBias ? P(n.Decoder + ".bias", "G") : "0UL")}, outRows, H, OutputSize);");
        string dNf = plan.Spec.Pooling == 2 ? "_dPooled" : "_dNf";
        if (plan.Spec.Pooling == 0) w.Line("Launch_pool_mean_backward(Blocks((long)rows * H), Threads, _dPooled, _dNf, batch, length);");
        if (plan.Spec.Pooling == 1) w.Line("Launch_pool_last_backward(Blocks((long)rows * H), Threads, _dPooled, _dNf, batch, length);");
        w.Line("Runner.Gpu.Clear(_dX, 4L * rows * H);");
        w.Line(n.FinalRms
            ? $"RmsNormBackward(_xf, {P(n.FinalNorm + ".weight")}, _rstdF, {dNf}, _dX, {P(n.FinalNorm + ".weight", "G")}, rows);"
            : $"LayerNormBackward(_xf, {P(n.FinalNorm + ".weight")}, _meanF, _rstdF, {dNf}, _dX, {P(n.FinalNorm + ".weight", "G")}, {P(n.FinalNorm + ".bias", "G")}, rows);");
        foreach (var l in plan.Layers.Reverse()) w.Line($"Layer{l.Index}Backward(batch, length);");
        if (plan.TokenInput)
            w.Line($"Launch_embedding_backward(Blocks((long)rows * H), Threads, _tokens, _dX, {P(n.Encoder + ".weight", "G")}, rows * H);");
        else
            w.Line($"LinearBackward(_input, {P(n.Encoder + ".weight")}, _dX, 0UL, {P(n.Encoder + ".weight", "G")}, {P(n.Encoder + ".bias", "G")}, rows, InputSize, H);");
        w.Line("Runner.GradientsWrittenOnDevice();");
        w.Close();
        w.Line();
    }
}
