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
}
