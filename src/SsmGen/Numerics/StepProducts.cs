using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SsmGen.Numerics;

/// <summary>Reads one format of weights: 16 at a time widened to fp32 lanes, or one.</summary>
internal unsafe interface IWeightRows
{
    static abstract int Bytes { get; }
    static abstract Vector512<float> Load16(byte* w);
    static abstract float Load1(byte* w);
}

internal readonly unsafe struct Float32Rows : IWeightRows
{
    public static int Bytes => 4;
    public static Vector512<float> Load16(byte* w) => Vector512.Load((float*)w);
    public static float Load1(byte* w) => *(float*)w;
}

internal readonly unsafe struct BFloat16Rows : IWeightRows
{
    public static int Bytes => 2;
    public static Vector512<float> Load16(byte* w) => (Vector512.WidenLower(Vector256.Load((ushort*)w).ToVector512Unsafe()) << 16).AsSingle();
    public static float Load1(byte* w) => CompactWeights.FromBFloat16(*(ushort*)w);
}

internal readonly unsafe struct Int8Rows : IWeightRows
{
    public static int Bytes => 1;
    public static Vector512<float> Load16(byte* w) => Vector512.ConvertToSingle(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)w)));
    public static float Load1(byte* w) => *(sbyte*)w;
}

/// <summary>
/// The streaming step's products y (rows, out) = x (rows, in) · Wᵀ over a few rows (streams), W row-major in any
/// <see cref="IWeightRows"/> format. Every output is one 16-lane FMA chain over its dot product, reduced by
/// FastMath.SumEach16's tree (the same for a vector whatever its place among the sixteen, and <see cref="FastMath.TreeSum"/>
/// for one alone), then the scalar tail in order: so each output is the same arithmetic whatever the number
/// of rows, and a stream's outputs do not depend on which streams share its step. Tiles: 4 rows × 4 outputs (each W
/// row read once for four rows), or one row × 16 outputs; sixteen chains either way, reduced together.
/// </summary>
internal static unsafe class StepProducts
{
    public static void Run<T>(float* x, byte* w, float* y, int rows, int inF, int outF) where T : struct, IWeightRows
    {
        long ldw = (long)inF * T.Bytes;
        int o = 0;
        for (; o + 16 <= outF; o += 16)
        {
            int r = 0;
            for (; r + 4 <= rows; r += 4)
                for (int g = 0; g < 16; g += 4)
                    Rows4x4<T>(x + (long)r * inF, w + (o + g) * ldw, inF, y + (long)r * outF + o + g, outF);
            for (; r < rows; r++) Row1x16<T>(x + (long)r * inF, w + o * ldw, inF, y + (long)r * outF + o);
        }
        for (; o + 4 <= outF; o += 4)
        {
            int r = 0;
            for (; r + 4 <= rows; r += 4) Rows4x4<T>(x + (long)r * inF, w + o * ldw, inF, y + (long)r * outF + o, outF);
            for (; r < rows; r++)
                for (int j = 0; j < 4; j++) y[(long)r * outF + o + j] = One<T>(x + (long)r * inF, w + (o + j) * ldw, inF);
        }
        for (; o < outF; o++)
            for (int r = 0; r < rows; r++) y[(long)r * outF + o] = One<T>(x + (long)r * inF, w + o * ldw, inF);
    }

    /// <summary>One output: its chain, the tree sum, the tail.</summary>
    private static float One<T>(float* x, byte* w, int n) where T : struct, IWeightRows
    {
        var a = Vector512<float>.Zero;
        int i = 0;
        for (; i + 16 <= n; i += 16) a = Vector512.FusedMultiplyAdd(Vector512.Load(x + i), T.Load16(w + i * T.Bytes), a);
        float s = FastMath.TreeSum(a);
        for (; i < n; i++) s = MathF.FusedMultiplyAdd(x[i], T.Load1(w + i * T.Bytes), s);
        return s;
    }

    /// <summary>One row of x against sixteen W rows, eight at a time (eight weight streams in flight, x read twice from L1).</summary>
    private static void Row1x16<T>(float* x, byte* w, int n, float* y) where T : struct, IWeightRows
    {
        long ldw = (long)n * T.Bytes;
        var (a0, a1, a2, a3, a4, a5, a6, a7, i) = Row1x8<T>(x, w, n, ldw);
        var (a8, a9, a10, a11, a12, a13, a14, a15, _) = Row1x8<T>(x, w + 8 * ldw, n, ldw);
        var sums = FastMath.SumEach16(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
        for (int j = 0; j < 16; j++) y[j] = Tail<T>(x, w + j * ldw, i, n, sums.GetElement(j));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float>, Vector512<float>, Vector512<float>, Vector512<float>, Vector512<float>, Vector512<float>, Vector512<float>, Vector512<float>, int) Row1x8<T>(float* x, byte* w, int n, long ldw)
        where T : struct, IWeightRows
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            var v = Vector512.Load(x + i);
            byte* wi = w + i * T.Bytes;
            a0 = Vector512.FusedMultiplyAdd(v, T.Load16(wi), a0); a1 = Vector512.FusedMultiplyAdd(v, T.Load16(wi + ldw), a1);
            a2 = Vector512.FusedMultiplyAdd(v, T.Load16(wi + 2 * ldw), a2); a3 = Vector512.FusedMultiplyAdd(v, T.Load16(wi + 3 * ldw), a3);
            a4 = Vector512.FusedMultiplyAdd(v, T.Load16(wi + 4 * ldw), a4); a5 = Vector512.FusedMultiplyAdd(v, T.Load16(wi + 5 * ldw), a5);
            a6 = Vector512.FusedMultiplyAdd(v, T.Load16(wi + 6 * ldw), a6); a7 = Vector512.FusedMultiplyAdd(v, T.Load16(wi + 7 * ldw), a7);
        }
        return (a0, a1, a2, a3, a4, a5, a6, a7, i);
    }

    /// <summary>Four rows of x against four W rows (each widened once for the four).</summary>
    private static void Rows4x4<T>(float* x, byte* w, int n, float* y, int ldy) where T : struct, IWeightRows
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
        float* x1 = x + n, x2 = x + 2 * n, x3 = x + 3 * n;
        long ldw = (long)n * T.Bytes;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            var v0 = Vector512.Load(x + i); var v1 = Vector512.Load(x1 + i); var v2 = Vector512.Load(x2 + i); var v3 = Vector512.Load(x3 + i);
            byte* wi = w + i * T.Bytes;
            var c = T.Load16(wi);
            a00 = Vector512.FusedMultiplyAdd(v0, c, a00); a10 = Vector512.FusedMultiplyAdd(v1, c, a10); a20 = Vector512.FusedMultiplyAdd(v2, c, a20); a30 = Vector512.FusedMultiplyAdd(v3, c, a30);
            c = T.Load16(wi + ldw);
            a01 = Vector512.FusedMultiplyAdd(v0, c, a01); a11 = Vector512.FusedMultiplyAdd(v1, c, a11); a21 = Vector512.FusedMultiplyAdd(v2, c, a21); a31 = Vector512.FusedMultiplyAdd(v3, c, a31);
            c = T.Load16(wi + 2 * ldw);
            a02 = Vector512.FusedMultiplyAdd(v0, c, a02); a12 = Vector512.FusedMultiplyAdd(v1, c, a12); a22 = Vector512.FusedMultiplyAdd(v2, c, a22); a32 = Vector512.FusedMultiplyAdd(v3, c, a32);
            c = T.Load16(wi + 3 * ldw);
            a03 = Vector512.FusedMultiplyAdd(v0, c, a03); a13 = Vector512.FusedMultiplyAdd(v1, c, a13); a23 = Vector512.FusedMultiplyAdd(v2, c, a23); a33 = Vector512.FusedMultiplyAdd(v3, c, a33);
        }
        // lane 4r + j: row r, output j
        var sums = FastMath.SumEach16(a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33);
        for (int r = 0; r < 4; r++)
            for (int j = 0; j < 4; j++) y[(long)r * ldy + j] = Tail<T>(x + (long)r * n, w + j * ldw, i, n, sums.GetElement(4 * r + j));
    }

    /// <summary>The scalar tail [i, n) of one dot product, added in order to its vector part <paramref name="s"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Tail<T>(float* x, byte* w, int i, int n, float s) where T : struct, IWeightRows
    {
        for (; i < n; i++) s = MathF.FusedMultiplyAdd(x[i], T.Load1(w + i * T.Bytes), s);
        return s;
    }
}
