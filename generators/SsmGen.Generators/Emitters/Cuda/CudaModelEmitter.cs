using System.Collections.Generic;
using System.Linq;
using System.Text;
using SsmGen.Generators.Model;

namespace SsmGen.Generators.Emitters.Cuda;

/// <summary>
/// The model shell, GPU backend ({Model}.Cuda.g.cs): the CUDA C source of every kernel the model runs (sizes as
/// compile-time constants), emitted as a C# constant and compiled on first use; the device buffer layout; and
/// Forward/Backward as sequences of launches and cuBLAS GEMMs mirroring the CPU passes. Each layer kind's
/// GPU emitter (<see cref="CudaS4DEmitter"/>) writes its kernels and its block's launches.
/// </summary>
internal static class CudaModelEmitter
{
    /// <summary>Threads of a row-wise kernel (norms): a power of two between 32 and 256.</summary>
    private static int NormThreads(int h) { int t = 32; while (t < h && t < 256) t *= 2; return t; }

    /// <summary>The CUDA C of the model and its kernel names, in launch order of first use.</summary>
    public static (string Source, List<string> Kernels) Source(ModelPlan plan)
    {
        var names = new List<string>();
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
    unsigned x = index * 0x9E3779B1u + key;
    x ^= x >> 16; x *= 0x85EBCA6Bu; x ^= x >> 13; x *= 0xC2B2AE35u; x ^= x >> 16;
    return x < threshold ? 0.0f : scale;
}
// Sum over the NORM_THREADS threads of a block; every thread gets the total.
__device__ __forceinline__ float block_sum_(float v, float* shared)
{
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int s = NORM_THREADS / 2; s > 0; s >>= 1)
    {
        if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
        __syncthreads();
    }
    float total = shared[0];
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
    float m = block_sum_(s, red) / H;
    float v = 0.0f;
    for (int i = threadIdx.x; i < H; i += NORM_THREADS) { float d = xr[i] - m; v += d * d; }
    float rs = rsqrtf(block_sum_(v, red) / H + 1e-5f);
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
    float mg = block_sum_(sg, red) / H, mgx = block_sum_(sgx, red) / H;
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
    float rs = rsqrtf(block_sum_(s, red) / H + 1e-5f);
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
    float k = rs * rs * block_sum_(s, red) / H;
    for (int i = threadIdx.x; i < H; i += NORM_THREADS)
    {
        dx[r * H + i] += rs * (dy[r * H + i] * w[i] - x[r * H + i] * k);
        dyxhat[r * H + i] = dy[r * H + i] * x[r * H + i] * rs;
    }
}

extern "C" __global__ void gelu_forward(const float* __restrict__ y, float* __restrict__ g, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) g[i] = gelu_(y[i]);
}

extern "C" __global__ void gelu_backward(const float* __restrict__ dg, const float* __restrict__ y, float* __restrict__ dy, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
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
        names.AddRange(new[] { "fill_rows", "add_rows", "column_partials", "column_finish", "layernorm_forward", "layernorm_backward", "rmsnorm_forward", "rmsnorm_backward",
            "gelu_forward", "gelu_backward", "glu_residual_forward", "glu_backward", "embedding_forward", "embedding_backward",
            "pool_mean_forward", "pool_mean_backward", "pool_last_forward", "pool_last_backward" });
        CudaS4DEmitter.EmitKernels(cu, plan, names);
        CudaMambaEmitter.EmitKernels(cu, plan, names);
        CudaRnnEmitter.EmitKernels(cu, plan, names);
        CudaIdsEmitter.EmitKernels(cu, plan, names);
        CudaAttentionEmitter.EmitKernels(cu, plan, names);
        return (cu.ToString(), names);
    }

    public static string Emit(ModelPlan plan)
    {
        var s = plan.Spec;
        var (source, kernels) = Source(plan);
        var w = new CodeWriter();
        w.Line("// <auto-generated/>");
        w.Line($"// SsmGen: the GPU path of model '{s.ClassName}' (CUDA C compiled through NVRTC). Change the attributes, not this file.");
        w.Line("#nullable enable");
        w.Line("#pragma warning disable CS1591");
        w.Line("using System;");
        w.Line("using System.Collections.Generic;");
        w.Line("using GpuModelRunner = global::SsmGen.Cuda.GpuModelRunner;");
        w.Line("using ComputeDevice = global::SsmGen.Cuda.ComputeDevice;");
        w.Line("using KernelArgument = global::SsmGen.Cuda.KernelArgument;");
        w.Line("using Dim3 = global::SsmGen.Cuda.Dim3;");
        w.Line();
        if (s.Namespace.Length > 0) { w.Line($"namespace {s.Namespace};"); w.Line(); }
        w.Open($"partial {s.Keyword} {s.ClassName}");
        w.Line("/// <summary>The CUDA C this model runs on a GPU: every kernel, with the declared sizes as constants.</summary>");
        w.Line("public static string CudaSource => GpuPath.Source;");
        w.Line("/// <summary>The kernels in <see cref=\"CudaSource\"/>.</summary>");
        w.Line("public static IReadOnlyList<string> CudaKernels => GpuPath.KernelNames;");
        w.Line();
        w.Line("/// <summary>The model on a GPU device: device buffers, and each pass as launches of the generated kernels.</summary>");
        w.Open("private sealed class GpuPath : IDisposable");
        w.Line("internal const string Source = @\"" + source.Replace("\"", "\"\"") + "\";");
        w.Line($"internal static readonly string[] KernelNames = {{ {string.Join(", ", kernels.Select(k => "\"" + k + "\""))} }};");
        w.Line($"private const uint NormThreads = {NormThreads(s.DModel)};");
        w.Line("private const int RowChunk = 256;");
        w.Line($"private readonly {s.ClassName} _m;");
        w.Line("internal readonly GpuModelRunner Runner;");
        w.Line("private long _used; // floats laid out so far in the activation arena");
        var layerBuffers = plan.Layers.SelectMany(l => l switch
        {
            S4DLayerPlan x => CudaS4DEmitter.Buffers(x),
            MambaLayerPlan x => CudaMambaEmitter.Buffers(x),
            RnnLayerPlan x => CudaRnnEmitter.Buffers(x),
            IdsLayerPlan x => CudaIdsEmitter.Buffers(x),
            AttentionLayerPlan x => CudaAttentionEmitter.Buffers(x),
            _ => throw new System.InvalidOperationException("a layer kind without a GPU rendering"),
        }).ToList();
        var layerScratch = CudaMambaEmitter.Scratch(plan).Concat(CudaRnnEmitter.Scratch(plan)).Concat(CudaIdsEmitter.Scratch(plan)).Concat(CudaAttentionEmitter.Scratch(plan)).ToList();
        string shell = $"_input, _tokens, {string.Join(", ", plan.Layers.Select(l => $"_l{l.Index}X"))}, _xf, _meanF, _rstdF, _nf, _pooled, _out, _dOut, _dPooled, _dNf, _dX, _dO, _dG, _dY, _dU, _scratch, _partial, _dk, _modePartial";
        w.Line($"private readonly ulong {shell};");
        w.Line($"private readonly ulong {string.Join(", ", layerBuffers.Select(x => x.Field))};");
        if (layerScratch.Count > 0) w.Line($"private readonly ulong {string.Join(", ", layerScratch.Select(x => x.Field))};");
        int maxWidth = new[] { 2 * s.DModel, s.Output, plan.InputWidth, CudaMambaEmitter.MaxColumnWidth(plan), CudaRnnEmitter.MaxColumnWidth(plan), CudaIdsEmitter.MaxColumnWidth(plan), CudaAttentionEmitter.MaxColumnWidth(plan) }.Max();
        int maxModes = plan.S4DLayers.Any() ? plan.S4DLayers.Max(l => l.Modes) : 1;
        w.Line();
        w.Open($"public GpuPath({s.ClassName} model, ComputeDevice device, int maxBatch, int maxLength, bool training)");
        {
            w.Line("_m = model;");
            w.Line("long rows = (long)maxBatch * maxLength, outRows = PerToken ? rows : maxBatch;");
            w.Line("long Take(long floats) { long at = _used; _used += (floats + 63) / 64 * 64; return 4 * at; } // a byte offset, 256-byte aligned");
            w.Line("_input = (ulong)Take(rows * InputSize); _tokens = (ulong)Take(rows);");
            foreach (var l in plan.Layers) w.Line($"_l{l.Index}X = (ulong)Take(rows * H);");
            w.Line("_xf = (ulong)Take(rows * H); _meanF = (ulong)Take(rows); _rstdF = (ulong)Take(rows); _nf = (ulong)Take(rows * H);");
            w.Line("_pooled = PerToken ? _nf : (ulong)Take(maxBatch * H); _out = (ulong)Take(outRows * OutputSize);");
            foreach (var (f, floats) in layerBuffers) w.Line($"{f} = (ulong)Take({floats});");
            foreach (var (f, floats, training) in layerScratch) w.Line(training ? $"if (training) {f} = (ulong)Take({floats});" : $"{f} = (ulong)Take({floats});");
            w.Line("// backward scratch (training only)");
            w.Line("if (training)");
            w.Line("{");
            w.Line($"    _dOut = (ulong)Take(outRows * OutputSize); _dPooled = (ulong)Take(outRows * H); _dNf = (ulong)Take(rows * H); _dX = (ulong)Take(rows * H);");
            w.Line($"    _dO = (ulong)Take(rows * 2 * H); _dG = (ulong)Take(rows * H); _dY = (ulong)Take(rows * H); _dU = (ulong)Take(rows * H); _scratch = (ulong)Take(rows * H);");
            w.Line($"    _partial = (ulong)Take((rows + RowChunk - 1) / RowChunk * {maxWidth}); _dk = (ulong)Take(H * (long)maxLength); _modePartial = (ulong)Take(H * {maxModes});");
            w.Line("}");
            w.Line("// inputs and outputs in one piece; parameters and gradients in pieces of at most 4 MiB");
            w.Line("long staging = 4 * Math.Max(Math.Max(rows * InputSize, Math.Max(outRows * OutputSize, rows)), Math.Min(ParameterCount, 1 << 20));");
            w.Line($"Runner = new GpuModelRunner(device, Source, \"{s.ClassName}.cu\", KernelNames, model._p, model._g, 4 * _used, staging);");
            w.Line("ulong a = Runner.Activations;");
            foreach (string f in shell.Split(',').Select(x => x.Trim()))
                w.Line(f == "_pooled" ? "_pooled = PerToken ? _nf : _pooled + a; // _nf has its base already" : f.StartsWith("_d") || f is "_scratch" or "_partial" or "_modePartial" ? $"if (training) {f} += a;" : $"{f} += a;");
            foreach (var (f, _) in layerBuffers) w.Line($"{f} += a;");
            foreach (var (f, _, training) in layerScratch) w.Line(training ? $"if (training) {f} += a;" : $"{f} += a;");
        }
        w.Close();
        w.Line();
        EmitHelpers(w);
        if (plan.MambaLayers.Any())
        {
            w.Line("/// <summary>Floats of a (batch, chunk)-indexed tensor with perChunk values per chunk.</summary>");
            w.Line("private static long ChunkStates(int maxBatch, int maxLength, int chunk, int perChunk) => (long)maxBatch * ((maxLength + chunk - 1) / chunk) * perChunk;");
            w.Line();
        }
        EmitForward(w, plan);
        EmitBackward(w, plan);
        foreach (var l in plan.Layers)
        {
            if (l is S4DLayerPlan s4d) { CudaS4DEmitter.EmitForward(w, plan, s4d); CudaS4DEmitter.EmitBackward(w, plan, s4d); }
            if (l is MambaLayerPlan mamba) { CudaMambaEmitter.EmitForward(w, plan, mamba); CudaMambaEmitter.EmitBackward(w, plan, mamba); }
            if (l is RnnLayerPlan rnn) { CudaRnnEmitter.EmitForward(w, plan, rnn); CudaRnnEmitter.EmitBackward(w, plan, rnn); }
            if (l is IdsLayerPlan ids) { CudaIdsEmitter.EmitForward(w, plan, ids); CudaIdsEmitter.EmitBackward(w, plan, ids); }
            if (l is AttentionLayerPlan attention) { CudaAttentionEmitter.EmitForward(w, plan, attention); CudaAttentionEmitter.EmitBackward(w, plan, attention); }
        }
        w.Line("public void Dispose() => Runner?.Dispose();");
        w.Close();
        w.Close();
        return w.ToString();
    }

    private static void EmitHelpers(CodeWriter w)
    {
        w.Line("private ulong P(int offset) => Runner.Parameters + 4UL * (uint)offset;");
        w.Line("private ulong G(int offset) => Runner.Gradients + 4UL * (uint)offset;");
        w.Line("private static uint Blocks(long n) => (uint)((n + 127) / 128);");
        w.Line("private void Launch(string kernel, uint grid, uint block, params ReadOnlySpan<KernelArgument> arguments)");
        w.Line("    => Runner.Gpu.Launch(Runner.Module[kernel], new Dim3(grid), new Dim3(block), arguments);");
        w.Line();
        w.Line("/// <summary>The dropout key, threshold and scale of a layer in this forward: (0, 0, 1) keeps everything.</summary>");
        w.Open("private (int Key, int Threshold, float Scale) Dropout(int layer, double p)");
        w.Line("if (!_m._training || p <= 0) return (0, 0, 1f);");
        w.Line("return (unchecked((int)global::SsmGen.Rng.DropoutKey(_m.DropoutSeed, _m._maskStep, layer)), unchecked((int)global::SsmGen.Rng.DropoutThreshold(p)), (float)(1 / (1 - p)));");
        w.Close();
        w.Line();
        w.Line("/// <summary>");
        w.Line("/// y (rows, outF) = x (rows, inF)·Wᵀ + b on cuBLAS (row-major y is column-major yᵀ = W'ᵀ·x' with W' = Wᵀ); x's rows are");
        w.Line("/// ldx floats apart (default inF); accumulate adds to y instead of overwriting it.");
        w.Line("/// </summary>");
        w.Open("private void Linear(ulong x, ulong weight, ulong bias, ulong y, int rows, int inF, int outF, int ldx = 0, bool accumulate = false)");
        w.Line("if (bias != 0) Launch(accumulate ? \"add_rows\" : \"fill_rows\", Blocks((long)rows * outF), 128, bias, y, rows, outF);");
        w.Line("Runner.Gpu.Sgemm(true, false, outF, rows, inF, 1f, weight, inF, x, ldx > 0 ? ldx : inF, bias != 0 || accumulate ? 1f : 0f, y, outF);");
        w.Close();
        w.Line();
        w.Line("/// <summary>");
        w.Line("/// dx = dy·W (overwrites, or adds when accumulate; skipped when dx is 0), dW += dyᵀ·x, db += Σ_rows dy (skipped when db");
        w.Line("/// is 0). x's and dx's rows are ldx floats apart (default inF).");
        w.Line("/// </summary>");
        w.Open("private void LinearBackward(ulong x, ulong weight, ulong dy, ulong dx, ulong dWeight, ulong dBias, int rows, int inF, int outF, int ldx = 0, bool accumulate = false)");
        w.Line("int ld = ldx > 0 ? ldx : inF;");
        w.Line("if (dx != 0) Runner.Gpu.Sgemm(false, false, inF, rows, outF, 1f, weight, inF, dy, outF, accumulate ? 1f : 0f, dx, ld);");
        w.Line("Runner.Gpu.Sgemm(false, true, inF, outF, rows, 1f, x, ld, dy, outF, 1f, dWeight, inF);");
        w.Line("if (dBias != 0) ColumnSums(dy, dBias, rows, outF);");
        w.Close();
        w.Line();
        w.Line("/// <summary>sum[c] += Σ_r x[r, c], in two deterministic passes.</summary>");
        w.Open("private void ColumnSums(ulong x, ulong sum, int rows, int width)");
        w.Line("int chunks = (rows + RowChunk - 1) / RowChunk;");
        w.Line("Runner.Gpu.Launch(Runner.Module[\"column_partials\"], new Dim3((uint)((width + 31) / 32), (uint)Math.Min(chunks, 65535)), new Dim3(32, 8), x, _partial, rows, width);");
        w.Line("ColumnFinish(_partial, sum, chunks, width);");
        w.Close();
        w.Line();
        w.Line("/// <summary>sum[c] += Σ_k partial[k, c] over the chunks' partial sums.</summary>");
        w.Line("private void ColumnFinish(ulong partial, ulong sum, int chunks, int width) => Launch(\"column_finish\", Blocks(width), 128, partial, sum, chunks, width);");
        w.Line();
        w.Open("private void LayerNormBackward(ulong x, ulong weight, ulong mean, ulong rstd, ulong dy, ulong dx, ulong dWeight, ulong dBias, int rows)");
        w.Line("Launch(\"layernorm_backward\", (uint)rows, NormThreads, x, weight, mean, rstd, dy, dx, _scratch);");
        w.Line("ColumnSums(_scratch, dWeight, rows, H);");
        w.Line("ColumnSums(dy, dBias, rows, H);");
        w.Close();
        w.Line();
        w.Open("private void RmsNormBackward(ulong x, ulong weight, ulong rstd, ulong dy, ulong dx, ulong dWeight, int rows)");
        w.Line("Launch(\"rmsnorm_backward\", (uint)rows, NormThreads, x, weight, rstd, dy, dx, _scratch);");
        w.Line("ColumnSums(_scratch, dWeight, rows, H);");
        w.Close();
        w.Line();
    }

    private static string P(string name, string buf = "P") => $"{buf}(P_{name.Replace('.', '_')})";

    /// <summary>The device address of a block's parameter (buf "P") or its gradient ("G"), by its name in the block.</summary>
    internal static string Param(LayerPlan l, string name, string buf = "P") => P(l.Prefix + name, buf);

    private static void EmitForward(CodeWriter w, ModelPlan plan)
    {
        var n = plan.Names;
        w.Line("/// <summary>Forward on the device; the caller checked the shapes and set the outer model's forward state.</summary>");
        w.Open("public void Forward(ReadOnlySpan<float> input, ReadOnlySpan<int> tokens, int batch, int length, Span<float> output)");
        w.Line("Runner.BeforeDeviceUse(gradients: false);");
        w.Line("int rows = batch * length, outRows = PerToken ? rows : batch;");
        if (plan.TokenInput)
        {
            w.Line("Runner.Upload(tokens, _tokens);");
            w.Line($"Launch(\"embedding_forward\", Blocks((long)rows * H), 128, _tokens, {P(n.Encoder + ".weight")}, _l0X, rows * H);");
        }
        else
        {
            w.Line("Runner.Upload(input, _input);");
            w.Line($"Linear(_input, {P(n.Encoder + ".weight")}, {P(n.Encoder + ".bias")}, _l0X, rows, InputSize, H);");
        }
        foreach (var l in plan.Layers) w.Line($"Layer{l.Index}Forward(batch, length);");
        w.Line(n.FinalRms
            ? $"Launch(\"rmsnorm_forward\", (uint)rows, NormThreads, _xf, {P(n.FinalNorm + ".weight")}, _nf, _rstdF);"
            : $"Launch(\"layernorm_forward\", (uint)rows, NormThreads, _xf, {P(n.FinalNorm + ".weight")}, {P(n.FinalNorm + ".bias")}, _nf, _meanF, _rstdF);");
        if (plan.Spec.Pooling == 0) w.Line("Launch(\"pool_mean_forward\", Blocks(batch * H), 128, _nf, _pooled, batch, length);");
        if (plan.Spec.Pooling == 1) w.Line("Launch(\"pool_last_forward\", Blocks(batch * H), 128, _nf, _pooled, batch, length);");
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
        w.Line("Runner.BeforeDeviceUse(gradients: true);");
        w.Line("int rows = batch * length, outRows = PerToken ? rows : batch;");
        w.Line("Runner.Upload(dOutput, _dOut);");
        w.Line($"LinearBackward(_pooled, {P(n.Decoder + ".weight")}, _dOut, _dPooled, {P(n.Decoder + ".weight", "G")}, {(n.DecoderBias ? P(n.Decoder + ".bias", "G") : "0UL")}, outRows, H, OutputSize);");
        string dNf = plan.Spec.Pooling == 2 ? "_dPooled" : "_dNf";
        if (plan.Spec.Pooling == 0) w.Line("Launch(\"pool_mean_backward\", Blocks((long)rows * H), 128, _dPooled, _dNf, batch, length);");
        if (plan.Spec.Pooling == 1) w.Line("Launch(\"pool_last_backward\", Blocks((long)rows * H), 128, _dPooled, _dNf, batch, length);");
        w.Line("Runner.Gpu.Clear(_dX, 4L * rows * H);");
        w.Line(n.FinalRms
            ? $"RmsNormBackward(_xf, {P(n.FinalNorm + ".weight")}, _rstdF, {dNf}, _dX, {P(n.FinalNorm + ".weight", "G")}, rows);"
            : $"LayerNormBackward(_xf, {P(n.FinalNorm + ".weight")}, _meanF, _rstdF, {dNf}, _dX, {P(n.FinalNorm + ".weight", "G")}, {P(n.FinalNorm + ".bias", "G")}, rows);");
        foreach (var l in plan.Layers.Reverse()) w.Line($"Layer{l.Index}Backward(batch, length);");
        if (plan.TokenInput)
            w.Line($"Launch(\"embedding_backward\", Blocks((long)rows * H), 128, _tokens, _dX, {P(n.Encoder + ".weight", "G")}, rows * H);");
        else
            w.Line($"LinearBackward(_input, {P(n.Encoder + ".weight")}, _dX, 0UL, {P(n.Encoder + ".weight", "G")}, {P(n.Encoder + ".bias", "G")}, rows, InputSize, H);");
        w.Line("Runner.GradientsWrittenOnDevice();");
        w.Close();
        w.Line();
    }
}
