using SsmGen.Generators.Emitters.Cuda;
using static SsmGen.Generators.Emitters.Cuda.CudaModelEmitter;

namespace SsmGen.Generators.Layers;

/// <summary>
/// The simple RNN layer, GPU backend: W_ih over all positions, out_proj and every weight gradient are cuBLAS
/// GEMMs; the recurrence h_t = f(pre_t + b_hh + W_hh h_{t−1}) and its backward through time are one block per batch
/// row, h (or the carried gradient) in shared memory, a barrier per step. Forward: one warp per output unit, lanes
/// along W_hh's row (coalesced), a shuffle sum; backward: one thread per input unit, reading W_hh by columns.
/// </summary>
internal sealed class CudaRnnEmitter : GpuRendering<RnnLayerPlan>
{
    private static string Name(RnnLayerPlan l) => $"rnn_hd{l.Hd}_{(l.Relu ? "relu" : "tanh")}";

    /// <summary>Threads per batch row: whole warps, at most 256.</summary>
    private static int Threads(RnnLayerPlan l) => System.Math.Min(256, (l.Hd + 31) / 32 * 32);

    /// <summary>Largest hidden size the GPU path runs: the backward keeps two hidden vectors in 48 KiB of shared memory.</summary>
    public const int MaxHidden = 6144;

    /// <summary>Why the GPU path cannot run this plan's RNN blocks, or nothing.</summary>
    public override IEnumerable<string> Unsupported(ModelPlan plan) => plan.Blocks<RnnLayerPlan>().Where(l => l.Hd > MaxHidden)
        .Select(l => $"block {l.Index}'s RNN hidden size {l.Hd} exceeds the GPU path's {MaxHidden} (its recurrence keeps the hidden state in one block's shared memory)");

    // Variants past MaxHidden get no kernels, so the module still compiles; such a model refuses a GPU device.
    private static IEnumerable<RnnLayerPlan> Variants(ModelPlan plan) => plan.Blocks<RnnLayerPlan>().Where(l => l.Hd <= MaxHidden).GroupBy(Name).Select(g => g.First());

    public override void EmitKernels(StringBuilder cu, ModelPlan plan)
    {
        foreach (var l in Variants(plan))
        {
            string v = Name(l);
            string f = l.Relu ? "fmaxf(s, 0.0f)" : "tanhf(s)", df = l.Relu ? "(h > 0.0f ? 1.0f : 0.0f)" : "(1.0f - h * h)";
            cu.Append($$"""

// ---- RNN, hidden {{l.Hd}}, {{(l.Relu ? "ReLU" : "tanh")}} ----

// hs holds pre = W_ih u + b_ih on entry and h on exit: h_t = f(pre_t + b_hh + W_hh h_{t−1}), h_{−1} = h0 (zeros
// when h0 is null; a stream's state when stepping). One block per batch row.
extern "C" __global__ void {{v}}_forward(const float* __restrict__ whh, const float* __restrict__ bhh, const float* __restrict__ h0,
    float* __restrict__ hs, int length)
{
    constexpr int HD = {{l.Hd}};
    __shared__ float h[HD];
    int lane = threadIdx.x & 31, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    for (int j = threadIdx.x; j < HD; j += blockDim.x) h[j] = h0 ? h0[(long)blockIdx.x * HD + j] : 0.0f;
    __syncthreads();
    for (int t = 0; t < length; t++)
    {
        float* row = hs + ((long)blockIdx.x * length + t) * HD;
        for (int j = warp; j < HD; j += warps)
        {
            float s = 0.0f;
            for (int k = lane; k < HD; k += 32) s += whh[j * HD + k] * h[k];
            for (int o = 16; o >= 1; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
            s += row[j] + bhh[j];
            if (lane == 0) row[j] = {{f}};
        }
        __syncthreads();
        for (int j = threadIdx.x; j < HD; j += blockDim.x) h[j] = row[j];
        __syncthreads();
    }
}

// Backward through time: dh holds dL/dh_t from out_proj on entry and dL/ds_t on exit (s the pre-activation);
// f' from h. The carry dL/dh_{t−1} = W_hhᵀ dL/ds_t. One block per batch row.
extern "C" __global__ void {{v}}_backward(const float* __restrict__ hs, const float* __restrict__ whh, float* __restrict__ dh, int length)
{
    constexpr int HD = {{l.Hd}};
    __shared__ float carry[HD], ds[HD];
    for (int j = threadIdx.x; j < HD; j += blockDim.x) carry[j] = 0.0f;
    __syncthreads();
    for (int t = length - 1; t >= 0; t--)
    {
        long row = ((long)blockIdx.x * length + t) * HD;
        for (int j = threadIdx.x; j < HD; j += blockDim.x)
        {
            float h = hs[row + j], d = (dh[row + j] + carry[j]) * {{df}};
            dh[row + j] = d;
            ds[j] = d;
        }
        __syncthreads();
        for (int k = threadIdx.x; k < HD; k += blockDim.x)
        {
            float c = 0.0f;
            for (int j = 0; j < HD; j++) c += whh[j * HD + k] * ds[j];
            carry[k] = c;
        }
        __syncthreads();
    }
}

// prev = hs one step back in time, zeros at t = 0: the h_{t−1} of every step, for W_hh's gradient as one GEMM.
extern "C" __global__ void {{v}}_shift(const float* __restrict__ hs, float* __restrict__ prev, int rows, int length)
{
    constexpr int HD = {{l.Hd}};
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)rows * HD) return;
    prev[i] = (i / HD) % length == 0 ? 0.0f : hs[i - HD];
}

""");
        }
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Field, string Floats)> Buffers(RnnLayerPlan l)
    {
        string i = "_l" + l.Index;
        yield return ($"{i}Hs", $"rows * {l.Hd}");
    }

    /// <summary>Scratch shared by the RNN blocks: the backward's dL/ds and shifted states, and the step's row.</summary>
    public override IEnumerable<(string Field, string Floats, bool Training)> Scratch(ModelPlan plan)
    {
        if (!plan.Blocks<RnnLayerPlan>().Any()) yield break;
        int hd = plan.Blocks<RnnLayerPlan>().Max(l => l.Hd);
        yield return ("_rdS", $"rows * {hd}", true);
        yield return ("_rPrev", $"rows * {hd}", true);
        yield return ("_rnnStepH", $"{hd}", false);
    }

    public override int MaxColumnWidth(ModelPlan plan) => plan.Blocks<RnnLayerPlan>().Select(l => l.Hd).DefaultIfEmpty(1).Max();

    /// <summary>Block forward: x → LayerNorm → W_ih (GEMM) → recurrence → out_proj accumulated onto x.</summary>
    public override void EmitForward(CodeWriter w, ModelPlan plan, RnnLayerPlan l)
    {
        string i = "_l" + l.Index, v = Name(l), x = $"_l{l.Index}X", next = ModelEmitter.Next(plan, l), m = "mixer.";
        OpenForward(w, l);
        w.Line($"Linear({i}U, {Param(l, m + "weight_ih")}, {Param(l, m + "bias_ih")}, {i}Hs, rows, H, {l.Hd});");
        w.Line($"Launch_{v}_forward((uint)batch, {Threads(l)}, {Param(l, m + "weight_hh")}, {Param(l, m + "bias_hh")}, 0UL, {i}Hs, length);");
        ProjectOntoResidual(w, $"{i}Hs", Param(l, m + "out_proj.weight"), Param(l, m + "out_proj.bias"), l.Hd, next, x);
        CloseForward(w);
    }

    /// <summary>Block backward: _dX holds dL/d(block output) and gains the path through the block.</summary>
    public override void EmitBackward(CodeWriter w, ModelPlan plan, RnnLayerPlan l)
    {
        string i = "_l" + l.Index, v = Name(l), m = "mixer.";
        int hd = l.Hd;
        OpenBackward(w, l);
        w.Line($"LinearBackward({i}Hs, {Param(l, m + "out_proj.weight")}, _dX, _rdS, {Param(l, m + "out_proj.weight", "G")}, {Param(l, m + "out_proj.bias", "G")}, rows, {hd}, H);");
        w.Line($"Launch_{v}_backward((uint)batch, {Threads(l)}, {i}Hs, {Param(l, m + "weight_hh")}, _rdS, length);");
        w.Line($"Launch_{v}_shift(Blocks((long)rows * {hd}), Threads, {i}Hs, _rPrev, rows, length);");
        w.Line($"LinearBackward(_rPrev, {Param(l, m + "weight_hh")}, _rdS, 0UL, {Param(l, m + "weight_hh", "G")}, {Param(l, m + "bias_hh", "G")}, rows, {hd}, {hd});");
        w.Line($"LinearBackward({i}U, {Param(l, m + "weight_ih")}, _rdS, _dU, {Param(l, m + "weight_ih", "G")}, {Param(l, m + "bias_ih", "G")}, rows, H, {hd});");
        CloseBackward(w, l);
    }

    /// <summary>Block step, one token: the forward kernel over one position from the stream's h, which then takes the new h.</summary>
    public override void EmitStep(CodeWriter w, ModelPlan plan, RnnLayerPlan l)
    {
        string v = Name(l), m = "mixer.";
        w.Open($"private void Layer{l.Index}Step(ulong state, int t, ulong x, ulong next)");
        w.Line("// _rnnStepH: W_ih u + b_ih, then the new h");
        w.Line($"ulong h = At(state, {plan.State.Of(l, "h").Const});");
        w.Line($"Launch_layernorm_forward(1, NormThreads, x, {Param(l, "norm.weight")}, {Param(l, "norm.bias")}, _sU, _sMean, _sRstd);");
        w.Line($"Linear(_sU, {Param(l, m + "weight_ih")}, {Param(l, m + "bias_ih")}, _rnnStepH, 1, H, {l.Hd});");
        w.Line($"Launch_{v}_forward(1, {Threads(l)}, {Param(l, m + "weight_hh")}, {Param(l, m + "bias_hh")}, h, _rnnStepH, 1);");
        w.Line($"Runner.Gpu.CopyOnDevice(h, _rnnStepH, 4L * {l.Hd});");
        w.Line("Runner.Gpu.CopyOnDevice(next, x, 4L * H);");
        w.Line($"Linear(_rnnStepH, {Param(l, m + "out_proj.weight")}, {Param(l, m + "out_proj.bias")}, next, 1, {l.Hd}, H, accumulate: true);");
        w.Close();
        w.Line();
    }
}
