using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace SsmGen.Cuda;

/// <summary>
/// NVRTC's output kept on disk, so that a process loading the same kernels again skips the compile. An entry is
/// keyed by the SHA-256 of everything that decides the output: the source, its file name (NVRTC puts it in
/// diagnostics and line information), the architecture, the options and NVRTC's version.
/// </summary>
/// <remarks>
/// Entries are written to a temporary file in the cache directory and renamed over the final name, so a
/// concurrent reader sees either no entry or a whole one. Each entry carries its payload's length and SHA-256: one
/// that does not match (a crash mid-write, a truncated copy, a flipped bit) is deleted and compiled again. A
/// directory that cannot be created or written only costs the cache: the compile still succeeds.
/// </remarks>
public static class KernelCache
{
    // Header: magic, format version (int32), payload length (int64), SHA-256 of the payload; little-endian.
    private static ReadOnlySpan<byte> Magic => "SSMK"u8;
    private const int FormatVersion = 1;
    private const int HashOffset = 16, HeaderLength = HashOffset + 32;

    /// <summary>
    /// Where entries go when no directory is given: <c>$SSMGEN_KERNEL_CACHE</c>, else
    /// <c>$XDG_CACHE_HOME/ssmgen/kernels</c>, else <c>~/.cache/ssmgen/kernels</c>; null when there is no home
    /// directory either, and then nothing is cached.
    /// </summary>
    public static string? DefaultDirectory => ResolveDirectory(
        Environment.GetEnvironmentVariable("SSMGEN_KERNEL_CACHE"),
        Environment.GetEnvironmentVariable("XDG_CACHE_HOME"),
        Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));

    internal static string? ResolveDirectory(string? ssmgenKernelCache, string? xdgCacheHome, string? home)
    {
        if (!string.IsNullOrEmpty(ssmgenKernelCache)) return ssmgenKernelCache;
        // The XDG base-directory spec says a relative path there is invalid and to be ignored.
        if (!string.IsNullOrEmpty(xdgCacheHome) && Path.IsPathRooted(xdgCacheHome)) return Path.Combine(xdgCacheHome, "ssmgen", "kernels");
        if (!string.IsNullOrEmpty(home)) return Path.Combine(home, ".cache", "ssmgen", "kernels");
        return null;
    }

    /// <summary>
    /// The cached output for these inputs, or <see cref="Nvrtc.Compile"/>'s, which is then cached. Compile errors
    /// are not cached: they throw <see cref="NvrtcException"/> every time.
    /// </summary>
    /// <param name="directory">The cache directory; <see cref="DefaultDirectory"/> when null.</param>
    public static NvrtcOutput GetOrCompile(string source, string name, string architecture,
        IReadOnlyList<string>? options = null, string? directory = null)
        => GetOrCompile(source, name, architecture, out _, options, directory);

    /// <inheritdoc cref="GetOrCompile(string, string, string, IReadOnlyList{string}?, string?)"/>
    /// <param name="fromCache">True when the output was read from the cache rather than compiled.</param>
    public static NvrtcOutput GetOrCompile(string source, string name, string architecture, out bool fromCache,
        IReadOnlyList<string>? options = null, string? directory = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentException.ThrowIfNullOrEmpty(architecture);
        options ??= [];
        directory ??= DefaultDirectory;

        string? path = directory is null ? null : Path.Combine(directory, Key(source, name, architecture, options) + ".nvrtc");
        if (path is not null && TryRead(path, architecture) is { } cached)
        {
            fromCache = true;
            return cached;
        }
        var output = Nvrtc.Compile(source, name, architecture, options);
        if (path is not null) TryWrite(path, output);
        fromCache = false;
        return output;
    }

    /// <summary>The entry's file name without extension: SHA-256, in hex, of the length-prefixed inputs.</summary>
    internal static string Key(string source, string name, string architecture, IReadOnlyList<string> options)
    {
        var (major, minor) = Nvrtc.Version();
        var text = new StringBuilder();
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        void Field(string value) => text.Append(value.Length).Append(':').Append(value).Append('\n');
        Field(source);
        Field(name);
        Field(architecture);
        Field(options.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (string option in options) Field(option);
        Field($"NVRTC {major}.{minor}");
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    private static NvrtcOutput? TryRead(string path, string architecture)
    {
        byte[] entry;
        try
        {
            entry = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // No entry yet, or one we cannot read: compile instead.
        }
        var output = Decode(entry, architecture);
        if (output is null) TryDelete(path);
        return output;
    }

    private static void TryWrite(string path, NvrtcOutput output)
    {
        string? temporary = null;
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            // Same directory as the entry, so the rename below stays on one file system and is atomic.
            temporary = $"{path}.{Path.GetRandomFileName()}.tmp";
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
                stream.Write(Encode(output));
            File.Move(temporary, path, overwrite: true);
            temporary = null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // An unwritable cache only makes the next load slower.
        }
        finally
        {
            if (temporary is not null) TryDelete(temporary);
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private static byte[] Encode(NvrtcOutput output)
    {
        var payload = new MemoryStream();
        using (var writer = new BinaryWriter(payload, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(output.Architecture);
            writer.Write(output.Log);
            writer.Write(output.Image.Length);
            writer.Write(output.Image);
        }
        var entry = new byte[HeaderLength + payload.Length];
        Magic.CopyTo(entry);
        BinaryPrimitives.WriteInt32LittleEndian(entry.AsSpan(4), FormatVersion);
        BinaryPrimitives.WriteInt64LittleEndian(entry.AsSpan(8), payload.Length);
        SHA256.HashData(payload.GetBuffer().AsSpan(0, (int)payload.Length), entry.AsSpan(HashOffset));
        payload.GetBuffer().AsSpan(0, (int)payload.Length).CopyTo(entry.AsSpan(HeaderLength));
        return entry;
    }

    /// <summary>The entry's output, or null when it is not a whole, intact entry of this format for <paramref name="architecture"/>.</summary>
    private static NvrtcOutput? Decode(byte[] entry, string architecture)
    {
        if (entry.Length < HeaderLength || !entry.AsSpan(0, Magic.Length).SequenceEqual(Magic)) return null;
        if (BinaryPrimitives.ReadInt32LittleEndian(entry.AsSpan(4)) != FormatVersion) return null;
        if (BinaryPrimitives.ReadInt64LittleEndian(entry.AsSpan(8)) != entry.Length - HeaderLength) return null;
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(entry.AsSpan(HeaderLength), hash);
        if (!hash.SequenceEqual(entry.AsSpan(HashOffset, 32))) return null;
        try
        {
            using var reader = new BinaryReader(new MemoryStream(entry, HeaderLength, entry.Length - HeaderLength), Encoding.UTF8);
            string storedArchitecture = reader.ReadString();
            string log = reader.ReadString();
            int imageLength = reader.ReadInt32();
            byte[] image = reader.ReadBytes(imageLength);
            bool whole = image.Length == imageLength && reader.BaseStream.Position == reader.BaseStream.Length;
            return whole && storedArchitecture == architecture ? new NvrtcOutput(storedArchitecture, image, log) : null;
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or FormatException or ArgumentOutOfRangeException)
        {
            return null; // Intact bytes that do not parse: written by something else.
        }
    }
}
