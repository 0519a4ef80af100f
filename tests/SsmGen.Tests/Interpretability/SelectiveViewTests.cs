using SsmGen.Interpretability;

namespace SsmGen.Tests.Interpretability;

/// <summary>The selective view's per-token decay against the generated model's own recurrent state.</summary>
public class SelectiveViewTests
{
    [Fact]
    public void EachTokensDecayIsTheRatioOfTwoStreamsStates()
    {
        // Two streams that differ only in their first token: from t = 4 on (conv width 4) block 0 sees the same
        // Δ_t, B_t and x_t in both, so the difference of their SSM states obeys d_t = exp(Δ_t·A)·d_{t−1} exactly.
        using var model = new MambaTokens(1, 16);
        model.Initialize(5);
        int[] first = [1, 4, 2, 6, 3, 0, 5, 5, 1, 2, 4, 3], second = [6, .. first[1..]];
        var view = SelectiveView.ForTokens(model, first)[0];
        Assert.Equal(0, view.Block);
        int e = 32, n = 16, conv = e * 3;
        SsmState s1 = model.CreateState(), s2 = model.CreateState();
        var y = new float[7];
        var previous = new double[e * n];
        int checkedValues = 0;
        for (int t = 0; t < first.Length; t++)
        {
            model.Step(s1, first[t], y);
            model.Step(s2, second[t], y);
            var d = new double[e * n];
            for (int i = 0; i < d.Length; i++) d[i] = (double)s1.Values[conv + i] - s2.Values[conv + i];
            if (t >= 4)
                for (int ch = 0; ch < e; ch++)
                    for (int k = 0; k < n; k++)
                    {
                        int i = ch * n + k;
                        if (Math.Abs(previous[i]) < 1e-3) continue; // ratios of tiny float differences are noise
                        double decay = Math.Exp(view.DampingPerStep(ch)[t * n + k] * -1);
                        Assert.True(Math.Abs(d[i] / previous[i] - decay) < 1e-3, $"t = {t}, channel {ch}, state {k}: ratio {d[i] / previous[i]:F5}, exp(Δ·A) = {decay:F5}");
                        checkedValues++;
                    }
            previous = d;
        }
        Assert.True(checkedValues > 100, $"only {checkedValues} state differences were large enough to check");
    }

    [Fact]
    public void ModelsWithoutMambaBlocksAreRefused()
    {
        using var model = new TinyRealMean(1, 4);
        Assert.Contains("no Mamba block", Assert.Throws<ArgumentException>(() => SelectiveView.ForTokens(model, [1, 2])).Message);
    }
}
