using SsmGen.Generators.Emitters.Cuda;
using static SsmGen.Generators.Emitters.Cuda.CudaModelEmitter;

namespace SsmGen.Generators.Layers;

/// <summary>
/// The IDS layer, GPU backend: the transitions A_t = A.weight·u_t + A.bias, the input terms B·u_t, the readout and
/// every weight gradient are cuBLAS GEMMs; the product of matrices h_t = A_t h_{t−1} + B u_t and its exact backward
/// are one block per batch row with h (or the carried gradient) in shared memory, a barrier per step.
/// </summary>
internal sealed class CudaIdsEmitter : GpuRendering<IdsLayerPlan>
{
    private static string Name(IdsLayerPlan l) => $"ids_n{l.N}";

    /// <summary>Threads per batch row: whole warps covering N·N (the backward's outer product), at most 256.</summary>
    private static int Threads(IdsLayerPlan l) => System.Math.Min(256, (l.N * l.N + 31) / 32 * 32);

    private static IEnumerable<IdsLayerPlan> Variants(ModelPlan plan) => plan.Blocks<IdsLayerPlan>().GroupBy(Name).Select(g => g.First());

    public override void EmitKernels(StringBuilder cu, ModelPlan plan)
    {
        foreach (var l in Variants(plan))
        {
            string v = Name(l);
            cu.Append($$"""

// ---- IDS, N = {{l.N}} ----

// h_t = A_t h_{t−1} + bu_t, h_{−1} = h0 (zeros when h0 is null; a stream's state when stepping); A_t is (N, N)
// row-major. One block per batch row.
extern "C" __global__ void {{v}}_forward(const float* __restrict__ at, const float* __restrict__ bu, const float* __restrict__ h0,
    float* __restrict__ hs, int length)
{
    constexpr int N = {{l.N}};
    __shared__ float h[N];
    for (int i = threadIdx.x; i < N; i += blockDim.x) h[i] = h0 ? h0[(long)blockIdx.x * N + i] : 0.0f;
    __syncthreads();
    for (int t = 0; t < length; t++)
    {
        long row = (long)blockIdx.x * length + t;
        for (int i = threadIdx.x; i < N; i += blockDim.x)
        {
            float s = bu[row * N + i];
            for (int k = 0; k < N; k++) s += at[row * N * N + i * N + k] * h[k];
            hs[row * N + i] = s;
        }
        __syncthreads();
        for (int i = threadIdx.x; i < N; i += blockDim.x) h[i] = hs[row * N + i];
        __syncthreads();
    }
}

// The exact backward: dh holds dL/dh_t from the readout on entry and the total dL/dh_t (= dL/d(bu)_t) on exit;
// da_t = dL/dh_t ⊗ h_{t−1} (zero at t = 0); the carry is A_tᵀ dL/dh_t. One block per batch row.
extern "C" __global__ void {{v}}_backward(const float* __restrict__ at, const float* __restrict__ hs, float* __restrict__ dh,
    float* __restrict__ da, int length)
{
    constexpr int N = {{l.N}};
    __shared__ float carry[N], g[N];
    for (int i = threadIdx.x; i < N; i += blockDim.x) carry[i] = 0.0f;
    __syncthreads();
    for (int t = length - 1; t >= 0; t--)
    {
        long row = (long)blockIdx.x * length + t;
        for (int i = threadIdx.x; i < N; i += blockDim.x)
        {
            float v = dh[row * N + i] + carry[i];
            dh[row * N + i] = v;
            g[i] = v;
        }
        __syncthreads();
        for (int j = threadIdx.x; j < N * N; j += blockDim.x)
            da[row * N * N + j] = t == 0 ? 0.0f : g[j / N] * hs[(row - 1) * N + j % N];
        for (int k = threadIdx.x; k < N; k += blockDim.x)
        {
            float c = 0.0f;
            if (t > 0) for (int i = 0; i < N; i++) c += at[row * N * N + i * N + k] * g[i];
            carry[k] = c;
        }
        __syncthreads();
    }
}

""");
        }
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Field, string Floats)> Buffers(IdsLayerPlan l)
    {
        string i = "_l" + l.Index;
        yield return ($"{i}At", $"rows * {l.N * l.N}");
        yield return ($"{i}Bu", $"rows * {l.N}");
        yield return ($"{i}Hs", $"rows * {l.N}");
    }

    /// <summary>Scratch shared by the IDS blocks: the backward's dL/dh and dL/dA_t, and the step's rows.</summary>
    public override IEnumerable<(string Field, string Floats, bool Training)> Scratch(ModelPlan plan)
    {
        if (!plan.Blocks<IdsLayerPlan>().Any()) yield break;
        int n = plan.Blocks<IdsLayerPlan>().Max(l => l.N);
        yield return ("_idH", $"rows * {n}", true);
        yield return ("_idA", $"rows * {n * n}", true);
        yield return ("_idsStepA", $"{n * n}", false); // Step's rows: A_t, B u_t, the new h
        yield return ("_idsStepBu", $"{n}", false);
        yield return ("_idsStepH", $"{n}", false);
    }

    public override int MaxColumnWidth(ModelPlan plan) => plan.Blocks<IdsLayerPlan>().Select(l => l.N * l.N).DefaultIfEmpty(1).Max();

    /// <summary>Block forward: x → LayerNorm → A_t and B u_t (GEMMs) → product of matrices → C h + c accumulated onto x.</summary>
    public override void EmitForward(CodeWriter w, ModelPlan plan, IdsLayerPlan l)
    {
        string i = "_l" + l.Index, v = Name(l), x = $"_l{l.Index}X", next = ModelEmitter.Next(plan, l), m = "mixer.";
        int n = l.N;
        OpenForward(w, l);
        w.Line($"Linear({i}U, {Param(l, m + "A.weight")}, {Param(l, m + "A.bias")}, {i}At, rows, H, {n * n});");
        w.Line($"Linear({i}U, {Param(l, m + "B.weight")}, 0UL, {i}Bu, rows, H, {n});");
        w.Line($"Launch_{v}_forward((uint)batch, {Threads(l)}, {i}At, {i}Bu, 0UL, {i}Hs, length);");
        ProjectOntoResidual(w, $"{i}Hs", Param(l, m + "C.weight"), Param(l, m + "C.bias"), n, next, x);
        CloseForward(w);
    }

    /// <summary>Block backward: _dX holds dL/d(block output) and gains the path through the block.</summary>
    public override void EmitBackward(CodeWriter w, ModelPlan plan, IdsLayerPlan l)
    {
        string i = "_l" + l.Index, v = Name(l), m = "mixer.";
        int n = l.N;
        OpenBackward(w, l);
        w.Line($"LinearBackward({i}Hs, {Param(l, m + "C.weight")}, _dX, _idH, {Param(l, m + "C.weight", "G")}, {Param(l, m + "C.bias", "G")}, rows, {n}, H);");
        w.Line($"Launch_{v}_backward((uint)batch, {Threads(l)}, {i}At, {i}Hs, _idH, _idA, length);");
        w.Line($"LinearBackward({i}U, {Param(l, m + "A.weight")}, _idA, _dU, {Param(l, m + "A.weight", "G")}, {Param(l, m + "A.bias", "G")}, rows, H, {n * n});");
        w.Line($"LinearBackward({i}U, {Param(l, m + "B.weight")}, _idH, _dU, {Param(l, m + "B.weight", "G")}, 0UL, rows, H, {n}, accumulate: true);");
        CloseBackward(w, l);
    }

    /// <summary>Block step, one token: the forward kernel over one position from the stream's h, which then takes the new h.</summary>
    public override void EmitStep(CodeWriter w, ModelPlan plan, IdsLayerPlan l)
    {
        string v = Name(l), m = "mixer.";
        int n = l.N;
        w.Open($"private void Layer{l.Index}Step(ulong state, int t, ulong x, ulong next)");
        w.Line($"ulong h = At(state, {plan.State.Of(l, "h").Const});");
        w.Line($"Launch_layernorm_forward(1, NormThreads, x, {Param(l, "norm.weight")}, {Param(l, "norm.bias")}, _sU, _sMean, _sRstd);");
        w.Line($"Linear(_sU, {Param(l, m + "A.weight")}, {Param(l, m + "A.bias")}, _idsStepA, 1, H, {n * n});");
        w.Line($"Linear(_sU, {Param(l, m + "B.weight")}, 0UL, _idsStepBu, 1, H, {n});");
        w.Line($$"""
            Launch_{{v}}_forward(1, {{Threads(l)}}, _idsStepA, _idsStepBu, h, _idsStepH, 1);
            Runner.Gpu.CopyOnDevice(h, _idsStepH, 4L * {{n}});
            Runner.Gpu.CopyOnDevice(next, x, 4L * H);
            """);
        w.Line($"Linear(_idsStepH, {Param(l, m + "C.weight")}, {Param(l, m + "C.bias")}, next, 1, {n}, H, accumulate: true);");
        w.Close();
        w.Line();
    }
}
