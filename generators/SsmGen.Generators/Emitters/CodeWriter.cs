using System.Globalization;

namespace SsmGen.Generators.Emitters;

/// <summary>A StringBuilder that keeps indentation, so emitters read like the code they write.</summary>
internal sealed class CodeWriter
{
    private readonly StringBuilder _sb = new();
    private int _indent;

    public CodeWriter Line(string text = "")
    {
        if (text.Length > 0) _sb.Append(' ', _indent * 4).Append(text);
        _sb.Append('\n');
        return this;
    }

    public CodeWriter Open(string header)
    {
        Line(header);
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
