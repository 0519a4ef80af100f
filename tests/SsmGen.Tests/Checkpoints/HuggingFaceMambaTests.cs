using SsmGen.Checkpoints;

namespace SsmGen.Tests.Checkpoints;

/// <summary>
/// A checkpoint in the Hugging Face Mamba layout (MambaForCausalLM: vocab 11, d_model 16, d_state 4, expand 2,
/// d_conv 4, dt_rank 1, 2 layers), written from a hand-made list of its tensor names and shapes, loads into the
/// generated all-Mamba model.
/// </summary>
public sealed class HuggingFaceMambaTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ssmgen-hf-" + Guid.NewGuid().ToString("N"));

    public HuggingFaceMambaTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The Hugging Face names and shapes, in the sorted order their files list them.</summary>
    private static List<(string Name, int[] Shape)> HfTensors(bool withHead)
    {
        var list = new List<(string, int[])> { ("backbone.embeddings.weight", [11, 16]) };
        for (int i = 0; i < 2; i++)
        {
            string p = $"backbone.layers.{i}.";
            list.Add((p + "mixer.A_log", [32, 4]));
            list.Add((p + "mixer.D", [32]));
            list.Add((p + "mixer.conv1d.bias", [32]));
            list.Add((p + "mixer.conv1d.weight", [32, 1, 4]));
            list.Add((p + "mixer.dt_proj.bias", [32]));
            list.Add((p + "mixer.dt_proj.weight", [32, 1]));
            list.Add((p + "mixer.in_proj.weight", [64, 16]));
            list.Add((p + "mixer.out_proj.weight", [16, 32]));
            list.Add((p + "mixer.x_proj.weight", [9, 32]));
            list.Add((p + "norm.weight", [16]));
        }
        list.Add(("backbone.norm_f.weight", [16]));
        if (withHead) list.Add(("lm_head.weight", [11, 16]));
        return list;
    }

    private (string Path, Dictionary<string, float[]> Values) WriteHf(bool withHead)
    {
        var rng = new Rng(17);
        var values = new Dictionary<string, float[]>();
        var tensors = new List<(string, int[], ReadOnlyMemory<float>)>();
        foreach (var (name, shape) in HfTensors(withHead))
        {
            var v = new float[(int)Shapes.ElementCount(shape)];
            for (int i = 0; i < v.Length; i++) v[i] = (float)rng.Normal();
            values[name] = v;
            tensors.Add((name, shape, v));
        }
        string path = Path.Combine(_dir, withHead ? "untied.safetensors" : "tied.safetensors");
        Checkpoint.Write(path, tensors);
        return (path, values);
    }

    [Fact]
    public void EveryTensorLoadsByItsHuggingFaceName()
    {
        var (path, values) = WriteHf(withHead: true);
        var model = new TinyMambaLm(1, 8);
        Checkpoint.Load(model, path);
        Assert.Equal(values.Count, model.ParameterTable.Count);
        foreach (var p in model.ParameterTable)
            Assert.Equal(values[p.Name], model.Parameters.Slice(p.Offset, p.Length).ToArray());
    }

    [Fact]
    public void TiedEmbeddingsFillTheMissingHead()
    {
        var (path, values) = WriteHf(withHead: false);
        var model = new TinyMambaLm(1, 8);
        Checkpoint.Load(model, path);
        var head = model.ParameterTable.Single(p => p.Name == "lm_head.weight");
        Assert.Equal(values["backbone.embeddings.weight"], model.Parameters.Slice(head.Offset, head.Length).ToArray());
        // the loaded model runs: finite logits for a short prompt
        var y = new float[3 * 11];
        model.Forward([1, 5, 9], 1, 3, y);
        Assert.All(y, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void AMisShapedHuggingFaceTensorIsNamedAndNothingChanges()
    {
        var tensors = HfTensors(withHead: true).Select(t => t.Name == "backbone.layers.1.mixer.x_proj.weight" ? (t.Name, Shape: new[] { 10, 32 }) : t)
            .Select(t => (t.Name, t.Shape, (ReadOnlyMemory<float>)new float[(int)Shapes.ElementCount(t.Shape)])).ToList();
        string path = Path.Combine(_dir, "bad.safetensors");
        Checkpoint.Write(path, tensors);
        var model = new TinyMambaLm(1, 8);
        model.Initialize(3);
        var before = model.Parameters.ToArray();
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(model, path));
        Assert.Contains("backbone.layers.1.mixer.x_proj.weight", e.Message);
        Assert.Equal(before, model.Parameters.ToArray());
    }
}
