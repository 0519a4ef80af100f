using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace SsmGen.Checkpoints;

/// <summary>
/// Saves and loads a model's parameters as a safetensors file: one F32 tensor per entry of
/// <see cref="ISsmModel.ParameterTable"/>, under its PyTorch-style name and shape.
/// </summary>
public static class Checkpoint
{
    /// <summary>
    /// Writes every tensor of <paramref name="model"/>'s parameter table as F32, in table order. The file
    /// is replaced atomically: written to a temporary file in the same directory, flushed to disk, then
    /// moved over <paramref name="path"/>.
    /// </summary>
    public static void Save(ISsmModel model, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var parameters = model.Parameters.ToArray();
        var tensors = new List<(string, int[], ReadOnlyMemory<float>)>(model.ParameterTable.Count);
        foreach (var p in model.ParameterTable)
        {
            CheckRange(p, parameters.Length);
            tensors.Add((p.Name, p.Shape, new ReadOnlyMemory<float>(parameters, p.Offset, p.Length)));
        }
        Write(path, tensors, metadata);
    }

    /// <summary>Reads the file at <paramref name="path"/> and loads it into <paramref name="model"/> (see <see cref="Load(ISsmModel, SafetensorsFile)"/>).</summary>
    public static void Load(ISsmModel model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        Load(model, SafetensorsFile.Read(path));
    }

    /// <summary>
    /// Sets <paramref name="model"/>'s parameters from <paramref name="file"/>. Everything is checked first:
    /// every table tensor is present with the same shape and a floating-point dtype, and the file holds no
    /// other tensors. On any problem a <see cref="InvalidDataException"/> lists them all and the model is
    /// left unchanged. One convention of Hugging Face Mamba checkpoints is followed: a file saved with tied
    /// embeddings has no <c>lm_head.weight</c>, which is then read from <c>backbone.embeddings.weight</c>.
    /// </summary>
    public static void Load(ISsmModel model, SafetensorsFile file)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(file);
        var table = model.ParameterTable;
        var problems = new List<string>();
        var expected = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in table)
        {
            CheckRange(p, model.Parameters.Length);
            expected.Add(p.Name);
            if (!file.TryGet(SourceName(p, table, file), out var t))
            {
                problems.Add($"missing tensor '{p.Name}' (shape {p.ShapeText})");
                continue;
            }
            if (!t.Shape.AsSpan().SequenceEqual(p.Shape))
                problems.Add($"tensor '{p.Name}' has shape {t.ShapeText}, the model expects {p.ShapeText}");
            if (!t.DType.IsConvertibleToFloat32())
                problems.Add($"tensor '{p.Name}' has dtype {t.DType}, which does not convert to float");
        }
        var extra = file.Tensors.Where(t => !expected.Contains(t.Name)).Select(t => $"'{t.Name}'").ToList();
        if (extra.Count > 0)
            problems.Add($"unexpected tensor{(extra.Count > 1 ? "s" : "")} not in the model: {string.Join(", ", extra)}");
        if (problems.Count > 0)
            throw new InvalidDataException($"The checkpoint does not fit {model.GetType().Name}: {string.Join("; ", problems)}.");

        // Convert into a copy; the model is written only once everything has been read.
        var staged = model.Parameters.ToArray();
        foreach (var p in table) file.ReadAsFloat32(SourceName(p, table, file), staged.AsSpan(p.Offset, p.Length));
        staged.CopyTo(model.Parameters);
    }

    private const string TiedHead = "lm_head.weight", Embeddings = "backbone.embeddings.weight";

    /// <summary>The file tensor that fills <paramref name="p"/>: its own name, or the embeddings for a tied lm_head.</summary>
    private static string SourceName(ParameterInfo p, IReadOnlyList<ParameterInfo> table, SafetensorsFile file) =>
        p.Name == TiedHead && !file.TryGet(TiedHead, out _) && file.TryGet(Embeddings, out var e)
            && table.Any(q => q.Name == Embeddings) && e.Shape.AsSpan().SequenceEqual(p.Shape)
            ? Embeddings : p.Name;

    /// <summary>
    /// Writes F32 tensors to a safetensors file, in the given order with contiguous offsets; the header is
    /// padded with spaces so the data starts at a multiple of 8 bytes. Atomic like <see cref="Save"/>.
    /// </summary>
    public static void Write(string path, IEnumerable<(string Name, int[] Shape, ReadOnlyMemory<float> Data)> tensors,
                             IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        byte[] header = BuildHeader(list, metadata);

        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath) ?? throw new ArgumentException($"'{path}' has no directory.", nameof(path));
        string temp = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
                stream.Write(length);
                stream.Write(header);
                foreach (var (_, _, data) in list) WriteFloats(stream, data.Span);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, fullPath, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    private static byte[] BuildHeader(List<(string Name, int[] Shape, ReadOnlyMemory<float> Data)> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(SafetensorsFile.MetadataKey);
                foreach (var (key, value) in metadata)
                {
                    ArgumentNullException.ThrowIfNull(value, $"metadata[{key}]");
                    json.WriteString(key, value);
                }
                json.WriteEndObject();
            }
            var names = new HashSet<string>(StringComparer.Ordinal);
            long offset = 0;
            foreach (var (name, shape, data) in tensors)
            {
                ArgumentNullException.ThrowIfNull(name);
                ArgumentNullException.ThrowIfNull(shape);
                if (name == SafetensorsFile.MetadataKey) throw new ArgumentException($"A tensor cannot be called '{SafetensorsFile.MetadataKey}'.", nameof(tensors));
                if (!names.Add(name)) throw new ArgumentException($"Tensor '{name}' is given more than once.", nameof(tensors));
                long count = 1;
                foreach (int d in shape)
                {
                    if (d < 0) throw new ArgumentException($"Tensor '{name}' has a negative dimension in shape [{string.Join(", ", shape)}].", nameof(tensors));
                    count = checked(count * d);
                }
                if (count != data.Length)
                    throw new ArgumentException($"Tensor '{name}' has shape [{string.Join(", ", shape)}] ({count} elements) but {data.Length} values.", nameof(tensors));
                json.WriteStartObject(name);
                json.WriteString("dtype", "F32");
                json.WriteStartArray("shape");
                foreach (int d in shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                offset += 4L * data.Length;
                json.WriteNumberValue(offset);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        int padded = (buffer.WrittenCount + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    private static void WriteFloats(Stream stream, ReadOnlySpan<float> values)
    {
        if (BitConverter.IsLittleEndian)
        {
            stream.Write(MemoryMarshal.AsBytes(values));
            return;
        }
        Span<byte> chunk = stackalloc byte[4096];
        while (!values.IsEmpty)
        {
            int n = Math.Min(values.Length, chunk.Length / 4);
            for (int i = 0; i < n; i++) BinaryPrimitives.WriteSingleLittleEndian(chunk[(4 * i)..], values[i]);
            stream.Write(chunk[..(4 * n)]);
            values = values[n..];
        }
    }

    private static void CheckRange(ParameterInfo p, int parameterCount)
    {
        if (p.Offset < 0 || p.Length < 0 || p.Offset > parameterCount - p.Length)
            throw new InvalidOperationException($"Parameter '{p.Name}' at offset {p.Offset} with {p.Length} elements lies outside the {parameterCount} parameters.");
    }
}
