using SsmGen.Training;
using Xunit.Abstractions;

namespace SsmGen.Tests.Training;

public class OverfitSmokeTests(ITestOutputHelper output)
{
    [Fact]
    public void TinyModelOverfitsAFixedBatch()
    {
        const int batch = 16, length = 32;
        var model = new SmokeModel(batch, length);
        model.Initialize(1);
        var rng = new Rng(2);
        var x = new float[batch * length];
        for (int i = 0; i < x.Length; i++) x[i] = (float)rng.Normal();
        var y = new int[batch];
        for (int b = 0; b < batch; b++) y[b] = rng.NextInt(4);
        var trainer = new Trainer(model, new TrainerOptions { LearningRate = 1e-2f, WarmupSteps = 10, TotalSteps = 300 });
        float first = 0, last = 0;
        for (int s = 0; s < 300; s++)
        {
            var r = trainer.TrainStep(x, y, batch, length);
            if (s == 0) first = r.Loss;
            last = r.Loss;
        }
        output.WriteLine($"loss {first:F4} → {last:F4}");
        Assert.True(last * 10 <= first, $"loss fell only from {first} to {last}");
        Assert.Equal(batch, trainer.Evaluate(x, y, batch, length));
    }

    [Fact]
    public void BadTargetsThrowBeforeTheModelChanges()
    {
        var model = new SmokeModel(2, 4);
        model.Initialize(1);
        var before = model.Parameters.ToArray();
        var trainer = new Trainer(model, new TrainerOptions());
        Assert.Throws<ArgumentOutOfRangeException>(() => trainer.TrainStep(new float[8], [0, 9], 2, 4));
        Assert.Throws<ArgumentException>(() => trainer.TrainStep(new float[7], [0, 1], 2, 4));
        Assert.Equal(before, model.Parameters.ToArray());
        Assert.Equal(0UL, model.DropoutStep);
    }

    [Fact]
    public void RegressionStepsLearnAWindowStatisticThatGeneralizes()
    {
        // targets y_k = (k + 1)·mean_t x_t on fresh random windows every step; scored on a window set never trained on
        const int batch = 16, length = 24, outputs = 4;
        var model = new SmokeModel(batch, length);
        model.Initialize(3);
        var trainer = new Trainer(model, new TrainerOptions { LearningRate = 1e-2f, WarmupSteps = 10, TotalSteps = 300 });
        var rng = new Rng(4);
        (float[] X, float[] Y) Draw()
        {
            var x = new float[batch * length];
            var y = new float[batch * outputs];
            for (int i = 0; i < x.Length; i++) x[i] = (float)rng.Normal();
            for (int b = 0; b < batch; b++)
            {
                double mean = 0;
                for (int t = 0; t < length; t++) mean += x[b * length + t] / length;
                for (int k = 0; k < outputs; k++) y[b * outputs + k] = (float)((k + 1) * mean);
            }
            return (x, y);
        }
        var (testX, testY) = Draw();
        var prediction = new float[batch * outputs];
        double TestError()
        {
            model.Forward(testX, batch, length, prediction);
            return prediction.Zip(testY).Average(p => (double)(p.First - p.Second) * (p.First - p.Second));
        }
        double before = TestError();
        // the loss a step reports is the mean squared error of the predictions it trained on
        Assert.Equal(before, trainer.RegressionStep(testX, testY, batch, length).Loss, 4);
        for (int s = 0; s < 300; s++)
        {
            var (x, y) = Draw();
            var r = trainer.RegressionStep(x, y, batch, length);
            Assert.Equal(batch * outputs, r.Count);
        }
        double after = TestError();
        output.WriteLine($"held-out MSE {before:F4} → {after:F4}");
        Assert.True(after * 10 <= before, $"held-out MSE fell only from {before} to {after}");
    }

    [Fact]
    public void BadRegressionTargetsThrowBeforeTheModelChanges()
    {
        var model = new SmokeModel(2, 4);
        model.Initialize(1);
        var before = model.Parameters.ToArray();
        var trainer = new Trainer(model, new TrainerOptions());
        var e = Assert.Throws<ArgumentException>(() => trainer.RegressionStep(new float[8], new float[7], 2, 4));
        Assert.Contains("2·4 outputs", e.Message);
        var targets = new float[8];
        targets[5] = float.NaN;
        e = Assert.Throws<ArgumentException>(() => trainer.RegressionStep(new float[8], targets, 2, 4));
        Assert.Contains("finite", e.Message);
        Assert.Equal(before, model.Parameters.ToArray());
        Assert.Equal(0L, trainer.Step);
    }

    public static TheoryData<TrainerOptions, string> BadOptions => new()
    {
        { new TrainerOptions { LearningRate = 0 }, "LearningRate" },
        { new TrainerOptions { LearningRate = float.NaN }, "LearningRate" },
        { new TrainerOptions { LearningRate = float.PositiveInfinity }, "LearningRate" },
        { new TrainerOptions { SsmLearningRate = -1e-3f }, "SsmLearningRate" },
        { new TrainerOptions { WeightDecay = float.NaN }, "WeightDecay" },
        { new TrainerOptions { WarmupSteps = -1 }, "WarmupSteps" },
        { new TrainerOptions { TotalSteps = 0 }, "TotalSteps" },
        { new TrainerOptions { MaxGradNorm = 0 }, "MaxGradNorm" },
        { new TrainerOptions { MaxGradNorm = float.NaN }, "MaxGradNorm" },
        { new TrainerOptions { OnNonFinite = (NonFiniteStep)2 }, "OnNonFinite" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void BadOptionsAreRefusedAtConstructionNamingTheSetting(TrainerOptions options, string setting)
    {
        var model = new SmokeModel(2, 4);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new Trainer(model, options));
        Assert.Equal(setting, e.ParamName);
        Assert.Contains(setting, e.Message);
        Assert.Throws<ArgumentNullException>(() => new Trainer(model, null!));
        // clipping can be turned off explicitly
        _ = new Trainer(model, new TrainerOptions { MaxGradNorm = float.PositiveInfinity });
    }
}
