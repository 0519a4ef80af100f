using System.Numerics.Tensors;

namespace SsmGen.Numerics;

/// <summary>
/// The sequential part of a simple RNN block over (B, L, Hd) rows: h_t = f(s_t) with
/// s_t = pre_t + b_hh + W_hh h_{t−1}, where pre = W_ih u + b_ih comes from one matrix product beforehand.
/// Batch rows run in parallel; within a row the recurrence is sequential.
/// </summary>
public static unsafe class RnnKernels
{
    /// <summary>hs (B, L, Hd) from pre (B, L, Hd); f = tanh, or ReLU when <paramref name="relu"/>.</summary>
    public static void Forward(ReadOnlySpan<float> pre, ReadOnlySpan<float> whh, ReadOnlySpan<float> bhh, Span<float> hs, int batch, int length, int hd, bool relu, Workspace? workspace = null)
    {
        Need(pre, batch * length * hd); Need(hs, batch * length * hd); Need(whh, hd * hd); Need(bhh, hd);
        fixed (float* pp = pre, pw = whh, pb = bhh, ph = hs)
            RowParallel.Run(&ForwardRows, new RowArgs { P0 = pp, P1 = pw, P2 = pb, P3 = ph, Width = hd, Count = length, Extra = relu ? 1 : 0 }, batch, (long)length * hd * hd, workspace, grain: 1);
    }

    private static void ForwardRows(ref RowArgs a, int b0, int b1)
    {
        int hd = a.Width, length = a.Count;
        var w = new ReadOnlySpan<float>(a.P1, hd * hd);
        var bias = new ReadOnlySpan<float>(a.P2, hd);
        for (int b = b0; b < b1; b++)
            for (int t = 0; t < length; t++)
            {
                long row = ((long)b * length + t) * hd;
                var h = new Span<float>(a.P3 + row, hd);
                TensorPrimitives.Add(new ReadOnlySpan<float>(a.P0 + row, hd), bias, h);
                if (t > 0)
                {
                    var prev = new ReadOnlySpan<float>(a.P3 + row - hd, hd);
                    for (int j = 0; j < hd; j++) h[j] += TensorPrimitives.Dot(w.Slice(j * hd, hd), prev);
                }
                if (a.Extra == 1) TensorPrimitives.Max(h, 0f, h);
                else TensorPrimitives.Tanh(h, h);
            }
    }

    /// <summary>
    /// Backpropagation through time: <paramref name="dh"/> holds dL/dh_t from the output projection and leaves
    /// holding dL/ds_t (the gradient of the pre-activation). f' comes from h: 1 − h² (tanh), [h &gt; 0] (ReLU).
    /// <paramref name="carry"/> is (B, Hd) scratch.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> hs, ReadOnlySpan<float> whh, Span<float> dh, Span<float> carry, int batch, int length, int hd, bool relu, Workspace? workspace = null)
    {
        Need(hs, batch * length * hd); Need(dh, batch * length * hd); Need(whh, hd * hd); Need(carry, batch * hd);
        fixed (float* ph = hs, pw = whh, pd = dh, pc = carry)
            RowParallel.Run(&BackwardRows, new RowArgs { P0 = ph, P1 = pw, P2 = pd, P3 = pc, Width = hd, Count = length, Extra = relu ? 1 : 0 }, batch, (long)length * hd * hd, workspace, grain: 1);
    }

    private static void BackwardRows(ref RowArgs a, int b0, int b1)
    {
        int hd = a.Width, length = a.Count;
        var w = new ReadOnlySpan<float>(a.P1, hd * hd);
        for (int b = b0; b < b1; b++)
        {
            var carry = new Span<float>(a.P3 + (long)b * hd, hd);
            carry.Clear();
            for (int t = length - 1; t >= 0; t--)
            {
                long row = ((long)b * length + t) * hd;
                var h = new ReadOnlySpan<float>(a.P0 + row, hd);
                var g = new Span<float>(a.P2 + row, hd);
                TensorPrimitives.Add(g, carry, g);                       // dL/dh_t
                for (int j = 0; j < hd; j++)
                    g[j] *= a.Extra == 1 ? (h[j] > 0 ? 1 : 0) : 1 - h[j] * h[j]; // dL/ds_t
                carry.Clear();                                           // dL/dh_{t−1} = W_hhᵀ dL/ds_t
                for (int j = 0; j < hd; j++) TensorPrimitives.MultiplyAdd(w.Slice(j * hd, hd), g[j], carry, carry);
            }
        }
    }

    /// <summary>prev (B, L, width) = hs one step back in time, zeros at t = 0 (the h_{t−1} of every step).</summary>
    public static void ShiftInTime(ReadOnlySpan<float> hs, Span<float> prev, int batch, int length, int width)
    {
        for (int b = 0; b < batch; b++)
        {
            prev.Slice(b * length * width, width).Clear();
            hs.Slice(b * length * width, (length - 1) * width).CopyTo(prev.Slice((b * length + 1) * width));
        }
    }

    private static void Need(ReadOnlySpan<float> s, int n)
    {
        if (s.Length < n) throw new ArgumentException($"A buffer holds {s.Length} values; {n} are needed.");
    }
}
