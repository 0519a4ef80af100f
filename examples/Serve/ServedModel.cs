using SsmGen.Checkpoints;
using SsmGen.Examples.Mnist;
using SsmGen.Examples.Sonnets;

namespace SsmGen.Examples.Serve;

/// <summary>What a served model does with its inputs.</summary>
public enum ServedTask { ClassifyDigits, NextCharacter }

/// <summary>A checkpoint loaded into the model type it fits, built for inference.</summary>
/// <param name="Note">Something the user should know about the checkpoint (e.g. a permuted pixel order), or null.</param>
public sealed record ServedModel(string TypeName, ServedTask Task, ISsmModel Model, string Path, long FileBytes, string? Note)
{
    /// <summary>Sequential MNIST: one pixel per step.</summary>
    public const int DigitLength = 784;
    /// <summary>Most digits classified in one Forward.</summary>
    public const int MaxClassifyBatch = 64;
    /// <summary>
    /// Longest digit line classify reads: 784 values in their shortest round-trip form take at most 15 characters and
    /// a ", " each (13,328 in all); this leaves about 80 characters per value.
    /// </summary>
    public const int MaxDigitLineLength = 65_536;

    private sealed record Candidate(string Name, ServedTask Task, IReadOnlyList<ParameterInfo> Table, Func<int, ISsmModel> Create);

    // The declarations linked into this program. Classifiers get a batch of digits per Forward; the character
    // models stream with Step (up to that many streams per step), which needs no sequence buffers (maxLength 1).
    private static readonly Candidate[] Candidates =
    [
        new("SmnistModel", ServedTask.ClassifyDigits, SmnistModel.Table, batch => new SmnistModel(batch, DigitLength, ModelUse.Inference)),
        new("QuickSmnistModel", ServedTask.ClassifyDigits, QuickSmnistModel.Table, batch => new QuickSmnistModel(batch, DigitLength, ModelUse.Inference)),
        new("SonnetModel", ServedTask.NextCharacter, SonnetModel.Table, batch => new SonnetModel(batch, 1, ModelUse.Inference)),
    ];

    /// <summary>
    /// Largest file read as a checkpoint: the longest header the reader accepts and the largest linked model's
    /// parameters as F64, the widest float type it converts.
    /// </summary>
    public static readonly long MaxCheckpointBytes =
        8 + SafetensorsFile.MaxHeaderLength + 8 * Candidates.Max(c => c.Table.Sum(p => (long)p.Length));

    /// <summary>
    /// Reads the checkpoint, finds the linked model type whose tensors it holds (the one its "model" metadata names
    /// first), and loads it; classifiers take up to <paramref name="batch"/> digits per Forward, character models as
    /// many streams per Step; the step reads its matrices in <paramref name="weights"/>.
    /// </summary>
    public static ServedModel Load(string path, int batch, WeightFormat weights = WeightFormat.Float32)
    {
        byte[] bytes = CheckpointBytes.Read(path, MaxCheckpointBytes);
        var file = SafetensorsFile.Parse(bytes);
        var names = new HashSet<string>(file.Tensors.Select(t => t.Name), StringComparer.Ordinal);
        file.Metadata.TryGetValue("model", out string? declared);
        foreach (var c in Candidates.OrderBy(c => c.Name == declared ? 0 : 1))
        {
            bool fits = c.Table.Count == names.Count
                && c.Table.All(p => file.TryGet(p.Name, out var t) && t.Shape.AsSpan().SequenceEqual(p.Shape));
            if (!fits) continue;
            var model = c.Create(batch);
            Checkpoint.Load(model, file);
            model.UseStepWeights(weights);
            string? note = file.Metadata.TryGetValue("task", out string? task) && task == "psmnist"
                ? "this classifier was trained on psMNIST: digits must come in its permuted pixel order (SequentialMnist --permuted --export-digits writes them so)."
                : null;
            return new ServedModel(c.Name, c.Task, model, path, bytes.Length, note);
        }
        throw new InvalidDataException(
            $"'{path}' holds {names.Count} tensors that fit none of the models this program serves ({string.Join(", ", Candidates.Select(c => c.Name))}): " +
            "train one with examples/SequentialMnist or examples/Sonnets.");
    }
}
