using System.Numerics.Tensors;

namespace SsmGen.Numerics;

/// <summary>
/// Causal multi-head self-attention with rotary positions over (B, L, 3H) rows [q | k | v], heads contiguous
/// slices of size d: s_{t,u} = q_t·k_u/√d (u ≤ t), p = softmax_u(s), o_t = Σ_u p_{t,u} v_u. Rotary positions turn
/// each pair (2i, 2i+1) of q and k at position t by θ_i = t·10000^(−2i/d). Every (batch row, head) runs in parallel.
/// </summary>
public static unsafe class AttentionKernels
{
    /// <summary>cos θ and sin θ for positions [0, maxLength) and pairs [0, d/2): (maxLength, d/2) each, computed in double.</summary>
    public static void RopeTables(Span<float> cos, Span<float> sin, int maxLength, int headSize)
    {
        int half = headSize / 2;
        for (int t = 0; t < maxLength; t++)
            for (int i = 0; i < half; i++)
            {
                double theta = t * Math.Pow(10000, -2.0 * i / headSize);
                cos[t * half + i] = (float)Math.Cos(theta);
                sin[t * half + i] = (float)Math.Sin(theta);
            }
    }

    /// <summary>Rotates the q and k parts of every row (B, L, 3H) by its position; <paramref name="inverse"/> turns back (the backward).</summary>
    public static void Rotate(Span<float> qkv, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int batch, int length, int h, int headSize, bool inverse)
    {
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
                RotateRow(qkv.Slice((b * length + t) * 3 * h, 2 * h), cos, sin, t, h, headSize, inverse);
    }

    /// <summary>Rotates q (the first H values) and k (the next H) of one position.</summary>
    public static void RotateRow(Span<float> qk, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int t, int h, int headSize, bool inverse = false)
    {
        int half = headSize / 2;
        var c = cos.Slice(t * half, half);
        var s = sin.Slice(t * half, half);
        float sign = inverse ? -1 : 1;
        for (int head = 0; head < 2 * h / headSize; head++)
        {
            var v = qk.Slice(head * headSize, headSize);
            for (int i = 0; i < half; i++)
            {
                float a = v[2 * i], bb = v[2 * i + 1], si = sign * s[i];
                v[2 * i] = a * c[i] - bb * si;
                v[2 * i + 1] = a * si + bb * c[i];
            }
        }
    }

    /// <summary>o (B, L, H) and the attention probabilities (B, heads, L, L) from the rotated rows.</summary>
    public static void Forward(ReadOnlySpan<float> qkv, Span<float> probs, Span<float> o, int batch, int length, int h, int heads, Workspace? workspace = null)
    {
        Need(qkv, batch * length * 3 * h); Need(o, batch * length * h); Need(probs, batch * heads * length * length);
        fixed (float* pq = qkv, pp = probs, po = o)
            RowParallel.Run(&ForwardItems, new RowArgs { P0 = pq, P1 = pp, P2 = po, Width = h, Count = length, Extra = heads }, batch * heads, (long)length * length * h / heads, workspace, grain: 1);
    }

    private static void ForwardItems(ref RowArgs a, int i0, int i1)
    {
        int h = a.Width, length = a.Count, heads = a.Extra, d = h / heads;
        float scale = 1 / MathF.Sqrt(d);
        for (int item = i0; item < i1; item++)
        {
            int b = item / heads, head = item % heads;
            for (int t = 0; t < length; t++)
            {
                var q = Row(a.P0, b, length, t, h, 0, head, d);
                var p = new Span<float>(a.P1 + ((long)item * length + t) * length, length);
                for (int u = 0; u <= t; u++) p[u] = scale * TensorPrimitives.Dot(q, Row(a.P0, b, length, u, h, h, head, d));
                var pt = p.Slice(0, t + 1);
                TensorPrimitives.SoftMax(pt, pt);
                p.Slice(t + 1).Clear();
                var ot = new Span<float>(a.P2 + ((long)b * length + t) * h + head * d, d);
                ot.Clear();
                for (int u = 0; u <= t; u++) TensorPrimitives.MultiplyAdd(Row(a.P0, b, length, u, h, 2 * h, head, d), p[u], ot, ot);
            }
        }
    }

    /// <summary>dQkv (B, L, 3H), overwritten, from dL/do; the gradients are with respect to the rotated q and k.</summary>
    public static void Backward(ReadOnlySpan<float> qkv, ReadOnlySpan<float> probs, ReadOnlySpan<float> dO, Span<float> dQkv, int batch, int length, int h, int heads, Workspace? workspace = null)
    {
        Need(qkv, batch * length * 3 * h); Need(dO, batch * length * h); Need(dQkv, batch * length * 3 * h); Need(probs, batch * heads * length * length);
        fixed (float* pq = qkv, pp = probs, pdo = dO, pdq = dQkv)
            RowParallel.Run(&BackwardItems, new RowArgs { P0 = pq, P1 = pp, P2 = pdo, P3 = pdq, Width = h, Count = length, Extra = heads }, batch * heads, (long)length * length * h / heads, workspace, grain: 1);
    }

    private static void BackwardItems(ref RowArgs a, int i0, int i1)
    {
        int h = a.Width, length = a.Count, heads = a.Extra, d = h / heads;
        float scale = 1 / MathF.Sqrt(d);
        for (int item = i0; item < i1; item++)
        {
            int b = item / heads, head = item % heads;
            for (int t = 0; t < length; t++)
                for (int part = 0; part < 3; part++) Row(a.P3, b, length, t, h, part * h, head, d).Clear();
            for (int t = 0; t < length; t++)
            {
                var p = new ReadOnlySpan<float>(a.P1 + ((long)item * length + t) * length, t + 1);
                var dot = new ReadOnlySpan<float>(a.P2 + ((long)b * length + t) * h + head * d, d);
                var q = Row(a.P0, b, length, t, h, 0, head, d);
                var dq = Row(a.P3, b, length, t, h, 0, head, d);
                // dP_u = dO_t·v_u;  dS_u = p_u (dP_u − Σ_w p_w dP_w)
                float sum = 0;
                for (int u = 0; u <= t; u++) sum += p[u] * TensorPrimitives.Dot(dot, Row(a.P0, b, length, u, h, 2 * h, head, d));
                for (int u = 0; u <= t; u++)
                {
                    var v = Row(a.P0, b, length, u, h, 2 * h, head, d);
                    float ds = p[u] * (TensorPrimitives.Dot(dot, v) - sum) * scale;
                    var k = Row(a.P0, b, length, u, h, h, head, d);
                    TensorPrimitives.MultiplyAdd(k, ds, dq, dq);
                    var dk = Row(a.P3, b, length, u, h, h, head, d);
                    TensorPrimitives.MultiplyAdd(q, ds, dk, dk);
                    var dv = Row(a.P3, b, length, u, h, 2 * h, head, d);
                    TensorPrimitives.MultiplyAdd(dot, p[u], dv, dv);
                }
            }
        }
    }

    /// <summary>
    /// One token at position t: writes its rotated k and v into the cache (keys (maxLength, H), then values), then
    /// attends over positions 0…t. <paramref name="scores"/> holds maxLength values.
    /// </summary>
    public static void Step(ReadOnlySpan<float> qkv, Span<float> cache, int t, Span<float> o, Span<float> scores, int h, int heads, int maxLength)
    {
        int d = h / heads;
        float scale = 1 / MathF.Sqrt(d);
        qkv.Slice(h, h).CopyTo(cache.Slice(t * h, h));
        qkv.Slice(2 * h, h).CopyTo(cache.Slice((maxLength + t) * h, h));
        for (int head = 0; head < heads; head++)
        {
            var q = qkv.Slice(head * d, d);
            var p = scores.Slice(0, t + 1);
            for (int u = 0; u <= t; u++) p[u] = scale * TensorPrimitives.Dot(q, cache.Slice(u * h + head * d, d));
            TensorPrimitives.SoftMax(p, p);
            var ot = o.Slice(head * d, d);
            ot.Clear();
            for (int u = 0; u <= t; u++) TensorPrimitives.MultiplyAdd(cache.Slice((maxLength + u) * h + head * d, d), p[u], ot, ot);
        }
    }

    /// <summary>Head slice of q (offset 0), k (offset H) or v (offset 2H) of row (b, t).</summary>
    private static Span<float> Row(float* qkv, int b, int length, int t, int h, int offset, int head, int d) =>
        new(qkv + ((long)b * length + t) * 3 * h + offset + head * d, d);

    private static void Need(ReadOnlySpan<float> s, long n)
    {
        if (s.Length < n) throw new ArgumentException($"A buffer holds {s.Length} values; {n} are needed.");
    }
}
