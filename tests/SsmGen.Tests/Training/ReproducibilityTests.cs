using SsmGen.Numerics;
using SsmGen.Training;

namespace SsmGen.Tests.Training;

/// <summary>
/// The worker pool hands parts to whichever thread comes free, so which thread computes what changes from run to run;
/// a part's result must not depend on it. Two trainings from the same start on the same batches end bit for bit alike,
/// one of them with a busy thread beside the pool to shift the parts between its threads.
/// </summary>
public class ReproducibilityTests
{
    private const int Batch = 4, Length = 100; // H 128: the lane convolution, parallel products, row passes and channel kernels

    private static int[] Train(bool crowded)
    {
        var model = new SeqClassifier(Batch, Length);
        model.Initialize(5);
        var trainer = new Trainer(model, new TrainerOptions());
        var rng = new Rng(6);
        var x = new float[Batch * Length];
        var y = new int[Batch];
        using var stop = new CancellationTokenSource();
        var busy = crowded ? new Thread(() => { while (!stop.IsCancellationRequested) Thread.SpinWait(1000); }) { IsBackground = true } : null;
        busy?.Start();
        for (int step = 0; step < 3; step++)
        {
            for (int i = 0; i < x.Length; i++) x[i] = (float)rng.Normal();
            for (int b = 0; b < Batch; b++) y[b] = rng.NextInt(SeqClassifier.OutputSize);
            trainer.TrainStep(x, y, Batch, Length);
        }
        stop.Cancel();
        busy?.Join();
        return model.Parameters.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();
    }

    [Fact]
    public void TrainingGivesTheSameBitsWhicheverThreadsRunTheParts()
    {
        var quiet = Train(crowded: false);
        var crowded = Train(crowded: true);
        var again = Train(crowded: false);
        Assert.Equal(quiet, crowded);
        Assert.Equal(quiet, again);
        Assert.Contains(quiet, bits => bits != 0);
    }
}
