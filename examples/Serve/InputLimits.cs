using System.Text;

namespace SsmGen.Examples.Serve;

/// <summary>
/// Reads a checkpoint file whole, but only a regular file of a size a checkpoint can have: a device such as
/// /dev/zero, a pipe or a directory would otherwise be read until memory runs out (or block forever).
/// </summary>
public static class CheckpointBytes
{
    /// <summary>The bytes of the file at <paramref name="path"/> (a link is followed), at most <paramref name="maxBytes"/>.</summary>
    /// <exception cref="IOException">There is no such file, it is a directory, or it changed while read.</exception>
    /// <exception cref="InvalidDataException">It is not a regular file of 8 to <paramref name="maxBytes"/> bytes.</exception>
    public static byte[] Read(string path, long maxBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path)) throw new IOException($"'{path}' is a directory, not a checkpoint file.");
        var file = new FileInfo(path);
        if (file.LinkTarget is not null && file.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target) file = target;
        if (!file.Exists) throw new FileNotFoundException($"No checkpoint at '{path}'.", path);
        // .NET does not tell a device or a pipe from a regular file, but they report a size of 0, and a checkpoint
        // has at least its 8-byte header length. Checked before opening: opening a pipe waits for a writer.
        long length = file.Length;
        CheckLength(path, length, maxBytes);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        length = stream.Length; // the opened file's own size, in case the path now names another
        CheckLength(path, length, maxBytes);
        var bytes = new byte[length];
        stream.ReadExactly(bytes); // reads no more than the size: a file that grows meanwhile is cut, not followed
        return bytes;
    }

    private static void CheckLength(string path, long length, long maxBytes)
    {
        if (length < 8)
            throw new InvalidDataException($"'{path}' is {length} bytes long: a checkpoint is a regular file of at least 8 bytes (devices, pipes and sockets are refused).");
        if (length > maxBytes)
            throw new InvalidDataException($"'{path}' is {length:N0} bytes long, more than the {maxBytes:N0} bytes a checkpoint of the models this program serves can take.");
    }
}

/// <summary>
/// Lines of text of at most <see cref="MaxLength"/> characters, read in blocks: a longer line is refused as soon as
/// it passes the limit, naming its number, without reading the rest of it. Line ends as in
/// <see cref="TextReader.ReadLine"/>: "\n", "\r\n" or "\r".
/// </summary>
public sealed class BoundedLineReader
{
    private readonly TextReader _reader;
    private readonly char[] _block = new char[4096];
    private readonly StringBuilder _line = new();
    private int _start, _end;
    private bool _afterCarriageReturn; // a "\n" right after it ends nothing

    public BoundedLineReader(TextReader reader, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLength);
        _reader = reader;
        MaxLength = maxLength;
    }

    /// <summary>Longest line accepted, in characters, without its line end.</summary>
    public int MaxLength { get; }

    /// <summary>Lines returned so far; the number of the last one.</summary>
    public int LineNumber { get; private set; }

    /// <summary>The next line without its end, or null at the end of the input.</summary>
    /// <exception cref="FormatException">The line is longer than <see cref="MaxLength"/>.</exception>
    public string? ReadLine()
    {
        _line.Clear();
        while (true)
        {
            if (_start == _end)
            {
                _start = 0;
                _end = _reader.Read(_block, 0, _block.Length);
                if (_end == 0)
                {
                    if (_line.Length == 0) return null;
                    LineNumber++;
                    return _line.ToString();
                }
            }
            if (_afterCarriageReturn)
            {
                _afterCarriageReturn = false;
                if (_block[_start] == '\n' && ++_start == _end) continue;
            }
            var rest = _block.AsSpan(_start, _end - _start);
            int lineEnd = rest.IndexOfAny('\r', '\n');
            int take = lineEnd < 0 ? rest.Length : lineEnd;
            if (_line.Length + take > MaxLength)
                throw new FormatException($"Line {LineNumber + 1} is longer than {MaxLength:N0} characters, the most this command reads in a line.");
            _line.Append(rest[..take]);
            if (lineEnd < 0)
            {
                _start = _end;
                continue;
            }
            _afterCarriageReturn = rest[lineEnd] == '\r';
            _start += lineEnd + 1;
            LineNumber++;
            return _line.ToString();
        }
    }
}
