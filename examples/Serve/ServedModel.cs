using SsmGen.Checkpoints;
using SsmGen.Examples.Mnist;
using SsmGen.Examples.Sonnets;

namespace SsmGen.Examples.Serve;

/// <summary>What a served model does with its inputs.</summary>
public enum ServedTask { ClassifyDigits, NextCharacter }

/// <summary>A checkpoint loaded into the model type it fits, built for inference.</summary>
public sealed record ServedModel(string TypeName, ServedTask Task, ISsmModel Model, string Path, long FileBytes)
{
    /// <summary>Sequential MNIST: one pixel per step.</summary>
    public const int DigitLength = 784;
    /// <summary>Most digits classified in one Forward.</summary>
    public const int MaxClassifyBatch = 64;

    private sealed record Candidate(string Name, ServedTask Task, IReadOnlyList<ParameterInfo> Table, Func<ISsmModel> Create);

    // The declarations linked into this program. Classifiers get a batch of digits per Forward; the character
    // models stream with Step, which needs no sequence buffers (maxLength 1).
    private static readonly Candidate[] Candidates =
    [
        new("SmnistModel", ServedTask.ClassifyDigits, SmnistModel.Table, () => new SmnistModel(MaxClassifyBatch, DigitLength, ModelUse.Inference)),
        new("QuickSmnistModel", ServedTask.ClassifyDigits, QuickSmnistModel.Table, () => new QuickSmnistModel(MaxClassifyBatch, DigitLength, ModelUse.Inference)),
        new("SonnetModel", ServedTask.NextCharacter, SonnetModel.Table, () => new SonnetModel(1, 1, ModelUse.Inference)),
    ];

    /// <summary>Reads the checkpoint, finds the linked model type whose tensors it holds, loads it.</summary>
    public static ServedModel Load(string path)
    {
        if (!File.Exists(path)) throw new IOException($"No checkpoint at '{path}'.");
        var file = SafetensorsFile.Read(path);
        var names = new HashSet<string>(file.Tensors.Select(t => t.Name), StringComparer.Ordinal);
        foreach (var c in Candidates)
        {
            bool fits = c.Table.Count == names.Count
                && c.Table.All(p => file.TryGet(p.Name, out var t) && t.Shape.AsSpan().SequenceEqual(p.Shape));
            if (!fits) continue;
            var model = c.Create();
            Checkpoint.Load(model, file);
            return new ServedModel(c.Name, c.Task, model, path, new FileInfo(path).Length);
        }
        throw new InvalidDataException(
            $"'{path}' holds {names.Count} tensors that fit none of the models this program serves ({string.Join(", ", Candidates.Select(c => c.Name))}): " +
            "train one with examples/SequentialMnist or examples/Sonnets.");
    }
}
