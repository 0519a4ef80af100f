using System.Numerics.Tensors;

namespace SsmGen.Numerics;

/// <summary>
/// The sequential part of an IDS block ("The Illusion of State in State-Space Models") over (B, L, ·) rows:
/// h_t = A_t h_{t−1} + (B u)_t with A_t (N×N, row-major) the input-dependent transitions computed beforehand in
/// one matrix product. Batch rows run in parallel; within a row the product of matrices is sequential.
/// </summary>
public static unsafe class IdsKernels
{
    /// <summary>hs (B, L, N) from the transitions a (B, L, N·N) and the input terms bu (B, L, N).</summary>
    public static void Forward(ReadOnlySpan<float> a, ReadOnlySpan<float> bu, Span<float> hs, int batch, int length, int n, Workspace? workspace = null)
    {
        Need(a, batch * length * n * n); Need(bu, batch * length * n); Need(hs, batch * length * n);
        fixed (float* pa = a, pb = bu, ph = hs)
            RowParallel.Run(&ForwardRows, new RowArgs { P0 = pa, P1 = pb, P2 = ph, Width = n, Count = length }, batch, (long)length * n * n, workspace, grain: 1);
    }

    private static void ForwardRows(ref RowArgs r, int b0, int b1)
    {
        int n = r.Width, length = r.Count;
        for (int b = b0; b < b1; b++)
            for (int t = 0; t < length; t++)
            {
                long row = (long)b * length + t;
                var h = new Span<float>(r.P2 + row * n, n);
                new ReadOnlySpan<float>(r.P1 + row * n, n).CopyTo(h);
                if (t == 0) continue;
                var prev = new ReadOnlySpan<float>(r.P2 + (row - 1) * n, n);
                var at = new ReadOnlySpan<float>(r.P0 + row * n * n, n * n);
                for (int i = 0; i < n; i++) h[i] += TensorPrimitives.Dot(at.Slice(i * n, n), prev);
            }
    }

    /// <summary>
    /// The exact backward through the product of matrices: <paramref name="dh"/> holds dL/dh_t from the readout and
    /// leaves holding the total dL/dh_t (= dL/d(B u)_t); <paramref name="da"/> (B, L, N·N) receives dL/dA_t = dL/dh_t ⊗ h_{t−1}.
    /// <paramref name="carry"/> is (B, N) scratch for A_tᵀ dL/dh_t.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> a, ReadOnlySpan<float> hs, Span<float> dh, Span<float> da, Span<float> carry, int batch, int length, int n, Workspace? workspace = null)
    {
        Need(a, batch * length * n * n); Need(hs, batch * length * n); Need(dh, batch * length * n); Need(da, batch * length * n * n); Need(carry, batch * n);
        fixed (float* pa = a, ph = hs, pd = dh, pda = da, pc = carry)
            RowParallel.Run(&BackwardRows, new RowArgs { P0 = pa, P1 = ph, P2 = pd, P3 = pda, P4 = pc, Width = n, Count = length }, batch, (long)length * n * n, workspace, grain: 1);
    }

    private static void BackwardRows(ref RowArgs r, int b0, int b1)
    {
        int n = r.Width, length = r.Count;
        for (int b = b0; b < b1; b++)
        {
            var carry = new Span<float>(r.P4 + (long)b * n, n);
            carry.Clear();
            for (int t = length - 1; t >= 0; t--)
            {
                long row = (long)b * length + t;
                var g = new Span<float>(r.P2 + row * n, n);
                TensorPrimitives.Add(g, carry, g);
                var dat = new Span<float>(r.P3 + row * n * n, n * n);
                if (t == 0) { dat.Clear(); continue; }                 // h_{−1} = 0: no gradient reaches A_0
                var prev = new ReadOnlySpan<float>(r.P1 + (row - 1) * n, n);
                var at = new ReadOnlySpan<float>(r.P0 + row * n * n, n * n);
                carry.Clear();
                for (int i = 0; i < n; i++)
                {
                    TensorPrimitives.Multiply(prev, g[i], dat.Slice(i * n, n));       // dA_t[i,·] = g_i h_{t−1}
                    TensorPrimitives.MultiplyAdd(at.Slice(i * n, n), g[i], carry, carry); // A_tᵀ g
                }
            }
        }
    }

    /// <summary>One token: h = A h + bu in place (<paramref name="scratch"/> holds N values).</summary>
    public static void Step(ReadOnlySpan<float> a, ReadOnlySpan<float> bu, Span<float> h, Span<float> scratch, int n)
    {
        var s = scratch.Slice(0, n);
        for (int i = 0; i < n; i++) s[i] = bu[i] + TensorPrimitives.Dot(a.Slice(i * n, n), h.Slice(0, n));
        s.CopyTo(h);
    }

    private static void Need(ReadOnlySpan<float> s, int n)
    {
        if (s.Length < n) throw new ArgumentException($"A buffer holds {s.Length} values; {n} are needed.");
    }
}
