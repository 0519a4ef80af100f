using SsmGen.Reference;

namespace SsmGen.Tests.Reference;

/// <summary>
/// The parameter table pinned by hand, one small model per layer kind: names, shapes and groups as the modules they
/// mirror name them (S4D's PyTorch block, Hugging Face Mamba, torch.nn.RNN, a pre-norm transformer). The generator
/// and the runtime read one table (Layers/*/*.Table.cs); this is what that one table must say.
/// </summary>
public class TensorTableTests
{
    private static string Row(ParameterInfo p) => $"{p.Name} {p.ShapeText} {p.Group}";

    private static void AssertTable(ModelConfig config, params string[] expected)
    {
        var table = ParameterLayout.Build(config);
        Assert.Equal(expected, table.Select(Row).ToArray());
        for (int i = 1; i < table.Length; i++) Assert.Equal(table[i - 1].Offset + table[i - 1].Length, table[i].Offset);
        Assert.Equal(0, table[0].Offset);
    }

    [Fact]
    public void S4DBlocksNameTheirTensorsAsTheS4DModule()
    {
        AssertTable(new ModelConfig(3, 0, 4, 5, Pooling.Mean, [new S4DLayerConfig(6, TrainB: true), new S4DLayerConfig(2)]),
            "encoder.weight (4, 3) Default", "encoder.bias (4) NoDecay",
            "layers.0.norm.weight (4) NoDecay", "layers.0.norm.bias (4) NoDecay",
            "layers.0.mixer.log_dt (4) Ssm", "layers.0.mixer.log_A_real (4, 3) Ssm", "layers.0.mixer.A_imag (4, 3) Ssm",
            "layers.0.mixer.B (4, 3, 2) Ssm", "layers.0.mixer.C (4, 3, 2) Default", "layers.0.mixer.D (4) NoDecay",
            "layers.0.mixer.output_linear.weight (8, 4) Default", "layers.0.mixer.output_linear.bias (8) NoDecay",
            "layers.1.norm.weight (4) NoDecay", "layers.1.norm.bias (4) NoDecay",
            "layers.1.mixer.log_dt (4) Ssm", "layers.1.mixer.log_A_real (4, 1) Ssm", "layers.1.mixer.A_imag (4, 1) Ssm",
            "layers.1.mixer.C (4, 1, 2) Default", "layers.1.mixer.D (4) NoDecay",
            "layers.1.mixer.output_linear.weight (8, 4) Default", "layers.1.mixer.output_linear.bias (8) NoDecay",
            "norm_f.weight (4) NoDecay", "norm_f.bias (4) NoDecay", "decoder.weight (5, 4) Default", "decoder.bias (5) NoDecay");
    }

    [Fact]
    public void AllMambaModelsTakeTheHuggingFaceNames()
    {
        // d_model 32 → Δ rank ⌈32/16⌉ = 2; E = 64; x_proj rows R + 2N = 2 + 8.
        AssertTable(new ModelConfig(0, 11, 32, 11, Pooling.None, [new MambaLayerConfig(N: 4, ConvWidth: 3)]),
            "backbone.embeddings.weight (11, 32) Default",
            "backbone.layers.0.norm.weight (32) NoDecay",
            "backbone.layers.0.mixer.in_proj.weight (128, 32) Default",
            "backbone.layers.0.mixer.conv1d.weight (64, 1, 3) Default", "backbone.layers.0.mixer.conv1d.bias (64) NoDecay",
            "backbone.layers.0.mixer.x_proj.weight (10, 64) Default",
            "backbone.layers.0.mixer.dt_proj.weight (64, 2) Default", "backbone.layers.0.mixer.dt_proj.bias (64) NoDecay",
            "backbone.layers.0.mixer.A_log (64, 4) NoDecay", "backbone.layers.0.mixer.D (64) NoDecay",
            "backbone.layers.0.mixer.out_proj.weight (32, 64) Default",
            "backbone.norm_f.weight (32) NoDecay", "lm_head.weight (11, 32) Default");
    }

    [Fact]
    public void MixedStacksUsePlainNamesAndLayerNormsEvenAroundMamba()
    {
        AssertTable(new ModelConfig(0, 3, 4, 2, Pooling.Last, [new MambaLayerConfig(N: 2, Expand: 1, ConvWidth: 2, DtRank: 1), new RnnLayerConfig(5), new IdsLayerConfig(2), new AttentionLayerConfig(2, 3)]),
            "encoder.weight (3, 4) Default",
            "layers.0.norm.weight (4) NoDecay",
            "layers.0.mixer.in_proj.weight (8, 4) Default",
            "layers.0.mixer.conv1d.weight (4, 1, 2) Default", "layers.0.mixer.conv1d.bias (4) NoDecay",
            "layers.0.mixer.x_proj.weight (5, 4) Default",
            "layers.0.mixer.dt_proj.weight (4, 1) Default", "layers.0.mixer.dt_proj.bias (4) NoDecay",
            "layers.0.mixer.A_log (4, 2) NoDecay", "layers.0.mixer.D (4) NoDecay",
            "layers.0.mixer.out_proj.weight (4, 4) Default",
            "layers.1.norm.weight (4) NoDecay", "layers.1.norm.bias (4) NoDecay",
            "layers.1.mixer.weight_ih (5, 4) Default", "layers.1.mixer.weight_hh (5, 5) Default",
            "layers.1.mixer.bias_ih (5) NoDecay", "layers.1.mixer.bias_hh (5) NoDecay",
            "layers.1.mixer.out_proj.weight (4, 5) Default", "layers.1.mixer.out_proj.bias (4) NoDecay",
            "layers.2.norm.weight (4) NoDecay", "layers.2.norm.bias (4) NoDecay",
            "layers.2.mixer.A.weight (4, 4) Default", "layers.2.mixer.A.bias (4) NoDecay",
            "layers.2.mixer.B.weight (2, 4) Default", "layers.2.mixer.C.weight (4, 2) Default", "layers.2.mixer.C.bias (4) NoDecay",
            "layers.3.norm.weight (4) NoDecay", "layers.3.norm.bias (4) NoDecay",
            "layers.3.mixer.in_proj.weight (12, 4) Default", "layers.3.mixer.in_proj.bias (12) NoDecay",
            "layers.3.mixer.out_proj.weight (4, 4) Default", "layers.3.mixer.out_proj.bias (4) NoDecay",
            "layers.3.norm2.weight (4) NoDecay", "layers.3.norm2.bias (4) NoDecay",
            "layers.3.mlp.fc1.weight (12, 4) Default", "layers.3.mlp.fc1.bias (12) NoDecay",
            "layers.3.mlp.fc2.weight (4, 12) Default", "layers.3.mlp.fc2.bias (4) NoDecay",
            "norm_f.weight (4) NoDecay", "norm_f.bias (4) NoDecay", "decoder.weight (2, 4) Default", "decoder.bias (2) NoDecay");
    }

    [Fact]
    public void AKindsReferenceViewsExactlyItsMixerTensors()
    {
        var config = new ModelConfig(0, 3, 8, 2, Pooling.Last, [new MambaLayerConfig(N: 3, ConvWidth: 2), new RnnLayerConfig(5), new IdsLayerConfig(3), new AttentionLayerConfig(2, 2),
            new DeltaLayerConfig(2, 3, HouseholderSteps: 2), new DeltaLayerConfig(3, 2, Gate: false, ConvWidth: 2)]);
        var table = ParameterLayout.Build(config);
        int[] Mixer(int i) => table.Where(p => p.Name.StartsWith($"layers.{i}.mixer.")).Select(p => p.Length).ToArray();
        Assert.Equal(Mixer(0), new MambaReference<double>(8, 3, 2, 2, 1).ParameterSizes);
        Assert.Equal(Mixer(1), new RnnReference<double>(8, 5, Nonlinearity.Tanh).ParameterSizes);
        Assert.Equal(Mixer(2), new IdsReference<double>(8, 3).ParameterSizes);
        Assert.Equal(Mixer(3), new AttentionReference<double>(8, 2).ParameterSizes);
        Assert.Equal(Mixer(4), new DeltaReference<double>(8, 2, 3, householderSteps: 2).ParameterSizes);
        Assert.Equal(Mixer(5), new DeltaReference<double>(8, 3, 2, convWidth: 2, gate: false).ParameterSizes);
    }
}
