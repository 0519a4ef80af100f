using SsmGen.Training;

namespace SsmGen.Tests.Training;

public class TrainingCoreTests
{
    private static readonly ParameterInfo[] Table =
    [
        new("w", [2], 0, OptimizerGroup.Default),
        new("b", [1], 2, OptimizerGroup.NoDecay),
        new("log_dt", [1], 3, OptimizerGroup.Ssm),
    ];

    [Fact]
    public void AdamWMatchesTheUpdateRuleWrittenOut()
    {
        var opt = new AdamW(Table, learningRate: 0.1f, weightDecay: 0.5f, ssmLearningRate: 0.01f, beta1: 0.9f, beta2: 0.99f, epsilon: 1e-8f);
        float[] p = [1f, -2f, 3f, 4f];
        float[][] grads = [[0.5f, -1f, 2f, 0.25f], [-0.5f, 0.2f, 1f, 0.25f]];
        double[] pd = [1, -2, 3, 4], m = new double[4], v = new double[4];
        double[] lr = [0.1, 0.1, 0.1, 0.01], wd = [0.5, 0.5, 0, 0];
        for (int t = 1; t <= 2; t++)
        {
            opt.Step(p, grads[t - 1]);
            for (int i = 0; i < 4; i++)
            {
                double g = grads[t - 1][i];
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.99 * v[i] + 0.01 * g * g;
                double mh = m[i] / (1 - Math.Pow(0.9, t)), vh = v[i] / (1 - Math.Pow(0.99, t));
                pd[i] = pd[i] - lr[i] * wd[i] * pd[i] - lr[i] * mh / (Math.Sqrt(vh) + 1e-8);
            }
        }
        for (int i = 0; i < 4; i++) Assert.Equal(pd[i], p[i], 5);
        Assert.Equal(2, opt.StepCount);
    }

    [Fact]
    public void AdamWOverWholeVectorsGivesTheBitsOfTheRuleWrittenOutInFloat()
    {
        // 37 + 20 values: the update runs sixteen lanes at a time with scalar tails, and must equal the float rule exactly
        ParameterInfo[] table = [new("w", [37], 0, OptimizerGroup.Default), new("bias", [20], 37, OptimizerGroup.NoDecay)];
        var opt = new AdamW(table, learningRate: 0.05f, weightDecay: 0.1f);
        var rng = new Rng(5);
        var p = Enumerable.Range(0, 57).Select(_ => (float)rng.Normal()).ToArray();
        var expected = (float[])p.Clone();
        float[] m = new float[57], v = new float[57];
        for (int t = 1; t <= 3; t++)
        {
            var g = Enumerable.Range(0, 57).Select(_ => (float)rng.Normal()).ToArray();
            opt.Step(p, g, lrScale: 0.7f);
            float c1 = 1f / (1f - MathF.Pow(0.9f, t)), c2 = 1f / (1f - MathF.Pow(0.999f, t));
            for (int i = 0; i < 57; i++)
            {
                float lr = 0.05f * 0.7f, decay = 1f - lr * (i < 37 ? 0.1f : 0f);
                m[i] = 0.9f * m[i] + (1 - 0.9f) * g[i];
                v[i] = 0.999f * v[i] + (1 - 0.999f) * g[i] * g[i];
                expected[i] = expected[i] * decay - lr * (m[i] * c1) / (MathF.Sqrt(v[i] * c2) + 1e-8f);
            }
        }
        Assert.Equal(expected, p);
    }

    [Fact]
    public void AdamWRejectsMismatchedBuffersWithoutChangingAnything()
    {
        var opt = new AdamW(Table);
        float[] p = [1, 2, 3, 4];
        Assert.Throws<ArgumentException>(() => opt.Step(p, new float[3]));
        Assert.Equal([1f, 2f, 3f, 4f], p);
        Assert.Equal(0, opt.StepCount);
    }

    [Fact]
    public void AdamWRestoredFromItsStateContinuesExactlyLikeTheOriginal()
    {
        float[][] g = [[0.5f, -1f, 2f, 0.25f], [-0.5f, 0.2f, 1f, 0.25f], [0.1f, 0.1f, -0.3f, 2f]];
        var a = new AdamW(Table);
        float[] pa = [1, -2, 3, 4];
        a.Step(pa, g[0]); a.Step(pa, g[1]);
        var b = new AdamW(Table);
        float[] pb = (float[])pa.Clone();
        Assert.Throws<ArgumentException>(() => b.Restore(new float[3], a.SecondMoments, a.StepCount));
        Assert.Equal(0, b.StepCount);
        b.Restore(a.FirstMoments, a.SecondMoments, a.StepCount);
        float[] pc = (float[])pb.Clone();
        a.Step(pa, g[2]); b.Step(pb, g[2]);
        Assert.Equal(pa, pb);                     // bias correction uses the restored step count
        new AdamW(Table).Step(pc, g[2]);          // the same step without the restored moments
        Assert.NotEqual(pc, pb);
    }

    [Fact]
    public void CosineScheduleWarmsUpThenDecays()
    {
        var s = new CosineSchedule(WarmupSteps: 10, TotalSteps: 110, MinFactor: 0.1f);
        Assert.Equal(0.1f, s.Factor(0), 6);
        Assert.Equal(1f, s.Factor(9), 6);
        Assert.Equal(1f, s.Factor(10), 6);
        Assert.Equal(0.1 + 0.9 * 0.5, s.Factor(60), 5);
        Assert.Equal(0.1f, s.Factor(110), 6);
        Assert.Equal(0.1f, s.Factor(500), 6);
    }

    [Fact]
    public void ClippingScalesToTheMaximumNorm()
    {
        float[] g = [3, 4];
        Assert.Equal(5f, GradientClipping.ClipByGlobalNorm(g, 1f), 5);
        Assert.Equal(0.6f, g[0], 5);
        Assert.Equal(0.8f, g[1], 5);
        float[] small = [0.3f, 0.4f];
        Assert.Equal(0.5f, GradientClipping.ClipByGlobalNorm(small, 1f), 5);
        Assert.Equal([0.3f, 0.4f], small);
    }

    [Theory]
    [InlineData(1000)]    // whole 32-float vectors past a scalar tail of 8
    [InlineData(201482)]  // the sMNIST model's gradients
    public void ClippingOfManyGradientsMatchesTheNormInDecimal(int n)
    {
        var rng = new Random(n);
        var g = new float[n];
        for (int i = 0; i < n; i++) g[i] = (float)((rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-4, 2)));
        decimal exact = 0; // an independent sum, in another order and type (each float through double: 15 digits kept)
        foreach (float v in g) exact += (decimal)(double)v * (decimal)(double)v;
        double expected = Math.Sqrt((double)exact);
        var copy = (float[])g.Clone();
        float norm = GradientClipping.ClipByGlobalNorm(g, 0.5f);
        Assert.Equal(expected, norm, expected * 1e-7);
        for (int i = 0; i < n; i++) Assert.Equal(copy[i] * (0.5f / norm), g[i]);
    }

    [Fact]
    public void CrossEntropyValueAndGradientMatchTheFormula()
    {
        float[] z = [1f, 2f, 0.5f, -1f, 0f, 3f];
        int[] t = [1, 2];
        var d = new float[6];
        float loss = Losses.CrossEntropy(z, t, 2, 3, d);
        double l0 = Math.Log(Math.Exp(1) + Math.Exp(2) + Math.Exp(0.5)) - 2;
        double l1 = Math.Log(Math.Exp(-1) + Math.Exp(0) + Math.Exp(3)) - 3;
        Assert.Equal((l0 + l1) / 2, loss, 5);
        // central differences of the loss in each logit
        for (int i = 0; i < 6; i++)
        {
            var zp = (float[])z.Clone(); zp[i] += 1e-2f;
            var zm = (float[])z.Clone(); zm[i] -= 1e-2f;
            double fd = (Losses.CrossEntropy(zp, t, 2, 3, new float[6]) - Losses.CrossEntropy(zm, t, 2, 3, new float[6])) / 2e-2;
            Assert.Equal(fd, d[i], 3);
        }
    }

    [Fact]
    public void CrossEntropyOverManyClassesMatchesTheFormulaInDouble()
    {
        // 300 classes: whole vectors and a tail; logits up to ±80, where e^z alone would overflow a float
        const int rows = 5, classes = 300;
        var z = TestConfigs.RandomArray(rows * classes, 11).Select((v, i) => (float)(v * (i % 7 == 0 ? 160 : 4))).ToArray();
        int[] t = [0, 17, 299, 150, 64];
        var d = new float[rows * classes];
        float loss = Losses.CrossEntropy(z, t, rows, classes, d);
        double expected = 0;
        for (int r = 0; r < rows; r++)
        {
            var row = z.AsSpan(r * classes, classes).ToArray().Select(v => (double)v).ToArray();
            double max = row.Max(), logZ = max + Math.Log(row.Sum(v => Math.Exp(v - max)));
            expected += (logZ - row[t[r]]) / rows;
            for (int k = 0; k < classes; k++)
            {
                double g = (Math.Exp(row[k] - logZ) - (k == t[r] ? 1 : 0)) / rows;
                Assert.True(Math.Abs(g - d[r * classes + k]) < 1e-6, $"row {r}, class {k}: {d[r * classes + k]} against {g}");
            }
        }
        Assert.True(Math.Abs(expected - loss) < 1e-5 * Math.Max(1, Math.Abs(expected)), $"loss {loss} against {expected}");
    }

    [Fact]
    public void CrossEntropyRejectsAnOutOfRangeTargetBeforeWriting()
    {
        var d = new float[6];
        d.AsSpan().Fill(7);
        Assert.Throws<ArgumentOutOfRangeException>(() => Losses.CrossEntropy(new float[6], [0, 3], 2, 3, d));
        Assert.All(d, v => Assert.Equal(7f, v));
    }

    [Fact]
    public void MeanSquaredErrorAndAccuracy()
    {
        var d = new float[2];
        Assert.Equal((1.0 + 4.0) / 2, Losses.MeanSquaredError([1f, 3f], [0f, 1f], d), 6);
        Assert.Equal([1f, 2f], d);
        Assert.Equal(0.5f, Metrics.Accuracy([0f, 1f, 5f, 2f], [1, 1], 2, 2));
    }

    [Fact]
    public void IgnoredTargetsAddNoLossNoGradientAndDoNotCount()
    {
        // rows 1 and 3 ignored: the loss and gradients equal those of rows 0 and 2 alone
        var logits = new float[] { 0.3f, -1f, 2f, 9f, 9f, 9f, 1.5f, 0.2f, -0.7f, -9f, 4f, 1f };
        var d = new float[12];
        float loss = Losses.CrossEntropy(logits, [2, Losses.Ignored, 0, Losses.Ignored], 4, 3, d);
        var kept = new float[] { 0.3f, -1f, 2f, 1.5f, 0.2f, -0.7f };
        var dKept = new float[6];
        float expected = Losses.CrossEntropy(kept, [2, 0], 2, 3, dKept);
        Assert.Equal(expected, loss, 6);
        Assert.Equal(dKept[..3], d[..3]);
        Assert.Equal(dKept[3..], d[6..9]);
        Assert.All(d[3..6].Concat(d[9..]), v => Assert.Equal(0f, v));
        Assert.Equal(1, Metrics.CorrectCount(logits, [2, Losses.Ignored, 1, Losses.Ignored], 4, 3));
        Assert.Equal(0.5f, Metrics.Accuracy(logits, [2, Losses.Ignored, 1, Losses.Ignored], 4, 3));
        Assert.Equal(0f, Losses.CrossEntropy(logits, [Losses.Ignored, Losses.Ignored, Losses.Ignored, Losses.Ignored], 4, 3, d));
        Assert.All(d, v => Assert.Equal(0f, v));
    }
}
