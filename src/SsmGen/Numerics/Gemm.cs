using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace SsmGen.Numerics;

/// <summary>
/// Linear-layer products over row-major float matrices, PyTorch layout W (out, in). One register-blocked
/// kernel serves all three products: C (+)= A·B with A read through strides (so Aᵀ costs nothing) and
/// B row-major. Its inner block keeps a 6×32 tile of C in twelve Vector512 registers and streams B; rows
/// are shared out over the <see cref="WorkerPool"/>. With fewer than six rows (a streaming step), it computes eight
/// dot products at a time; without AVX-512, System.Numerics.Tensors dot products.
/// </summary>
public static unsafe class Gemm
{
    private const int MR = 6, NR = 32, KC = 256;

    private static bool VectorKernel(int rows, int inF, int outF) =>
        Vector512.IsHardwareAccelerated && rows >= MR && (long)rows * inF * outF >= 4096;

    /// <summary>y (rows, out) = x (rows, in) · Wᵀ + b; b may be empty.</summary>
    public static void LinearForward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, int rows, int inF, int outF, Workspace? workspace = null)
    {
        Check(x, rows * inF, "x"); Check(w, outF * inF, "w"); Check(y, rows * outF, "y");
        if (!VectorKernel(rows, inF, outF)) { PortableForward(x, w, b, y, rows, inF, outF); return; }
        var ws = workspace ?? Workspace.ForCurrentThread;
        // Wᵀ (in, out) so that B is row-major; the transpose is O(in·out), small next to the product.
        if (ws.Transposed.Length < inF * outF) ws.Transposed = new float[inF * outF];
        var wt = ws.Transposed;
        for (int o = 0; o < outF; o++)
            for (int i = 0; i < inF; i++) wt[i * outF + o] = w[o * inF + i];
        for (int r = 0; r < rows; r++)
        {
            if (b.IsEmpty) y.Slice(r * outF, outF).Clear();
            else b.CopyTo(y.Slice(r * outF, outF));
        }
        fixed (float* px = x, pwt = wt, py = y)
            Multiply(ws.GemmJob, px, inF, 1, pwt, outF, py, outF, rows, outF, inF);
    }

    /// <summary>The forward as dot products: few rows (a streaming step's matrix–vector products), or no AVX-512.</summary>
    internal static void PortableForward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, int rows, int inF, int outF)
    {
        Check(x, rows * inF, "x"); Check(w, outF * inF, "w"); Check(y, rows * outF, "y"); // Dot1x8 reads through pointers
        for (int r = 0; r < rows; r++)
        {
            var yr = y.Slice(r * outF, outF);
            var xr = x.Slice(r * inF, inF);
            int o = 0;
            if (Vector512.IsHardwareAccelerated && inF >= 16)
                fixed (float* px = xr, pw = w, py = yr)
                    for (; o + 8 <= outF; o += 8) Dot1x8(px, pw + (long)o * inF, inF, py + o);
            for (; o < outF; o++) yr[o] = TensorPrimitives.Dot(xr, w.Slice(o * inF, inF));
            if (!b.IsEmpty) TensorPrimitives.Add(yr, b, yr);
        }
    }

    /// <summary>
    /// y (rows, out) = x (rows, in) · Wᵀ + b for a streaming step over a few streams (rows): W is read from memory once
    /// for all of them (a block of four W rows stays in L1 while every row of x passes it), and each output is the same
    /// dot product, summed in the same order, whatever the number of rows — so a stream's output does not depend on
    /// which other streams share its step. Tiles of 4 rows × 4 outputs keep 16 independent FMA chains busy.
    /// </summary>
    public static void StepForward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, int rows, int inF, int outF)
    {
        Check(x, rows * inF, "x"); Check(w, outF * inF, "w"); Check(y, rows * outF, "y");
        if (!b.IsEmpty) Check(b, outF, "b");
        if (!Vector512.IsHardwareAccelerated)
        {
            for (int r = 0; r < rows; r++)
                for (int o = 0; o < outF; o++)
                    y[r * outF + o] = TensorPrimitives.Dot(x.Slice(r * inF, inF), w.Slice(o * inF, inF)) + (b.IsEmpty ? 0 : b[o]);
            return;
        }
        fixed (float* px = x, pw = w, pb = b, py = y)
        {
            int o = 0;
            for (; o + 8 <= outF; o += 8)
            {
                int r = 0;
                for (; r + 4 <= rows; r += 4)
                {
                    Dot4x4(px + (long)r * inF, pw + (long)o * inF, inF, py + (long)r * outF + o, outF);
                    Dot4x4(px + (long)r * inF, pw + (long)(o + 4) * inF, inF, py + (long)r * outF + o + 4, outF);
                }
                for (; r < rows; r++) Dot1x8(px + (long)r * inF, pw + (long)o * inF, inF, py + (long)r * outF + o);
            }
            for (; o + 4 <= outF; o += 4)
            {
                int r = 0;
                for (; r + 4 <= rows; r += 4) Dot4x4(px + (long)r * inF, pw + (long)o * inF, inF, py + (long)r * outF + o, outF);
                for (; r < rows; r++)
                    for (int j = 0; j < 4; j++) py[(long)r * outF + o + j] = Dot1(px + (long)r * inF, pw + (long)(o + j) * inF, inF);
            }
            for (; o < outF; o++)
                for (int r = 0; r < rows; r++) py[(long)r * outF + o] = Dot1(px + (long)r * inF, pw + (long)o * inF, inF);
            if (pb != null)
                for (int r = 0; r < rows; r++) TensorPrimitives.Add(y.Slice(r * outF, outF), b, y.Slice(r * outF, outF));
        }
    }

    /// <summary>One output of <see cref="StepForward"/>: 16 lanes of FMAs, their sum, then the scalar tail — the order every tile keeps.</summary>
    private static float Dot1(float* x, float* w, int n)
    {
        var a = Vector512<float>.Zero;
        int i = 0;
        for (; i + 16 <= n; i += 16) a = Vector512.FusedMultiplyAdd(Vector512.Load(x + i), Vector512.Load(w + i), a);
        float s = Vector512.Sum(a);
        for (; i < n; i++) s = MathF.FusedMultiplyAdd(x[i], w[i], s);
        return s;
    }

    /// <summary>Four rows of x against four rows of W: sixteen outputs, each summed exactly as <see cref="Dot1"/> sums it.</summary>
    private static void Dot4x4(float* x, float* w, int n, float* y, int ldy)
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
        float* x1 = x + n, x2 = x + 2 * n, x3 = x + 3 * n, w1 = w + n, w2 = w + 2 * n, w3 = w + 3 * n;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            var v0 = Vector512.Load(x + i); var v1 = Vector512.Load(x1 + i); var v2 = Vector512.Load(x2 + i); var v3 = Vector512.Load(x3 + i);
            var c = Vector512.Load(w + i);
            a00 = Vector512.FusedMultiplyAdd(v0, c, a00); a10 = Vector512.FusedMultiplyAdd(v1, c, a10); a20 = Vector512.FusedMultiplyAdd(v2, c, a20); a30 = Vector512.FusedMultiplyAdd(v3, c, a30);
            c = Vector512.Load(w1 + i);
            a01 = Vector512.FusedMultiplyAdd(v0, c, a01); a11 = Vector512.FusedMultiplyAdd(v1, c, a11); a21 = Vector512.FusedMultiplyAdd(v2, c, a21); a31 = Vector512.FusedMultiplyAdd(v3, c, a31);
            c = Vector512.Load(w2 + i);
            a02 = Vector512.FusedMultiplyAdd(v0, c, a02); a12 = Vector512.FusedMultiplyAdd(v1, c, a12); a22 = Vector512.FusedMultiplyAdd(v2, c, a22); a32 = Vector512.FusedMultiplyAdd(v3, c, a32);
            c = Vector512.Load(w3 + i);
            a03 = Vector512.FusedMultiplyAdd(v0, c, a03); a13 = Vector512.FusedMultiplyAdd(v1, c, a13); a23 = Vector512.FusedMultiplyAdd(v2, c, a23); a33 = Vector512.FusedMultiplyAdd(v3, c, a33);
        }
        Finish(x, w, n, i, Vector512.Sum(a00), Vector512.Sum(a01), Vector512.Sum(a02), Vector512.Sum(a03), y);
        Finish(x1, w, n, i, Vector512.Sum(a10), Vector512.Sum(a11), Vector512.Sum(a12), Vector512.Sum(a13), y + ldy);
        Finish(x2, w, n, i, Vector512.Sum(a20), Vector512.Sum(a21), Vector512.Sum(a22), Vector512.Sum(a23), y + 2 * ldy);
        Finish(x3, w, n, i, Vector512.Sum(a30), Vector512.Sum(a31), Vector512.Sum(a32), Vector512.Sum(a33), y + 3 * ldy);
    }

    /// <summary>
    /// One row of x against eight W rows: eight independent FMA chains keep both FMA units busy, where one dot product
    /// at a time waits on its single chain. Each output is summed as <see cref="Dot1"/> sums it.
    /// </summary>
    private static void Dot1x8(float* x, float* w, int n, float* y)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            var v = Vector512.Load(x + i);
            a0 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w + i), a0);
            a1 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w + n + i), a1);
            a2 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w + 2 * n + i), a2);
            a3 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w + 3 * n + i), a3);
            a4 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w + 4 * n + i), a4);
            a5 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w + 5 * n + i), a5);
            a6 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w + 6 * n + i), a6);
            a7 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w + 7 * n + i), a7);
        }
        Finish(x, w, n, i, Vector512.Sum(a0), Vector512.Sum(a1), Vector512.Sum(a2), Vector512.Sum(a3), y);
        Finish(x, w + 4 * n, n, i, Vector512.Sum(a4), Vector512.Sum(a5), Vector512.Sum(a6), Vector512.Sum(a7), y + 4);
    }

    /// <summary>The scalar tail [i, n) of one x row against four W rows, then the four outputs stored.</summary>
    private static void Finish(float* x, float* w, int n, int i, float s0, float s1, float s2, float s3, float* y)
    {
        for (; i < n; i++)
        {
            float xi = x[i];
            s0 = MathF.FusedMultiplyAdd(xi, w[i], s0); s1 = MathF.FusedMultiplyAdd(xi, w[n + i], s1);
            s2 = MathF.FusedMultiplyAdd(xi, w[2 * n + i], s2); s3 = MathF.FusedMultiplyAdd(xi, w[3 * n + i], s3);
        }
        y[0] = s0; y[1] = s1; y[2] = s2; y[3] = s3;
    }

    /// <summary>The backward as axpy updates (System.Numerics.Tensors).</summary>
    internal static void PortableBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> dy, Span<float> dx, Span<float> dw, int rows, int inF, int outF)
    {
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outF; o++)
            {
                float g = dy[r * outF + o];
                var dwo = dw.Slice(o * inF, inF);
                TensorPrimitives.MultiplyAdd(x.Slice(r * inF, inF), g, dwo, dwo);
                if (!dx.IsEmpty) { var dxr = dx.Slice(r * inF, inF); TensorPrimitives.MultiplyAdd(w.Slice(o * inF, inF), g, dxr, dxr); }
            }
    }

    /// <summary>dx (rows, in) += dy · W (dx may be empty), dW += dyᵀ · x, db += Σ_rows dy (db may be empty).</summary>
    public static void LinearBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> dy, Span<float> dx, Span<float> dw, Span<float> db, int rows, int inF, int outF, Workspace? workspace = null)
    {
        Check(x, rows * inF, "x"); Check(w, outF * inF, "w"); Check(dy, rows * outF, "dy"); Check(dw, outF * inF, "dw");
        if (!dx.IsEmpty) Check(dx, rows * inF, "dx");
        if (!db.IsEmpty)
            for (int r = 0; r < rows; r++) TensorPrimitives.Add(db, dy.Slice(r * outF, outF), db);
        if (!VectorKernel(rows, inF, outF)) { PortableBackward(x, w, dy, dx, dw, rows, inF, outF); return; }
        var job = (workspace ?? Workspace.ForCurrentThread).GemmJob;
        fixed (float* px = x, pw = w, pdy = dy, pdx = dx, pdw = dw)
        {
            if (!dx.IsEmpty) Multiply(job, pdy, outF, 1, pw, inF, pdx, inF, rows, inF, outF);    // dx += dy·W
            Multiply(job, pdy, 1, outF, px, inF, pdw, inF, outF, inF, rows);                    // dW += dyᵀ·x
        }
    }

    private static void Check(ReadOnlySpan<float> s, int needed, string name)
    {
        if (s.Length < needed) throw new ArgumentException($"{name} has {s.Length} values; the product needs {needed}.", name);
    }

    internal sealed class Job : ParallelWork
    {
        public float* A, B, C;
        public int Ars, Acs, Ldb, Ldc, M, N, K;
        public override void Execute(int part, int parts)
        {
            var (s, e) = WorkerPool.Share(M, part, parts, MR);
            if (s < e) Serial(A + (long)s * Ars, Ars, Acs, B, Ldb, C + (long)s * Ldc, Ldc, e - s, N, K);
        }
    }

    /// <summary>C (m×n, row stride ldc) += Σ_k A(i,k)·B(k,j), A(i,k) at a[i·ars + k·acs], B row-major with row stride ldb.</summary>
    private static void Multiply(Job job, float* a, int ars, int acs, float* b, int ldb, float* c, int ldc, int m, int n, int k)
    {
        var pool = WorkerPool.Shared;
        int parts = (long)m * n * k >= 1 << 18 ? Math.Min(pool.Concurrency, (m + MR - 1) / MR) : 1;
        if (parts <= 1) { Serial(a, ars, acs, b, ldb, c, ldc, m, n, k); return; }
        job.A = a; job.B = b; job.C = c;
        job.Ars = ars; job.Acs = acs; job.Ldb = ldb; job.Ldc = ldc; job.M = m; job.N = n; job.K = k;
        pool.Run(job, parts);
    }

    private static void Serial(float* a, int ars, int acs, float* b, int ldb, float* c, int ldc, int m, int n, int k)
    {
        // Blocks of KC along k keep the A and B panels in L2 when k is long (the dW product).
        for (int k0 = 0; k0 < k; k0 += KC)
        {
            int kc = Math.Min(KC, k - k0);
            float* ak = a + (long)k0 * acs, bk = b + (long)k0 * ldb;
            int i = 0;
            for (; i + MR <= m; i += MR) Rows6(ak + (long)i * ars, ars, acs, bk, ldb, c + (long)i * ldc, ldc, n, kc);
            for (; i < m; i++) Row1(ak + (long)i * ars, acs, bk, ldb, c + (long)i * ldc, n, kc);
        }
    }

    private static void Rows6(float* a, int ars, int acs, float* b, int ldb, float* c, int ldc, int n, int k)
    {
        int j = 0;
        for (; j + NR <= n; j += NR) Tile6x32(a, ars, acs, b + j, ldb, c + j, ldc, k);
        for (int r = 0; r < MR; r++) Row1(a + r * ars, acs, b + j, ldb, c + (long)r * ldc + j, n - j, k);
    }

    private static void Tile6x32(float* a, int ars, int acs, float* b, int ldb, float* c, int ldc, int k)
    {
        float* c0 = c, c1 = c + ldc, c2 = c + 2 * ldc, c3 = c + 3 * ldc, c4 = c + 4 * ldc, c5 = c + 5 * ldc;
        var x00 = Vector512.Load(c0); var x01 = Vector512.Load(c0 + 16);
        var x10 = Vector512.Load(c1); var x11 = Vector512.Load(c1 + 16);
        var x20 = Vector512.Load(c2); var x21 = Vector512.Load(c2 + 16);
        var x30 = Vector512.Load(c3); var x31 = Vector512.Load(c3 + 16);
        var x40 = Vector512.Load(c4); var x41 = Vector512.Load(c4 + 16);
        var x50 = Vector512.Load(c5); var x51 = Vector512.Load(c5 + 16);
        for (int p = 0; p < k; p++)
        {
            float* bp = b + (long)p * ldb, ap = a + (long)p * acs;
            var b0 = Vector512.Load(bp); var b1 = Vector512.Load(bp + 16);
            var a0 = Vector512.Create(ap[0]);
            x00 = Vector512.FusedMultiplyAdd(a0, b0, x00); x01 = Vector512.FusedMultiplyAdd(a0, b1, x01);
            var a1 = Vector512.Create(ap[ars]);
            x10 = Vector512.FusedMultiplyAdd(a1, b0, x10); x11 = Vector512.FusedMultiplyAdd(a1, b1, x11);
            var a2 = Vector512.Create(ap[2 * ars]);
            x20 = Vector512.FusedMultiplyAdd(a2, b0, x20); x21 = Vector512.FusedMultiplyAdd(a2, b1, x21);
            var a3 = Vector512.Create(ap[3 * ars]);
            x30 = Vector512.FusedMultiplyAdd(a3, b0, x30); x31 = Vector512.FusedMultiplyAdd(a3, b1, x31);
            var a4 = Vector512.Create(ap[4 * ars]);
            x40 = Vector512.FusedMultiplyAdd(a4, b0, x40); x41 = Vector512.FusedMultiplyAdd(a4, b1, x41);
            var a5 = Vector512.Create(ap[5 * ars]);
            x50 = Vector512.FusedMultiplyAdd(a5, b0, x50); x51 = Vector512.FusedMultiplyAdd(a5, b1, x51);
        }
        x00.Store(c0); x01.Store(c0 + 16); x10.Store(c1); x11.Store(c1 + 16); x20.Store(c2); x21.Store(c2 + 16);
        x30.Store(c3); x31.Store(c3 + 16); x40.Store(c4); x41.Store(c4 + 16); x50.Store(c5); x51.Store(c5 + 16);
    }

    private static void Row1(float* a, int acs, float* b, int ldb, float* c, int n, int k)
    {
        int j = 0;
        for (; j + 16 <= n; j += 16)
        {
            var x0 = Vector512.Load(c + j);
            for (int p = 0; p < k; p++) x0 = Vector512.FusedMultiplyAdd(Vector512.Create(a[(long)p * acs]), Vector512.Load(b + (long)p * ldb + j), x0);
            x0.Store(c + j);
        }
        Tail(a, acs, b, ldb, c, j, n, k);
    }

    /// <summary>Columns [from, n) of one row, scalar: only when n is not a multiple of the tile width.</summary>
    private static void Tail(float* a, int acs, float* b, int ldb, float* c, int from, int n, int k)
    {
        for (int j = from; j < n; j++)
        {
            float s = c[j];
            for (int p = 0; p < k; p++) s += a[(long)p * acs] * b[(long)p * ldb + j];
            c[j] = s;
        }
    }
}
