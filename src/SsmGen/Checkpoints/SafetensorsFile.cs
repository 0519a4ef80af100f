using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace SsmGen.Checkpoints;

/// <summary>Element types of the safetensors format that this reader accepts.</summary>
public enum SafetensorsDType
{
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    BOOL,
}

/// <summary>Facts about <see cref="SafetensorsDType"/> values.</summary>
public static class SafetensorsDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int SizeInBytes(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F64 or SafetensorsDType.I64 => 8,
        SafetensorsDType.F32 or SafetensorsDType.I32 => 4,
        SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.I16 => 2,
        SafetensorsDType.I8 or SafetensorsDType.U8 or SafetensorsDType.BOOL => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a safetensors dtype."),
    };

    /// <summary>True for the floating-point types <see cref="SafetensorsFile.ReadAsFloat32"/> converts.</summary>
    public static bool IsConvertibleToFloat32(this SafetensorsDType dtype) =>
        dtype is SafetensorsDType.F32 or SafetensorsDType.F64 or SafetensorsDType.F16 or SafetensorsDType.BF16;

    /// <summary>The dtype spelled as in a header ("F32", "BF16", ...); case-sensitive, like the format.</summary>
    public static bool TryParse(string text, out SafetensorsDType dtype)
    {
        switch (text)
        {
            case "F32": dtype = SafetensorsDType.F32; return true;
            case "F64": dtype = SafetensorsDType.F64; return true;
            case "F16": dtype = SafetensorsDType.F16; return true;
            case "BF16": dtype = SafetensorsDType.BF16; return true;
            case "I64": dtype = SafetensorsDType.I64; return true;
            case "I32": dtype = SafetensorsDType.I32; return true;
            case "I16": dtype = SafetensorsDType.I16; return true;
            case "I8": dtype = SafetensorsDType.I8; return true;
            case "U8": dtype = SafetensorsDType.U8; return true;
            case "BOOL": dtype = SafetensorsDType.BOOL; return true;
            default: dtype = default; return false;
        }
    }
}

/// <summary>One tensor of a safetensors file.</summary>
/// <param name="Name">Key in the header.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Row-major shape (empty for a scalar).</param>
/// <param name="Begin">First byte, relative to the start of the data buffer.</param>
/// <param name="End">One past the last byte, relative to the start of the data buffer.</param>
public sealed record TensorEntry(string Name, SafetensorsDType DType, int[] Shape, long Begin, long End)
{
    /// <summary>Number of elements (product of the shape; 1 for a scalar).</summary>
    public long ElementCount => Shapes.ElementCount(Shape);

    /// <summary>Shape written as <c>[a, b]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// A parsed, fully validated safetensors file held in memory: an 8-byte little-endian header length N,
/// N bytes of UTF-8 JSON, then the data buffer. Parsing checks every entry against the format (dtypes,
/// shapes, sizes, offsets that tile the data buffer exactly, no overlaps, no holes, no trailing bytes) and
/// this reader's bounds (<see cref="MaxHeaderLength"/>, <see cref="MaxTensorCount"/>, <see cref="MaxRank"/>),
/// and reports any problem as a <see cref="InvalidDataException"/> naming it, in a message of bounded length.
/// </summary>
public sealed class SafetensorsFile
{
    /// <summary>Largest header accepted, in bytes.</summary>
    public const long MaxHeaderLength = 100_000_000;

    /// <summary>
    /// Most tensors a header may declare. Real checkpoints hold hundreds (a 64-layer Mamba has about 640); without a
    /// bound, a 100 MB header of empty tensors costs about a gigabyte of entries before any other check fails.
    /// </summary>
    public const int MaxTensorCount = 100_000;

    /// <summary>Most dimensions a tensor's shape may have (NumPy's limit).</summary>
    public const int MaxRank = 64;

    /// <summary>Longest name or value from a file that a message quotes in full; longer ones are cut.</summary>
    private const int QuotedLength = 80;

    /// <summary>The key of the optional string→string metadata object.</summary>
    public const string MetadataKey = "__metadata__";

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly byte[] _bytes;
    private readonly long _dataStart;
    private readonly TensorEntry[] _tensors;
    private readonly Dictionary<string, TensorEntry> _byName;

    private SafetensorsFile(byte[] bytes, long dataStart, TensorEntry[] tensors, Dictionary<string, string> metadata)
    {
        _bytes = bytes;
        _dataStart = dataStart;
        _tensors = tensors;
        _byName = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
        foreach (var t in tensors) _byName.Add(t.Name, t);
        Metadata = metadata;
    }

    /// <summary>Tensors in header order.</summary>
    public IReadOnlyList<TensorEntry> Tensors => _tensors;

    /// <summary>The <c>__metadata__</c> object; empty when the header has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Offset of the data buffer from the start of the file (8 + header length).</summary>
    public long DataStart => _dataStart;

    /// <summary>The tensor called <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">There is no such tensor.</exception>
    public TensorEntry this[string name] =>
        TryGet(name, out var entry) ? entry : throw new KeyNotFoundException($"The safetensors file has no tensor {Quote(name)}.");

    /// <summary>The tensor called <paramref name="name"/>, if there is one.</summary>
    public bool TryGet(string name, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out TensorEntry entry) =>
        _byName.TryGetValue(name, out entry);

    /// <summary>Reads and validates the file at <paramref name="path"/>.</summary>
    public static SafetensorsFile Read(string path) => Parse(File.ReadAllBytes(path));

    /// <summary>
    /// Validates <paramref name="bytes"/> as a safetensors file. The array is kept, not copied: the data of
    /// the tensors is read from it later.
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes are not a valid safetensors file.</exception>
    public static SafetensorsFile Parse(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length < 8)
            throw new InvalidDataException($"safetensors: the file is {bytes.Length} bytes long, shorter than the 8-byte header length.");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength > MaxHeaderLength)
            throw new InvalidDataException($"safetensors: header length {headerLength} exceeds the limit of {MaxHeaderLength} bytes.");
        long dataStart = 8 + (long)headerLength;
        if (dataStart > bytes.Length)
            throw new InvalidDataException($"safetensors: header length {headerLength} extends past the end of the file ({bytes.Length} bytes).");
        var header = new ReadOnlyMemory<byte>(bytes, 8, (int)headerLength);
        long dataLength = bytes.Length - dataStart;

        try
        {
            StrictUtf8.GetCharCount(header.Span);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"safetensors: the header is not valid UTF-8 (at byte {e.Index} of the header).", e);
        }

        JsonDocument doc;
        try
        {
            CheckTensorCount(header.Span);
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"safetensors: the header is not valid JSON ({e.Message})", e);
        }

        using (doc)
        {
            try
            {
                var (tensors, metadata) = ReadHeader(doc.RootElement, dataLength);
                return new SafetensorsFile(bytes, dataStart, tensors, metadata);
            }
            catch (InvalidOperationException e)
            {
                // JsonElement accessors throw this for text they cannot represent (e.g. a lone surrogate escape).
                throw new InvalidDataException($"safetensors: the header holds JSON text that cannot be read ({e.Message})", e);
            }
        }
    }

    /// <summary>
    /// Counts the top-level keys with a forward-only reader, before any document or entry is built, and stops at the
    /// first one over <see cref="MaxTensorCount"/>.
    /// </summary>
    private static void CheckTensorCount(ReadOnlySpan<byte> header)
    {
        var reader = new Utf8JsonReader(header, new JsonReaderOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow });
        int tensors = 0;
        while (reader.Read())
        {
            if (reader.TokenType != JsonTokenType.PropertyName || reader.CurrentDepth != 1 || reader.ValueTextEquals(MetadataKey)) continue;
            if (++tensors > MaxTensorCount)
                throw new InvalidDataException($"safetensors: the header declares more than {MaxTensorCount:N0} tensors, the most this reader accepts.");
        }
    }

    /// <summary>
    /// A name from a file, quoted for a message: cut to its first <see cref="QuotedLength"/> characters when longer,
    /// so a header's megabyte-long key makes a short message.
    /// </summary>
    internal static string Quote(string text) =>
        text.Length <= QuotedLength ? $"'{text}'" : $"'{text[..Cut(text)]}…' ({text.Length:N0} characters)";

    /// <summary>Raw JSON text from a file for a message, cut like <see cref="Quote"/> but not quoted.</summary>
    private static string Shorten(string text) =>
        text.Length <= QuotedLength ? text : $"{text[..Cut(text)]}… ({text.Length:N0} characters)";

    private static int Cut(string text) => char.IsHighSurrogate(text[QuotedLength - 1]) ? QuotedLength - 1 : QuotedLength;

    private static (TensorEntry[] Tensors, Dictionary<string, string> Metadata) ReadHeader(JsonElement root, long dataLength)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"safetensors: the header must be a JSON object, found {Describe(root.ValueKind)}.");

        var seen = new HashSet<string>(StringComparer.Ordinal);
        var tensors = new List<TensorEntry>();
        Dictionary<string, string>? metadata = null;
        foreach (var property in root.EnumerateObject())
        {
            string name = property.Name;
            if (!seen.Add(name))
                throw new InvalidDataException($"safetensors: the header has the key {Quote(name)} more than once.");
            if (name == MetadataKey) metadata = ReadMetadata(property.Value);
            else tensors.Add(ReadEntry(name, property.Value, dataLength));
        }

        CheckLayout(tensors, dataLength);
        return (tensors.ToArray(), metadata ?? new Dictionary<string, string>(StringComparer.Ordinal));
    }

    private static Dictionary<string, string> ReadMetadata(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"safetensors: '{MetadataKey}' must be a JSON object of strings, found {Describe(value.ValueKind)}.");
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in value.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"safetensors: '{MetadataKey}' entry {Quote(p.Name)} must be a string, found {Describe(p.Value.ValueKind)}.");
            if (!metadata.TryAdd(p.Name, p.Value.GetString()!))
                throw new InvalidDataException($"safetensors: '{MetadataKey}' has the key {Quote(p.Name)} more than once.");
        }
        return metadata;
    }

    private static TensorEntry ReadEntry(string name, JsonElement value, long dataLength)
    {
        string where = $"safetensors: tensor {Quote(name)}";
        if (value.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{where}: the entry must be a JSON object, found {Describe(value.ValueKind)}.");

        JsonElement? dtypeElement = null, shapeElement = null, offsetsElement = null;
        foreach (var p in value.EnumerateObject())
        {
            switch (p.Name)
            {
                case "dtype": Set(ref dtypeElement, p); break;
                case "shape": Set(ref shapeElement, p); break;
                case "data_offsets": Set(ref offsetsElement, p); break;
                default: throw new InvalidDataException($"{where}: unexpected field {Quote(p.Name)} (expected dtype, shape, data_offsets).");
            }
        }
        void Set(ref JsonElement? slot, JsonProperty p)
        {
            if (slot is not null) throw new InvalidDataException($"{where}: the field {Quote(p.Name)} appears more than once.");
            slot = p.Value;
        }

        if (dtypeElement is not { } dt) throw new InvalidDataException($"{where}: missing 'dtype'.");
        if (shapeElement is not { } sh) throw new InvalidDataException($"{where}: missing 'shape'.");
        if (offsetsElement is not { } off) throw new InvalidDataException($"{where}: missing 'data_offsets'.");

        if (dt.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"{where}: 'dtype' must be a string, found {Describe(dt.ValueKind)}.");
        string dtypeText = dt.GetString()!;
        if (!SafetensorsDTypes.TryParse(dtypeText, out var dtype))
            throw new InvalidDataException($"{where}: unknown dtype {Quote(dtypeText)} (supported: {string.Join(", ", Enum.GetNames<SafetensorsDType>())}).");

        if (sh.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{where}: 'shape' must be an array of non-negative integers, found {Describe(sh.ValueKind)}.");
        if (sh.GetArrayLength() > MaxRank)
            throw new InvalidDataException($"{where}: the shape has {sh.GetArrayLength():N0} dimensions; this reader accepts at most {MaxRank}.");
        var shape = new int[sh.GetArrayLength()];
        int k = 0;
        long elements = 1;
        bool overflow = false;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim))
                throw new InvalidDataException($"{where}: shape entry {k} must be an integer, found {(d.ValueKind == JsonValueKind.Number ? Shorten(d.GetRawText()) : Describe(d.ValueKind))}.");
            if (dim < 0)
                throw new InvalidDataException($"{where}: shape entry {k} is negative ({dim}).");
            if (dim > int.MaxValue)
                throw new InvalidDataException($"{where}: shape entry {k} ({dim}) is larger than {int.MaxValue}.");
            shape[k++] = (int)dim;
            if (dim == 0) elements = 0;
            else if (elements != 0 && !overflow)
            {
                long next = unchecked(elements * dim);
                if (next / dim != elements) overflow = true; else elements = next;
            }
        }
        if (overflow && elements != 0)
            throw new InvalidDataException($"{where}: the element count of shape [{string.Join(", ", shape)}] overflows.");
        int size = dtype.SizeInBytes();
        if (elements > long.MaxValue / size)
            throw new InvalidDataException($"{where}: the byte size of shape [{string.Join(", ", shape)}] with dtype {dtype} overflows.");
        long byteSize = elements * size;

        if (off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new InvalidDataException($"{where}: 'data_offsets' must be an array of two non-negative integers [begin, end].");
        var offsets = new long[2];
        for (int i = 0; i < 2; i++)
        {
            var o = off[i];
            if (o.ValueKind != JsonValueKind.Number || !o.TryGetInt64(out offsets[i]) || offsets[i] < 0)
                throw new InvalidDataException($"{where}: 'data_offsets' must be an array of two non-negative integers [begin, end], found {Shorten(off.GetRawText())}.");
        }
        long begin = offsets[0], end = offsets[1];
        if (begin > end)
            throw new InvalidDataException($"{where}: data_offsets [{begin}, {end}] have begin after end.");
        if (end > dataLength)
            throw new InvalidDataException($"{where}: data_offsets [{begin}, {end}] end beyond the data buffer ({dataLength} bytes).");
        if (end - begin != byteSize)
            throw new InvalidDataException(
                $"{where}: shape [{string.Join(", ", shape)}] with dtype {dtype} needs {byteSize} bytes, but data_offsets [{begin}, {end}] hold {end - begin}.");
        return new TensorEntry(name, dtype, shape, begin, end);
    }

    // The data buffer must be tiled exactly: sorted by offsets, the first tensor starts at 0, each one
    // starts where the previous ends, and the last one ends at the end of the file.
    private static void CheckLayout(List<TensorEntry> tensors, long dataLength)
    {
        var sorted = tensors.OrderBy(t => t.Begin).ThenBy(t => t.End).ToArray();
        long position = 0;
        TensorEntry? previous = null;
        foreach (var t in sorted)
        {
            if (t.Begin < position)
                throw new InvalidDataException(
                    $"safetensors: tensor {Quote(t.Name)} at [{t.Begin}, {t.End}] overlaps tensor {Quote(previous!.Name)} at [{previous.Begin}, {previous.End}].");
            if (t.Begin > position)
                throw new InvalidDataException(previous is null
                    ? $"safetensors: hole in the data buffer: bytes [0, {t.Begin}) before tensor {Quote(t.Name)} belong to no tensor."
                    : $"safetensors: hole in the data buffer: bytes [{position}, {t.Begin}) between tensors {Quote(previous.Name)} and {Quote(t.Name)} belong to no tensor.");
            position = t.End;
            previous = t;
        }
        if (position != dataLength)
            throw new InvalidDataException(previous is null
                ? $"safetensors: {dataLength} trailing bytes in the data buffer, which holds no tensor."
                : $"safetensors: {dataLength - position} trailing bytes after the last tensor {Quote(previous.Name)} (data buffer is {dataLength} bytes, tensors end at {position}).");
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };

    /// <summary>The raw little-endian bytes of a tensor.</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var t = this[name];
        return new ReadOnlySpan<byte>(_bytes, (int)(_dataStart + t.Begin), (int)(t.End - t.Begin));
    }

    /// <summary>
    /// Converts tensor <paramref name="name"/> (F32, F64, F16 or BF16) to float into <paramref name="destination"/>,
    /// which must hold exactly its element count.
    /// </summary>
    /// <exception cref="KeyNotFoundException">There is no such tensor.</exception>
    /// <exception cref="NotSupportedException">The tensor's dtype is not a floating-point type.</exception>
    /// <exception cref="ArgumentException">The destination length differs from the element count.</exception>
    public void ReadAsFloat32(string name, Span<float> destination)
    {
        var t = this[name];
        if (!t.DType.IsConvertibleToFloat32())
            throw new NotSupportedException($"Tensor {Quote(name)} has dtype {t.DType}; only F32, F64, F16 and BF16 convert to float.");
        if (destination.Length != t.ElementCount)
            throw new ArgumentException($"Tensor {Quote(name)} has {t.ElementCount} elements (shape {t.ShapeText}), but the destination holds {destination.Length}.", nameof(destination));
        var src = GetBytes(name);
        switch (t.DType)
        {
            case SafetensorsDType.F32:
                if (BitConverter.IsLittleEndian) MemoryMarshal.Cast<byte, float>(src).CopyTo(destination);
                else for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadSingleLittleEndian(src[(4 * i)..]);
                break;
            case SafetensorsDType.F64:
                for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(src[(8 * i)..]);
                break;
            case SafetensorsDType.F16:
                for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(src[(2 * i)..]);
                break;
            case SafetensorsDType.BF16:
                // bfloat16 is the upper half of an IEEE single.
                for (int i = 0; i < destination.Length; i++)
                    destination[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]) << 16);
                break;
        }
    }
}
