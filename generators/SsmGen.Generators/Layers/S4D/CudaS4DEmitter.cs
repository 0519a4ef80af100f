using SsmGen.Generators.Emitters.Cuda;
using static SsmGen.Generators.Emitters.Cuda.CudaModelEmitter;

namespace SsmGen.Generators.Layers;

/// <summary>
/// The S4D layer, GPU backend. Kernels per variant (N, discretization, trainable B), with M = N/2 a constant:
/// discretize (Ā and W = C·B̄ per mode, table (H, M, 4) [Re Ā, Im Ā, Re W, Im W]); the forward as a scan, up to 8
/// threads per (batch, channel) sharing its M complex states (in registers) and adding their parts by shuffles;
/// the backward as the adjoint scan (λ ← conj(Ā)·λ + 2·dy·conj(W), du = D·dy + Σ Re λ) split the same way, the
/// kernel gradient dK[h, l] = Σ_b Σ_t dy[t]·u[t−l] (<see cref="CudaConvolutionBlock"/>'s correlation),
/// and per mode Horner sums of dK giving dW, dĀ and the chain rule to log Δ, A, B, C.
/// </summary>
internal sealed class CudaS4DEmitter : GpuRendering<S4DLayerPlan>
{
    private static string Name(S4DLayerPlan l) => l.Variant.ToLowerInvariant();

    /// <summary>Threads per (batch, channel) in the scans: up to 8, each keeping at least 4 of the M modes.</summary>
    private static int ModeGroups(S4DLayerPlan l)
    {
        for (int g = 8; g > 1; g /= 2) if (l.Modes % g == 0 && l.Modes / g >= 4) return g;
        return 1;
    }

    /// <summary>The limits of SsmGen.Numerics.Stability as CUDA constants (the same numbers: the file is linked in).</summary>
    private static readonly string StabilityLimits =
        $"// |Ā| < 1 in float, and no exp overflow (SsmGen.Numerics.Stability: MaxLog, MaxMagnitude).\n" +
        $"constexpr double S4D_MAX_LOG = {CodeWriter.D(SsmGen.Numerics.Stability.MaxLog)}, S4D_MAX_MAGNITUDE = {CodeWriter.D(SsmGen.Numerics.Stability.MaxMagnitude)};";

    /// <summary>Kernels of every S4D variant the plan uses.</summary>
    public override void EmitKernels(StringBuilder cu, ModelPlan plan)
    {
        if (!plan.Blocks<S4DLayerPlan>().Any()) return;
        CudaConvolutionBlock.EmitSharedKernels(cu);
        cu.Append("""

// ---- S4D ----

""" + StabilityLimits + """

// A scan thread's share: G adjacent threads per (b, h), M/G modes each. Sets b, h and g (a thread past the end
// gets row 0 and must not write), loads Re/Im of Ā and W of its modes, and returns whether it is in range.
template <int M, int G>
__device__ __forceinline__ bool s4d_scan_share_(int batch, const float* __restrict__ modes, long& b, int& h, int& g,
    float* zr, float* zi, float* wr, float* wi)
{
    constexpr int MG = M / G;
    long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    bool on = idx < (long)batch * H * G;
    long bh = on ? idx / G : 0;
    g = (int)(idx % G); h = (int)(bh % H); b = bh / H;
    const float* md = modes + ((long)h * M + g * MG) * 4;
#pragma unroll
    for (int n = 0; n < MG; n++) { zr[n] = md[4 * n]; zi[n] = md[4 * n + 1]; wr[n] = md[4 * n + 2]; wi[n] = md[4 * n + 3]; }
    return on;
}

""");
        foreach (var l in plan.Blocks<S4DLayerPlan>().GroupBy(x => x.Variant).Select(g => g.First()))
        {
            string v = Name(l);
            int m = l.Modes, groups = ModeGroups(l);
            bool zoh = l.Spec.Discretization == 0, trainB = l.Spec.TrainB;
            cu.Append($$"""

// ---- S4D, N = {{l.Spec.N}} (M = {{m}} complex modes), {{(zoh ? "ZOH" : "bilinear")}}{{(trainB ? ", trainable B" : "")}} ----

// Ā and W = C·B̄ of mode i, in double, exactly as the CPU path computes them: log Δ and log(−Re A) clamped to
// ±S4D_MAX_LOG before exp; ZOH's (e^q − 1)/A by its series where q = ΔA is tiny; and a mode whose |Ā| would round to
// 1 in float pulled back to S4D_MAX_MAGNITUDE. Returns whether it was pulled back; q is left for the caller.
__device__ bool {{v}}_mode_(const float* __restrict__ log_dt, const float* __restrict__ log_a_real,
    const float* __restrict__ a_imag, const float* __restrict__ b, const float* __restrict__ c, int i,
    double& zr, double& zi, double& wr, double& wi, double& qr, double& qi)
{
    const int M = {{m}};
    double dt = exp(fmin(fmax((double)log_dt[i / M], -S4D_MAX_LOG), S4D_MAX_LOG));
    double ar = -exp(fmin((double)log_a_real[i], S4D_MAX_LOG)), ai = a_imag[i];
    qr = dt * ar; qi = dt * ai;
    double br = {{(trainB ? "b[2 * i]" : "1.0")}}, bi = {{(trainB ? "b[2 * i + 1]" : "0.0")}};
    double cbr = c[2 * i] * br - c[2 * i + 1] * bi, cbi = c[2 * i] * bi + c[2 * i + 1] * br;
{{(zoh ? """
    zr = exp(qr) * cos(qi); zi = exp(qr) * sin(qi);
    if (hypot(qr, qi) < 1e-8) { double tr = dt * (1.0 + qr / 2), ti = dt * qi / 2; wr = cbr * tr - cbi * ti; wi = cbr * ti + cbi * tr; } // Δ·(1 + q/2): (e^q − 1)/A without 0/0
    else
    {
        double d = ar * ar + ai * ai, fr = ((zr - 1.0) * ar + zi * ai) / d, fi = (zi * ar - (zr - 1.0) * ai) / d; // (Ā − 1)/A
        wr = cbr * fr - cbi * fi; wi = cbr * fi + cbi * fr;
    }
""" : """
    double dr = 1.0 - qr / 2, di = -qi / 2, dd = dr * dr + di * di, rr = dr / dd, ri = -di / dd; // r = 1/(1 − q/2)
    zr = (1.0 + qr / 2) * rr - (qi / 2) * ri; zi = (1.0 + qr / 2) * ri + (qi / 2) * rr;
    wr = dt * (cbr * rr - cbi * ri); wi = dt * (cbr * ri + cbi * rr);
""")}}
    double mag = hypot(zr, zi);
    if (mag <= S4D_MAX_MAGNITUDE) return false;
    zr *= S4D_MAX_MAGNITUDE / mag; zi *= S4D_MAX_MAGNITUDE / mag;
    return true;
}

// The training path's mode table (H, M, 4) [Re Ā, Im Ā, Re W, Im W], one thread per mode.
extern "C" __global__ void {{v}}_discretize(const float* __restrict__ log_dt, const float* __restrict__ log_a_real,
    const float* __restrict__ a_imag, const float* __restrict__ b, const float* __restrict__ c, float* __restrict__ modes)
{
    const int M = {{m}};
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= H * M) return;
    double zr, zi, wr, wi, qr, qi;
    {{v}}_mode_(log_dt, log_a_real, a_imag, b, c, i, zr, zi, wr, wi, qr, qi);
    modes[4 * i] = (float)zr; modes[4 * i + 1] = (float)zi; modes[4 * i + 2] = (float)wr; modes[4 * i + 3] = (float)wi;
}

// y = 2·Re Σ_n W_n x_n + D·u with x_n[t] = Ā_n x_n[t−1] + u[t]: G adjacent threads per (b, h), each holding M/G
// modes (Ā, W and the states) in registers; the G partial sums meet by shuffles each step, in a fixed order. Every
// lane of a warp runs the loop (the shuffles need them all); lanes past the end compute on zeros.
extern "C" __global__ void {{v}}_scan_forward(const float* __restrict__ u, const float* __restrict__ modes,
    const float* __restrict__ d, float* __restrict__ y, int batch, int length)
{
    const int M = {{m}}, G = {{groups}}, MG = M / G;
    float zr[MG], zi[MG], wr[MG], wi[MG], xr[MG], xi[MG];
    long b; int h, g;
    bool on = s4d_scan_share_<M, G>(batch, modes, b, h, g, zr, zi, wr, wi);
#pragma unroll
    for (int n = 0; n < MG; n++) { xr[n] = 0.0f; xi[n] = 0.0f; }
    float dh = d[h];
    for (int t = 0; t < length; t++)
    {
        long at = (b * length + t) * H + h;
        float ut = on ? u[at] : 0.0f, s = 0.0f;
#pragma unroll
        for (int n = 0; n < MG; n++)
        {
            float nr = zr[n] * xr[n] - zi[n] * xi[n] + ut, ni = zr[n] * xi[n] + zi[n] * xr[n];
            xr[n] = nr; xi[n] = ni;
            s += 2.0f * (wr[n] * nr - wi[n] * ni);
        }
#pragma unroll
        for (int o = G / 2; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (on && g == 0) y[at] = s + dh * ut;
    }
}

// The adjoint scan, backwards in time, split over modes the same way: λ_n ← conj(Ā_n)·λ_n + 2·dy·conj(W_n);
// du = D·dy + Σ_n Re λ_n (overwrites du).
extern "C" __global__ void {{v}}_scan_backward(const float* __restrict__ dy, const float* __restrict__ modes,
    const float* __restrict__ d, float* __restrict__ du, int batch, int length)
{
    const int M = {{m}}, G = {{groups}}, MG = M / G;
    float zr[MG], zi[MG], wr[MG], wi[MG], lr[MG], li[MG];
    long b; int h, g;
    bool on = s4d_scan_share_<M, G>(batch, modes, b, h, g, zr, zi, wr, wi);
#pragma unroll
    for (int n = 0; n < MG; n++) { lr[n] = 0.0f; li[n] = 0.0f; }
    float dh = d[h];
    for (int t = length - 1; t >= 0; t--)
    {
        long at = (b * length + t) * H + h;
        float gt = on ? dy[at] : 0.0f, s = 0.0f;
#pragma unroll
        for (int n = 0; n < MG; n++)
        {
            float nr = zr[n] * lr[n] + zi[n] * li[n] + 2.0f * gt * wr[n], ni = zr[n] * li[n] - zi[n] * lr[n] - 2.0f * gt * wi[n];
            lr[n] = nr; li[n] = ni;
            s += nr;
        }
#pragma unroll
        for (int o = G / 2; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (on && g == 0) du[at] = s + dh * gt;
    }
}

// Per mode (h, n): p = Σ_l dK[l]·Ā^l and p' by Horner's rule; dW = 2·conj(p), dĀ = 2·conj(W·p'); then the
// discretization's chain rule into A (log_A_real, A_imag), B, C; the mode's share of d log Δ goes to partial.
extern "C" __global__ void {{v}}_mode_backward(const float* __restrict__ dk, const float* __restrict__ modes,
    const float* __restrict__ log_dt, const float* __restrict__ log_a_real, const float* __restrict__ a_imag,
    const float* __restrict__ b, const float* __restrict__ c, float* __restrict__ g_log_a_real, float* __restrict__ g_a_imag,
    float* __restrict__ g_b, float* __restrict__ g_c, float* __restrict__ partial, int length)
{
    const int M = {{m}};
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= H * M) return;
    int h = i / M;
    cf zt = { modes[4 * i], modes[4 * i + 1] }; // Ā as the forward used it
    cf p = { 0.0f, 0.0f }, dp = { 0.0f, 0.0f };
    const float* dkh = dk + (long)h * length;
    for (int l = length - 1; l >= 0; l--)
    {
        dp = cadd(cmul(dp, zt), p);
        p = cadd(cmul(p, zt), cf{ dkh[l], 0.0f });
    }
    // The chain rule in double, term for term as the CPU path's (Ā recomputed from the clamped parameters, W's factors
    // taken apart), so the two devices agree even where float would overflow or cancel.
    double dt = exp(fmin(fmax((double)log_dt[h], -S4D_MAX_LOG), S4D_MAX_LOG));
    zd a = { -exp(fmin((double)log_a_real[i], S4D_MAX_LOG)), (double)a_imag[i] }, q = zd_scale(dt, a);
    zd cc = { c[2 * i], c[2 * i + 1] }, bb = {{(trainB ? "{ b[2 * i], b[2 * i + 1] }" : "{ 1.0, 0.0 }")}}, one = { 1.0, 0.0 };
    zd gW = zd_scale(2.0, zd_conj(zd{ p.re, p.im })), pd = { dp.re, dp.im };
    zd gA, gC; double gDt;
{{(zoh ? """
    zd z = zd_scale(exp(q.re), zd{ cos(q.im), sin(q.im) });
    zd e = zd_div(zd_sub(z, one), a), cb = zd_mul(cc, bb);
    zd gZ = zd_scale(2.0, zd_conj(zd_mul(zd_mul(cb, e), pd)));
    gC = zd_mul(gW, zd_conj(zd_mul(bb, e)));
    zd gB = zd_mul(gW, zd_conj(zd_mul(cc, e)));
    zd gZt = zd_add(gZ, zd_mul(gW, zd_conj(zd_div(cb, a))));          // W depends on Ā too
    gA = zd_add(zd_mul(gW, zd_conj(zd_scale(-1.0, zd_div(zd_mul(cb, e), a)))), zd_mul(gZt, zd_conj(zd_scale(dt, z))));
    gDt = zd_mul(zd_mul(zd_conj(gZt), a), z).re;
""" : """
    zd r = zd_div(one, zd_sub(one, zd_scale(0.5, q))), cb = zd_mul(cc, bb), rr = zd_mul(r, r);
    zd gZ = zd_scale(2.0, zd_conj(zd_mul(zd_scale(dt, zd_mul(cb, r)), pd)));
    gC = zd_mul(gW, zd_conj(zd_scale(dt, zd_mul(bb, r))));
    zd gB = zd_mul(gW, zd_conj(zd_scale(dt, zd_mul(cc, r))));
    zd gQ = zd_add(zd_mul(gZ, zd_conj(rr)), zd_mul(gW, zd_conj(zd_scale(dt / 2, zd_mul(cb, rr)))));
    gDt = zd_mul(zd_mul(zd_conj(gW), cb), r).re + zd_mul(zd_conj(gQ), a).re;
    gA = zd_scale(dt, gQ);
""")}}
    g_c[2 * i] += (float)gC.re; g_c[2 * i + 1] += (float)gC.im;
{{(trainB ? "    g_b[2 * i] += (float)gB.re; g_b[2 * i + 1] += (float)gB.im;" : "    (void)gB; (void)b; (void)g_b;")}}
    g_log_a_real[i] += (float)(a.re * gA.re);
    g_a_imag[i] += (float)gA.im;
    partial[i] = gDt;
}

// d log Δ[h] += Δ·Σ_n (mode shares); dD[h] += dK[h, 0] (D multiplies u[t] exactly as K[0] does).
extern "C" __global__ void {{v}}_dt_finish(const float* __restrict__ partial, const float* __restrict__ dk,
    const float* __restrict__ log_dt, float* __restrict__ g_log_dt, float* __restrict__ g_d, int length)
{
    const int M = {{m}};
    int h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= H) return;
    double s = 0.0;
    for (int n = 0; n < M; n++) s += partial[h * M + n];
    g_log_dt[h] += (float)(s * exp(fmin(fmax((double)log_dt[h], -S4D_MAX_LOG), S4D_MAX_LOG))); // as the CPU path: Σ gΔ·Δ in double
    g_d[h] += dk[(long)h * length];
}

// A new stream's modes, stored in its state as the CPU path stores them (and computed, like there, in double):
// tables of H·M values [Re Ā | Im Ā | Re W | Im W | Re Ā³² | Im Ā³²]; only a mode whose |Ā| would round to 1 in
// float is pulled back to magnitude 1 − 2⁻²².
extern "C" __global__ void {{v}}_step_discretize(const float* __restrict__ log_dt, const float* __restrict__ log_a_real,
    const float* __restrict__ a_imag, const float* __restrict__ b, const float* __restrict__ c, float* __restrict__ modes)
{
    const int M = {{m}}, HM = H * M;
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= HM) return;
    double kr, ki, wr, wi, qr, qi;
    bool pulled = {{v}}_mode_(log_dt, log_a_real, a_imag, b, c, i, kr, ki, wr, wi, qr, qi);
    double pr = kr, pi = ki;
    for (int k = 0; k < 5; k++) { double t = pr * pr - pi * pi; pi = 2.0 * pr * pi; pr = t; } // Ā³² by squaring
    if ({{(zoh ? "!pulled" : "false")}}) { pr = exp(32.0 * qr) * cos(32.0 * qi); pi = exp(32.0 * qr) * sin(32.0 * qi); } // ZOH: exp(32·ΔA) itself, as the host has it
    modes[i] = (float)kr; modes[HM + i] = (float)ki; modes[2 * HM + i] = (float)wr; modes[3 * HM + i] = (float)wi;
    modes[4 * HM + i] = (float)pr; modes[5 * HM + i] = (float)pi;
}

// One token of a stream, one thread per channel h: x ← Ā·x + u, y = 2·Re Σ_n W_n·x_n + D·u. The block's state is
// [Re x | Im x] (H·M each), then the mode tables of its step_discretize.
extern "C" __global__ void {{v}}_step(float* __restrict__ state, const float* __restrict__ d, const float* __restrict__ u, float* __restrict__ y)
{
    const int M = {{m}}, HM = H * M;
    int h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= H) return;
    const float* md = state + 2 * HM;
    float uh = u[h], acc = 0.0f;
    for (int n = 0; n < M; n++)
    {
        int i = h * M + n;
        float sr = md[i] * state[i] - md[HM + i] * state[HM + i] + uh, si = md[i] * state[HM + i] + md[HM + i] * state[i];
        state[i] = sr; state[HM + i] = si;
        acc += md[2 * HM + i] * sr - md[3 * HM + i] * si;
    }
    y[h] = 2.0f * acc + d[h] * uh;
}

""");
        }
    }

    /// <summary>The backward's kernel gradient (H, L), its batch slices and per-mode partial sums; the step's rows.</summary>
    public override IEnumerable<(string Field, string Floats, bool Training)> Scratch(ModelPlan plan)
    {
        if (!plan.Blocks<S4DLayerPlan>().Any()) yield break;
        yield return ("_dk", "H * (long)maxLength", true);
        yield return ("_dkPartial", $"{CudaConvolutionBlock.GradientSplits} * H * (long)maxLength", true);
        yield return ("_modePartial", $"H * {plan.Blocks<S4DLayerPlan>().Max(l => l.Modes)}", true);
        yield return ("_s4dStepY", "H", false); // Step's rows: S4D out, GELU out, linear out
        yield return ("_s4dStepAct", "H", false);
        yield return ("_s4dStepO", "2 * H", false);
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Field, string Floats)> Buffers(S4DLayerPlan l)
    {
        string i = "_l" + l.Index;
        yield return ($"{i}Y", "rows * H");
        yield return ($"{i}G", "rows * H");
        yield return ($"{i}O", "rows * 2 * H");
        yield return ($"{i}Modes", $"{4 * l.Modes} * H");
    }

    /// <summary>Block forward: the shared passes around the S4D scan.</summary>
    public override void EmitForward(CodeWriter w, ModelPlan plan, S4DLayerPlan l)
    {
        string i = "_l" + l.Index, v = Name(l);
        CudaConvolutionBlock.EmitForward(w, plan, l, l.Spec.Dropout, () =>
        {
            w.Line($"Launch_{v}_discretize(Blocks(H * {l.Modes}), Threads, {Param(l, "mixer.log_dt")}, {Param(l, "mixer.log_A_real")}, {Param(l, "mixer.A_imag")}, {(l.Spec.TrainB ? Param(l, "mixer.B") : "0UL")}, {Param(l, "mixer.C")}, {i}Modes);");
            w.Line($"Launch_{v}_scan_forward(Blocks((long)batch * H * {ModeGroups(l)}), Threads, {i}U, {i}Modes, {Param(l, "mixer.D")}, {i}Y, batch, length);");
        });
    }

    /// <summary>Block backward: the shared passes around the adjoint scan and the kernel gradient's chain rule.</summary>
    public override void EmitBackward(CodeWriter w, ModelPlan plan, S4DLayerPlan l)
    {
        string i = "_l" + l.Index, v = Name(l);
        CudaConvolutionBlock.EmitBackward(w, l, l.Spec.Dropout, () =>
        {
            w.Line($"Launch_{v}_scan_backward(Blocks((long)batch * H * {ModeGroups(l)}), Threads, _dY, {i}Modes, {Param(l, "mixer.D")}, _dU, batch, length);");
            CudaConvolutionBlock.EmitKernelGradient(w, l, "_dkPartial", "_dk");
            w.Line($"Launch_{v}_mode_backward(Blocks(H * {l.Modes}), Threads, _dk, {i}Modes, {Param(l, "mixer.log_dt")}, {Param(l, "mixer.log_A_real")}, {Param(l, "mixer.A_imag")}, {(l.Spec.TrainB ? Param(l, "mixer.B") : "0UL")}, {Param(l, "mixer.C")}, {Param(l, "mixer.log_A_real", "G")}, {Param(l, "mixer.A_imag", "G")}, {(l.Spec.TrainB ? Param(l, "mixer.B", "G") : "0UL")}, {Param(l, "mixer.C", "G")}, _modePartial, length);");
            w.Line($"Launch_{v}_dt_finish(Blocks(H), Threads, _modePartial, _dk, {Param(l, "mixer.log_dt")}, {Param(l, "mixer.log_dt", "G")}, {Param(l, "mixer.D", "G")}, length);");
        });
    }

    /// <summary>Block step: the shared passes around the S4D recurrence on the stream's state.</summary>
    public override void EmitStep(CodeWriter w, ModelPlan plan, S4DLayerPlan l)
    {
        string v = Name(l), st = $"At(state, {plan.State.Of(l, "x").Const})";
        CudaConvolutionBlock.EmitStep(w, l, "_s4dStepY", "_s4dStepAct", "_s4dStepO", () =>
        {
            w.Line($"if (t == 0) Launch_{v}_step_discretize(Blocks(H * {l.Modes}), Threads, {Param(l, "mixer.log_dt")}, {Param(l, "mixer.log_A_real")}, {Param(l, "mixer.A_imag")}, {(l.Spec.TrainB ? Param(l, "mixer.B") : "0UL")}, {Param(l, "mixer.C")}, At(state, {plan.State.Of(l, "modes").Const})); // a new stream takes the current parameters");
            w.Line($"Launch_{v}_step(Blocks(H), Threads, {st}, {Param(l, "mixer.D")}, _sU, _s4dStepY);");
        });
    }
}
