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
    /// moved over <paramref name="path"/>. Temporaries that killed saves of the same path left behind are
    /// deleted first (see <see cref="Write"/>).
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
        var extra = file.Tensors.Where(t => !expected.Contains(t.Name)).Select(t => SafetensorsFile.Quote(t.Name)).ToList();
        if (extra.Count > 0)
            problems.Add($"unexpected tensor{(extra.Count > 1 ? "s" : "")} not in the model: {FirstFew(extra, ListedExtras, ", ", "more")}");
        if (problems.Count > 0)
            throw new InvalidDataException($"The checkpoint does not fit {model.GetType().Name}: {FirstFew(problems, ListedProblems, "; ", "more problems")}.");

        // Convert into a copy; the model is written only once everything has been read.
        var staged = model.Parameters.ToArray();
        foreach (var p in table) file.ReadAsFloat32(SourceName(p, table, file), staged.AsSpan(p.Offset, p.Length));
        staged.CopyTo(model.Parameters);
        if (model.StepWeights != WeightFormat.Float32) model.UseStepWeights(model.StepWeights); // the step's compact copy follows the new weights
    }

    private const string TiedHead = "lm_head.weight", Embeddings = "backbone.embeddings.weight";

    // A file may hold 100,000 unexpected tensors: the message names a few and counts the rest.
    private const int ListedExtras = 5, ListedProblems = 10;

    private static string FirstFew(List<string> items, int shown, string separator, string rest) =>
        items.Count <= shown ? string.Join(separator, items) : $"{string.Join(separator, items.Take(shown))}{separator}and {items.Count - shown:N0} {rest}";

    /// <summary>The file tensor that fills <paramref name="p"/>: its own name, or the embeddings for a tied lm_head.</summary>
    private static string SourceName(ParameterInfo p, IReadOnlyList<ParameterInfo> table, SafetensorsFile file) =>
        p.Name == TiedHead && !file.TryGet(TiedHead, out _) && file.TryGet(Embeddings, out var e)
            && table.Any(q => q.Name == Embeddings) && e.Shape.AsSpan().SequenceEqual(p.Shape)
            ? Embeddings : p.Name;

    /// <summary>
    /// Writes F32 tensors to a safetensors file, in the given order with contiguous offsets; the header is
    /// padded with spaces so the data starts at a multiple of 8 bytes. Atomic like <see cref="Save"/>: the
    /// bytes go to <c>.{name}.{guid}.tmp</c> beside <paramref name="path"/>, which is then renamed into place.
    /// A save killed before the rename leaves its temporary behind; each save first deletes the temporaries of
    /// the same path that are stale: last written more than <see cref="StaleTemporaryAge"/> ago and not locked
    /// (a save holds an exclusive lock on its temporary until it closes it, and the system drops the lock of a
    /// killed process), so a save still running elsewhere keeps its file.
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
        string fileName = Path.GetFileName(fullPath);
        DeleteStaleTemporaries(directory, fileName);
        string temp = Path.Combine(directory, TemporaryPrefix(fileName) + Guid.NewGuid().ToString("N") + TemporarySuffix);
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

    /// <summary>
    /// How long a temporary must have gone unwritten before another save of the same path may delete it. The lock
    /// alone protects a running save, except in the instant between creating its file and locking it, and on file
    /// systems without locks; a running save writes its file continuously, so ten quiet minutes mean it is gone.
    /// </summary>
    public static readonly TimeSpan StaleTemporaryAge = TimeSpan.FromMinutes(10);

    private const string TemporarySuffix = ".tmp";
    private static readonly SearchValues<char> GuidDigits = SearchValues.Create("0123456789abcdef");
    private static string TemporaryPrefix(string fileName) => "." + fileName + ".";

    /// <summary>
    /// Deletes the stale temporaries of <paramref name="fileName"/> in <paramref name="directory"/>: exactly the names
    /// <c>.{fileName}.{32 hex digits}.tmp</c>, old enough, and lockable. Best effort: a file it cannot inspect or
    /// delete stays, and the save goes on.
    /// </summary>
    private static void DeleteStaleTemporaries(string directory, string fileName)
    {
        string prefix = TemporaryPrefix(fileName);
        IEnumerable<string> candidates;
        // Temporaries start with a dot: hidden files on Unix, which the default enumeration options skip.
        var options = new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = true, MatchType = MatchType.Simple };
        try { candidates = Directory.EnumerateFiles(directory, "*" + TemporarySuffix, options).ToList(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return; }
        var cutoff = DateTime.UtcNow - StaleTemporaryAge;
        foreach (string candidate in candidates)
        {
            string name = Path.GetFileName(candidate);
            if (!name.StartsWith(prefix, StringComparison.Ordinal) || name.Length != prefix.Length + 32 + TemporarySuffix.Length
                || !name.EndsWith(TemporarySuffix, StringComparison.Ordinal) || name.AsSpan(prefix.Length, 32).ContainsAnyExcept(GuidDigits)) continue;
            try
            {
                if (File.GetLastWriteTimeUtc(candidate) > cutoff) continue;
                // The exclusive open fails while a save holds the file; holding it, the delete cannot race that save.
                using var held = new FileStream(candidate, FileMode.Open, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
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
