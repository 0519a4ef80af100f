using SsmGen.Memory;
using SsmGen.Reference;
using Xunit.Abstractions;

namespace SsmGen.Tests.Memory;

/// <summary>The memory and FLOP counts of <see cref="ModelCost"/> against what the models themselves show.</summary>
public class ModelCostTests(ITestOutputHelper output)
{
    public static TheoryData<string> Models => new() { "S4D", "Mamba", "RNN", "IDS", "Attention", "Delta" };
    public static TheoryData<string> Streams => new() { "AllKinds", "Hybrid", "MambaTokens", "IdsTokens", "AttentionTokens", "DeltaTokens", "S4Tokens" };

    private static ISsmModel Create(string name, int length) => name switch
    {
        "AllKinds" => new AllKinds(1, length),   // every kind, real inputs, mean pooling
        "Hybrid" => new Hybrid(1, length),       // S4D, Mamba, S4D, last-position pooling
        "MambaTokens" => new MambaTokens(1, length),
        "IdsTokens" => new IdsTokens(1, length),
        "DeltaTokens" => new DeltaTokens(1, length),
        "S4Tokens" => new S4Tokens(1, length),
        _ => new AttentionTokens(1, length),
    };

    [Theory]
    [MemberData(nameof(Streams))]
    public void TheStateValuesAreThoseThatDependOnTheSequenceRead(string kind)
    {
        // Two streams read different random inputs: the state values that differ after them are the memory; tables
        // derived from the parameters (S4D's modes), unused cache rows and an unused pooled sum do not. The parameters
        // are moved off their initialization, as training does: S4D-Lin's first mode starts real, and its imaginary state
        // would stay zero until A_imag moves.
        const int Length = 12, Capacity = 20;
        using var model = Create(kind, Capacity);
        model.Initialize(5);
        var noise = TestConfigs.RandomArray(model.Parameters.Length, 9, scale: 0.01);
        for (int i = 0; i < noise.Length; i++) model.Parameters[i] += (float)noise[i];
        var (a, b) = (model.CreateState(), model.CreateState());
        var y = new float[model.Config.Output];
        if (model.Config.TokenInput)
        {
            var (ta, tb) = (TestConfigs.RandomTokens(Length, model.Config.Vocab, 1), TestConfigs.RandomTokens(Length, model.Config.Vocab, 2));
            for (int t = 0; t < Length; t++) { model.Step(a, ta[t], y); model.Step(b, tb[t], y); }
        }
        else
        {
            int width = model.Config.Input;
            var (xa, xb) = (TestConfigs.RandomArray(Length * width, 1).Select(v => (float)v).ToArray(), TestConfigs.RandomArray(Length * width, 2).Select(v => (float)v).ToArray());
            for (int t = 0; t < Length; t++) { model.Step(a, xa.AsSpan(t * width, width), y); model.Step(b, xb.AsSpan(t * width, width), y); }
        }
        int differing = a.Values.Zip(b.Values).Count(p => p.First != p.Second);
        long counted = ModelCost.StateValues(model.Config, Length);
        output.WriteLine($"{kind}: {differing} of {a.Size} state values differ; counted {counted}");
        Assert.Equal(counted, differing);
        Assert.Equal(4 * counted, ModelCost.StateBytes(model.Config, Length));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void AtWidthTheMatrixProductsDominateTheFlops(string kind)
    {
        // A wide model's step is its matrix-vector products: 2 FLOPs per weight of every matrix (the parameter table's
        // two-dimensional weights, embedding aside), plus element-wise work that is a small share at d_model 512.
        LayerConfig layer = kind switch
        {
            "S4D" => new S4DLayerConfig(2),
            "Mamba" => new MambaLayerConfig(N: 4),
            "RNN" => new RnnLayerConfig(),
            "IDS" => new IdsLayerConfig(16),
            "Delta" => new DeltaLayerConfig(16, 32, HouseholderSteps: 2),
            _ => new AttentionLayerConfig(8),
        };
        var config = new ModelConfig(0, 16, 512, 16, Pooling.None, [layer, layer]);
        var names = ParameterLayout.For(config);
        double matrices = ParameterLayout.Build(config)
            .Where(p => p.Shape.Length == 2 && p.Name.Contains("weight", StringComparison.Ordinal) && !p.Name.StartsWith(names.Encoder, StringComparison.Ordinal))
            .Sum(p => (double)p.Length);
        double flops = ModelCost.FlopsPerToken(config, length: 1);
        output.WriteLine($"{kind}: {flops:N0} FLOPs per token, {2 * matrices:N0} in matrix products ({flops / (2 * matrices):F3}×)");
        Assert.InRange(flops / (2 * matrices), 1.0, 1.1);
    }

    [Fact]
    public void AttentionCostsGrowWithTheSequenceAndRecurrencesDoNot()
    {
        var attention = new ModelConfig(0, 16, 64, 16, Pooling.None, [new AttentionLayerConfig(4)]);
        var mamba = new ModelConfig(0, 16, 64, 16, Pooling.None, [new MambaLayerConfig()]);
        Assert.Equal(2L * 64 * 1000, ModelCost.StateValues(attention, 1000));
        Assert.Equal(ModelCost.StateValues(mamba, 10), ModelCost.StateValues(mamba, 1000));
        // per position attended: scores and weighted values 4·H FLOPs, softmax 3 per head; (L + 1)/2 positions on average
        Assert.Equal((4.0 * 64 + 3 * 4) * (1001 - 11) / 2, ModelCost.FlopsPerToken(attention, 1000) - ModelCost.FlopsPerToken(attention, 10), 1e-6);
        Assert.Equal(ModelCost.FlopsPerToken(mamba, 10), ModelCost.FlopsPerToken(mamba, 1000));
        Assert.Throws<ArgumentOutOfRangeException>(() => ModelCost.StateValues(mamba, 0));
    }

    [Fact]
    public void FanosBoundIsTheSourceEntropyLessTheErrorsUncertainty()
    {
        Assert.Equal(4.0, new ProbeScore(0, 1.0, 0).FanoBits(16), 12);
        Assert.Equal(0.0, new ProbeScore(0, 1.0 / 16, 0).FanoBits(16), 12);
        Assert.Equal(0.0, new ProbeScore(0, 0.01, 0).FanoBits(16), 12);
        // two classes, 11% errors: 1 − h(0.11) = 1 − (0.11·log₂(1/0.11) + 0.89·log₂(1/0.89)) = 1 − 0.499916
        Assert.Equal(0.500084, new ProbeScore(0, 0.89, 0).FanoBits(2), 5);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ProbeScore(0, 0.5, 0).FanoBits(1));
    }
}
