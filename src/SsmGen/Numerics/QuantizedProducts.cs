using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SsmGen.Numerics;

/// <summary>
/// The products of <see cref="WeightFormat.Int8Dynamic"/>: each input row quantized to int8 when the product runs
/// (one scale per row, its largest |x| mapped to 127), multiplied by the int8 weight rows in exact int32 sums, then
/// y = (float)dot · w_scale · x_scale. Integer sums do not depend on their order, so the VNNI kernel (32 products per
/// instruction, AVX-VNNI on 256-bit registers), the AVX-512BW widening kernel (for CPUs, or native builds, without
/// AVX-VNNI), the scalar loop and any tiling give the same bits, and a stream's outputs do not depend on which
/// streams share its step.
/// VNNI multiplies unsigned by signed bytes: rows are stored as u = q + 128, and 128 · Σ w is taken back per output.
/// </summary>
internal static unsafe class QuantizedProducts
{
    /// <summary>Which instructions multiply the bytes (every path gives the same sums).</summary>
    internal enum ByteDot
    {
        /// <summary>AVX-VNNI: 32 unsigned × signed byte products added into eight int32 lanes by one instruction.</summary>
        Vnni,
        /// <summary>AVX-512BW without VNNI: bytes widened to int16, pairs multiplied and added into int32 (vpmaddwd).</summary>
        Widening,
        /// <summary>One product at a time.</summary>
        Scalar,
    }

    /// <summary>The fastest path this CPU (or, in a native build, its instruction-set target) has.</summary>
    internal static ByteDot Best => AvxVnni.IsSupported ? ByteDot.Vnni : Avx512BW.IsSupported ? ByteDot.Widening : ByteDot.Scalar;

    /// <summary>32 byte products of one row and one weight chunk added into eight int32 lanes; 16 into four.</summary>
    private interface IByteDot
    {
        static abstract Vector256<int> Add(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> w);
        static abstract Vector128<int> Add(Vector128<int> acc, Vector128<byte> u, Vector128<sbyte> w);
    }

    private readonly struct VnniDot : IByteDot
    {
        public static Vector256<int> Add(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> w) => AvxVnni.MultiplyWideningAndAdd(acc, u, w);
        public static Vector128<int> Add(Vector128<int> acc, Vector128<byte> u, Vector128<sbyte> w) => AvxVnni.MultiplyWideningAndAdd(acc, u, w);
    }

    private readonly struct WideningDot : IByteDot
    {
        public static Vector256<int> Add(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> w)
        {
            var pairs = Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(u).AsInt16(), Avx512BW.ConvertToVector512Int16(w));
            return acc + pairs.GetLower() + pairs.GetUpper();
        }

        public static Vector128<int> Add(Vector128<int> acc, Vector128<byte> u, Vector128<sbyte> w)
        {
            var pairs = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(u).AsInt16(), Avx2.ConvertToVector256Int16(w));
            return acc + pairs.GetLower() + pairs.GetUpper();
        }
    }


    /// <summary>
    /// x (n floats) → u (n bytes, q + 128 with q = round(x · 127 / max|x|) ties to even); returns the row's scale
    /// max|x| / 127 (0 for a zero row, NaN when x holds a value that is not finite: its outputs are NaN).
    /// </summary>
    public static float QuantizeRow(float* x, int n, byte* u)
    {
        float max = MathF.Abs(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(new ReadOnlySpan<float>(x, n))); // NaN if x holds one
        if (!float.IsFinite(max)) return float.NaN;
        if (max == 0)
        {
            new Span<byte>(u, n).Fill(128);
            return 0;
        }
        float inv = 127f / max;
        int i = 0;
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            var lo = Vector512.Create(-127f); var hi = Vector512.Create(127f); var offset = Vector512.Create(128);
            var vinv = Vector512.Create(inv);
            for (; i + 16 <= n; i += 16)
            {
                var q = Vector512.ConvertToInt32(Vector512.Clamp(Vector512.Round(Vector512.Load(x + i) * vinv), lo, hi)) + offset;
                Avx512F.ConvertToVector128Byte(q).Store(u + i);
            }
        }
        for (; i < n; i++) u[i] = (byte)(Math.Clamp(MathF.Round(x[i] * inv), -127f, 127f) + 128);
        return max / 127f;
    }

    /// <summary>
    /// y (rows, outF) = dequantized (xq · Wᵀ): xq rows of u bytes with scales xs, W rows of int8 with scales ws and
    /// sums wsum (Σ of each row's int8 values); with AVX-VNNI where the CPU has it, unless <paramref name="portable"/>
    /// (tests check each path against the other).
    /// </summary>
    public static void Run(byte* xq, float* xs, sbyte* w, float* ws, int* wsum, float* y, int rows, int inF, int outF) =>
        Run(xq, xs, w, ws, wsum, y, rows, inF, outF, Best);

    internal static void Run(byte* xq, float* xs, sbyte* w, float* ws, int* wsum, float* y, int rows, int inF, int outF, ByteDot path)
    {
        if (path == ByteDot.Vnni && !AvxVnni.IsSupported || path == ByteDot.Widening && !Avx512BW.IsSupported)
            throw new PlatformNotSupportedException($"This CPU cannot take the {path} path.");
        int o = path switch
        {
            ByteDot.Vnni => Tiles<VnniDot>(xq, xs, w, ws, wsum, y, rows, inF, outF),
            ByteDot.Widening => Tiles<WideningDot>(xq, xs, w, ws, wsum, y, rows, inF, outF),
            _ => 0,
        };
        long ldw = inF;
        for (; o < outF; o++)
            for (int r = 0; r < rows; r++)
                y[(long)r * outF + o] = Scale(Dot(xq + (long)r * inF, w + o * ldw, 0, inF, 0), wsum[o], ws[o], xs[r]);
    }

    /// <summary>Outputs eight at a time (four rows at a time, then one by one); returns how many it did.</summary>
    private static int Tiles<T>(byte* xq, float* xs, sbyte* w, float* ws, int* wsum, float* y, int rows, int inF, int outF) where T : struct, IByteDot
    {
        long ldw = inF;
        int o = 0;
        for (; o + 8 <= outF; o += 8)
        {
            int r = 0;
            for (; r + 4 <= rows; r += 4)
            {
                Rows4x4<T>(xq + (long)r * inF, xs + r, w + o * ldw, ws + o, wsum + o, inF, y + (long)r * outF + o, outF);
                Rows4x4<T>(xq + (long)r * inF, xs + r, w + (o + 4) * ldw, ws + o + 4, wsum + o + 4, inF, y + (long)r * outF + o + 4, outF);
            }
            for (; r < rows; r++) Row1x8<T>(xq + (long)r * inF, xs[r], w + o * ldw, ws + o, wsum + o, inF, y + (long)r * outF + o);
        }
        return o;
    }

    /// <summary>The output from its unsigned dot product: the offset taken back, then the two scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Scale(int dot, int wsum, float ws, float xs) => (float)(dot - 128 * wsum) * ws * xs;

    /// <summary>Σ u[i]·w[i] over [i, n), added to <paramref name="s"/> (the portable loop, and the kernels' tails).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Dot(byte* u, sbyte* w, int i, int n, int s)
    {
        for (; i < n; i++) s += u[i] * w[i];
        return s;
    }

    /// <summary>One row against eight W rows: a 32-byte step, then a 16-byte one, then the rest one by one.</summary>
    private static void Row1x8<T>(byte* u, float xs, sbyte* w, float* ws, int* wsum, int n, float* y) where T : struct, IByteDot
    {
        long ldw = n;
        Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            var v = Vector256.Load(u + i);
            sbyte* wi = w + i;
            a0 = T.Add(a0, v, Vector256.Load(wi)); a1 = T.Add(a1, v, Vector256.Load(wi + ldw));
            a2 = T.Add(a2, v, Vector256.Load(wi + 2 * ldw)); a3 = T.Add(a3, v, Vector256.Load(wi + 3 * ldw));
            a4 = T.Add(a4, v, Vector256.Load(wi + 4 * ldw)); a5 = T.Add(a5, v, Vector256.Load(wi + 5 * ldw));
            a6 = T.Add(a6, v, Vector256.Load(wi + 6 * ldw)); a7 = T.Add(a7, v, Vector256.Load(wi + 7 * ldw));
        }
        if (i + 16 <= n)
        {
            var v = Vector128.Load(u + i);
            sbyte* wi = w + i;
            a0 = Half<T>(a0, v, Vector128.Load(wi)); a1 = Half<T>(a1, v, Vector128.Load(wi + ldw));
            a2 = Half<T>(a2, v, Vector128.Load(wi + 2 * ldw)); a3 = Half<T>(a3, v, Vector128.Load(wi + 3 * ldw));
            a4 = Half<T>(a4, v, Vector128.Load(wi + 4 * ldw)); a5 = Half<T>(a5, v, Vector128.Load(wi + 5 * ldw));
            a6 = Half<T>(a6, v, Vector128.Load(wi + 6 * ldw)); a7 = Half<T>(a7, v, Vector128.Load(wi + 7 * ldw));
            i += 16;
        }
        var dots = Sum8(a0, a1, a2, a3, a4, a5, a6, a7);
        if (i < n) dots = Tails(dots, u, 0, w, ldw, i, n);
        Scale8(dots, Vector256.Load(wsum), Vector256.Load(ws), Vector256.Create(xs)).Store(y);
    }

    /// <summary>Four rows against four W rows (each W chunk loaded once for the four).</summary>
    private static void Rows4x4<T>(byte* u, float* xs, sbyte* w, float* ws, int* wsum, int n, float* y, int ldy) where T : struct, IByteDot
    {
        long ldw = n;
        byte* u1 = u + n, u2 = u + 2 * n, u3 = u + 3 * n;
        Vector256<int> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
        Vector256<int> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            var v0 = Vector256.Load(u + i); var v1 = Vector256.Load(u1 + i); var v2 = Vector256.Load(u2 + i); var v3 = Vector256.Load(u3 + i);
            sbyte* wi = w + i;
            var c = Vector256.Load(wi);
            a00 = T.Add(a00, v0, c); a10 = T.Add(a10, v1, c); a20 = T.Add(a20, v2, c); a30 = T.Add(a30, v3, c);
            c = Vector256.Load(wi + ldw);
            a01 = T.Add(a01, v0, c); a11 = T.Add(a11, v1, c); a21 = T.Add(a21, v2, c); a31 = T.Add(a31, v3, c);
            c = Vector256.Load(wi + 2 * ldw);
            a02 = T.Add(a02, v0, c); a12 = T.Add(a12, v1, c); a22 = T.Add(a22, v2, c); a32 = T.Add(a32, v3, c);
            c = Vector256.Load(wi + 3 * ldw);
            a03 = T.Add(a03, v0, c); a13 = T.Add(a13, v1, c); a23 = T.Add(a23, v2, c); a33 = T.Add(a33, v3, c);
        }
        if (i + 16 <= n)
        {
            // the 16-byte step in the lower halves (Δ's projection reads rows of 16)
            var v0 = Vector128.Load(u + i); var v1 = Vector128.Load(u1 + i); var v2 = Vector128.Load(u2 + i); var v3 = Vector128.Load(u3 + i);
            sbyte* wi = w + i;
            var c = Vector128.Load(wi);
            a00 = Half<T>(a00, v0, c); a10 = Half<T>(a10, v1, c); a20 = Half<T>(a20, v2, c); a30 = Half<T>(a30, v3, c);
            c = Vector128.Load(wi + ldw);
            a01 = Half<T>(a01, v0, c); a11 = Half<T>(a11, v1, c); a21 = Half<T>(a21, v2, c); a31 = Half<T>(a31, v3, c);
            c = Vector128.Load(wi + 2 * ldw);
            a02 = Half<T>(a02, v0, c); a12 = Half<T>(a12, v1, c); a22 = Half<T>(a22, v2, c); a32 = Half<T>(a32, v3, c);
            c = Vector128.Load(wi + 3 * ldw);
            a03 = Half<T>(a03, v0, c); a13 = Half<T>(a13, v1, c); a23 = Half<T>(a23, v2, c); a33 = Half<T>(a33, v3, c);
            i += 16;
        }
        // lanes 4k + j: row k (of the pair), output j
        var wsum4 = Vector128.Load(wsum); var ws4 = Vector128.Load(ws);
        var wsums = Vector256.Create(wsum4, wsum4); var wss = Vector256.Create(ws4, ws4);
        var dots = Sum8(a00, a01, a02, a03, a10, a11, a12, a13);
        if (i < n) dots = Tails(dots, u, n, w, ldw, i, n, 4);
        var ys = Scale8(dots, wsums, wss, Vector256.Create(Vector128.Create(xs[0]), Vector128.Create(xs[1])));
        ys.GetLower().Store(y); ys.GetUpper().Store(y + ldy);
        dots = Sum8(a20, a21, a22, a23, a30, a31, a32, a33);
        if (i < n) dots = Tails(dots, u2, n, w, ldw, i, n, 4);
        ys = Scale8(dots, wsums, wss, Vector256.Create(Vector128.Create(xs[2]), Vector128.Create(xs[3])));
        ys.GetLower().Store(y + 2 * ldy); ys.GetUpper().Store(y + 3 * ldy);
    }

    /// <summary>Sixteen byte products added into the lower half of <paramref name="a"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Half<T>(Vector256<int> a, Vector128<byte> u, Vector128<sbyte> w) where T : struct, IByteDot => a.WithLower(T.Add(a.GetLower(), u, w));

    /// <summary>Lane k: the sum of a_k's eight lanes (any order: integers).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Sum8(Vector256<int> a0, Vector256<int> a1, Vector256<int> a2, Vector256<int> a3,
        Vector256<int> a4, Vector256<int> a5, Vector256<int> a6, Vector256<int> a7)
    {
        // After two pairwise adds, each 128-bit half holds four partial sums; the halves are then added across.
        var u0 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(a0, a1), Avx2.HorizontalAdd(a2, a3));
        var u1 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(a4, a5), Avx2.HorizontalAdd(a6, a7));
        return Avx2.Permute2x128(u0, u1, 0x20) + Avx2.Permute2x128(u0, u1, 0x31);
    }

    /// <summary>
    /// The scalar tails [i, n) added to each lane's dot product: lane k is x row k / <paramref name="perRow"/> (rows
    /// <paramref name="ldu"/> apart) against W row k % perRow.
    /// </summary>
    private static Vector256<int> Tails(Vector256<int> dots, byte* u, long ldu, sbyte* w, long ldw, int i, int n, int perRow = 8)
    {
        Span<int> d = stackalloc int[8];
        dots.CopyTo(d);
        for (int k = 0; k < 8; k++) d[k] = Dot(u + k / perRow * ldu, w + k % perRow * ldw, i, n, d[k]);
        return Vector256.Create<int>(d);
    }

    /// <summary><see cref="Scale"/> on eight lanes, the same operations in the same order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Scale8(Vector256<int> dots, Vector256<int> wsum, Vector256<float> ws, Vector256<float> xs) =>
        Vector256.ConvertToSingle(dots - (wsum << 7)) * ws * xs;
}
