using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SsmGen.Numerics;

/// <summary>
/// Float kernels of the Mamba block around its selective scan: the causal depthwise convolution, SiLU, the
/// SiLU gate and softplus. Sequences are (B, L, E) row-major, so every kernel runs along contiguous channels.
/// </summary>
public static class MambaKernels
{
    /// <summary>
    /// c[b,t,e] = bias[e] + Σ_k w[e,k]·x[b, t−(W−1)+k, e] (zeros before t = 0). <paramref name="wt"/> receives
    /// the weight transposed to (W, E) so each tap is a contiguous row.
    /// </summary>
    public static unsafe void ConvForward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> c, Span<float> wt, int batch, int length, int e, int width, Workspace? workspace = null)
    {
        Need(x, batch * length * e); Need(c, batch * length * e); Need(w, e * width); Need(bias, e); Need(wt, e * width);
        using var pass = PassProfile.Enter(Pass.Convolution, 2.0 * batch * length * e * width, 8.0 * batch * length * e);
        for (int ch = 0; ch < e; ch++)
            for (int k = 0; k < width; k++) wt[k * e + ch] = w[ch * width + k];
        fixed (float* px = x, pwt = wt, pb = bias, pc = c)
            RowParallel.Run(&ConvRows, new RowArgs { P0 = px, P1 = pwt, P2 = pb, P3 = pc, Width = e, Count = length, Extra = width }, batch * length, e * width, workspace);
    }

    private static unsafe void ConvRows(ref RowArgs a, int r0, int r1)
    {
        int e = a.Width, length = a.Count, width = a.Extra;
        for (int r = r0; r < r1; r++)
        {
            int t = r % length;
            float* c = a.P3 + (long)r * e;
            new ReadOnlySpan<float>(a.P2, e).CopyTo(new Span<float>(c, e));
            for (int k = Math.Max(0, width - 1 - t); k < width; k++)
                Axpy(a.P0 + (long)(r - (width - 1) + k) * e, a.P1 + (long)k * e, c, e);
        }
    }

    /// <summary>c += x ⊙ w over n contiguous values.</summary>
    private static unsafe void Axpy(float* x, float* w, float* c, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16)
                Vector512.FusedMultiplyAdd(Vector512.Load(x + i), Vector512.Load(w + i), Vector512.Load(c + i)).Store(c + i);
        for (; i < n; i++) c[i] += x[i] * w[i];
    }

    /// <summary>
    /// Convolution backward: dx (overwritten) = Σ_k w[e,k]·dc[t+(W−1)−k]; dw[e,k] += Σ dc[t]·x[t−(W−1)+k]; dbias += Σ dc.
    /// <paramref name="wt"/> is the transposed weight the forward left; <paramref name="dwt"/> is (W, E) scratch.
    /// </summary>
    public static void ConvBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> wt, ReadOnlySpan<float> dc, Span<float> dx, Span<float> dw, Span<float> dbias, Span<float> dwt, int batch, int length, int e, int width)
    {
        int rows = batch * length;
        Need(x, rows * e); Need(dc, rows * e); Need(dx, rows * e); Need(dw, e * width); Need(dbias, e); Need(dwt, e * width); Need(wt, e * width);
        using var pass = PassProfile.Enter(Pass.Convolution, 4.0 * rows * e * width, 12.0 * rows * e);
        dwt.Slice(0, e * width).Clear();
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
            {
                int r = b * length + t;
                var dcr = dc.Slice(r * e, e);
                var dxr = dx.Slice(r * e, e);
                dxr.Clear();
                System.Numerics.Tensors.TensorPrimitives.Add(dbias, dcr, dbias);
                for (int k = 0; k < width; k++)
                {
                    // the output at t + (W−1) − k read this input through tap k
                    int s = t + width - 1 - k;
                    if (s < length) System.Numerics.Tensors.TensorPrimitives.FusedMultiplyAdd(wt.Slice(k * e, e), dc.Slice((b * length + s) * e, e), dxr, dxr);
                    int src = t - (width - 1) + k;
                    if (src >= 0)
                    {
                        var dwk = dwt.Slice(k * e, e);
                        System.Numerics.Tensors.TensorPrimitives.FusedMultiplyAdd(dcr, x.Slice((b * length + src) * e, e), dwk, dwk);
                    }
                }
            }
        for (int ch = 0; ch < e; ch++)
            for (int k = 0; k < width; k++) dw[ch * width + k] += dwt[k * e + ch];
    }

    /// <summary>
    /// The taps a piece of a sequence reads from before its start: c[b,t,e] += Σ_k w[e,k]·halo[b, t+k, e] for t+k &lt; W−1,
    /// with <paramref name="halo"/> (B, W−1, E) the W−1 inputs before the piece, oldest first.
    /// </summary>
    public static void ConvHaloForward(ReadOnlySpan<float> halo, ReadOnlySpan<float> w, Span<float> c, int batch, int length, int e, int width)
    {
        int wm = width - 1;
        Need(halo, batch * wm * e); Need(w, e * width); Need(c, batch * length * e);
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < Math.Min(wm, length); t++)
                for (int k = 0; t + k < wm; k++)
                {
                    var hr = halo.Slice((b * wm + t + k) * e, e);
                    var cr = c.Slice((b * length + t) * e, e);
                    for (int ch = 0; ch < e; ch++) cr[ch] += w[ch * width + k] * hr[ch];
                }
    }

    /// <summary>
    /// The backward of <see cref="ConvHaloForward"/>: dw[e,k] += Σ dc[b,t,e]·halo[b,t+k,e] and dHalo[b,t+k,e] (overwritten)
    /// = Σ dc[b,t,e]·w[e,k]: what the piece before owes its last W−1 inputs.
    /// </summary>
    public static void ConvHaloBackward(ReadOnlySpan<float> halo, ReadOnlySpan<float> w, ReadOnlySpan<float> dc, Span<float> dw, Span<float> dHalo, int batch, int length, int e, int width)
    {
        int wm = width - 1;
        Need(halo, batch * wm * e); Need(w, e * width); Need(dc, batch * length * e); Need(dw, e * width); Need(dHalo, batch * wm * e);
        dHalo.Slice(0, batch * wm * e).Clear();
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < Math.Min(wm, length); t++)
                for (int k = 0; t + k < wm; k++)
                {
                    var hr = halo.Slice((b * wm + t + k) * e, e);
                    var gr = dHalo.Slice((b * wm + t + k) * e, e);
                    var dcr = dc.Slice((b * length + t) * e, e);
                    for (int ch = 0; ch < e; ch++)
                    {
                        dw[ch * width + k] += dcr[ch] * hr[ch];
                        gr[ch] += dcr[ch] * w[ch * width + k];
                    }
                }
    }

    /// <summary>
    /// One token of the convolution: c = bias + Σ_k w[·,k]·window, with the window = (the W−1 previous inputs held
    /// in <paramref name="state"/> (E, W−1), oldest first, then x); the state shifts by one.
    /// </summary>
    public static void ConvStep(Span<float> state, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, ReadOnlySpan<float> x, Span<float> c, int e, int width)
    {
        if (width == 4)
        {
            // The usual width, without per-element bounds checks (lengths checked once): the same sums in the same order.
            if (state.Length < 3 * e || w.Length < 4 * e || bias.Length < e || x.Length < e || c.Length < e)
                throw new ArgumentException($"A convolution step over {e} channels of width 4 needs longer buffers.");
            ref float s = ref MemoryMarshal.GetReference(state);
            ref float wr = ref MemoryMarshal.GetReference(w);
            for (int ch = 0; ch < e; ch++)
            {
                ref float sc = ref Unsafe.Add(ref s, 3 * ch);
                ref float wc = ref Unsafe.Add(ref wr, 4 * ch);
                float xv = x[ch], s0 = sc, s1 = Unsafe.Add(ref sc, 1), s2 = Unsafe.Add(ref sc, 2);
                float v = bias[ch] + Unsafe.Add(ref wc, 3) * xv;
                v += wc * s0;
                v += Unsafe.Add(ref wc, 1) * s1;
                v += Unsafe.Add(ref wc, 2) * s2;
                c[ch] = v;
                sc = s1;
                Unsafe.Add(ref sc, 1) = s2;
                Unsafe.Add(ref sc, 2) = xv;
            }
            return;
        }
        for (int ch = 0; ch < e; ch++)
        {
            var s = state.Slice(ch * (width - 1), width - 1);
            var wc = w.Slice(ch * width, width);
            float v = bias[ch] + wc[width - 1] * x[ch];
            for (int k = 0; k < width - 1; k++) v += wc[k] * s[k];
            c[ch] = v;
            if (width > 1)
            {
                for (int k = 0; k < width - 2; k++) s[k] = s[k + 1]; // a few values: a loop, not a memmove call per channel
                s[width - 2] = x[ch];
            }
        }
    }

    /// <summary>x = softplus(x) = log(1 + eˣ) in place (x itself above 20, where they agree in float). Vectors in parallel.</summary>
    public static unsafe void Softplus(Span<float> x)
    {
        using var pass = PassProfile.Enter(Pass.ElementWise, 0, 8.0 * x.Length);
        if (Vector512.IsHardwareAccelerated)
        {
            // the last partial vector zero-padded through the same lanes (BlockKernels' rule for element-wise kernels)
            fixed (float* px = x) BlockKernels.RunVectors(&SoftplusVectors, new RowArgs { P0 = px, Count = x.Length });
            return;
        }
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            x[i] = v > 20 ? v : MathF.Log(1 + MathF.Exp(v));
        }
    }

    private static unsafe void SoftplusVectors(ref RowArgs a, int v0, int v1)
    {
        for (int i = 16 * v0; i < 16 * v1; i += 16)
        {
            var v = BlockKernels.Lanes(a.P0, i, a.Count);
            BlockKernels.Store(Vector512.ConditionalSelect(Vector512.GreaterThan(v, Vector512.Create(20f)), v, Vector512.Log(Vector512<float>.One + Vector512.Exp(v))), a.P0, i, a.Count);
        }
    }

    /// <summary>
    /// The step's rates A·log₂e, A = −exp(min(A_log, MaxLog)), for every (channel, state) of a block (as the selective
    /// scan's AT2, in the block's own layout): a stream's decay is then 2^(Δ·A·log₂e), one exp2 per lane.
    /// </summary>
    public static void StepLog2Rates(ReadOnlySpan<float> aLog, Span<float> a)
    {
        if (a.Length < aLog.Length) throw new ArgumentException($"A buffer holds {a.Length} values; {aLog.Length} are needed.", nameof(a));
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= aLog.Length; i += 16)
                (-FastMath.Exp(Vector512.Min(Vector512.Create(aLog.Slice(i, 16)), Vector512.Create((float)Stability.MaxLog))) * 1.44269504f).CopyTo(a.Slice(i, 16));
        for (; i < aLog.Length; i++) a[i] = -MathF.Exp(MathF.Min(aLog[i], (float)Stability.MaxLog)) * 1.44269504f;
    }

    /// <summary>
    /// Softplus backward from its output Δ: d(pre) = dΔ·σ(pre) = dΔ·(1 − e^{−Δ}), so the pre-activation need not be kept.
    /// </summary>
    public static unsafe void SoftplusBackward(ReadOnlySpan<float> delta, ReadOnlySpan<float> dDelta, Span<float> dPre)
    {
        Need(dDelta, delta.Length); Need(dPre, delta.Length);
        using var pass = PassProfile.Enter(Pass.ElementWise, 0, 12.0 * delta.Length);
        fixed (float* pd = delta, pdd = dDelta, pdp = dPre)
            RowParallel.Run(&SoftplusBackwardRows, new RowArgs { P0 = pd, P1 = pdd, P2 = pdp }, delta.Length, 4, grain: 1024);
    }

    private static unsafe void SoftplusBackwardRows(ref RowArgs a, int i0, int i1)
    {
        for (int i = i0; i < i1; i++) a.P2[i] = a.P1[i] * -float.ExpM1(-a.P0[i]);
    }

    private static void Need(ReadOnlySpan<float> s, int n)
    {
        if (s.Length < n) throw new ArgumentException($"A buffer holds {s.Length} values; {n} are needed.");
    }
}
