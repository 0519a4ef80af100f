using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace SsmGen.Streaming;

/// <summary>
/// A stream's state as bytes, so a session survives a restart, moves between processes, or forks from a shared
/// prefix. Layout (little-endian): the magic "SSMSTATE", a format version (u16), the architecture fingerprint (u64:
/// the configuration, every tensor's name, shape and offset, and the state's size), the weights fingerprint (u64,
/// over the parameters' bits — a state holds values derived from the weights, such as S4D's discretized modes, so it
/// only continues correctly on the same weights), the position (i32), the value count (i32), the values (f32), and a
/// checksum (u64) over everything before it. <see cref="Restore"/> checks all of it before it changes the state.
/// </summary>
public static class StateSnapshot
{
    /// <summary>The current format version.</summary>
    public const ushort Version = 1;

    private static ReadOnlySpan<byte> Magic => "SSMSTATE"u8;
    private const int HeaderBytes = 8 + 2 + 8 + 8 + 4 + 4, ChecksumBytes = 8;

    /// <summary>Bytes of a snapshot of a state of <paramref name="model"/>.</summary>
    public static int SizeOf(ISsmModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return HeaderBytes + 4 * model.CreateState().Size + ChecksumBytes;
    }

    /// <summary>The snapshot of <paramref name="state"/> (made by <paramref name="model"/>) as a new array.</summary>
    public static byte[] Save(ISsmModel model, SsmState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var bytes = new byte[HeaderBytes + 4 * state.Size + ChecksumBytes];
        Save(model, state, bytes);
        return bytes;
    }

    /// <summary>Writes the snapshot into <paramref name="destination"/>; returns the bytes written.</summary>
    public static int Save(ISsmModel model, SsmState state, Span<byte> destination)
    {
        CheckOwner(model, state);
        int size = HeaderBytes + 4 * state.Size + ChecksumBytes;
        if (destination.Length < size) throw new ArgumentException($"The snapshot needs {size} bytes; the destination holds {destination.Length}.", nameof(destination));
        var values = state.Values; // brings a GPU model's stream home first
        var d = destination[..size];
        Magic.CopyTo(d);
        BinaryPrimitives.WriteUInt16LittleEndian(d[8..], Version);
        BinaryPrimitives.WriteUInt64LittleEndian(d[10..], ArchitectureFingerprint(model, values.Length));
        BinaryPrimitives.WriteUInt64LittleEndian(d[18..], WeightsFingerprint(model));
        BinaryPrimitives.WriteInt32LittleEndian(d[26..], state.Position);
        BinaryPrimitives.WriteInt32LittleEndian(d[30..], values.Length);
        var body = d.Slice(HeaderBytes, 4 * values.Length);
        if (BitConverter.IsLittleEndian) MemoryMarshal.AsBytes(values.AsSpan()).CopyTo(body);
        else for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(body[(4 * i)..], values[i]);
        BinaryPrimitives.WriteUInt64LittleEndian(d[(size - ChecksumBytes)..], Hash(d[..(size - ChecksumBytes)]));
        return size;
    }

    /// <summary>
    /// Sets <paramref name="state"/> (made by <paramref name="model"/>) to the snapshot in <paramref name="bytes"/>.
    /// Throws <see cref="InvalidDataException"/> naming the problem — not a snapshot, another version, damaged,
    /// truncated, another architecture, other weights — before anything changes.
    /// </summary>
    public static void Restore(ISsmModel model, SsmState state, ReadOnlySpan<byte> bytes)
    {
        CheckOwner(model, state);
        if (bytes.Length < HeaderBytes + ChecksumBytes || !bytes[..8].SequenceEqual(Magic))
            throw new InvalidDataException("Not an SsmGen state snapshot (it does not start with \"SSMSTATE\").");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(bytes[8..]);
        if (version != Version) throw new InvalidDataException($"State snapshot format version {version}; this SsmGen reads version {Version}.");
        int position = BinaryPrimitives.ReadInt32LittleEndian(bytes[26..]), count = BinaryPrimitives.ReadInt32LittleEndian(bytes[30..]);
        if (count < 0 || count > (bytes.Length - HeaderBytes - ChecksumBytes) / 4 || bytes.Length != HeaderBytes + 4L * count + ChecksumBytes)
            throw new InvalidDataException($"The snapshot is {bytes.Length} bytes; its header announces {count} values, which take {HeaderBytes + 4L * Math.Max(count, 0) + ChecksumBytes} (truncated or damaged).");
        int end = bytes.Length - ChecksumBytes;
        if (Hash(bytes[..end]) != BinaryPrimitives.ReadUInt64LittleEndian(bytes[end..]))
            throw new InvalidDataException("The snapshot is damaged: its checksum does not match its contents.");
        if (count != state.Size || BinaryPrimitives.ReadUInt64LittleEndian(bytes[10..]) != ArchitectureFingerprint(model, state.Size))
            throw new InvalidDataException($"The snapshot was saved from another architecture ({count} state values) than this {model.GetType().Name} ({state.Size}); restore it into the model it came from.");
        if (BinaryPrimitives.ReadUInt64LittleEndian(bytes[18..]) != WeightsFingerprint(model))
            throw new InvalidDataException($"The snapshot was saved with other weights than this {model.GetType().Name} has now; a state holds values derived from the weights (load the same checkpoint, or start a new stream).");
        if (position < 0) throw new InvalidDataException($"The snapshot's position {position} is negative (damaged).");
        var values = new float[count];
        var body = bytes.Slice(HeaderBytes, 4 * count);
        for (int i = 0; i < count; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(body[(4 * i)..]);
        state.Set(values, position);
    }

    /// <summary>
    /// A second stream that continues from where <paramref name="source"/> is (its values and position copied), for
    /// forking a computed prefix into several continuations.
    /// </summary>
    public static SsmState Fork(ISsmModel model, SsmState source)
    {
        CheckOwner(model, source);
        var fork = model.CreateState();
        fork.Set(source.Values, source.Position);
        return fork;
    }

    /// <summary>A state goes with the model instance that made it.</summary>
    private static void CheckOwner(ISsmModel model, SsmState state)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(state);
        if (!ReferenceEquals(state.Owner, model))
            throw new ArgumentException(state.ModelType == model.GetType()
                ? "This state was made by another model instance; use the model that made it (to move a stream between instances, save it there and restore it here)."
                : $"This state belongs to a {state.ModelType.Name}, not a {model.GetType().Name}.", nameof(state));
    }

    /// <summary>The architecture: configuration, every tensor's name, shape and offset, and the state's size.</summary>
    public static ulong ArchitectureFingerprint(ISsmModel model, int stateSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        var c = model.Config;
        var s = new StringBuilder();
        s.Append(c.Input).Append('|').Append(c.Vocab).Append('|').Append(c.DModel).Append('|').Append(c.Output).Append('|').Append(c.Pooling).Append('|').Append(stateSize);
        foreach (var layer in c.Layers) s.Append('|').Append(layer);
        foreach (var p in model.ParameterTable) s.Append('|').Append(p.Name).Append(':').Append(string.Join('x', p.Shape)).Append('@').Append(p.Offset);
        return Hash(Encoding.UTF8.GetBytes(s.ToString()));
    }

    /// <summary>The weights: a hash of the parameters' bits.</summary>
    public static ulong WeightsFingerprint(ISsmModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Hash(MemoryMarshal.AsBytes(model.Parameters));
    }

    /// <summary>A 64-bit hash (FNV-1a over 8-byte words, then the tail byte by byte), the same on every machine.</summary>
    private static ulong Hash(ReadOnlySpan<byte> data)
    {
        const ulong prime = 0x100000001b3;
        ulong h = 0xcbf29ce484222325 ^ (ulong)data.Length;
        int words = data.Length / 8;
        for (int i = 0; i < words; i++) h = (h ^ BinaryPrimitives.ReadUInt64LittleEndian(data[(8 * i)..])) * prime;
        for (int i = 8 * words; i < data.Length; i++) h = (h ^ data[i]) * prime;
        return h ^ (h >> 29);
    }
}
