using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SsmGen.Numerics;

/// <summary>
/// A compact copy of the matrices a model's streaming step multiplies by (<see cref="ISsmModel.StepMatrices"/>; rows
/// of a matrix's last dimension), where each token reads every weight once and the bytes moved set the time. Biases,
/// norms, embeddings and the SSM's own parameters (A, Δ's bias, D, the convolution) are not in it: they stay fp32.
/// Products widen the weights to fp32 in registers and accumulate in fp32 with the fp32 step's kernel
/// (<see cref="StepProducts"/>: each output the same arithmetic whatever the number of rows), so a stream's outputs
/// still do not depend on which other streams share its step. .NET 10 exposes no AVX-512 BF16 dot product and no
/// 512-bit VNNI, so both formats take this widening path. <see cref="WeightFormat.Int8Dynamic"/> also quantizes each
/// product's input rows and multiplies bytes by bytes (<see cref="QuantizedProducts"/>, AVX-VNNI where the CPU has it).
/// </summary>
public sealed unsafe class CompactWeights
{
    private readonly record struct Matrix(int Start, int Length, int RowLength, int Data, int Scales);

    private readonly Matrix[] _matrices; // sorted by Start
    private readonly ushort[] _bf16 = [];
    private readonly sbyte[] _int8 = [];
    private readonly float[] _scales = [];
    private readonly int[] _rowSums = []; // Int8Dynamic: Σ of each int8 row, for the unsigned inputs' offset

    [ThreadStatic] private static byte[]? s_quantizedRows;
    [ThreadStatic] private static int s_quantizedFirst;
    [ThreadStatic] private static float[]? s_rowScales;

    public WeightFormat Format { get; }
    /// <summary>Bytes of the compact copy (weights, scales and row sums).</summary>
    public long Bytes => 2L * _bf16.Length + _int8.Length + 4L * _scales.Length + 4L * _rowSums.Length;

    /// <summary>Converts the tensors named <paramref name="matrices"/> (each of rank ≥ 2 in <paramref name="table"/>) of <paramref name="parameters"/>.</summary>
    public CompactWeights(ReadOnlySpan<float> parameters, IReadOnlyList<ParameterInfo> table, IEnumerable<string> matrices, WeightFormat format)
    {
        if (format is not (WeightFormat.BFloat16 or WeightFormat.Int8 or WeightFormat.Int8Dynamic))
            throw new ArgumentOutOfRangeException(nameof(format), format, "A compact copy is BFloat16, Int8 or Int8Dynamic (Float32 reads the parameters themselves).");
        Format = format;
        var found = new List<Matrix>();
        int data = 0, scales = 0, elementsPerLine = format == WeightFormat.BFloat16 ? CacheLines.Bytes / 2 : CacheLines.Bytes;
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
            else
            {
                data = (data + elementsPerLine - 1) / elementsPerLine * elementsPerLine; // each matrix starts a cache line
                found.Add(new Matrix(t.Offset, length, rowLength, data, scales));
            }
            data += length;
            scales += length / rowLength;
        }
        // Pinned arrays, so that the offset of their first cache-aligned element stays true: a 32-byte load that
        // straddles two lines costs two, and where the GC put an array decided it (±20% on a step) before.
        int first;
        if (format == WeightFormat.BFloat16) (_bf16, first) = CacheLines.PinnedArray<ushort>(data);
        else { (_int8, first) = CacheLines.PinnedArray<sbyte>(data); _scales = new float[scales]; }
        _matrices = [.. found.Select(m => m with { Data = m.Data + first })];
        if (format == WeightFormat.Int8Dynamic) _rowSums = new int[scales];
        foreach (var m in _matrices)
        {
            var w = parameters.Slice(m.Start, m.Length);
            if (!TensorPrimitives.IsFiniteAll(w)) throw new ArgumentException($"The tensor at offset {m.Start} holds a value that is not finite; it cannot be made compact.", nameof(parameters));
            if (format == WeightFormat.BFloat16)
                for (int i = 0; i < w.Length; i++) _bf16[m.Data + i] = ToBFloat16(w[i]);
            else
                for (int r = 0; r < m.Length / m.RowLength; r++)
                {
                    var q = _int8.AsSpan(m.Data + r * m.RowLength, m.RowLength);
                    _scales[m.Scales + r] = QuantizeRow(w.Slice(r * m.RowLength, m.RowLength), q);
                    if (format == WeightFormat.Int8Dynamic) foreach (sbyte v in q) _rowSums[m.Scales + r] += v;
                }
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
        if (m.RowLength != inF)
            throw new InvalidOperationException($"A product reads rows of {inF} weights at offset {offset}, but the matrix at {m.Start} has rows of {m.RowLength}.");
        int first = offset - m.Start;
        if (Format == WeightFormat.Int8Dynamic)
        {
            QuantizedForward(x, m, first, b, y, rows, inF, outF);
            return;
        }
        fixed (float* px = x, py = y)
        {
            if (!Vector512.IsHardwareAccelerated || !Avx512F.IsSupported)
                for (int r = 0; r < rows; r++)
                    for (int o = 0; o < outF; o++)
                    {
                        float s = 0;
                        for (int i = 0; i < inF; i++) s = MathF.FusedMultiplyAdd(px[(long)r * inF + i], Weight(offset + o * inF + i), s);
                        py[(long)r * outF + o] = s;
                    }
            else if (Format == WeightFormat.BFloat16)
                fixed (ushort* w = &_bf16[m.Data + first]) StepProducts.Run<BFloat16Rows>(px, (byte*)w, py, rows, inF, outF);
            else
                fixed (sbyte* w = &_int8[m.Data + first]) StepProducts.Run<Int8Rows>(px, (byte*)w, py, rows, inF, outF);
        }
        for (int r = 0; r < rows; r++)
        {
            var yr = y.Slice(r * outF, outF);
            if (Format == WeightFormat.Int8) TensorPrimitives.Multiply(yr, _scales.AsSpan(m.Scales + first / inF, outF), yr);
            if (!b.IsEmpty) TensorPrimitives.Add(yr, b[..outF], yr);
        }
    }

    /// <summary>Int8Dynamic: each x row quantized (into buffers kept per thread), then bytes times bytes.</summary>
    private void QuantizedForward(ReadOnlySpan<float> x, Matrix m, int first, ReadOnlySpan<float> b, Span<float> y, int rows, int inF, int outF)
    {
        if (s_quantizedRows is null || s_quantizedRows.Length - s_quantizedFirst < rows * inF) (s_quantizedRows, s_quantizedFirst) = CacheLines.PinnedArray<byte>(Math.Max(rows * inF, 4096));
        if (s_rowScales is null || s_rowScales.Length < rows) s_rowScales = new float[Math.Max(rows, 64)];
        int firstRow = m.Scales + first / inF;
        fixed (float* px = x, py = y, ws = &_scales[firstRow], xs = s_rowScales)
        fixed (byte* u = &s_quantizedRows[s_quantizedFirst])
        fixed (sbyte* w = &_int8[m.Data + first])
        fixed (int* wsum = &_rowSums[firstRow])
        {
            for (int r = 0; r < rows; r++) xs[r] = QuantizedProducts.QuantizeRow(px + (long)r * inF, inF, u + (long)r * inF);
            QuantizedProducts.Run(u, xs, w, ws, wsum, py, rows, inF, outF);
        }
        if (!b.IsEmpty)
            for (int r = 0; r < rows; r++) TensorPrimitives.Add(y.Slice(r * outF, outF), b[..outF], y.Slice(r * outF, outF));
    }
}
