using SsmGen.Generators.Emitters.Cuda;
using static SsmGen.Generators.Emitters.Cuda.CudaModelEmitter;

namespace SsmGen.Generators.Layers;

/// <summary>
/// The S4 layer, GPU backend, computing what the CPU's S4Kernel computes, term for term and in double where it does.
/// Kernels per variant (N, kernel length Lk), with M = N/2 and Lk constants: the generating function at the roots
/// z_j, j ≤ Lk/2 (one thread per (channel, root): Cauchy sums over the M modes and the Woodbury identity); the
/// kernel K (L, H) by a direct inverse DFT over those roots (the rest are their conjugates), one thread per (l, h);
/// the causal convolution y = K ∗ u + D·u and its adjoint, one thread per output; the kernel gradient by the shared
/// correlation, then per (channel, root) Ĝ = the adjoint DFT of dK and the Woodbury factors, and per (channel, mode)
/// the sums over the roots giving λ's, P's, B's and C̃'s gradients and a share of log Δ's. A stream's step tables
/// are prepared on the host as on the CPU (C = C̃·(I − Ā^Lk)⁻¹ is a dense solve) and uploaded into its state; the
/// step is one thread per channel.
/// </summary>
internal sealed class CudaS4Emitter : GpuRendering<S4LayerPlan>
{
    private static string Name(S4LayerPlan l) => $"s4_n{l.Spec.N}_l{l.Spec.KernelLength}";

    /// <summary>Doubles per (channel, root) the backward keeps: k₀₀, k₀₁, k₁₀, k₁₁, σ and d, each complex.</summary>
    private const int RootValues = 12;

    private static int Roots(S4LayerPlan l) => l.Spec.KernelLength / 2 + 1;

    public override void EmitKernels(StringBuilder cu, ModelPlan plan)
    {
        if (!plan.Blocks<S4LayerPlan>().Any()) return;
        if (!plan.Blocks<S4DLayerPlan>().Any()) CudaConvolutionBlock.EmitSharedKernels(cu);
        cu.Append("""

// ---- S4 ----

// y[b, t, h] = D[h]·u[b, t, h] + Σ_{l ≤ t} K[l, h]·u[b, t − l, h], the kernel stored (L, H).
extern "C" __global__ void s4_convolve(const float* __restrict__ u, const float* __restrict__ k, const float* __restrict__ d,
    float* __restrict__ y, int batch, int length)
{
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)batch * length * H) return;
    int h = (int)(i % H), t = (int)(i / H % length);
    const float* ub = u + (i / H - t) * H + h; // u[b, 0, h]
    float acc = d[h] * ub[(long)t * H], part = 0.0f; // summed in runs of 32: the rounding error grows with L/32 + 32, not L
    for (int l = 0; l <= t; l++)
    {
        part += k[(long)l * H + h] * ub[(long)(t - l) * H];
        if ((l & 31) == 31) { acc += part; part = 0.0f; }
    }
    y[i] = acc + part;
}

// The adjoint: du[b, s, h] = D[h]·dy[b, s, h] + Σ_{t ≥ s} K[t − s, h]·dy[b, t, h] (overwrites du).
extern "C" __global__ void s4_convolve_backward(const float* __restrict__ dy, const float* __restrict__ k, const float* __restrict__ d,
    float* __restrict__ du, int batch, int length)
{
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)batch * length * H) return;
    int h = (int)(i % H), s = (int)(i / H % length);
    const float* gb = dy + (i / H - s) * H + h; // dy[b, 0, h]
    float acc = d[h] * gb[(long)s * H], part = 0.0f;
    for (int t = s; t < length; t++)
    {
        part += k[(long)(t - s) * H + h] * gb[(long)t * H];
        if (((t - s) & 31) == 31) { acc += part; part = 0.0f; }
    }
    du[i] = acc + part;
}

""");
        foreach (var l in plan.Blocks<S4LayerPlan>().GroupBy(Name).Select(g => g.First()))
        {
            string v = Name(l);
            int m = l.Modes, lk = l.Spec.KernelLength, roots = Roots(l);
            cu.Append($$"""

// ---- S4, N = {{l.Spec.N}} (M = {{m}} complex modes), kernel length {{lk}} ----

// Mode i's λ = −exp(log_A_real) + i·A_imag and its products w₀₀ = C̃·B, w₀₁ = C̃·P, w₁₀ = P̄·B, w₁₁ = |P|², in double.
__device__ __forceinline__ void {{v}}_mode_(const float* __restrict__ log_a_real, const float* __restrict__ a_imag,
    const float* __restrict__ p, const float* __restrict__ b, const float* __restrict__ c, int i, zd& lambda, zd& w00, zd& w01, zd& w10, double& w11)
{
    zd cc = { c[2 * i], c[2 * i + 1] }, bb = { b[2 * i], b[2 * i + 1] }, pp = { p[2 * i], p[2 * i + 1] };
    lambda = { -exp((double)log_a_real[i]), (double)a_imag[i] };
    w00 = zd_mul(cc, bb); w01 = zd_mul(cc, pp); w10 = zd_mul(zd_conj(pp), bb); w11 = pp.re * pp.re + pp.im * pp.im;
}

// Channel h at root j (z = e^(−2πij/Lk), σ = (1 + z)/2, d = (1 − z)/Δ): the Cauchy sums q_ab = Σ_n w_ab·s + w̄_ab·t with
// s = 1/(d − σλ) and t = 1/(d − σλ̄), in double.
__device__ void {{v}}_point_(const float* __restrict__ log_dt, const float* __restrict__ log_a_real, const float* __restrict__ a_imag,
    const float* __restrict__ p, const float* __restrict__ b, const float* __restrict__ c, int h, int j,
    zd& q00, zd& q01, zd& q10, zd& q11, zd& sigma, zd& d)
{
    const int M = {{m}};
    double zr, zi;
    sincospi(-2.0 * j / {{lk}}, &zi, &zr);
    double rate = exp(-(double)log_dt[h]);
    d = { rate * (1.0 - zr), -rate * zi }; sigma = { 0.5 * (1.0 + zr), 0.5 * zi };
    q00 = q01 = q10 = q11 = zd{ 0.0, 0.0 };
    for (int n = 0; n < M; n++)
    {
        zd lambda, w00, w01, w10; double w11;
        {{v}}_mode_(log_a_real, a_imag, p, b, c, h * M + n, lambda, w00, w01, w10, w11);
        zd s = zd_div(zd{ 1.0, 0.0 }, zd_sub(d, zd_mul(sigma, lambda))), t = zd_div(zd{ 1.0, 0.0 }, zd_sub(d, zd_mul(sigma, zd_conj(lambda))));
        q00 = zd_add(q00, zd_add(zd_mul(w00, s), zd_mul(zd_conj(w00), t)));
        q01 = zd_add(q01, zd_add(zd_mul(w01, s), zd_mul(zd_conj(w01), t)));
        q10 = zd_add(q10, zd_add(zd_mul(w10, s), zd_mul(zd_conj(w10), t)));
        q11 = zd_add(q11, zd_scale(w11, zd_add(s, t)));
    }
}

// The generating function K̂(z_j) = q₀₀ − σ·q₀₁·q₁₀ / (1 + σ·q₁₁) at roots j ≤ Lk/2, one thread per (h, j): spectrum (H, Lk/2 + 1).
extern "C" __global__ void {{v}}_spectrum(const float* __restrict__ log_dt, const float* __restrict__ log_a_real, const float* __restrict__ a_imag,
    const float* __restrict__ p, const float* __restrict__ b, const float* __restrict__ c, zd* __restrict__ spectrum)
{
    const int ROOTS = {{roots}};
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= H * ROOTS) return;
    int h = i / ROOTS, j = i % ROOTS;
    zd q00, q01, q10, q11, sigma, d;
    {{v}}_point_(log_dt, log_a_real, a_imag, p, b, c, h, j, q00, q01, q10, q11, sigma, d);
    spectrum[i] = zd_sub(q00, zd_div(zd_mul(sigma, zd_mul(q01, q10)), zd_add(zd{ 1.0, 0.0 }, zd_mul(sigma, q11))));
}

// K[l, h] = (1/Lk)·Σ_j K̂_j·z_j^(−l) over all Lk roots, the roots past Lk/2 taken as the conjugates of theirs:
// K̂_0 + (−1)^l·K̂_(Lk/2) + 2·Re Σ_{0 < j < Lk/2} K̂_j·e^(2πijl/Lk). One thread per (h, l), in double.
extern "C" __global__ void {{v}}_kernel(const zd* __restrict__ spectrum, float* __restrict__ k, int length)
{
    const int ROOTS = {{roots}}, LK = {{lk}};
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)H * length) return;
    int h = (int)(i / length), l = (int)(i % length);
    const zd* sh = spectrum + (long)h * ROOTS;
    double acc = sh[0].re + ((l & 1) ? -sh[ROOTS - 1].re : sh[ROOTS - 1].re), rest = 0.0;
    int r = 0; // j·l mod Lk
    for (int j = 1; j < ROOTS - 1; j++)
    {
        r = (r + l) & (LK - 1);
        double sn, cs;
        sincospi(2.0 * r / LK, &sn, &cs);
        rest += sh[j].re * cs - sh[j].im * sn;
    }
    k[(long)l * H + h] = (float)((acc + 2.0 * rest) / LK);
}

// Per (h, j ≤ Lk/2): Ĝ_j = (1/Lk)·Σ_l dK[h, l]·z_j^(−l), doubled for the roots that stand for their conjugates too,
// and the Woodbury factors of dL = Re Σ_j Ĝ_j·dK̂_j: k₀₀ = g, k₀₁ = −g·σ·q₁₀/e, k₁₀ = −g·σ·q₀₁/e, k₁₁ = g·σ²·q₀₁·q₁₀/e²
// with e = 1 + σ·q₁₁; kept with σ and d as (H, Lk/2 + 1, 6) complex for {{v}}_mode_grads.
extern "C" __global__ void {{v}}_root_grads(const float* __restrict__ dk, const float* __restrict__ log_dt, const float* __restrict__ log_a_real,
    const float* __restrict__ a_imag, const float* __restrict__ p, const float* __restrict__ b, const float* __restrict__ c,
    zd* __restrict__ roots, int length)
{
    const int ROOTS = {{roots}}, LK = {{lk}};
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= H * ROOTS) return;
    int h = i / ROOTS, j = i % ROOTS;
    const float* dkh = dk + (long)h * length;
    double gr = 0.0, gi = 0.0;
    int r = 0; // j·l mod Lk
    for (int l = 0; l < length; l++)
    {
        double sn, cs;
        sincospi(2.0 * r / LK, &sn, &cs);
        gr += dkh[l] * cs; gi += dkh[l] * sn;
        r = (r + j) & (LK - 1);
    }
    double weight = (j == 0 || j == ROOTS - 1 ? 1.0 : 2.0) / LK;
    zd g = { weight * gr, weight * gi };
    zd q00, q01, q10, q11, sigma, d;
    {{v}}_point_(log_dt, log_a_real, a_imag, p, b, c, h, j, q00, q01, q10, q11, sigma, d);
    zd e = zd_add(zd{ 1.0, 0.0 }, zd_mul(sigma, q11)), gs = zd_mul(g, sigma);
    zd* out = roots + (long)i * 6;
    out[0] = g;
    out[1] = zd_scale(-1.0, zd_div(zd_mul(gs, q10), e));
    out[2] = zd_scale(-1.0, zd_div(zd_mul(gs, q01), e));
    out[3] = zd_div(zd_mul(zd_mul(gs, sigma), zd_mul(q01, q10)), zd_mul(e, e));
    out[4] = sigma; out[5] = d;
}

// Per (h, n): the sums over the roots α_ab = Σ_j k_ab·s, β_ab = Σ_j k_ab·t, α_λ = Σ_j σ·(Σ_ab k_ab·w_ab)·s²,
// β_λ = Σ_j σ·(Σ_ab k_ab·w̄_ab)·t², then dL/dC̃, dL/dB, dL/dP, dL/d log(−Re λ), dL/d Im λ (added), and the mode's share
// of dL/d log Δ = Σ_j Σ_n (ws·s² + wt·t²)·d into partial (H, M).
extern "C" __global__ void {{v}}_mode_grads(const zd* __restrict__ roots, const float* __restrict__ log_a_real, const float* __restrict__ a_imag,
    const float* __restrict__ p, const float* __restrict__ b, const float* __restrict__ c, float* __restrict__ g_log_a_real, float* __restrict__ g_a_imag,
    float* __restrict__ g_p, float* __restrict__ g_b, float* __restrict__ g_c, double* __restrict__ partial)
{
    const int M = {{m}}, ROOTS = {{roots}};
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= H * M) return;
    int h = i / M;
    zd lambda, w00, w01, w10; double w11;
    {{v}}_mode_(log_a_real, a_imag, p, b, c, i, lambda, w00, w01, w10, w11);
    zd a00 = { 0, 0 }, a01 = a00, a10 = a00, a11 = a00, al = a00, b00 = a00, b01 = a00, b10 = a00, b11 = a00, bl = a00, dt = a00;
    const zd* rh = roots + (long)h * ROOTS * 6;
    for (int j = 0; j < ROOTS; j++)
    {
        const zd* at = rh + j * 6;
        zd k00 = at[0], k01 = at[1], k10 = at[2], k11 = at[3], sigma = at[4], d = at[5];
        zd s = zd_div(zd{ 1.0, 0.0 }, zd_sub(d, zd_mul(sigma, lambda))), t = zd_div(zd{ 1.0, 0.0 }, zd_sub(d, zd_mul(sigma, zd_conj(lambda))));
        a00 = zd_add(a00, zd_mul(k00, s)); b00 = zd_add(b00, zd_mul(k00, t));
        a01 = zd_add(a01, zd_mul(k01, s)); b01 = zd_add(b01, zd_mul(k01, t));
        a10 = zd_add(a10, zd_mul(k10, s)); b10 = zd_add(b10, zd_mul(k10, t));
        a11 = zd_add(a11, zd_mul(k11, s)); b11 = zd_add(b11, zd_mul(k11, t));
        zd ws = zd_add(zd_add(zd_mul(k00, w00), zd_mul(k01, w01)), zd_add(zd_mul(k10, w10), zd_scale(w11, k11)));
        zd wt = zd_add(zd_add(zd_mul(k00, zd_conj(w00)), zd_mul(k01, zd_conj(w01))), zd_add(zd_mul(k10, zd_conj(w10)), zd_scale(w11, k11)));
        zd s2 = zd_mul(ws, zd_mul(s, s)), t2 = zd_mul(wt, zd_mul(t, t));
        al = zd_add(al, zd_mul(sigma, s2)); bl = zd_add(bl, zd_mul(sigma, t2));
        dt = zd_add(dt, zd_mul(zd_add(s2, t2), d));
    }
    zd cc = { c[2 * i], c[2 * i + 1] }, bb = { b[2 * i], b[2 * i + 1] }, pp = { p[2 * i], p[2 * i + 1] };
    // x's gradient (∂L/∂Re + i·∂L/∂Im) from dL = Re(α·dx + β·dx̄): Re(α + β) + i·Im(β − α)
    zd ac = zd_add(zd_mul(a00, bb), zd_mul(a01, pp)), bc = zd_add(zd_mul(b00, zd_conj(bb)), zd_mul(b01, zd_conj(pp)));
    g_c[2 * i] += (float)(ac.re + bc.re); g_c[2 * i + 1] += (float)(bc.im - ac.im);
    zd ab = zd_add(zd_mul(a00, cc), zd_mul(a10, zd_conj(pp))), bbb = zd_add(zd_mul(b00, zd_conj(cc)), zd_mul(b10, pp));
    g_b[2 * i] += (float)(ab.re + bbb.re); g_b[2 * i + 1] += (float)(bbb.im - ab.im);
    zd a11b11 = zd_add(a11, b11);
    zd ap = zd_add(zd_add(zd_mul(a01, cc), zd_mul(b10, zd_conj(bb))), zd_mul(a11b11, zd_conj(pp)));
    zd bp = zd_add(zd_add(zd_mul(b01, zd_conj(cc)), zd_mul(a10, bb)), zd_mul(a11b11, pp));
    g_p[2 * i] += (float)(ap.re + bp.re); g_p[2 * i + 1] += (float)(bp.im - ap.im);
    g_log_a_real[i] += (float)((al.re + bl.re) * lambda.re);
    g_a_imag[i] += (float)(bl.im - al.im);
    partial[i] = dt.re;
}

// d log Δ[h] += Σ_n (mode shares), in order; dD[h] += dK[h, 0] (D multiplies u[t] exactly as K[0] does).
extern "C" __global__ void {{v}}_dt_finish(const double* __restrict__ partial, const float* __restrict__ dk, float* __restrict__ g_log_dt,
    float* __restrict__ g_d, int length)
{
    const int M = {{m}};
    int h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= H) return;
    double s = 0.0;
    for (int n = 0; n < M; n++) s += partial[h * M + n];
    g_log_dt[h] += (float)s;
    g_d[h] += dk[(long)h * length];
}

// One token, one thread per channel h, from the tables the host prepared (per mode λ, p, D, Δ·B, C as [Re | Im] rows of
// M, then Δ/2 and the Woodbury gain): with s = 2·Re(p̄·x), v = x + Δ/2·(λx − p·s) + Δ·B·u, x ← D·v − D·p·gain·2·Re(p̄·D·v),
// y = 2·Re(C·x) + D_skip·u. The state is [Re x | Im x] (H, M).
extern "C" __global__ void {{v}}_step(float* __restrict__ x, const float* __restrict__ tables, const float* __restrict__ skip,
    const float* __restrict__ u, float* __restrict__ y)
{
    const int M = {{m}};
    int h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= H) return;
    const float* at = tables + (long)h * (10 * M + 2);
    float* xr = x + 2L * h * M;
    float* xi = xr + M;
    float half = at[10 * M], gain = at[10 * M + 1], uh = u[h], s = 0.0f, t = 0.0f;
    for (int n = 0; n < M; n++) s += 2.0f * (at[2 * M + n] * xr[n] + at[3 * M + n] * xi[n]);
    for (int n = 0; n < M; n++)
    {
        float lr = at[n], li = at[M + n], pr = at[2 * M + n], pi = at[3 * M + n];
        float vr = xr[n] + half * (lr * xr[n] - li * xi[n] - pr * s) + at[6 * M + n] * uh;
        float vi = xi[n] + half * (lr * xi[n] + li * xr[n] - pi * s) + at[7 * M + n] * uh;
        float dr = at[4 * M + n], di = at[5 * M + n];
        xr[n] = dr * vr - di * vi;
        xi[n] = dr * vi + di * vr;
        t += 2.0f * (pr * xr[n] + pi * xi[n]);
    }
    float acc = skip[h] * uh, f = gain * t;
    for (int n = 0; n < M; n++)
    {
        float pr = at[2 * M + n], pi = at[3 * M + n], dr = at[4 * M + n], di = at[5 * M + n];
        xr[n] -= f * (dr * pr - di * pi);
        xi[n] -= f * (dr * pi + di * pr);
        acc += 2.0f * (at[8 * M + n] * xr[n] - at[9 * M + n] * xi[n]);
    }
    y[h] = acc;
}

""");
        }
    }

    /// <summary>The spectrum (forward), the backward's kernel gradient, its batch slices, root factors and mode shares; the step's rows.</summary>
    public override IEnumerable<(string Field, string Floats, bool Training)> Scratch(ModelPlan plan)
    {
        var blocks = plan.Blocks<S4LayerPlan>().ToList();
        if (blocks.Count == 0) yield break;
        int roots = blocks.Max(Roots), modes = blocks.Max(l => l.Modes);
        yield return ("_s4Spectrum", $"H * {2 * roots}L", false); // doubles, two floats each
        yield return ("_s4Dk", "H * (long)maxLength", true);
        yield return ("_s4DkPartial", $"{CudaConvolutionBlock.GradientSplits} * H * (long)maxLength", true);
        yield return ("_s4Roots", $"H * {2 * RootValues * roots}L", true);
        yield return ("_s4Partial", $"H * {2 * modes}", true);
        yield return ("_s4StepY", "H", false);
        yield return ("_s4StepAct", "H", false);
        yield return ("_s4StepO", "2 * H", false);
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Field, string Floats)> Buffers(S4LayerPlan l)
    {
        string i = "_l" + l.Index;
        yield return ($"{i}Y", "rows * H");
        yield return ($"{i}G", "rows * H");
        yield return ($"{i}O", "rows * 2 * H");
        yield return ($"{i}K", "H * (long)maxLength");
    }

    /// <summary>The parameter arguments log Δ, log(−Re λ), Im λ, P, B, C̃ of block l (buf "P"), or their gradients ("G").</summary>
    private static string Ssm(S4LayerPlan l, string buf = "P", bool logDt = true) =>
        string.Join(", ", (logDt ? new[] { "log_dt" } : []).Concat(["log_A_real", "A_imag", "P", "B", "C"]).Select(t => Param(l, "mixer." + t, buf)));

    /// <summary>Block forward: the shared passes around the kernel (spectrum, inverse DFT) and the convolution.</summary>
    public override void EmitForward(CodeWriter w, ModelPlan plan, S4LayerPlan l)
    {
        string i = "_l" + l.Index, v = Name(l);
        CudaConvolutionBlock.EmitForward(w, plan, l, l.Spec.Dropout, () =>
        {
            w.Line($"Launch_{v}_spectrum(Blocks(H * {Roots(l)}), Threads, {Ssm(l)}, _s4Spectrum);");
            w.Line($"Launch_{v}_kernel(Blocks((long)H * length), Threads, _s4Spectrum, {i}K, length);");
            w.Line($"Launch_s4_convolve(Blocks((long)rows * H), Threads, {i}U, {i}K, {Param(l, "mixer.D")}, {i}Y, batch, length);");
        });
    }

    /// <summary>Block backward: the convolution's adjoint, the kernel gradient, and its way back through the roots to the parameters.</summary>
    public override void EmitBackward(CodeWriter w, ModelPlan plan, S4LayerPlan l)
    {
        string i = "_l" + l.Index, v = Name(l);
        CudaConvolutionBlock.EmitBackward(w, l, l.Spec.Dropout, () =>
        {
            w.Line($"Launch_s4_convolve_backward(Blocks((long)rows * H), Threads, _dY, {i}K, {Param(l, "mixer.D")}, _dU, batch, length);");
            CudaConvolutionBlock.EmitKernelGradient(w, l, "_s4DkPartial", "_s4Dk");
            w.Line($"Launch_{v}_root_grads(Blocks(H * {Roots(l)}), Threads, _s4Dk, {Ssm(l)}, _s4Roots, length);");
            w.Line($"Launch_{v}_mode_grads(Blocks(H * {l.Modes}), Threads, _s4Roots, {Ssm(l, logDt: false)}, {Ssm(l, "G", logDt: false)}, _s4Partial);");
            w.Line($"Launch_{v}_dt_finish(Blocks(H), Threads, _s4Partial, _s4Dk, {Param(l, "mixer.log_dt", "G")}, {Param(l, "mixer.D", "G")}, length);");
        });
    }

    /// <summary>The host's side of a stream's start: every S4 block's step tables from the device's parameters.</summary>
    public override void EmitHelpers(CodeWriter w, ModelPlan plan)
    {
        var blocks = plan.Blocks<S4LayerPlan>().ToList();
        int most = blocks.Max(l => plan.State.Of(l, "tables").Floats);
        int hm = plan.Spec.DModel * blocks.Max(l => l.Modes);
        w.Line("// A stream's S4 step tables, prepared on the host as the CPU path prepares them (C = C̃·(I − Ā^Lk)⁻¹ is a dense solve).");
        w.Line($"private readonly float[] _s4LogDt = new float[H], _s4ARe = new float[{hm}], _s4AIm = new float[{hm}], _s4P = new float[{2 * hm}], _s4B = new float[{2 * hm}], _s4C = new float[{2 * hm}], _s4Tables = new float[{most}];");
        w.Line();
        w.Open("private void PrepareS4Step(ulong tables, int stateSize, int kernelLength, ulong logDt, ulong aRe, ulong aIm, ulong p, ulong b, ulong c)");
        w.Line("int hm = H * (stateSize / 2);");
        w.Line("Runner.Download(logDt, _s4LogDt); Runner.Download(aRe, _s4ARe.AsSpan(0, hm)); Runner.Download(aIm, _s4AIm.AsSpan(0, hm));");
        w.Line("Runner.Download(p, _s4P.AsSpan(0, 2 * hm)); Runner.Download(b, _s4B.AsSpan(0, 2 * hm)); Runner.Download(c, _s4C.AsSpan(0, 2 * hm));");
        w.Line("int floats = H * (5 * stateSize + 2);");
        w.Line("S4Kernel.Prepare(H, stateSize, kernelLength, _s4LogDt, _s4ARe.AsSpan(0, hm), _s4AIm.AsSpan(0, hm), _s4P.AsSpan(0, 2 * hm), _s4B.AsSpan(0, 2 * hm), _s4C.AsSpan(0, 2 * hm), _s4Tables.AsSpan(0, floats));");
        w.Line("Runner.Upload(_s4Tables.AsSpan(0, floats), tables);");
        w.Close();
        w.Line();
    }

    /// <summary>Block step: on a stream's first token the host prepares its tables; then the O(N) DPLR step on the device.</summary>
    public override void EmitStep(CodeWriter w, ModelPlan plan, S4LayerPlan l)
    {
        string v = Name(l), x = $"At(state, {plan.State.Of(l, "x").Const})", tables = $"At(state, {plan.State.Of(l, "tables").Const})";
        CudaConvolutionBlock.EmitStep(w, l, "_s4StepY", "_s4StepAct", "_s4StepO", () =>
        {
            w.Line($"if (t == 0) PrepareS4Step({tables}, {l.Spec.N}, {l.Spec.KernelLength}, {Ssm(l)}); // a new stream takes the current parameters");
            w.Line($"Launch_{v}_step(Blocks(H), Threads, {x}, {tables}, {Param(l, "mixer.D")}, _sU, _s4StepY);");
        });
    }
}
