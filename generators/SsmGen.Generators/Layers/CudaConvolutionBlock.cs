using System;
using SsmGen.Generators.Emitters.Cuda;
using static SsmGen.Generators.Emitters.Cuda.CudaModelEmitter;

namespace SsmGen.Generators.Layers;

/// <summary>
/// The GPU side of a long-convolution block, which S4D and S4 share (the C# side is <see cref="ConvolutionBlock"/>):
/// double complex helpers and the kernel gradient dK = Σ dy ⋆ u as a tiled correlation, emitted once per model; and the
/// block's launches around the kind's own SSM passes (pre-LayerNorm, SSM, GELU, Linear H→2H, GLU · dropout, residual).
/// </summary>
internal static class CudaConvolutionBlock
{
    /// <summary>Batch slices of the kernel gradient: more blocks for short sequences, each slice's sum kept apart.</summary>
    public const int GradientSplits = 8;

    /// <summary>The shared kernels, once per model: by the S4D rendering when the model has S4D blocks, else by the S4 one.</summary>
    public static void EmitSharedKernels(StringBuilder cu) => cu.Append($$"""

// ---- long convolutions (S4D, S4) ----

// Complex numbers in double, for the SSMs' parameter maps (the CPU path computes them in double too).
struct zd { double re, im; };
__device__ __forceinline__ zd zd_add(zd a, zd b) { return { a.re + b.re, a.im + b.im }; }
__device__ __forceinline__ zd zd_sub(zd a, zd b) { return { a.re - b.re, a.im - b.im }; }
__device__ __forceinline__ zd zd_mul(zd a, zd b) { return { a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re }; }
__device__ __forceinline__ zd zd_div(zd a, zd b) { double d = b.re * b.re + b.im * b.im; return { (a.re * b.re + a.im * b.im) / d, (a.im * b.re - a.re * b.im) / d }; }
__device__ __forceinline__ zd zd_scale(double s, zd a) { return { s * a.re, s * a.im }; }
__device__ __forceinline__ zd zd_conj(zd a) { return { a.re, -a.im }; }

// dK[h, l] = Σ_b Σ_{t ≥ l} dy[b, t, h]·u[b, t − l, h] as a tiled correlation. A block of 32 × 8 threads takes
// 64 lags of 32 channels and one batch slice z (b ≡ z mod SPLIT), stages 64 steps of dy and the 128 rows of u they
// meet in shared memory, and each thread owns 8 consecutive lags of one channel, sliding a window of 8 u values in
// registers: a step costs two shared loads for 8 multiply-adds. Slices go to partial (SPLIT, H, L), summed in order
// by conv_kernel_gradient_finish.
extern "C" __global__ void conv_kernel_gradient(const float* __restrict__ dy, const float* __restrict__ u,
    float* __restrict__ partial, int batch, int length)
{
    constexpr int LAGS = 64, STEPS = 64, SPLIT = {{GradientSplits}};
    __shared__ float dys[STEPS][32];
    __shared__ float us[STEPS + LAGS][32];
    int hx = threadIdx.x, h = blockIdx.y * 32 + hx, l0 = blockIdx.x * LAGS, j0 = threadIdx.y * 8, z = blockIdx.z;
    int c = LAGS - 1 - j0; // us row of u[t0 − (l0 + j0)], the first step's value for this thread's first lag
    float acc[8];
#pragma unroll
    for (int k = 0; k < 8; k++) acc[k] = 0.0f;
    for (int b = z; b < batch; b += SPLIT)
    {
        const float* gy = dy + (long)b * length * H;
        const float* ub = u + (long)b * length * H;
        for (int t0 = l0; t0 < length; t0 += STEPS)
        {
            int s0 = t0 - l0 - (LAGS - 1); // u row held in us[0]; rows before 0 (t < l) and past the end are zeros
            __syncthreads(); // the previous tile is used up
            for (int r = threadIdx.y; r < STEPS; r += 8) { int t = t0 + r; dys[r][hx] = t < length && h < H ? gy[(long)t * H + h] : 0.0f; }
            for (int r = threadIdx.y; r < STEPS + LAGS; r += 8) { int q = s0 + r; us[r][hx] = q >= 0 && q < length && h < H ? ub[(long)q * H + h] : 0.0f; }
            __syncthreads();
            float w[8]; // w[k] = u[t − (l0 + j0 + k)] for the current step t = t0 + tt
#pragma unroll
            for (int k = 0; k < 8; k++) w[k] = us[c - k][hx];
            for (int tt = 0; tt < STEPS; tt++)
            {
                float d = dys[tt][hx];
#pragma unroll
                for (int k = 0; k < 8; k++) acc[k] += d * w[k];
#pragma unroll
                for (int k = 7; k > 0; k--) w[k] = w[k - 1];
                w[0] = us[tt + 1 + c][hx];
            }
        }
    }
    if (h >= H) return;
#pragma unroll
    for (int k = 0; k < 8; k++)
        if (l0 + j0 + k < length) partial[((long)z * H + h) * length + l0 + j0 + k] = acc[k];
}

// dk[h, l] = Σ_z partial[z, h, l], slices in order.
extern "C" __global__ void conv_kernel_gradient_finish(const float* __restrict__ partial, float* __restrict__ dk, int length)
{
    constexpr int SPLIT = {{GradientSplits}};
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)H * length) return;
    float s = 0.0f;
    for (int z = 0; z < SPLIT; z++) s += partial[(long)z * H * length + i];
    dk[i] = s;
}

""");

    /// <summary>Block forward: x → LayerNorm → the SSM (<paramref name="ssm"/> writes _l{i}Y from _l{i}U) → GELU → Linear(H → 2H) → GLU · dropout → + x.</summary>
    public static void EmitForward(CodeWriter w, ModelPlan plan, LayerPlan l, double dropout, Action ssm)
    {
        string i = "_l" + l.Index, x = $"_l{l.Index}X", next = ModelEmitter.Next(plan, l);
        OpenForward(w, l);
        ssm();
        w.Line($"Launch_gelu_forward(Blocks(rows * H), Threads, {i}Y, {i}G, (long)rows * H);");
        w.Line($"Linear({i}G, {Param(l, "mixer.output_linear.weight")}, {Param(l, "mixer.output_linear.bias")}, {i}O, rows, H, 2 * H);");
        w.Line($"var (key, threshold, scale) = Dropout({l.Index}, {CodeWriter.D(dropout)});");
        w.Line($"Launch_glu_residual_forward(Blocks(rows * H), Threads, {i}O, {x}, {next}, rows * H, key, threshold, scale);");
        CloseForward(w);
    }

    /// <summary>
    /// Block backward: _dX holds dL/d(block output) and gains the path through the block; <paramref name="ssm"/> takes
    /// dL/d(the SSM's output) in _dY to dL/d(its input) in _dU (overwriting) and the SSM's parameter gradients.
    /// </summary>
    public static void EmitBackward(CodeWriter w, LayerPlan l, double dropout, Action ssm)
    {
        string i = "_l" + l.Index;
        OpenBackward(w, l);
        w.Line($"var (key, threshold, scale) = Dropout({l.Index}, {CodeWriter.D(dropout)});");
        w.Line($"Launch_glu_backward(Blocks(rows * H), Threads, {i}O, _dX, _dO, rows * H, key, threshold, scale);");
        w.Line($"LinearBackward({i}G, {Param(l, "mixer.output_linear.weight")}, _dO, _dG, {Param(l, "mixer.output_linear.weight", "G")}, {Param(l, "mixer.output_linear.bias", "G")}, rows, H, 2 * H);");
        w.Line($"Launch_gelu_backward(Blocks(rows * H), Threads, _dG, {i}Y, _dY, (long)rows * H);");
        ssm();
        CloseBackward(w, l);
    }

    /// <summary>dk (H, length) = Σ_b dy ⋆ u of block l, through the batch slices in <paramref name="partial"/>.</summary>
    public static void EmitKernelGradient(CodeWriter w, LayerPlan l, string partial, string dk) =>
        w.Line($"Launch_conv_kernel_gradient(new Dim3((uint)((length + 63) / 64), (H + 31) / 32, {GradientSplits}), new Dim3(32, 8), _dY, _l{l.Index}U, {partial}, batch, length);")
         .Line($"Launch_conv_kernel_gradient_finish(Blocks((long)H * length), Threads, {partial}, {dk}, length);");

    /// <summary>
    /// Block step, one token: x → LayerNorm → the SSM's recurrence (<paramref name="ssm"/> writes the row
    /// <paramref name="y"/> from _sU, and on a stream's first token (t == 0) prepares what it keeps in the stream's
    /// state) → GELU → Linear → GLU → + x; the rows act (H) and o (2H) are the kind's scratch.
    /// </summary>
    public static void EmitStep(CodeWriter w, LayerPlan l, string y, string act, string o, Action ssm)
    {
        w.Open($"private void Layer{l.Index}Step(ulong state, int t, ulong x, ulong next)");
        w.Line($"Launch_layernorm_forward(1, NormThreads, x, {Param(l, "norm.weight")}, {Param(l, "norm.bias")}, _sU, _sMean, _sRstd);");
        ssm();
        w.Line($"Launch_gelu_forward(Blocks(H), Threads, {y}, {act}, (long)H);");
        w.Line($"Linear({act}, {Param(l, "mixer.output_linear.weight")}, {Param(l, "mixer.output_linear.bias")}, {o}, 1, H, 2 * H);");
        w.Line("Launch_glu_residual_forward(Blocks(H), Threads, " + o + ", x, next, H, 0, 0, 1f); // no dropout when streaming");
        w.Close();
        w.Line();
    }
}
