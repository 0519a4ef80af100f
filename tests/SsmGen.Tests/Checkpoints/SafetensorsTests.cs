using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using SsmGen.Checkpoints;

namespace SsmGen.Tests.Checkpoints;

public sealed class SafetensorsTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ssmgen-safetensors-" + Guid.NewGuid().ToString("N"));

    public SafetensorsTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private string PathOf(string name) => Path.Combine(_dir, name);

    // ---- helpers -------------------------------------------------------------------------------

    /// <summary>8-byte little-endian length, the header bytes, the data.</summary>
    private static byte[] Raw(byte[] header, byte[]? data = null, ulong? declaredLength = null)
    {
        data ??= [];
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredLength ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    private static byte[] Raw(string json, byte[]? data = null, ulong? declaredLength = null) =>
        Raw(Encoding.UTF8.GetBytes(json), data, declaredLength);

    private static string Entry(string name, string dtype, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    private static InvalidDataException ParseFails(byte[] bytes) =>
        Assert.Throws<InvalidDataException>(() => SafetensorsFile.Parse(bytes));

    private static TinyRealMean Model(ulong seed)
    {
        var m = new TinyRealMean(1, 4);
        m.Initialize(seed);
        return m;
    }

    private static int[] Bits(ReadOnlySpan<float> values)
    {
        var bits = new int[values.Length];
        for (int i = 0; i < bits.Length; i++) bits[i] = BitConverter.SingleToInt32Bits(values[i]);
        return bits;
    }

    /// <summary>The model's tensors as Write takes them.</summary>
    private static List<(string Name, int[] Shape, ReadOnlyMemory<float> Data)> TableTensors(ISsmModel model)
    {
        var p = model.Parameters.ToArray();
        return model.ParameterTable.Select(t => (t.Name, t.Shape, new ReadOnlyMemory<float>(p, t.Offset, t.Length))).ToList();
    }

    /// <summary>Load must fail with a InvalidDataException containing <paramref name="expected"/> and leave the model as it was.</summary>
    private static InvalidDataException LoadFailsUnchanged(ISsmModel model, string path, params string[] expected)
    {
        var before = Bits(model.Parameters);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(model, path));
        foreach (var s in expected) Assert.Contains(s, e.Message);
        Assert.Equal(before, Bits(model.Parameters));
        return e;
    }

    // ---- writing and round trips ---------------------------------------------------------------

    [Fact]
    public void SaveThenLoadGivesBitIdenticalParameters()
    {
        var source = Model(3);
        string path = PathOf("tiny.safetensors");
        Checkpoint.Save(source, path);

        var target = Model(99);
        Assert.NotEqual(Bits(source.Parameters), Bits(target.Parameters));
        Checkpoint.Load(target, path);
        Assert.Equal(Bits(source.Parameters), Bits(target.Parameters));
    }

    [Fact]
    public void TokenModelRoundTripsThroughAParsedFile()
    {
        var source = new VectorTokens(1, 4);
        source.Initialize(5);
        string path = PathOf("tokens.safetensors");
        Checkpoint.Save(source, path);

        var target = new VectorTokens(1, 4);
        target.Initialize(6);
        Checkpoint.Load(target, SafetensorsFile.Read(path));
        Assert.Equal(Bits(source.Parameters), Bits(target.Parameters));
    }

    [Fact]
    public void SavedFileHoldsEveryTableTensorAsF32InTableOrderWithContiguousOffsets()
    {
        var model = Model(3);
        string path = PathOf("tiny.safetensors");
        Checkpoint.Save(model, path);
        var file = SafetensorsFile.Read(path);

        Assert.Equal(model.ParameterTable.Select(p => p.Name), file.Tensors.Select(t => t.Name));
        long offset = 0;
        foreach (var (p, t) in model.ParameterTable.Zip(file.Tensors))
        {
            Assert.Equal(SafetensorsDType.F32, t.DType);
            Assert.Equal(p.Shape, t.Shape);
            Assert.Equal(offset, t.Begin);
            Assert.Equal(offset + 4L * p.Length, t.End);
            offset = t.End;
            var values = new float[p.Length];
            file.ReadAsFloat32(p.Name, values);
            Assert.Equal(Bits(model.Parameters.Slice(p.Offset, p.Length)), Bits(values));
        }
        Assert.Empty(file.Metadata);
    }

    [Fact]
    public void MetadataRoundTrips()
    {
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["step"] = "1200", ["note"] = "ünïcode \"quoted\" \\ <tag>" };
        string path = PathOf("meta.safetensors");
        Checkpoint.Save(Model(3), path, metadata);
        var file = SafetensorsFile.Read(path);
        Assert.Equal(metadata.OrderBy(kv => kv.Key), file.Metadata.OrderBy(kv => kv.Key));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    public void WrittenBytesStartWithTheLittleEndianHeaderLengthAndDataIsEightByteAligned(int metadataLength)
    {
        // Metadata values of eight lengths: the unpadded JSON ends at every remainder modulo 8.
        var model = Model(3);
        string value = new('b', metadataLength);
        string path = PathOf("tiny.safetensors");
        Checkpoint.Save(model, path, new Dictionary<string, string> { ["a"] = value });
        byte[] bytes = File.ReadAllBytes(path);

        ulong n = (ulong)bytes[0] | (ulong)bytes[1] << 8 | (ulong)bytes[2] << 16 | (ulong)bytes[3] << 24
                | (ulong)bytes[4] << 32 | (ulong)bytes[5] << 40 | (ulong)bytes[6] << 48 | (ulong)bytes[7] << 56;
        Assert.Equal(0UL, n % 8);
        Assert.Equal(8 + (long)n + 4L * model.Parameters.Length, bytes.Length);

        string header = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.StartsWith("{", header);
        string unpadded = header.TrimEnd(' ');
        Assert.EndsWith("}", unpadded);
        Assert.InRange(header.Length - unpadded.Length, 0, 7);
        using var doc = JsonDocument.Parse(header);
        Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
        Assert.Equal(value, doc.RootElement.GetProperty("__metadata__").GetProperty("a").GetString());
        var first = doc.RootElement.GetProperty(model.ParameterTable[0].Name);
        Assert.Equal("F32", first.GetProperty("dtype").GetString());
        Assert.Equal(0, first.GetProperty("data_offsets")[0].GetInt64());

        // The first value of the data buffer is the first parameter, little-endian.
        Assert.Equal(BitConverter.SingleToInt32Bits(model.Parameters[0]), BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8 + (int)n)));
    }

    [Fact]
    public void SaveLeavesNoTemporaryFileAndReplacesAnExistingCheckpoint()
    {
        string path = PathOf("model.safetensors");
        File.WriteAllText(path, "an old, unrelated file");
        var model = Model(3);
        Checkpoint.Save(model, path);
        Assert.Equal(["model.safetensors"], Directory.GetFiles(_dir).Select(Path.GetFileName));

        var second = Model(4);
        Checkpoint.Save(second, path);
        Assert.Equal(["model.safetensors"], Directory.GetFiles(_dir).Select(Path.GetFileName));
        var loaded = Model(5);
        Checkpoint.Load(loaded, path);
        Assert.Equal(Bits(second.Parameters), Bits(loaded.Parameters));
    }

    [Fact]
    public void FailedSaveDeletesItsTemporaryFile()
    {
        // The destination is a directory, so the final move fails after the temporary file was written.
        string path = PathOf("taken");
        Directory.CreateDirectory(path);
        Assert.ThrowsAny<IOException>(() => Checkpoint.Save(Model(3), path));
        Assert.Empty(Directory.GetFiles(_dir));
        Assert.True(Directory.Exists(path));
    }

    [Fact]
    public void WriteRejectsInconsistentTensorsBeforeCreatingAnyFile()
    {
        string path = PathOf("bad.safetensors");
        var e = Assert.Throws<ArgumentException>(() => Checkpoint.Write(path, [("w", [3], new float[2])]));
        Assert.Contains("'w'", e.Message);
        e = Assert.Throws<ArgumentException>(() => Checkpoint.Write(path, [("w", [1], new float[1]), ("w", [1], new float[1])]));
        Assert.Contains("more than once", e.Message);
        Assert.Throws<ArgumentException>(() => Checkpoint.Write(path, [("__metadata__", [1], new float[1])]));
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void WriteHandlesScalarsAndEmptyTensors()
    {
        string path = PathOf("edge.safetensors");
        Checkpoint.Write(path, [("scalar", [], new float[] { 2.5f }), ("empty", [0, 3], ReadOnlyMemory<float>.Empty), ("v", [2], new float[] { -1f, 4f })]);
        var file = SafetensorsFile.Read(path);
        Assert.Equal(1, file["scalar"].ElementCount);
        Assert.Equal(0, file["empty"].ElementCount);
        Assert.Equal(file["empty"].Begin, file["empty"].End);
        var v = new float[2];
        file.ReadAsFloat32("v", v);
        Assert.Equal([-1f, 4f], v);
        var s = new float[1];
        file.ReadAsFloat32("scalar", s);
        Assert.Equal(2.5f, s[0]);
    }

    // ---- reading hand-built files --------------------------------------------------------------

    [Fact]
    public void HandBuiltFileWithF64F16AndBF16ReadsTheExpectedFloats()
    {
        var data = new byte[24 + 8 + 8 + 4];
        BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(0), 0.1);
        BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(8), -3.5);
        BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(16), 1e300);
        ushort[] f16 = [0x3C00, 0xC000, 0x3800, 0x7BFF];   // 1, -2, 0.5, 65504
        for (int i = 0; i < 4; i++) BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(24 + 2 * i), f16[i]);
        ushort[] bf16 = [0x3F80, 0xC000, 0x4049, 0x8000];  // 1, -2, 3.140625, -0
        for (int i = 0; i < 4; i++) BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(32 + 2 * i), bf16[i]);
        data[40] = 0x00; data[41] = 0x00; data[42] = 0xC0; data[43] = 0x3F;   // F32 1.5, little-endian by hand

        string json = "{" + Entry("d", "F64", "[3]", 0, 24) + "," + Entry("h", "F16", "[2,2]", 24, 32) + ","
                    + Entry("b", "BF16", "[4]", 32, 40) + "," + Entry("f", "F32", "[]", 40, 44) + "}   ";
        var file = SafetensorsFile.Parse(Raw(json, data));

        Assert.Equal(["d", "h", "b", "f"], file.Tensors.Select(t => t.Name));
        Assert.Equal(SafetensorsDType.F16, file["h"].DType);
        Assert.Equal([2, 2], file["h"].Shape);

        var d = new float[3];
        file.ReadAsFloat32("d", d);
        Assert.Equal([0.1f, -3.5f, float.PositiveInfinity], d);
        var h = new float[4];
        file.ReadAsFloat32("h", h);
        Assert.Equal([1f, -2f, 0.5f, 65504f], h);
        var b = new float[4];
        file.ReadAsFloat32("b", b);
        Assert.Equal([1f, -2f, 3.140625f, 0f], b);
        Assert.True(float.IsNegative(b[3]));
        var f = new float[1];
        file.ReadAsFloat32("f", f);
        Assert.Equal(1.5f, f[0]);
    }

    [Fact]
    public void ReadAsFloat32RejectsIntegerTypesWrongLengthsAndUnknownNames()
    {
        string json = "{" + Entry("i", "I32", "[2]", 0, 8) + "," + Entry("f", "F32", "[2]", 8, 16) + "}";
        var file = SafetensorsFile.Parse(Raw(json, new byte[16]));
        Assert.Equal(SafetensorsDType.I32, file["i"].DType);
        var e = Assert.Throws<NotSupportedException>(() => file.ReadAsFloat32("i", new float[2]));
        Assert.Contains("'i'", e.Message);
        Assert.Contains("I32", e.Message);
        Assert.Throws<ArgumentException>(() => file.ReadAsFloat32("f", new float[3]));
        Assert.Throws<KeyNotFoundException>(() => file.ReadAsFloat32("nope", new float[2]));
        Assert.False(file.TryGet("nope", out _));
    }

    [Fact]
    public void DTypeSizesMatchTheFormat()
    {
        Assert.Equal(8, SafetensorsDType.F64.SizeInBytes());
        Assert.Equal(4, SafetensorsDType.F32.SizeInBytes());
        Assert.Equal(2, SafetensorsDType.BF16.SizeInBytes());
        Assert.Equal(2, SafetensorsDType.F16.SizeInBytes());
        Assert.Equal(8, SafetensorsDType.I64.SizeInBytes());
        Assert.Equal(2, SafetensorsDType.I16.SizeInBytes());
        Assert.Equal(1, SafetensorsDType.U8.SizeInBytes());
        Assert.Equal(1, SafetensorsDType.BOOL.SizeInBytes());
    }

    [Fact]
    public void EmptyHeaderAndPaddedHeaderAreValid()
    {
        var empty = SafetensorsFile.Parse(Raw("{}"));
        Assert.Empty(empty.Tensors);
        Assert.Empty(empty.Metadata);
        var padded = SafetensorsFile.Parse(Raw("{" + Entry("x", "U8", "[3]", 0, 3) + "}        ", [1, 2, 3]));
        Assert.Equal(3, padded["x"].End);
    }

    // ---- malformed files -----------------------------------------------------------------------

    private byte[] ValidFileBytes()
    {
        string path = PathOf("valid.safetensors");
        Checkpoint.Write(path, [("a", [2, 3], new float[6]), ("b", [4], new float[] { 1, 2, 3, 4 })]);
        return File.ReadAllBytes(path);
    }

    [Fact]
    public void TruncatedFilesAreRejectedAtEveryCut()
    {
        byte[] bytes = ValidFileBytes();
        int dataStart = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        SafetensorsFile.Parse(bytes);   // the uncut file is fine

        foreach (int cut in new[] { 0, 1, 7 })
            Assert.Contains("shorter than the 8-byte header length", ParseFails(bytes[..cut]).Message);
        foreach (int cut in new[] { 8, 9, dataStart / 2, dataStart - 1 })
            Assert.Contains("extends past the end of the file", ParseFails(bytes[..cut]).Message);
        // Inside the data: the last tensor no longer fits.
        foreach (int cut in new[] { dataStart + 25, bytes.Length - 1 })
        {
            var e = ParseFails(bytes[..cut]);
            Assert.Contains("tensor 'b'", e.Message);
            Assert.Contains("end beyond the data buffer", e.Message);
        }
        // Cut exactly where the data starts: both tensors lie beyond it.
        Assert.Contains("end beyond the data buffer", ParseFails(bytes[..dataStart]).Message);
    }

    [Fact]
    public void HugeHeaderLengthIsRejected()
    {
        var e = ParseFails(Raw("{}", declaredLength: 200_000_000));
        Assert.Contains("200000000", e.Message);
        Assert.Contains("exceeds the limit", e.Message);
        Assert.Contains("exceeds the limit", ParseFails(Raw("{}", declaredLength: ulong.MaxValue)).Message);
    }

    [Fact]
    public void HeaderLengthPastTheEndOfTheFileIsRejected()
    {
        var e = ParseFails(Raw("{}", new byte[10], declaredLength: 1000));
        Assert.Contains("header length 1000 extends past the end of the file (20 bytes)", e.Message);
    }

    [Fact]
    public void GarbageIsRejectedAsInvalidData()
    {
        Assert.Contains("exceeds the limit", ParseFails([0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 1, 2, 3]).Message);
        Assert.Contains("not valid JSON", ParseFails(Raw([0x00, 0x13, 0x7f, 0x22, 0x5b])).Message);
        Assert.Contains("not valid JSON", ParseFails(Raw("not json at all")).Message);
        Assert.Contains("not valid JSON", ParseFails(Raw("{\"a\":")).Message);
        Assert.Contains("not valid JSON", ParseFails(Raw("")).Message);
        Assert.Contains("not valid JSON", ParseFails(Raw("{\"a\":1,}")).Message);
    }

    [Fact]
    public void RandomCorruptionNeverLeaksARawException()
    {
        byte[] valid = ValidFileBytes();
        var rng = new Random(12345);
        int rejected = 0;
        for (int trial = 0; trial < 2000; trial++)
        {
            byte[] bytes;
            if (trial % 4 == 0)
            {
                bytes = new byte[rng.Next(0, 64)];
                rng.NextBytes(bytes);
                if (bytes.Length >= 8 && trial % 8 == 0) BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)rng.Next(0, bytes.Length - 7));
            }
            else
            {
                bytes = (byte[])valid.Clone();
                for (int k = rng.Next(1, 4); k > 0; k--) bytes[rng.Next(0, Math.Min(bytes.Length, 200))] = (byte)rng.Next(256);
            }
            try { SafetensorsFile.Parse(bytes); }
            catch (InvalidDataException) { rejected++; }
        }
        Assert.True(rejected > 1000, $"only {rejected} corrupted inputs were rejected");
    }

    [Fact]
    public void InvalidUtf8InTheHeaderIsRejected()
    {
        byte[] header = Encoding.UTF8.GetBytes("{\"a?\":{}}");
        header[3] = 0xFF;   // a byte that never occurs in UTF-8, inside the key
        Assert.Contains("not valid UTF-8", ParseFails(Raw(header)).Message);
        // An overlong encoding of '/'.
        Assert.Contains("not valid UTF-8", ParseFails(Raw([(byte)'{', (byte)'"', 0xC0, 0xAF, (byte)'"', (byte)':', (byte)'1', (byte)'}'])).Message);
    }

    [Fact]
    public void LoneSurrogateEscapeIsRejected()
    {
        var e = ParseFails(Raw("{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}"));
        Assert.Contains("cannot be read", e.Message);
    }

    [Theory]
    [InlineData("[]", "must be a JSON object, found an array")]
    [InlineData("[{\"dtype\":\"F32\"}]", "must be a JSON object, found an array")]
    [InlineData("\"x\"", "must be a JSON object, found a string")]
    [InlineData("42", "must be a JSON object, found a number")]
    [InlineData("null", "must be a JSON object, found null")]
    public void HeaderThatIsNotAnObjectIsRejected(string json, string expected)
    {
        Assert.Contains(expected, ParseFails(Raw(json)).Message);
    }

    [Fact]
    public void DuplicateKeysAreRejected()
    {
        string json = "{" + Entry("w", "F32", "[1]", 0, 4) + "," + Entry("w", "F32", "[1]", 4, 8) + "}";
        Assert.Contains("the key 'w' more than once", ParseFails(Raw(json, new byte[8])).Message);
        // The same key spelled with an escape is still the same key.
        json = "{" + Entry("w", "F32", "[1]", 0, 4) + "," + Entry("\\u0077", "F32", "[1]", 4, 8) + "}";
        Assert.Contains("the key 'w' more than once", ParseFails(Raw(json, new byte[8])).Message);
        json = "{\"__metadata__\":{},\"__metadata__\":{}}";
        Assert.Contains("'__metadata__' more than once", ParseFails(Raw(json)).Message);
        json = "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}";
        Assert.Contains("the key 'k' more than once", ParseFails(Raw(json)).Message);
        json = "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        Assert.Contains("tensor 'w': the field 'dtype' appears more than once", ParseFails(Raw(json, new byte[4])).Message);
    }

    [Fact]
    public void OverlappingTensorsAreRejected()
    {
        string json = "{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 4, 12) + "}";
        var e = ParseFails(Raw(json, new byte[12]));
        Assert.Contains("tensor 'b' at [4, 12] overlaps tensor 'a' at [0, 8]", e.Message);
        // Two tensors on the same bytes.
        json = "{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 0, 8) + "}";
        Assert.Contains("overlaps", ParseFails(Raw(json, new byte[8])).Message);
        // An empty tensor inside another.
        json = "{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("e", "F32", "[0]", 4, 4) + "}";
        Assert.Contains("tensor 'e' at [4, 4] overlaps tensor 'a' at [0, 8]", ParseFails(Raw(json, new byte[8])).Message);
    }

    [Fact]
    public void HolesAreRejected()
    {
        string json = "{" + Entry("a", "F32", "[1]", 0, 4) + "," + Entry("b", "F32", "[1]", 8, 12) + "}";
        Assert.Contains("hole in the data buffer: bytes [4, 8) between tensors 'a' and 'b'", ParseFails(Raw(json, new byte[12])).Message);
        json = "{" + Entry("b", "F32", "[1]", 4, 8) + "}";
        Assert.Contains("hole in the data buffer: bytes [0, 4) before tensor 'b'", ParseFails(Raw(json, new byte[8])).Message);
    }

    [Fact]
    public void TrailingBytesAreRejected()
    {
        string json = "{" + Entry("a", "F32", "[1]", 0, 4) + "}";
        SafetensorsFile.Parse(Raw(json, new byte[4]));
        Assert.Contains("3 trailing bytes after the last tensor 'a'", ParseFails(Raw(json, new byte[7])).Message);
        Assert.Contains("5 trailing bytes", ParseFails(Raw("{}", new byte[5])).Message);
    }

    [Fact]
    public void MisSizedTensorIsRejected()
    {
        string json = "{" + Entry("w", "F32", "[3]", 0, 8) + "}";
        var e = ParseFails(Raw(json, new byte[8]));
        Assert.Contains("tensor 'w': shape [3] with dtype F32 needs 12 bytes, but data_offsets [0, 8] hold 8", e.Message);
        json = "{" + Entry("h", "BF16", "[2,2]", 0, 16) + "}";
        Assert.Contains("needs 8 bytes", ParseFails(Raw(json, new byte[16])).Message);
    }

    [Theory]
    [InlineData("F8_E4M3")]
    [InlineData("f32")]
    [InlineData("FLOAT")]
    [InlineData("")]
    public void UnknownDTypeIsRejected(string dtype)
    {
        string json = "{" + Entry("w", dtype, "[1]", 0, 4) + "}";
        Assert.Contains($"tensor 'w': unknown dtype '{dtype}'", ParseFails(Raw(json, new byte[4])).Message);
    }

    [Theory]
    [InlineData("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", "tensor 'w': missing 'dtype'")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", "tensor 'w': missing 'shape'")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", "tensor 'w': missing 'data_offsets'")]
    [InlineData("{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", "tensor 'w': 'dtype' must be a string, found a number")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", "tensor 'w': 'shape' must be an array")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", "tensor 'w': shape entry 0 must be an integer, found a string")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", "tensor 'w': shape entry 0 must be an integer, found 1.5")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,-2],\"data_offsets\":[0,4]}}", "tensor 'w': shape entry 1 is negative (-2)")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[3000000000],\"data_offsets\":[0,4]}}", "tensor 'w': shape entry 0 (3000000000) is larger than")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2000000000,2000000000,2000000000],\"data_offsets\":[0,4]}}", "tensor 'w': the element count of shape [2000000000, 2000000000, 2000000000] overflows")]
    [InlineData("{\"w\":{\"dtype\":\"F64\",\"shape\":[2000000000,2000000000],\"data_offsets\":[0,4]}}", "tensor 'w': the byte size of shape [2000000000, 2000000000] with dtype F64 overflows")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", "tensor 'w': 'data_offsets' must be an array of two")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", "tensor 'w': 'data_offsets' must be an array of two")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"begin\":0}}}", "tensor 'w': 'data_offsets' must be an array of two")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", "tensor 'w': 'data_offsets' must be an array of two non-negative integers [begin, end], found [-4,0]")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}", "tensor 'w': 'data_offsets' must be an array of two")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", "tensor 'w': 'data_offsets' must be an array of two")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}", "tensor 'w': 'data_offsets' must be an array of two")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", "tensor 'w': data_offsets [4, 0] have begin after end")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "tensor 'w': data_offsets [0, 8] end beyond the data buffer (4 bytes)")]
    [InlineData("{\"w\":[\"F32\",[1],[0,4]]}", "tensor 'w': the entry must be a JSON object, found an array")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", "tensor 'w': unexpected field 'extra'")]
    public void MalformedEntriesAreRejectedNamingTheTensor(string json, string expected)
    {
        Assert.Contains(expected, ParseFails(Raw(json, new byte[4])).Message);
    }

    [Theory]
    [InlineData("{\"__metadata__\":[]}", "'__metadata__' must be a JSON object of strings, found an array")]
    [InlineData("{\"__metadata__\":\"x\"}", "'__metadata__' must be a JSON object of strings, found a string")]
    [InlineData("{\"__metadata__\":{\"step\":12}}", "'__metadata__' entry 'step' must be a string, found a number")]
    [InlineData("{\"__metadata__\":{\"a\":null}}", "'__metadata__' entry 'a' must be a string, found null")]
    [InlineData("{\"__metadata__\":{\"a\":{}}}", "'__metadata__' entry 'a' must be a string, found an object")]
    public void BadMetadataIsRejected(string json, string expected)
    {
        Assert.Contains(expected, ParseFails(Raw(json)).Message);
    }

    [Fact]
    public void ReadOfAMissingFileThrowsFileNotFound()
    {
        Assert.Throws<FileNotFoundException>(() => SafetensorsFile.Read(PathOf("absent.safetensors")));
    }

    // ---- Load validation: the model is never changed by a failed load -------------------------

    [Fact]
    public void LoadWithAMissingTensorNamesItAndLeavesTheModelUnchanged()
    {
        var tensors = TableTensors(Model(3));
        string missing = tensors[2].Name;
        tensors.RemoveAt(2);
        string path = PathOf("missing.safetensors");
        Checkpoint.Write(path, tensors);
        LoadFailsUnchanged(Model(7), path, $"missing tensor '{missing}'");
    }

    [Fact]
    public void LoadWithAWrongShapeNamesItAndLeavesTheModelUnchanged()
    {
        var model = Model(7);
        var tensors = TableTensors(Model(3));
        var last = tensors[^1];
        var p = model.ParameterTable[^1];
        Assert.Single(p.Shape);
        tensors[^1] = (last.Name, [1, p.Length], last.Data);   // same element count, different shape
        string path = PathOf("shape.safetensors");
        Checkpoint.Write(path, tensors);
        LoadFailsUnchanged(model, path, $"tensor '{p.Name}' has shape [1, {p.Length}], the model expects {p.ShapeText}");
    }

    [Fact]
    public void LoadWithExtraTensorsNamesThemAndLeavesTheModelUnchanged()
    {
        var tensors = TableTensors(Model(3));
        tensors.Add(("surprise", [2], new float[] { 1, 2 }));
        tensors.Add(("layers.9.mixer.D", [4], new float[4]));
        string path = PathOf("extra.safetensors");
        Checkpoint.Write(path, tensors);
        LoadFailsUnchanged(Model(7), path, "unexpected tensors not in the model: 'surprise', 'layers.9.mixer.D'");
    }

    [Fact]
    public void LoadReportsEveryProblemAtOnce()
    {
        var tensors = TableTensors(Model(3));
        string missing = tensors[0].Name;
        tensors.RemoveAt(0);
        tensors.Add(("surprise", [1], new float[1]));
        string path = PathOf("several.safetensors");
        Checkpoint.Write(path, tensors);
        LoadFailsUnchanged(Model(7), path, $"missing tensor '{missing}'", "unexpected tensor not in the model: 'surprise'");
    }

    [Fact]
    public void LoadOfANonFloatTensorLeavesTheModelUnchanged()
    {
        // A hand-built file holding the right names and shapes, with one tensor stored as I32.
        var model = Model(7);
        var table = model.ParameterTable;
        var json = new StringBuilder("{");
        long offset = 0;
        for (int i = 0; i < table.Count; i++)
        {
            if (i > 0) json.Append(',');
            string dtype = i == 1 ? "I32" : "F32";
            json.Append(Entry(table[i].Name, dtype, "[" + string.Join(",", table[i].Shape) + "]", offset, offset + 4L * table[i].Length));
            offset += 4L * table[i].Length;
        }
        json.Append('}');
        string path = PathOf("int.safetensors");
        File.WriteAllBytes(path, Raw(json.ToString(), new byte[offset]));
        LoadFailsUnchanged(model, path, $"tensor '{table[1].Name}' has dtype I32, which does not convert to float");
    }

    [Fact]
    public void LoadOfAMalformedFileLeavesTheModelUnchanged()
    {
        string path = PathOf("valid.safetensors");
        Checkpoint.Save(Model(3), path);
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^1]);
        LoadFailsUnchanged(Model(7), path, "end beyond the data buffer");
    }

    [Fact]
    public void LoadConvertsOtherFloatTypes()
    {
        // Every tensor stored as F64: loading converts it to the nearest float, which is the original.
        var source = Model(3);
        var table = source.ParameterTable;
        var json = new StringBuilder("{");
        long offset = 0;
        var data = new byte[8 * source.Parameters.Length];
        for (int i = 0; i < table.Count; i++)
        {
            if (i > 0) json.Append(',');
            json.Append(Entry(table[i].Name, "F64", "[" + string.Join(",", table[i].Shape) + "]", offset, offset + 8L * table[i].Length));
            for (int j = 0; j < table[i].Length; j++)
                BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan((int)offset + 8 * j), source.Parameters[table[i].Offset + j]);
            offset += 8L * table[i].Length;
        }
        json.Append('}');
        var target = Model(7);
        Checkpoint.Load(target, SafetensorsFile.Parse(Raw(json.ToString(), data)));
        Assert.Equal(Bits(source.Parameters), Bits(target.Parameters));
    }
}
