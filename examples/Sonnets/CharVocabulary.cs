namespace SsmGen.Examples.Sonnets;

/// <summary>
/// The fixed byte-level vocabulary of the sonnet model: 128 ids, id = ASCII code. Every UTF-16 code unit outside
/// 0–127 encodes as <see cref="Unknown"/> ('?'), so a character outside the Basic Multilingual Plane (a surrogate
/// pair) becomes two of them. Self-contained, so a program that loads the checkpoint can link this file.
/// </summary>
public static class CharVocabulary
{
    /// <summary>Number of ids; the model's Vocab and Output.</summary>
    public const int Size = 128;

    /// <summary>What a character outside ASCII becomes.</summary>
    public const char Unknown = '?';

    /// <summary>The name this vocabulary is recorded under in the checkpoint's metadata ("vocabulary").</summary>
    public const string Kind = "ascii-128";

    /// <summary>The id of <paramref name="c"/>: its ASCII code, or that of <see cref="Unknown"/>.</summary>
    public static int Encode(char c) => c < Size ? c : Unknown;

    /// <summary>Ids of every character of <paramref name="text"/>, one per UTF-16 code unit.</summary>
    public static int[] Encode(ReadOnlySpan<char> text)
    {
        var ids = new int[text.Length];
        Encode(text, ids);
        return ids;
    }

    /// <summary>Writes the ids of <paramref name="text"/> into <paramref name="ids"/> (at least as long as the text).</summary>
    public static void Encode(ReadOnlySpan<char> text, Span<int> ids)
    {
        if (ids.Length < text.Length)
            throw new ArgumentException($"{ids.Length} ids cannot hold the {text.Length} characters.", nameof(ids));
        for (int i = 0; i < text.Length; i++) ids[i] = Encode(text[i]);
    }

    /// <summary>The character of id <paramref name="id"/> in [0, <see cref="Size"/>).</summary>
    public static char Decode(int id) =>
        (uint)id < Size ? (char)id : throw new ArgumentOutOfRangeException(nameof(id), id, $"Ids are in [0, {Size}).");

    /// <summary>The text of a sequence of ids.</summary>
    public static string Decode(ReadOnlySpan<int> ids)
    {
        var chars = new char[ids.Length];
        for (int i = 0; i < ids.Length; i++) chars[i] = Decode(ids[i]);
        return new string(chars);
    }
}
