using SsmGen.Checkpoints;
using SsmGen.Reference;

namespace SsmGen.Interpretability;

/// <summary>
/// A checkpoint of an S4D stack read without its model class: the architecture from the tensor names and shapes
/// (<c>encoder</c>, <c>layers.{i}.mixer.log_A_real</c> …, <c>decoder</c>), the parameters in the layout
/// <see cref="ParameterLayout.Build"/> gives that architecture. Two facts of a declaration are not in the tensors:
/// the discretization and the pooling, which the caller states (the sMNIST examples use ZOH and mean pooling).
/// </summary>
public sealed record S4DCheckpoint(ModelConfig Config, float[] Parameters)
{
    /// <summary>Reads and checks everything before returning; throws <see cref="InvalidDataException"/> naming each problem.</summary>
    public static S4DCheckpoint Read(SafetensorsFile file, Discretization discretization = Discretization.Zoh, Pooling pooling = Pooling.Mean)
    {
        ArgumentNullException.ThrowIfNull(file);
        var names = file.Tensors.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        if (!names.Any(n => n.StartsWith("layers.", StringComparison.Ordinal) && n.EndsWith(".mixer.log_A_real", StringComparison.Ordinal)))
            throw new InvalidDataException($"The checkpoint holds no S4D block (no 'layers.{{i}}.mixer.log_A_real' tensor; its tensors begin {string.Join(", ", file.Tensors.Take(4).Select(t => t.Name))}): the oscillator report reads S4D models.");
        int[] Shape(string name) => file.TryGet(name, out var t) ? t.Shape
            : throw new InvalidDataException($"The checkpoint has no tensor '{name}', which an S4D model of SsmGen's layout has.");

        bool tokens = !names.Contains("encoder.bias");
        var encoder = Shape("encoder.weight");
        if (encoder.Length != 2) throw new InvalidDataException($"encoder.weight has shape [{string.Join(", ", encoder)}]; expected two dimensions.");
        int h = tokens ? encoder[1] : encoder[0];
        var layers = new List<LayerConfig>();
        for (int i = 0; names.Any(n => n.StartsWith($"layers.{i}.", StringComparison.Ordinal)); i++)
        {
            string m = $"layers.{i}.mixer.";
            if (!names.Contains(m + "log_A_real"))
                throw new InvalidDataException($"Block {i} is not an S4D block (no '{m}log_A_real'): the report reads stacks of S4D blocks only.");
            var a = Shape(m + "log_A_real");
            if (a.Length != 2 || a[0] != h) throw new InvalidDataException($"{m}log_A_real has shape [{string.Join(", ", a)}]; expected [{h}, N/2].");
            layers.Add(new S4DLayerConfig(2 * a[1], S4DInit.Lin, discretization, TrainB: names.Contains(m + "B")));
        }
        var decoder = Shape("decoder.weight");
        if (decoder.Length != 2 || decoder[1] != h) throw new InvalidDataException($"decoder.weight has shape [{string.Join(", ", decoder)}]; expected [outputs, {h}].");
        var config = new ModelConfig(tokens ? 0 : encoder[1], tokens ? encoder[0] : 0, h, decoder[0], pooling, layers);
        config.Validate();

        var table = ParameterLayout.Build(config);
        var problems = new List<string>();
        foreach (var p in table)
        {
            if (!file.TryGet(p.Name, out var t)) problems.Add($"missing tensor '{p.Name}' {p.ShapeText}");
            else if (!t.Shape.SequenceEqual(p.Shape)) problems.Add($"'{p.Name}' has shape {t.ShapeText}, expected {p.ShapeText}");
            else if (!t.DType.IsConvertibleToFloat32()) problems.Add($"'{p.Name}' has dtype {t.DType}");
        }
        var expected = table.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        problems.AddRange(names.Where(n => !expected.Contains(n)).Select(n => $"unexpected tensor '{n}'"));
        if (problems.Count > 0)
            throw new InvalidDataException($"The checkpoint does not fit the S4D stack its names describe ({layers.Count} blocks, H = {h}): {string.Join("; ", problems)}.");
        var parameters = new float[ParameterLayout.Count(table)];
        foreach (var p in table) file.ReadAsFloat32(p.Name, parameters.AsSpan(p.Offset, p.Length));
        return new S4DCheckpoint(config, parameters);
    }
}
