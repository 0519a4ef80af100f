using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SsmGen.Numerics;

/// <summary>
/// A compact copy of the matrices a model's streaming step multiplies by (<see cref="ISsmModel.StepMatrices"/>; rows
/// of a matrix's last dimension), where each token reads every weight once and the bytes moved set the time. Biases,
/// norms, embeddings and the SSM's own parameters (A, Δ's bias, D, the convolution) are not in it: they stay fp32. Products widen the weights to fp32 in registers and accumulate in fp32 exactly as
/// <see cref="Gemm.StepForward"/> does (16-lane FMA chains, the same order for every row), so a stream's outputs
/// still do not depend on which other streams share its step. .NET 10 exposes no AVX-512 BF16 dot product and no
/// 512-bit VNNI, so both formats take this portable widening path.
/// </summary>
public sealed unsafe class CompactWeights
{
    private readonly record struct Matrix(int Start, int Length, int RowLength, int Data, int Scales);

    private readonly Matrix[] _matrices; // sorted by Start
    private readonly ushort[] _bf16 = [];
    private readonly sbyte[] _int8 = [];
    private readonly float[] _scales = [];

    public WeightFormat Format { get; }
    /// <summary>Bytes of the compact copy (weights and scales).</summary>
    public long Bytes => 2L * _bf16.Length + _int8.Length + 4L * _scales.Length;

    /// <summary>Converts the tensors named <paramref name="matrices"/> (each of rank ≥ 2 in <paramref name="table"/>) of <paramref name="parameters"/>.</summary>
    public CompactWeights(ReadOnlySpan<float> parameters, IReadOnlyList<ParameterInfo> table, IEnumerable<string> matrices, WeightFormat format)
    {
        if (format is not (WeightFormat.BFloat16 or WeightFormat.Int8))
            throw new ArgumentOutOfRangeException(nameof(format), format, "A compact copy is BFloat16 or Int8 (Float32 reads the parameters themselves).");
        Format = format;
        var found = new List<Matrix>();
        int data = 0, scales = 0;
        var named = new HashSet<string>(matrices, StringComparer.Ordinal);
        foreach (var name in named.Where(n => !table.Any(t => t.Name == n)))
            throw new ArgumentException($"No tensor '{name}' in the parameter table.", nameof(matrices));
        foreach (var t in table.Where(t => named.Contains(t.Name)).OrderBy(t => t.Offset))
        {
            if (t.Shape.Length < 2) throw new ArgumentException($"'{t.Name}' has shape [{string.Join(", ", t.Shape)}]; a compact matrix has rank ≥ 2.", nameof(matrices));
            int length = t.Shape.Aggregate(1, (a, d) => a * d), rowLength = t.Shape[^1];
            if (length == 0) continue;
            // Matrices back to back with rows of one length are one region: a product may read across them (the
            // delta rule's q, k and v projections are one product).
            if (found.Count > 0 && found[^1] is var last && last.Start + last.Length == t.Offset && last.RowLength == rowLength)
                found[^1] = last with { Length = last.Length + length };
            else found.Add(new Matrix(t.Offset, length, rowLength, data, scales));
            data += length;
            scales += length / rowLength;
        }
        _matrices = [.. found];
        if (format == WeightFormat.BFloat16) _bf16 = new ushort[data];
        else { _int8 = new sbyte[data]; _scales = new float[scales]; }
        foreach (var m in _matrices)
        {
            var w = parameters.Slice(m.Start, m.Length);
            if (!TensorPrimitives.IsFiniteAll(w)) throw new ArgumentException($"The tensor at offset {m.Start} holds a value that is not finite; it cannot be made compact.", nameof(parameters));
            if (format == WeightFormat.BFloat16)
                for (int i = 0; i < w.Length; i++) _bf16[m.Data + i] = ToBFloat16(w[i]);
            else
                for (int r = 0; r < m.Length / m.RowLength; r++)
                    _scales[m.Scales + r] = QuantizeRow(w.Slice(r * m.RowLength, m.RowLength), _int8.AsSpan(m.Data + r * m.RowLength, m.RowLength));
        }
    }

    /// <summary>The bfloat16 nearest to <paramref name="value"/> (ties to even), as its 16 bits.</summary>
    public static ushort ToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }

    /// <summary>The float whose upper half is <paramref name="bits"/>.</summary>
    public static float FromBFloat16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>Row → int8 (round to nearest even of w / scale, in [−127, 127]); returns the scale, max |w| / 127 (0 for a zero row).</summary>
    public static float QuantizeRow(ReadOnlySpan<float> row, Span<sbyte> q)
    {
        float max = MathF.Abs(TensorPrimitives.MaxMagnitude(row)), scale = max / 127f;
        for (int i = 0; i < row.Length; i++)
            q[i] = scale == 0 ? (sbyte)0 : (sbyte)Math.Clamp(Math.Round(row[i] / (double)scale, MidpointRounding.ToEven), -127, 127);
        return scale;
    }

    /// <summary>The weight the compact copy holds for parameter <paramref name="index"/> (for tests and error reports).</summary>
    public float Weight(int index)
    {
        var m = Find(index, 1, 1);
        int i = index - m.Start;
        return Format == WeightFormat.BFloat16 ? FromBFloat16(_bf16[m.Data + i]) : _int8[m.Data + i] * _scales[m.Scales + i / m.RowLength];
    }

    private Matrix Find(int offset, int inF, int outF)
    {
        int lo = 0, hi = _matrices.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            var m = _matrices[mid];
            if (offset < m.Start) hi = mid - 1;
            else if (offset >= m.Start + m.Length) lo = mid + 1;
            else
            {
                if ((offset - m.Start) % m.RowLength != 0 || (inF != 1 && inF != m.RowLength) || offset + (long)outF * inF > m.Start + m.Length)
                    throw new InvalidOperationException($"A product reads {outF} rows of {inF} weights at offset {offset}, which are not whole rows of the matrix at {m.Start} (rows of {m.RowLength}).");
                return m;
            }
        }
        throw new InvalidOperationException($"No matrix of the compact copy holds the weights at offset {offset}: the step reads a matrix its StepMatrices do not name.");
    }

    /// <summary>
    /// y (rows, out) = x (rows, in) · Wᵀ + b, W the compact rows at parameter offset <paramref name="offset"/>; as
    /// <see cref="Gemm.StepForward"/>, each output the same arithmetic whatever the number of rows.
    /// </summary>
    public void StepForward(ReadOnlySpan<float> x, int offset, ReadOnlySpan<float> b, Span<float> y, int rows, int inF, int outF)
    {
        if (x.Length < rows * inF || y.Length < rows * outF || (!b.IsEmpty && b.Length < outF))
            throw new ArgumentException($"x, y or b is shorter than {rows} rows of {inF} → {outF} need.");
        var m = Find(offset, inF, outF);
        int first = offset - m.Start;
        if (Format == WeightFormat.BFloat16)
            fixed (ushort* w = &_bf16[m.Data + first]) Products<BFloat16Rows>((byte*)w, x, y, rows, inF, outF);
        else
            fixed (sbyte* w = &_int8[m.Data + first]) Products<Int8Rows>((byte*)w, x, y, rows, inF, outF);
        for (int r = 0; r < rows; r++)
        {
            var yr = y.Slice(r * outF, outF);
            if (Format == WeightFormat.Int8) TensorPrimitives.Multiply(yr, _scales.AsSpan(m.Scales + first / inF, outF), yr);
            if (!b.IsEmpty) TensorPrimitives.Add(yr, b[..outF], yr);
        }
    }

    /// <summary>Reads weights of one format: 16 at a time widened to fp32 lanes, or one.</summary>
    private interface IRows
    {
        static abstract int Bytes { get; }
        static abstract Vector512<float> Load16(byte* w);
        static abstract float Load1(byte* w);
    }

    private readonly struct BFloat16Rows : IRows
    {
        public static int Bytes => 2;
        public static Vector512<float> Load16(byte* w) => (Vector512.WidenLower(Vector256.Load((ushort*)w).ToVector512Unsafe()) << 16).AsSingle();
        public static float Load1(byte* w) => FromBFloat16(*(ushort*)w);
    }

    private readonly struct Int8Rows : IRows
    {
        public static int Bytes => 1;
        public static Vector512<float> Load16(byte* w) => Vector512.ConvertToSingle(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)w)));
        public static float Load1(byte* w) => *(sbyte*)w;
    }

    private static void Products<T>(byte* w, ReadOnlySpan<float> x, Span<float> y, int rows, int inF, int outF) where T : struct, IRows
    {
        long ldw = (long)inF * T.Bytes;
        fixed (float* px = x, py = y)
        {
            if (!Vector512.IsHardwareAccelerated || !Avx512F.IsSupported)
            {
                for (int r = 0; r < rows; r++)
                    for (int o = 0; o < outF; o++)
                    {
                        float s = 0;
                        for (int i = 0; i < inF; i++) s = MathF.FusedMultiplyAdd(px[(long)r * inF + i], T.Load1(w + o * ldw + i * T.Bytes), s);
                        py[(long)r * outF + o] = s;
                    }
                return;
            }
            int oo = 0;
            for (; oo + 8 <= outF; oo += 8)
            {
                int r = 0;
                for (; r + 4 <= rows; r += 4)
                {
                    Dot4x4<T>(px + (long)r * inF, w + oo * ldw, inF, py + (long)r * outF + oo, outF);
                    Dot4x4<T>(px + (long)r * inF, w + (oo + 4) * ldw, inF, py + (long)r * outF + oo + 4, outF);
                }
                for (; r < rows; r++)
                {
                    Dot1x4<T>(px + (long)r * inF, w + oo * ldw, inF, py + (long)r * outF + oo);
                    Dot1x4<T>(px + (long)r * inF, w + (oo + 4) * ldw, inF, py + (long)r * outF + oo + 4);
                }
            }
            for (; oo + 4 <= outF; oo += 4)
            {
                int r = 0;
                for (; r + 4 <= rows; r += 4) Dot4x4<T>(px + (long)r * inF, w + oo * ldw, inF, py + (long)r * outF + oo, outF);
                for (; r < rows; r++) Dot1x4<T>(px + (long)r * inF, w + oo * ldw, inF, py + (long)r * outF + oo);
            }
            for (; oo < outF; oo++)
                for (int r = 0; r < rows; r++) py[(long)r * outF + oo] = Dot1<T>(px + (long)r * inF, w + oo * ldw, inF);
        }
    }

    /// <summary>One output: 16 lanes of FMAs over the widened weights, their sum, then the scalar tail — the order every tile keeps.</summary>
    private static float Dot1<T>(float* x, byte* w, int n) where T : struct, IRows
    {
        var a = Vector512<float>.Zero;
        int i = 0;
        for (; i + 16 <= n; i += 16) a = Vector512.FusedMultiplyAdd(Vector512.Load(x + i), T.Load16(w + i * T.Bytes), a);
        float s = Vector512.Sum(a);
        for (; i < n; i++) s = MathF.FusedMultiplyAdd(x[i], T.Load1(w + i * T.Bytes), s);
        return s;
    }

    /// <summary>One row of x against four weight rows: four chains, each output summed as <see cref="Dot1{T}"/> sums it.</summary>
    private static void Dot1x4<T>(float* x, byte* w, int n, float* y) where T : struct, IRows
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        long ldw = (long)n * T.Bytes;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            var v = Vector512.Load(x + i);
            byte* wi = w + i * T.Bytes;
            a0 = Vector512.FusedMultiplyAdd(v, T.Load16(wi), a0);
            a1 = Vector512.FusedMultiplyAdd(v, T.Load16(wi + ldw), a1);
            a2 = Vector512.FusedMultiplyAdd(v, T.Load16(wi + 2 * ldw), a2);
            a3 = Vector512.FusedMultiplyAdd(v, T.Load16(wi + 3 * ldw), a3);
        }
        Finish<T>(x, w, n, i, Vector512.Sum(a0), Vector512.Sum(a1), Vector512.Sum(a2), Vector512.Sum(a3), y);
    }

    /// <summary>Four rows of x against four weight rows (each widened once for the four rows): sixteen chains.</summary>
    private static void Dot4x4<T>(float* x, byte* w, int n, float* y, int ldy) where T : struct, IRows
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
        Finish<T>(x, w, n, i, Vector512.Sum(a00), Vector512.Sum(a01), Vector512.Sum(a02), Vector512.Sum(a03), y);
        Finish<T>(x1, w, n, i, Vector512.Sum(a10), Vector512.Sum(a11), Vector512.Sum(a12), Vector512.Sum(a13), y + ldy);
        Finish<T>(x2, w, n, i, Vector512.Sum(a20), Vector512.Sum(a21), Vector512.Sum(a22), Vector512.Sum(a23), y + 2 * ldy);
        Finish<T>(x3, w, n, i, Vector512.Sum(a30), Vector512.Sum(a31), Vector512.Sum(a32), Vector512.Sum(a33), y + 3 * ldy);
    }

    /// <summary>The scalar tail [i, n) of one x row against four weight rows, then the four outputs stored.</summary>
    private static void Finish<T>(float* x, byte* w, int n, int i, float s0, float s1, float s2, float s3, float* y) where T : struct, IRows
    {
        long ldw = (long)n * T.Bytes;
        for (; i < n; i++)
        {
            float xi = x[i];
            byte* wi = w + i * T.Bytes;
            s0 = MathF.FusedMultiplyAdd(xi, T.Load1(wi), s0); s1 = MathF.FusedMultiplyAdd(xi, T.Load1(wi + ldw), s1);
            s2 = MathF.FusedMultiplyAdd(xi, T.Load1(wi + 2 * ldw), s2); s3 = MathF.FusedMultiplyAdd(xi, T.Load1(wi + 3 * ldw), s3);
        }
        y[0] = s0; y[1] = s1; y[2] = s2; y[3] = s3;
    }
}
