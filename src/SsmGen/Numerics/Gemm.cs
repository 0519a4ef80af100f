using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SsmGen.Numerics;

/// <summary>
/// Linear-layer products over row-major float matrices, PyTorch layout W (out, in). One register-blocked
/// kernel serves all three products: C (+)= A·B with A read through strides (so Aᵀ costs nothing) and
/// B row-major. Its inner block keeps a 12×32 (or 6×32) tile of C in Vector512 registers and streams B; rows
/// are shared out over the <see cref="WorkerPool"/>. With fewer than six rows (a streaming step), the dot-product
/// tiles of <see cref="StepProducts"/>; without AVX-512, System.Numerics.Tensors dot products.
/// </summary>
public static unsafe class Gemm
{
    private const int MR = 6, NR = 32, KC = 256, KCColumns = 64, L1Block = 32 * 1024;

    private static bool VectorKernel(int rows, int inF, int outF) =>
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported && rows >= MR && (long)rows * inF * outF >= 4096; // the tiles' masked tails are AVX-512F

    /// <summary>y (rows, out) = x (rows, in) · Wᵀ + b; b may be empty.</summary>
    public static void LinearForward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, int rows, int inF, int outF, Workspace? workspace = null)
    {
        Check(x, rows * inF, "x"); Check(w, outF * inF, "w"); Check(y, rows * outF, "y");
        using var pass = PassProfile.Enter(Pass.Projection, 2.0 * rows * inF * outF, 4.0 * ((double)rows * (inF + outF) + inF * outF));
        if (!VectorKernel(rows, inF, outF)) { StepForward(x, w, b, y, rows, inF, outF); return; } // few rows: the step's dot-product tiles
        var ws = workspace ?? Workspace.ForCurrentThread;
        // Wᵀ (in, out) so that B is row-major; the transpose is O(in·out), small next to the product when it goes by
        // 16 × 16 tiles (row by row it wrote a new cache line per element: 2.4 ms for in_proj's 256 × 1024, 0.3 tiled).
        if (ws.Transposed.Length < inF * outF) ws.Transposed = new AlignedBuffer(inF * outF);
        Span<float> wt = ws.Transposed; // a span once, not the buffer's indexer per element
        if (outF % 16 == 0 && inF % 16 == 0)
            // by 16 × 16 blocks transposed in registers (8–10 µs at sMNIST's 128 × 256): element by element this took
            // ~30 µs a call on the calling thread while the other core waited
            fixed (float* pw = w, pwt = wt)
                for (int o0 = 0; o0 < outF; o0 += 16)
                    for (int i0 = 0; i0 < inF; i0 += 16) Transpose16(pw + (long)o0 * inF + i0, inF, pwt + (long)i0 * outF + o0, outF);
        else
        {
            const int tile = 16;
            for (int o0 = 0; o0 < outF; o0 += tile)
                for (int i0 = 0; i0 < inF; i0 += tile)
                    for (int i = i0; i < Math.Min(inF, i0 + tile); i++)
                        for (int o = o0; o < Math.Min(outF, o0 + tile); o++) wt[i * outF + o] = w[o * inF + i];
        }
        // the tiles start from the bias (y is written, not read): a first pass copying b into every row of y cost a
        // write and a read of all of y
        if (b.IsEmpty) y.Slice(0, rows * outF).Clear();
        else Check(b, outF, "b"); // as every operand here, and as StepForward: at least outF values
        fixed (float* px = x, pwt = wt, py = y, pb = b)
            Multiply(ws.GemmJob, px, inF, 1, pwt, outF, py, outF, rows, outF, inF, pb);
    }

    /// <summary>
    /// The 16 × 16 block at <paramref name="src"/> (rows <paramref name="ldSrc"/> apart) written transposed at
    /// <paramref name="dst"/> (rows <paramref name="ldDst"/> apart): pairs of rows interleaved by floats, then by pairs
    /// of floats, then the four 128-bit lanes of four rows gathered twice — 64 shuffles for 256 values.
    /// </summary>
    private static void Transpose16(float* src, int ldSrc, float* dst, int ldDst)
    {
        nint ld = ldSrc, ldd = ldDst;
        var (v0, v1, v2, v3) = Interleave4(src, ld);
        var (v4, v5, v6, v7) = Interleave4(src + 4 * ld, ld);
        var (v8, v9, v10, v11) = Interleave4(src + 8 * ld, ld);
        var (v12, v13, v14, v15) = Interleave4(src + 12 * ld, ld);
        Columns(v0, v4, v8, v12, dst, ldd);
        Columns(v1, v5, v9, v13, dst + ldd, ldd);
        Columns(v2, v6, v10, v14, dst + 2 * ldd, ldd);
        Columns(v3, v7, v11, v15, dst + 3 * ldd, ldd);
    }

    /// <summary>Four rows interleaved: lane k of result e holds column 4k + e of the four rows.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float>, Vector512<float>, Vector512<float>, Vector512<float>) Interleave4(float* row, nint ld)
    {
        Vector512<float> r0 = Vector512.Load(row), r1 = Vector512.Load(row + ld), r2 = Vector512.Load(row + 2 * ld), r3 = Vector512.Load(row + 3 * ld);
        // rows 0, 1 and rows 2, 3 interleaved by floats, then the two pairs by pairs of floats
        Vector512<double> lo01 = Avx512F.UnpackLow(r0, r1).AsDouble(), hi01 = Avx512F.UnpackHigh(r0, r1).AsDouble();
        Vector512<double> lo23 = Avx512F.UnpackLow(r2, r3).AsDouble(), hi23 = Avx512F.UnpackHigh(r2, r3).AsDouble();
        return (Avx512F.UnpackLow(lo01, lo23).AsSingle(), Avx512F.UnpackHigh(lo01, lo23).AsSingle(),
                Avx512F.UnpackLow(hi01, hi23).AsSingle(), Avx512F.UnpackHigh(hi01, hi23).AsSingle());
    }

    /// <summary>Lane k of four vectors (rows 4g .. 4g+3 of one column each) into row 4k of the output, k = 0..3.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void Columns(Vector512<float> g0, Vector512<float> g1, Vector512<float> g2, Vector512<float> g3, float* dst, nint ldd)
    {
        var w0 = Avx512F.Shuffle4x128(g0, g1, 0x88); var w1 = Avx512F.Shuffle4x128(g0, g1, 0xDD);
        var w2 = Avx512F.Shuffle4x128(g2, g3, 0x88); var w3 = Avx512F.Shuffle4x128(g2, g3, 0xDD);
        Avx512F.Shuffle4x128(w0, w2, 0x88).Store(dst);            // lane 0
        Avx512F.Shuffle4x128(w1, w3, 0x88).Store(dst + 4 * ldd);  // lane 1
        Avx512F.Shuffle4x128(w0, w2, 0xDD).Store(dst + 8 * ldd);  // lane 2
        Avx512F.Shuffle4x128(w1, w3, 0xDD).Store(dst + 12 * ldd); // lane 3
    }

    /// <summary>Whether <see cref="LinearGluResidual"/> runs for these sizes on this CPU (AVX-512, H a multiple of 16, six rows or more).</summary>
    public static bool FusesGlu(int rows, int inF, int h) => h > 0 && h % 16 == 0 && VectorKernel(rows, inF, 2 * h);

    /// <summary>
    /// next (rows, h) = residual + GLU(x · Wᵀ + b) for W (2h, in): the inference tail of a convolution block, with the
    /// linear's output kept in registers (no (rows, 2h) buffer written and read back). Wᵀ is laid out so that each
    /// 32-wide tile holds sixteen value columns and their sixteen gates; every output is summed in the order
    /// <see cref="LinearForward"/> sums it, so the result equals LinearForward then <see cref="BlockKernels.GluResidual"/>
    /// without dropout, bit for bit. Needs <see cref="FusesGlu"/>.
    /// </summary>
    public static void LinearGluResidual(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, ReadOnlySpan<float> residual, Span<float> next, int rows, int inF, int h, Workspace? workspace = null)
    {
        if (!FusesGlu(rows, inF, h)) throw new NotSupportedException($"The fused GLU product needs AVX-512, H a multiple of 16 and at least {MR} rows; H = {h}, rows = {rows}.");
        Check(x, rows * inF, "x"); Check(w, 2 * h * inF, "w"); Check(b, 2 * h, "b"); Check(residual, rows * h, "residual"); Check(next, rows * h, "next");
        using var pass = PassProfile.Enter(Pass.Projection, 2.0 * rows * inF * 2 * h, 4.0 * ((double)rows * (inF + 2 * h) + 2.0 * h * inF));
        var ws = workspace ?? Workspace.ForCurrentThread;
        if (ws.Transposed.Length < inF * 2 * h) ws.Transposed = new AlignedBuffer(inF * 2 * h);
        Span<float> wt = ws.Transposed;
        // column o of the value half goes to 32·(o/16) + o%16, its gate (row h + o of W) sixteen places further; by 16 × 16 tiles
        for (int o0 = 0; o0 < 2 * h; o0 += 16)
        {
            int c0 = o0 < h ? 2 * o0 : 2 * (o0 - h) + 16;
            for (int i0 = 0; i0 < inF; i0 += 16)
                for (int i = i0; i < Math.Min(inF, i0 + 16); i++)
                    for (int o = 0; o < 16; o++) wt[i * 2 * h + c0 + o] = w[(o0 + o) * inF + i];
        }
        fixed (float* px = x, pwt = wt, pb = b, pr = residual, pn = next)
        {
            var job = ws.GluJob;
            job.X = px; job.Wt = pwt; job.B = pb; job.Residual = pr; job.Next = pn; job.Rows = rows; job.InF = inF; job.H = h;
            WorkerPool.Shared.Run(job, (long)rows * inF * h >= 1 << 17 ? WorkerPool.Shared.PartsFor((rows + MR - 1) / MR) : 1);
        }
    }

    internal sealed class GluJob : ParallelWork
    {
        public float* X, Wt, B, Residual, Next;
        public int Rows, InF, H;
        public override void Execute(int part, int parts)
        {
            var (s, e) = WorkerPool.Share(Rows, part, parts, MR);
            int r = s;
            for (; r + MR <= e; r += MR)
                for (int j = 0; j < H; j += 16) GluTile6(X + (long)r * InF, InF, Wt + 2 * j, 2 * H, B + j, B + H + j, Residual + (long)r * H + j, Next + (long)r * H + j, H);
            for (; r < e; r++)
                for (int j = 0; j < H; j += 16) GluRow(X + (long)r * InF, InF, Wt + 2 * j, 2 * H, B + j, B + H + j, Residual + (long)r * H + j, Next + (long)r * H + j);
        }
    }

    /// <summary>One row of sixteen GLU outputs: value and gate summed from the biases in k order, then residual + value·σ(gate).</summary>
    private static void GluRow(float* a, int k, float* b, int ldb, float* biasValue, float* biasGate, float* residual, float* next)
    {
        var v = Vector512.Load(biasValue); var g = Vector512.Load(biasGate);
        for (int p = 0; p < k; p++, b += ldb)
        {
            var ap = Vector512.Create(a[p]);
            v = Vector512.FusedMultiplyAdd(ap, Vector512.Load(b), v); g = Vector512.FusedMultiplyAdd(ap, Vector512.Load(b + 16), g);
        }
        (Vector512.Load(residual) + v * FastMath.Sigmoid(g)).Store(next);
    }

    /// <summary>Six rows of sixteen GLU outputs, as <see cref="GluRow"/> does one: twelve accumulators, the 6 × 32 tile of the plain product.</summary>
    private static void GluTile6(float* a, int k, float* b, int ldb, float* biasValue, float* biasGate, float* residual, float* next, int ldn)
    {
        var bv = Vector512.Load(biasValue); var bg = Vector512.Load(biasGate);
        Vector512<float> v0 = bv, v1 = bv, v2 = bv, v3 = bv, v4 = bv, v5 = bv, g0 = bg, g1 = bg, g2 = bg, g3 = bg, g4 = bg, g5 = bg;
        float* a1 = a + k, a2 = a1 + k, a3 = a2 + k, a4 = a3 + k, a5 = a4 + k;
        for (int p = 0; p < k; p++, b += ldb)
        {
            var b0 = Vector512.Load(b); var b1 = Vector512.Load(b + 16);
            var x = Vector512.Create(a[p]); v0 = Vector512.FusedMultiplyAdd(x, b0, v0); g0 = Vector512.FusedMultiplyAdd(x, b1, g0);
            x = Vector512.Create(a1[p]); v1 = Vector512.FusedMultiplyAdd(x, b0, v1); g1 = Vector512.FusedMultiplyAdd(x, b1, g1);
            x = Vector512.Create(a2[p]); v2 = Vector512.FusedMultiplyAdd(x, b0, v2); g2 = Vector512.FusedMultiplyAdd(x, b1, g2);
            x = Vector512.Create(a3[p]); v3 = Vector512.FusedMultiplyAdd(x, b0, v3); g3 = Vector512.FusedMultiplyAdd(x, b1, g3);
            x = Vector512.Create(a4[p]); v4 = Vector512.FusedMultiplyAdd(x, b0, v4); g4 = Vector512.FusedMultiplyAdd(x, b1, g4);
            x = Vector512.Create(a5[p]); v5 = Vector512.FusedMultiplyAdd(x, b0, v5); g5 = Vector512.FusedMultiplyAdd(x, b1, g5);
        }
        (Vector512.Load(residual) + v0 * FastMath.Sigmoid(g0)).Store(next); residual += ldn; next += ldn;
        (Vector512.Load(residual) + v1 * FastMath.Sigmoid(g1)).Store(next); residual += ldn; next += ldn;
        (Vector512.Load(residual) + v2 * FastMath.Sigmoid(g2)).Store(next); residual += ldn; next += ldn;
        (Vector512.Load(residual) + v3 * FastMath.Sigmoid(g3)).Store(next); residual += ldn; next += ldn;
        (Vector512.Load(residual) + v4 * FastMath.Sigmoid(g4)).Store(next); residual += ldn; next += ldn;
        (Vector512.Load(residual) + v5 * FastMath.Sigmoid(g5)).Store(next);
    }

    /// <summary>
    /// y (rows, out) = x (rows, in) · Wᵀ + b for a streaming step over a few streams (rows): W is read from memory once
    /// for all of them, and each output is the same dot product, summed in the same order, whatever the number of rows
    /// — so a stream's output does not depend on which other streams share its step (<see cref="StepProducts"/>).
    /// </summary>
    public static void StepForward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, int rows, int inF, int outF)
    {
        Check(x, rows * inF, "x"); Check(w, outF * inF, "w"); Check(y, rows * outF, "y");
        if (!b.IsEmpty) Check(b, outF, "b");
        if (!Vector512.IsHardwareAccelerated || !Avx512F.IsSupported)
        {
            for (int r = 0; r < rows; r++)
                for (int o = 0; o < outF; o++)
                    y[r * outF + o] = TensorPrimitives.Dot(x.Slice(r * inF, inF), w.Slice(o * inF, inF)) + (b.IsEmpty ? 0 : b[o]);
            return;
        }
        fixed (float* px = x, pw = w, py = y)
            StepProducts.Run<Float32Rows>(px, (byte*)pw, py, rows, inF, outF);
        if (!b.IsEmpty)
            for (int r = 0; r < rows; r++) TensorPrimitives.Add(y.Slice(r * outF, outF), b, y.Slice(r * outF, outF));
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

    /// <summary>
    /// dx (rows, in) += dy · W (dx may be empty; with <paramref name="overwriteDx"/>, dx = dy · W, written and not read),
    /// dW += dyᵀ · x, db += Σ_rows dy (db may be empty).
    /// </summary>
    public static void LinearBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> dy, Span<float> dx, Span<float> dw, Span<float> db, int rows, int inF, int outF, Workspace? workspace = null, bool overwriteDx = false)
    {
        Check(x, rows * inF, "x"); Check(w, outF * inF, "w"); Check(dy, rows * outF, "dy"); Check(dw, outF * inF, "dw");
        if (!dx.IsEmpty) Check(dx, rows * inF, "dx");
        if (!db.IsEmpty) Check(db, outF, "db"); // RowSums writes outF values through a pointer
        using var pass = PassProfile.Enter(Pass.Projection, (dx.IsEmpty ? 2.0 : 4.0) * rows * inF * outF,
            4.0 * ((double)rows * (dx.IsEmpty ? inF + outF : 3 * inF + outF) + 2.0 * inF * outF));
        if (!VectorKernel(rows, inF, outF))
        {
            if (!db.IsEmpty)
                for (int r = 0; r < rows; r++) TensorPrimitives.Add(db, dy.Slice(r * outF, outF), db);
            if (overwriteDx && !dx.IsEmpty) dx.Slice(0, rows * inF).Clear();
            PortableBackward(x, w, dy, dx, dw, rows, inF, outF);
            return;
        }
        var ws = workspace ?? Workspace.ForCurrentThread;
        // dx overwritten: the tiles start from a row of zeros (clearing dx first cost a write of all of it)
        if (overwriteDx && ws.Zeros.Length < inF) ws.Zeros = new AlignedBuffer(inF);
        var job = ws.GemmJob;
        // dW's rows shorter than a vector (an encoder's in = 1) would run as scalar dot products down the columns of
        // dy (3.3 ms for sMNIST's encoder); they are summed outF wide with the bias instead (RowSums).
        bool narrow = inF < 16 && outF >= 16;
        fixed (float* px = x, pw = w, pdy = dy, pdx = dx, pdw = dw, pdb = db, zeros = ws.Zeros)
        {
            if (!dx.IsEmpty) Multiply(job, pdy, outF, 1, pw, inF, pdx, inF, rows, inF, outF, overwriteDx ? zeros : null); // dx (+)= dy·W
            if (!db.IsEmpty || narrow) RowSums(ws, pdy, narrow ? px : null, db.IsEmpty ? null : pdb, pdw, rows, inF, outF); // db, and dW when narrow
            if (!narrow && KChunks(outF, inF, rows) > 1) MultiplyOverK(ws, pdy, 1, outF, px, inF, pdw, outF, inF, rows); // dW += dyᵀ·x
            else if (!narrow) Multiply(job, pdy, 1, outF, px, inF, pdw, inF, outF, inF, rows);
        }
    }

    /// <summary>
    /// db (outF) += Σ_rows dy and, with <paramref name="x"/> (inputs narrower than a vector), dW (outF, inF) += dyᵀ·x, in
    /// fixed chunks of rows summed in parallel into partials and then added in chunk order: the same sums on any core
    /// count. On the calling thread (the bias row by row, the narrow dW as a one-row product), the sMNIST encoder's
    /// backward held the step for 0.28 ms while the other core waited; 0.14 ms shared.
    /// </summary>
    private static void RowSums(Workspace ws, float* dy, float* x, float* db, float* dw, int rows, int inF, int outF)
    {
        int sums = (db != null ? 1 : 0) + (x != null ? inF : 0), width = sums * outF;
        int chunks = Math.Clamp(rows / KChunkRows, 1, MaxKChunks);
        if (ws.KPartials.Length < chunks * width) ws.KPartials = new AlignedBuffer(chunks * width);
        fixed (float* partials = ws.KPartials)
        {
            var job = ws.RowSumsJob;
            job.Dy = dy; job.X = x; job.Partials = partials; job.Rows = rows; job.InF = inF; job.OutF = outF; job.Chunks = chunks; job.Bias = db != null;
            if (chunks == 1) job.Execute(0, 1);
            else WorkerPool.Shared.Run(job, chunks);
            for (int c = 0; c < chunks; c++)
            {
                float* p = partials + (long)c * width;
                if (db != null) { TensorPrimitives.Add(new ReadOnlySpan<float>(db, outF), new ReadOnlySpan<float>(p, outF), new Span<float>(db, outF)); p += outF; }
                if (x != null)
                    for (int i = 0; i < inF; i++)
                        for (int o = 0; o < outF; o++) dw[o * inF + i] += p[i * outF + o];
            }
        }
    }

    internal sealed class RowSumsJob : ParallelWork
    {
        public float* Dy, X, Partials;
        public int Rows, InF, OutF, Chunks;
        public bool Bias;

        public override void Execute(int part, int parts)
        {
            int width = ((Bias ? 1 : 0) + (X != null ? InF : 0)) * OutF;
            var (s, e) = WorkerPool.Share(Chunks, part, parts);
            for (int chunk = s; chunk < e; chunk++)
            {
                int r0 = (int)((long)Rows * chunk / Chunks), r1 = (int)((long)Rows * (chunk + 1) / Chunks);
                float* sum = Partials + (long)chunk * width, weighted = Bias ? sum + OutF : sum;
                new Span<float>(sum, width).Clear();
                for (int r = r0; r < r1; r++)
                {
                    float* g = Dy + (long)r * OutF;
                    int o = 0;
                    for (; o + 16 <= OutF; o += 16)
                    {
                        var v = Vector512.Load(g + o);
                        if (Bias) (Vector512.Load(sum + o) + v).Store(sum + o);
                        if (X != null)
                            for (int i = 0; i < InF; i++)
                            {
                                float* at = weighted + i * OutF + o;
                                Vector512.FusedMultiplyAdd(Vector512.Create(X[(long)r * InF + i]), v, Vector512.Load(at)).Store(at);
                            }
                    }
                    for (; o < OutF; o++)
                    {
                        if (Bias) sum[o] += g[o];
                        if (X != null)
                            for (int i = 0; i < InF; i++) weighted[i * OutF + o] = MathF.FusedMultiplyAdd(X[(long)r * InF + i], g[o], weighted[i * OutF + o]);
                    }
                }
            }
        }
    }

    /// <summary>
    /// The backward of a convolution block's tail, next = residual + GLU(g · Wᵀ + b)·mask, from dL/d(next) to the linear:
    /// dx (rows, in) = dO · W (overwritten), dW (2h, in) += dOᵀ · g, db (2h) += Σ_rows dO, where dO (rows, 2h) is the GLU's
    /// backward with the forward's mask (<see cref="BlockKernels.GluResidualBackward"/>). Where the sizes allow
    /// (<see cref="KChunks"/> splits dW's k), dO is made a block of rows at a time into a scratch that stays in L2 and
    /// both products read it there: written to memory and read back twice, it moved 51 MB of the 147 MB an sMNIST
    /// block's backward moves. Rows go in fixed chunks, each chunk's dW and db summed apart and added in chunk order,
    /// so the result is the same on any core count. Elsewhere, the two passes through all of dO, in the workspace's
    /// <see cref="Workspace.GluGradient"/> (grown on first use). Sizes are checked before anything is written.
    /// </summary>
    public static void GluResidualLinearBackward(ReadOnlySpan<float> o, ReadOnlySpan<float> dNext, ReadOnlySpan<float> g, ReadOnlySpan<float> w, Span<float> dx, Span<float> dw, Span<float> db,
        int rows, int inF, int h, uint key, uint threshold, float scale, Workspace? workspace = null)
    {
        if (rows < 1 || inF < 1 || h < 1) throw new ArgumentOutOfRangeException(nameof(rows), $"Rows ({rows}), inputs ({inF}) and h ({h}) must be positive.");
        Check(o, rows * 2 * h, "o"); Check(dNext, rows * h, "dNext"); Check(g, rows * inF, "g"); Check(w, 2 * h * inF, "w");
        Check(dx, rows * inF, "dx"); Check(dw, 2 * h * inF, "dw"); Check(db, 2 * h, "db");
        var ws = workspace ?? Workspace.ForCurrentThread;
        int chunks = VectorKernel(rows, inF, 2 * h) && h % 16 == 0 ? KChunks(2 * h, inF, rows) : 1;
        if (chunks <= 1)
        {
            if (ws.GluGradient.Length < rows * 2 * h) ws.GluGradient = new AlignedBuffer(rows * 2 * h);
            var dO = ws.GluGradient.AsSpan(0, rows * 2 * h);
            BlockKernels.GluResidualBackward(o, dNext, dO, rows, h, key, threshold, scale, ws, db);
            LinearBackward(g, w, dO, dx, dw, Span<float>.Empty, rows, inF, 2 * h, ws, overwriteDx: true);
            return;
        }
        using var pass = PassProfile.Enter(Pass.Projection, 4.0 * rows * inF * 2 * h,
            4.0 * ((double)rows * (3 * h + 2 * inF) + 2.0 * (2 * h * inF) + 2 * h));
        var pool = WorkerPool.Shared;
        int threads = Math.Min(pool.Concurrency, chunks), size = 2 * h * inF, block = GluBlockRows * 2 * h;
        if (ws.KPartials.Length < chunks * (size + 2 * h)) ws.KPartials = new AlignedBuffer(chunks * (size + 2 * h));
        if (ws.GluGradient.Length < threads * block) ws.GluGradient = new AlignedBuffer(threads * block); // one dO block per thread
        if (ws.Zeros.Length < inF) ws.Zeros = new AlignedBuffer(inF);
        fixed (float* po = o, pdn = dNext, pg = g, pw = w, pdx = dx, pdw = dw, pdb = db, partials = ws.KPartials, scratch = ws.GluGradient, zeros = ws.Zeros)
        {
            var job = ws.GluBackwardJob;
            job.O = po; job.DNext = pdn; job.G = pg; job.W = pw; job.Dx = pdx; job.Dw = pdw; job.Partials = partials; job.Scratch = scratch; job.Zeros = zeros;
            job.Rows = rows; job.InF = inF; job.H = h; job.Chunks = chunks; job.Key = key; job.Threshold = threshold; job.Scale = scale;
            job.Summing = false;
            pool.Run(job, chunks);
            job.Summing = true;
            pool.Run(job, pool.PartsFor((2 * h + MR - 1) / MR));
            float* biasPartials = partials + (long)chunks * size; // db after dW's partials, chunk by chunk
            for (int chunk = 0; chunk < chunks; chunk++)
                for (int j = 0; j < 2 * h; j++) pdb[j] += biasPartials[chunk * 2 * h + j];
        }
    }

    /// <summary>Rows of dO made and used at a time by <see cref="GluResidualLinearBackward"/>: twelve-row tiles fit it whole, and 96 × 2H floats sit in L2.</summary>
    private const int GluBlockRows = 96;

    internal sealed class GluBackwardJob : ParallelWork
    {
        public float* O, DNext, G, W, Dx, Dw, Partials, Scratch, Zeros;
        public int Rows, InF, H, Chunks;
        public uint Key, Threshold;
        public float Scale;
        public bool Summing;

        public override void Execute(int part, int parts)
        {
            int width = 2 * H, size = width * InF;
            if (Summing) { AddPartials(Dw, Partials, Chunks, width, InF, part, parts); return; }
            float* dO = Scratch + (long)WorkerPool.Shared.ThreadIndex * GluBlockRows * width;
            var (s, e) = WorkerPool.Share(Chunks, part, parts);
            for (int chunk = s; chunk < e; chunk++)
            {
                var (c0, c1) = WorkerPool.Share(Rows, chunk, Chunks); // shrinking chunks (KChunks leaves blocks enough)
                float* dw = Partials + (long)chunk * size, db = Partials + (long)Chunks * size + chunk * width;
                new Span<float>(db, width).Clear();
                for (int r0 = c0; r0 < c1; r0 += GluBlockRows)
                {
                    int r1 = Math.Min(c1, r0 + GluBlockRows), n = r1 - r0;
                    // dO of rows [r0, r1) into the scratch (the kernel addresses rows absolutely: the mask depends on them)
                    var args = new RowArgs { P0 = O, P1 = DNext, P2 = dO - (long)r0 * width, Width = H, Count = (int)Key, Extra = (int)Threshold, Scale = Scale };
                    BlockKernels.GluResidualBackwardRowsSummed(ref args, r0, r1, db);
                    Serial(dO, width, 1, W, InF, Dx + (long)r0 * InF, InF, n, InF, width, Zeros);                        // dx = dO·W
                    Serial(dO, 1, width, G + (long)r0 * InF, InF, dw, InF, width, InF, n, r0 == c0 ? Zeros : null);     // dW partial (+)= dOᵀ·g
                }
            }
        }
    }

    private static void Check(ReadOnlySpan<float> s, int needed, string name)
    {
        if (s.Length < needed) throw new ArgumentException($"{name} has {s.Length} values; the product needs {needed}.", name);
    }

    internal sealed class Job : ParallelWork
    {
        public float* A, B, C, Init;
        public int Ars, Acs, Ldb, Ldc, M, N, K;
        public override void Execute(int part, int parts)
        {
            var (s, e) = WorkerPool.Share(M, part, parts, 2 * MR);
            if (s < e) Serial(A + (long)s * Ars, Ars, Acs, B, Ldb, C + (long)s * Ldc, Ldc, e - s, N, K, Init);
        }
    }

    /// <summary>
    /// C (m×n, row stride ldc) += Σ_k A(i,k)·B(k,j), A(i,k) at a[i·ars + k·acs], B row-major with row stride ldb; with
    /// <paramref name="init"/> (a row of n values), C = init + Σ_k A(i,k)·B(k,j) instead, C written and not read.
    /// </summary>
    private static void Multiply(Job job, float* a, int ars, int acs, float* b, int ldb, float* c, int ldc, int m, int n, int k, float* init = null)
    {
        var pool = WorkerPool.Shared;
        int parts = (long)m * n * k >= 1 << 18 ? pool.PartsFor((m + 2 * MR - 1) / (2 * MR)) : 1; // whole twelve-row tiles
        if (parts <= 1) { Serial(a, ars, acs, b, ldb, c, ldc, m, n, k, init); return; }
        job.A = a; job.B = b; job.C = c; job.Init = init;
        job.Ars = ars; job.Acs = acs; job.Ldb = ldb; job.Ldc = ldc; job.M = m; job.N = n; job.K = k;
        pool.Run(job, parts);
    }

    /// <summary>
    /// Chunks of k for <see cref="MultiplyOverK"/>, or 1 where C's rows are the better thing to share out. A product over
    /// many rows into a small C (dW of a layer over a whole batch: k = B·L) split by C's rows has every thread stream
    /// all of A and B; split by k, each streams its share (sMNIST's dW on two threads, runs alternated: 2.84–4.00 →
    /// 2.49–3.40 ms, each pair ~12% apart). The partial products cost a write and a read of C per chunk, so C must stay
    /// small (in L2) and k long. The count depends on the sizes alone, never on the threads: results are the same on any
    /// machine. With at least 1,024 rows a chunk there are always k rows enough for <see cref="WorkerPool.Share"/> to
    /// make the chunks shrink from the first to the last, so a core slowed down is left a small chunk at the end.
    /// </summary>
    private static int KChunks(int m, int n, int k)
    {
        int chunks = Math.Min(MaxKChunks, k / KChunkRows);
        return chunks >= 2 && (long)m * n <= MaxKSplitOutput ? chunks : 1;
    }

    private const int KChunkRows = 1024, MaxKChunks = 8, MaxKSplitOutput = 64 * 1024;

    /// <summary>
    /// C (m×n, row stride n) += Σ_k A(i,k)·B(k,j) as <see cref="Multiply"/>, k cut into <see cref="KChunks"/> fixed
    /// chunks computed in parallel into partial products, which are then added to C in chunk order.
    /// </summary>
    private static void MultiplyOverK(Workspace ws, float* a, int ars, int acs, float* b, int ldb, float* c, int m, int n, int k)
    {
        int chunks = KChunks(m, n, k);
        if (ws.KPartials.Length < chunks * m * n) ws.KPartials = new AlignedBuffer(chunks * m * n);
        if (ws.Zeros.Length < n) ws.Zeros = new AlignedBuffer(n);
        fixed (float* partials = ws.KPartials, zeros = ws.Zeros)
        {
            var job = ws.KSplitJob;
            job.A = a; job.B = b; job.C = c; job.Partials = partials; job.Zeros = zeros;
            job.Ars = ars; job.Acs = acs; job.Ldb = ldb; job.M = m; job.N = n; job.K = k; job.Chunks = chunks;
            var pool = WorkerPool.Shared;
            job.Summing = false;
            pool.Run(job, chunks);
            job.Summing = true;
            pool.Run(job, pool.PartsFor((m + MR - 1) / MR));
        }
    }

    internal sealed class KSplitJob : ParallelWork
    {
        public float* A, B, C, Partials, Zeros;
        public int Ars, Acs, Ldb, M, N, K, Chunks;
        public bool Summing;
        public override void Execute(int part, int parts)
        {
            long size = (long)M * N;
            if (!Summing)
            {
                var (s, e) = WorkerPool.Share(Chunks, part, parts);
                for (int chunk = s; chunk < e; chunk++)
                {
                    var (k0, k1) = WorkerPool.Share(K, chunk, Chunks); // shrinking chunks (KChunks leaves blocks enough)
                    Serial(A + (long)k0 * Acs, Ars, Acs, B + (long)k0 * Ldb, Ldb, Partials + chunk * size, N, M, N, k1 - k0, Zeros);
                }
                return;
            }
            AddPartials(C, Partials, Chunks, M, N, part, parts);
        }
    }

    /// <summary>This part's rows of C (m×n, row stride n) += the chunks' partial products (each m×n), in chunk order.</summary>
    private static void AddPartials(float* c, float* partials, int chunks, int m, int n, int part, int parts)
    {
        var (r0, r1) = WorkerPool.Share(m, part, parts, MR);
        int count = (r1 - r0) * n;
        var sum = new Span<float>(c + (long)r0 * n, count);
        for (int chunk = 0; chunk < chunks; chunk++)
            TensorPrimitives.Add(sum, new ReadOnlySpan<float>(partials + chunk * (long)m * n + (long)r0 * n, count), sum);
    }

    private static void Serial(float* a, int ars, int acs, float* b, int ldb, float* c, int ldc, int m, int n, int k, float* init)
    {
        // Blocks along k keep the A and B panels in L2 when k is long. Where A is read down its columns (the dW product,
        // dyᵀ·x), each k brings a new line of A for the tile's six values: 64 per block keep those lines and the block's
        // B rows in L1 across the tile's column tiles (sMNIST's dW 4.8 → 3.5 ms against 256).
        int block = acs == 1 ? KC : KCColumns;
        for (int k0 = 0; k0 < k; k0 += block)
        {
            int kc = Math.Min(block, k - k0);
            float* ak = a + (long)k0 * acs, bk = b + (long)k0 * ldb;
            int i = 0;
            float* start = k0 == 0 ? init : null; // later blocks add to what the earlier ones wrote
            // Twelve-row tiles read each B row once for twelve rows of C instead of six; they pay where B's block does
            // not sit in L1 (sMNIST's forward 2.64 → 2.45 ms, dx 2.96 → 2.52, Mamba in_proj 6.1 → 3.8). Where it does
            // (sMNIST's dW: 64 × 128 values), they only spread A's reads down its columns over more lines (3.65 → 4.06).
            if ((long)kc * n * sizeof(float) > L1Block)
                for (; i + 2 * MR <= m; i += 2 * MR) Rows12(ak + (long)i * ars, ars, acs, bk, ldb, c + (long)i * ldc, ldc, n, kc, start);
            for (; i + MR <= m; i += MR) Rows6(ak + (long)i * ars, ars, acs, bk, ldb, c + (long)i * ldc, ldc, n, kc, start);
            // the last 1–5 rows through the six-row tiles with the missing rows repeating the last one, results dropped:
            // one row at a time they took 2 loads per FMA (sMNIST's dW, 256 rows shared 126 and 130, waited on its 4)
            if (i < m) Rows6(ak + (long)i * ars, ars, acs, bk, ldb, c + (long)i * ldc, ldc, n, kc, start, m - i);
        }
    }

    private static void Rows12(float* a, int ars, int acs, float* b, int ldb, float* c, int ldc, int n, int k, float* init)
    {
        int j = 0;
        for (; j + NR <= n; j += NR) Tile12x32(a, ars, acs, b + j, ldb, c + j, ldc, k, At(init, j));
        if (j < n) { Rows6(a, ars, acs, b + j, ldb, c + j, ldc, n - j, k, At(init, j)); Rows6(a + 6 * (nint)ars, ars, acs, b + j, ldb, c + 6 * (nint)ldc + j, ldc, n - j, k, At(init, j)); }
    }

    /// <param name="rows">Rows of C to write, 1 to 6: the tiles read the last one again in place of the missing ones.</param>
    private static void Rows6(float* a, int ars, int acs, float* b, int ldb, float* c, int ldc, int n, int k, float* init, int rows = MR)
    {
        int j = 0;
        for (; j + NR <= n; j += NR) Tile6x32(a, ars, acs, b + j, ldb, c + j, ldc, k, At(init, j), rows);
        if (j + 16 <= n) { Tile6x16(a, ars, acs, b + j, ldb, c + j, ldc, k, At(init, j), rows, Vector512<float>.AllBitsSet); j += 16; }
        // the last 1–15 columns through the same tile, masked: scalar, they cost as much as the rest of a row
        // (sMNIST's shape with 252 outputs: 3.7× the time of 256)
        if (j < n) Tile6x16(a, ars, acs, b + j, ldb, c + j, ldc, k, At(init, j), rows, Vector512.LessThan(Vector512<float>.Indices, Vector512.Create((float)(n - j))));
    }

    /// <summary>Row r of a tile's rows, or the last there is: a repeated row's results are computed and not stored.</summary>
    private static nint Clamp(int r, int rows) => Math.Min(r, rows - 1);

    /// <summary>init + j, or null for none: where a tile's accumulators start.</summary>
    private static float* At(float* init, int j) => init == null ? null : init + j;

    // The tiles step one pointer along A and one along B and reach A's six rows by offsets fixed before the loop:
    // indexing with p·acs and r·ars cost two multiplies and ten address instructions per k, which held the
    // forward's product at ~70% of the FMA peak.
    private static void Tile6x32(float* a, int ars, int acs, float* b, int ldb, float* c, int ldc, int k, float* init, int rows = MR)
    {
        float* c0 = c, c1 = c + Clamp(1, rows) * ldc, c2 = c + Clamp(2, rows) * ldc, c3 = c + Clamp(3, rows) * ldc, c4 = c + Clamp(4, rows) * ldc, c5 = c + Clamp(5, rows) * ldc;
        bool fresh = init != null;
        var x00 = Vector512.Load(fresh ? init : c0); var x01 = Vector512.Load((fresh ? init : c0) + 16);
        var x10 = Vector512.Load(fresh ? init : c1); var x11 = Vector512.Load((fresh ? init : c1) + 16);
        var x20 = Vector512.Load(fresh ? init : c2); var x21 = Vector512.Load((fresh ? init : c2) + 16);
        var x30 = Vector512.Load(fresh ? init : c3); var x31 = Vector512.Load((fresh ? init : c3) + 16);
        var x40 = Vector512.Load(fresh ? init : c4); var x41 = Vector512.Load((fresh ? init : c4) + 16);
        var x50 = Vector512.Load(fresh ? init : c5); var x51 = Vector512.Load((fresh ? init : c5) + 16);
        nint r1 = Clamp(1, rows) * ars, r2 = Clamp(2, rows) * ars, r3 = Clamp(3, rows) * ars, r4 = Clamp(4, rows) * ars, r5 = Clamp(5, rows) * ars, da = acs, db = ldb;
        float* ap = a, bp = b, end = b + k * db;
        for (; bp < end; ap += da, bp += db)
        {
            var b0 = Vector512.Load(bp); var b1 = Vector512.Load(bp + 16);
            var a0 = Vector512.Create(ap[0]);
            x00 = Vector512.FusedMultiplyAdd(a0, b0, x00); x01 = Vector512.FusedMultiplyAdd(a0, b1, x01);
            var a1 = Vector512.Create(ap[r1]);
            x10 = Vector512.FusedMultiplyAdd(a1, b0, x10); x11 = Vector512.FusedMultiplyAdd(a1, b1, x11);
            var a2 = Vector512.Create(ap[r2]);
            x20 = Vector512.FusedMultiplyAdd(a2, b0, x20); x21 = Vector512.FusedMultiplyAdd(a2, b1, x21);
            var a3 = Vector512.Create(ap[r3]);
            x30 = Vector512.FusedMultiplyAdd(a3, b0, x30); x31 = Vector512.FusedMultiplyAdd(a3, b1, x31);
            var a4 = Vector512.Create(ap[r4]);
            x40 = Vector512.FusedMultiplyAdd(a4, b0, x40); x41 = Vector512.FusedMultiplyAdd(a4, b1, x41);
            var a5 = Vector512.Create(ap[r5]);
            x50 = Vector512.FusedMultiplyAdd(a5, b0, x50); x51 = Vector512.FusedMultiplyAdd(a5, b1, x51);
        }
        x00.Store(c0); x01.Store(c0 + 16);
        if (rows > 1) { x10.Store(c1); x11.Store(c1 + 16); }
        if (rows > 2) { x20.Store(c2); x21.Store(c2 + 16); }
        if (rows > 3) { x30.Store(c3); x31.Store(c3 + 16); }
        if (rows > 4) { x40.Store(c4); x41.Store(c4 + 16); }
        if (rows > 5) { x50.Store(c5); x51.Store(c5 + 16); }
    }

    /// <summary>Tile6x32 for twelve rows: 24 accumulators, A's second six rows from a second pointer.</summary>
    private static void Tile12x32(float* a, int ars, int acs, float* b, int ldb, float* c, int ldc, int k, float* init)
    {
        bool fresh = init != null;
        float* c0 = c; var x00 = Vector512.Load(fresh ? init : c0); var x01 = Vector512.Load((fresh ? init : c0) + 16);
        float* c1 = c + 1 * (nint)ldc; var x10 = Vector512.Load(fresh ? init : c1); var x11 = Vector512.Load((fresh ? init : c1) + 16);
        float* c2 = c + 2 * (nint)ldc; var x20 = Vector512.Load(fresh ? init : c2); var x21 = Vector512.Load((fresh ? init : c2) + 16);
        float* c3 = c + 3 * (nint)ldc; var x30 = Vector512.Load(fresh ? init : c3); var x31 = Vector512.Load((fresh ? init : c3) + 16);
        float* c4 = c + 4 * (nint)ldc; var x40 = Vector512.Load(fresh ? init : c4); var x41 = Vector512.Load((fresh ? init : c4) + 16);
        float* c5 = c + 5 * (nint)ldc; var x50 = Vector512.Load(fresh ? init : c5); var x51 = Vector512.Load((fresh ? init : c5) + 16);
        float* c6 = c + 6 * (nint)ldc; var x60 = Vector512.Load(fresh ? init : c6); var x61 = Vector512.Load((fresh ? init : c6) + 16);
        float* c7 = c + 7 * (nint)ldc; var x70 = Vector512.Load(fresh ? init : c7); var x71 = Vector512.Load((fresh ? init : c7) + 16);
        float* c8 = c + 8 * (nint)ldc; var x80 = Vector512.Load(fresh ? init : c8); var x81 = Vector512.Load((fresh ? init : c8) + 16);
        float* c9 = c + 9 * (nint)ldc; var x90 = Vector512.Load(fresh ? init : c9); var x91 = Vector512.Load((fresh ? init : c9) + 16);
        float* c10 = c + 10 * (nint)ldc; var x100 = Vector512.Load(fresh ? init : c10); var x101 = Vector512.Load((fresh ? init : c10) + 16);
        float* c11 = c + 11 * (nint)ldc; var x110 = Vector512.Load(fresh ? init : c11); var x111 = Vector512.Load((fresh ? init : c11) + 16);
        nint r1 = ars, r2 = 2 * r1, r3 = 3 * r1, r4 = 4 * r1, r5 = 5 * r1, da = acs, db = ldb;
        float* ap = a, aq = a + 6 * r1, bp = b, end = b + k * db;
        for (; bp < end; ap += da, aq += da, bp += db)
        {
            var b0 = Vector512.Load(bp); var b1 = Vector512.Load(bp + 16);
            var a0 = Vector512.Create(ap[0]); x00 = Vector512.FusedMultiplyAdd(a0, b0, x00); x01 = Vector512.FusedMultiplyAdd(a0, b1, x01);
            var a1 = Vector512.Create(ap[r1]); x10 = Vector512.FusedMultiplyAdd(a1, b0, x10); x11 = Vector512.FusedMultiplyAdd(a1, b1, x11);
            var a2 = Vector512.Create(ap[r2]); x20 = Vector512.FusedMultiplyAdd(a2, b0, x20); x21 = Vector512.FusedMultiplyAdd(a2, b1, x21);
            var a3 = Vector512.Create(ap[r3]); x30 = Vector512.FusedMultiplyAdd(a3, b0, x30); x31 = Vector512.FusedMultiplyAdd(a3, b1, x31);
            var a4 = Vector512.Create(ap[r4]); x40 = Vector512.FusedMultiplyAdd(a4, b0, x40); x41 = Vector512.FusedMultiplyAdd(a4, b1, x41);
            var a5 = Vector512.Create(ap[r5]); x50 = Vector512.FusedMultiplyAdd(a5, b0, x50); x51 = Vector512.FusedMultiplyAdd(a5, b1, x51);
            var a6 = Vector512.Create(aq[0]); x60 = Vector512.FusedMultiplyAdd(a6, b0, x60); x61 = Vector512.FusedMultiplyAdd(a6, b1, x61);
            var a7 = Vector512.Create(aq[r1]); x70 = Vector512.FusedMultiplyAdd(a7, b0, x70); x71 = Vector512.FusedMultiplyAdd(a7, b1, x71);
            var a8 = Vector512.Create(aq[r2]); x80 = Vector512.FusedMultiplyAdd(a8, b0, x80); x81 = Vector512.FusedMultiplyAdd(a8, b1, x81);
            var a9 = Vector512.Create(aq[r3]); x90 = Vector512.FusedMultiplyAdd(a9, b0, x90); x91 = Vector512.FusedMultiplyAdd(a9, b1, x91);
            var a10 = Vector512.Create(aq[r4]); x100 = Vector512.FusedMultiplyAdd(a10, b0, x100); x101 = Vector512.FusedMultiplyAdd(a10, b1, x101);
            var a11 = Vector512.Create(aq[r5]); x110 = Vector512.FusedMultiplyAdd(a11, b0, x110); x111 = Vector512.FusedMultiplyAdd(a11, b1, x111);
        }
        x00.Store(c0); x01.Store(c0 + 16);
        x10.Store(c1); x11.Store(c1 + 16);
        x20.Store(c2); x21.Store(c2 + 16);
        x30.Store(c3); x31.Store(c3 + 16);
        x40.Store(c4); x41.Store(c4 + 16);
        x50.Store(c5); x51.Store(c5 + 16);
        x60.Store(c6); x61.Store(c6 + 16);
        x70.Store(c7); x71.Store(c7 + 16);
        x80.Store(c8); x81.Store(c8 + 16);
        x90.Store(c9); x91.Store(c9 + 16);
        x100.Store(c10); x101.Store(c10 + 16);
        x110.Store(c11); x111.Store(c11 + 16);
    }

    /// <summary>
    /// The 6 × 16 tile, for sixteen columns left over after the 32-wide tiles (Mamba's x_proj has 48, its dt_proj's dx and
    /// dW 16): one row at a time, they took five times as long. With a partial <paramref name="columns"/> mask, the last
    /// 1–15 columns: B and C read and C written through the mask, so nothing past the row's end is touched.
    /// </summary>
    private static void Tile6x16(float* a, int ars, int acs, float* b, int ldb, float* c, int ldc, int k, float* init, int rows, Vector512<float> columns)
    {
        float* c0 = c, c1 = c + Clamp(1, rows) * ldc, c2 = c + Clamp(2, rows) * ldc, c3 = c + Clamp(3, rows) * ldc, c4 = c + Clamp(4, rows) * ldc, c5 = c + Clamp(5, rows) * ldc;
        bool fresh = init != null;
        var x0 = Masked(fresh ? init : c0, columns); var x1 = Masked(fresh ? init : c1, columns); var x2 = Masked(fresh ? init : c2, columns);
        var x3 = Masked(fresh ? init : c3, columns); var x4 = Masked(fresh ? init : c4, columns); var x5 = Masked(fresh ? init : c5, columns);
        nint r1 = Clamp(1, rows) * ars, r2 = Clamp(2, rows) * ars, r3 = Clamp(3, rows) * ars, r4 = Clamp(4, rows) * ars, r5 = Clamp(5, rows) * ars, da = acs, db = ldb;
        float* ap = a, bp = b, end = b + k * db;
        for (; bp < end; ap += da, bp += db)
        {
            var bk = Masked(bp, columns);
            x0 = Vector512.FusedMultiplyAdd(Vector512.Create(ap[0]), bk, x0);
            x1 = Vector512.FusedMultiplyAdd(Vector512.Create(ap[r1]), bk, x1);
            x2 = Vector512.FusedMultiplyAdd(Vector512.Create(ap[r2]), bk, x2);
            x3 = Vector512.FusedMultiplyAdd(Vector512.Create(ap[r3]), bk, x3);
            x4 = Vector512.FusedMultiplyAdd(Vector512.Create(ap[r4]), bk, x4);
            x5 = Vector512.FusedMultiplyAdd(Vector512.Create(ap[r5]), bk, x5);
        }
        Avx512F.MaskStore(c0, columns, x0);
        if (rows > 1) Avx512F.MaskStore(c1, columns, x1);
        if (rows > 2) Avx512F.MaskStore(c2, columns, x2);
        if (rows > 3) Avx512F.MaskStore(c3, columns, x3);
        if (rows > 4) Avx512F.MaskStore(c4, columns, x4);
        if (rows > 5) Avx512F.MaskStore(c5, columns, x5);
    }

    /// <summary>The lanes of p under the mask, zeros elsewhere; masked-off lanes are not read (past a row's end they may not exist).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Masked(float* p, Vector512<float> mask) => Avx512F.MaskLoad(p, mask, Vector512<float>.Zero);
}
