using System.Globalization;

namespace SsmGen.Generators.Emitters;

/// <summary>
/// A StringBuilder that keeps indentation, so emitters read like the code they write (C# and CUDA alike). Text of
/// several lines is written line by line at the current indentation, its own relative indentation kept.
/// </summary>
internal sealed class CodeWriter(int indent = 0)
{
    private readonly StringBuilder _sb = new();
    private int _indent = indent;

    public CodeWriter Line(string text = "")
    {
        foreach (string line in text.Split('\n'))
        {
            if (line.Length > 0) _sb.Append(' ', _indent * 4).Append(line);
            _sb.Append('\n');
        }
        return this;
    }

    /// <summary>Text whose line breaks belong to it (a verbatim string's contents): only its first line is indented.</summary>
    public CodeWriter Verbatim(string text)
    {
        _sb.Append(' ', _indent * 4).Append(text).Append('\n');
        return this;
    }

    /// <summary>A block: the header line (none when null), then "{" and one more level of indentation.</summary>
    public CodeWriter Open(string? header)
    {
        if (header is not null) Line(header);
        Line("{");
        _indent++;
        return this;
    }

    public CodeWriter Close(string trailer = "")
    {
        _indent--;
        Line("}" + trailer);
        return this;
    }

    public override string ToString() => _sb.ToString();

    /// <summary>A double as a round-tripping C# literal.</summary>
    public static string D(double v) => v.ToString("R", CultureInfo.InvariantCulture) + (v == System.Math.Floor(v) && System.Math.Abs(v) < 1e15 ? ".0" : "");

    /// <summary>A float as a C# literal.</summary>
    public static string F(double v) => ((float)v).ToString("R", CultureInfo.InvariantCulture) + "f";
}
