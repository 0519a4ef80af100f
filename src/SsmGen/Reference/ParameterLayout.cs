using SsmGen.Layers;

namespace SsmGen.Reference;

/// <summary>
/// The parameter table of a model, derived from its <see cref="ModelConfig"/>: the layer kinds' tables
/// (<c>Layers/*/*.Table.cs</c>), which the generator compiles too, with offsets.
/// </summary>
public static class ParameterLayout
{
    /// <summary>Tensor names of the parts around the blocks, which depend on the naming layout.</summary>
    public sealed record Names(string Encoder, string Layers, string FinalNorm, string Decoder);

    /// <summary>The names a model uses (<see cref="ModelConfig.MambaLayout"/>).</summary>
    public static Names For(ModelConfig c)
    {
        var n = c.TensorNames();
        return new(n.Encoder, n.Layers, n.FinalNorm, n.Decoder);
    }

    /// <summary>Names, shapes, offsets and optimizer groups in buffer order.</summary>
    public static ParameterInfo[] Build(ModelConfig c)
    {
        var entries = Entries(c);
        var table = new ParameterInfo[entries.Count];
        int offset = 0;
        for (int i = 0; i < table.Length; i++)
        {
            var t = entries[i].Tensor;
            table[i] = new ParameterInfo(t.Name, t.Shape.Select(d => checked((int)d)).ToArray(), offset, t.Group);
            offset = checked(offset + table[i].Length);
        }
        return table;
    }

    /// <summary>The kinds' shared tensor table for <paramref name="c"/>, with how each tensor starts and its block.</summary>
    internal static List<(TensorEntry Tensor, int Block)> Entries(ModelConfig c) =>
        TensorTable.Build(c.Input, c.Vocab, c.DModel, c.Output, c.BlockTensors());

    /// <summary>Total number of parameters.</summary>
    public static int Count(IReadOnlyList<ParameterInfo> table) => table.Count == 0 ? 0 : table[^1].Offset + table[^1].Length;
}
