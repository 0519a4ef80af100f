using SsmGen.Reference;
using Xunit.Abstractions;

namespace SsmGen.Tests.Reference;

/// <summary>The oracle's own oracle: double-precision gradients against central finite differences.</summary>
public class ReferenceGradientTests(ITestOutputHelper output)
{
    public static TheoryData<string> Configs => new() { "RealMean", "TokensPerToken", "RealLast", "DeltaTokens" };

    private static ModelConfig Get(string name) => name switch
    {
        "RealMean" => TestConfigs.RealMean,
        "TokensPerToken" => TestConfigs.TokensPerToken,
        "DeltaTokens" => TestConfigs.DeltaTokens,
        _ => TestConfigs.RealLast,
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void EveryParameterGradientMatchesCentralDifferences(string name)
    {
        var cfg = Get(name);
        const int batch = 2, length = 7;
        var model = new ReferenceModel<double>(cfg);
        model.Initialize(11);
        // Move Δ away from its tiny init so every term of the kernel gradient matters.
        var rng = new Rng(5);
        for (int i = 0; i < model.Parameters.Length; i++) model.Parameters[i] += 0.1 * rng.Normal();
        var input = TestConfigs.RandomArray(batch * length * cfg.Input, 3);
        var tokens = TestConfigs.RandomTokens(batch * length, Math.Max(cfg.Vocab, 1), 4);
        int outLen = (cfg.Pooling == Pooling.None ? batch * length : batch) * cfg.Output;
        var weights = TestConfigs.RandomArray(outLen, 9);

        double Loss()
        {
            var y = cfg.TokenInput ? model.Forward(tokens, batch, length, true, 77, 3) : model.Forward(input, batch, length, true, 77, 3);
            double s = 0;
            for (int i = 0; i < y.Length; i++) s += y[i] * weights[i];
            return s;
        }

        Loss();
        Array.Clear(model.Gradients);
        model.Backward(weights);
        var analytic = (double[])model.Gradients.Clone();

        double worst = 0;
        string worstName = "";
        foreach (var p in model.Table)
            for (int j = 0; j < p.Length; j++)
            {
                int k = p.Offset + j;
                double keep = model.Parameters[k];
                const double eps = 1e-6;
                model.Parameters[k] = keep + eps; double lp = Loss();
                model.Parameters[k] = keep - eps; double lm = Loss();
                model.Parameters[k] = keep;
                double fd = (lp - lm) / (2 * eps);
                double err = Math.Abs(fd - analytic[k]) / Math.Max(1, Math.Abs(fd));
                if (err > worst) { worst = err; worstName = $"{p.Name}[{j}] fd={fd} analytic={analytic[k]}"; }
            }
        output.WriteLine($"{name}: worst relative error {worst:E2} at {worstName}");
        Assert.True(worst < 1e-6, $"worst relative error {worst:E2} at {worstName}");
    }
}
