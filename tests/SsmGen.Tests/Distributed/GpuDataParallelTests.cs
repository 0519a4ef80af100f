using SsmGen.Cuda;
using SsmGen.Tests.Cuda;
using SsmGen.Training;
using Xunit.Abstractions;

namespace SsmGen.Tests.Distributed;

/// <summary>
/// Data parallelism with GPU models (the CUDA kernels run by the CPU emulation, ranks as threads): each rank's
/// gradients come home, are all-reduced, and its step finishes on the host; against one CPU model with the whole batch.
/// </summary>
public class GpuDataParallelTests(ITestOutputHelper output)
{
    [EmulationFact]
    public void TwoGpuRanksWithHalfTheBatchTakeTheStepsOfOneProcess()
    {
        const int Share = 2, Length = 12, Steps = 3;
        var options = new TrainerOptions { LearningRate = 3e-3f, WarmupSteps = 1, TotalSteps = 10 };
        (float[] X, int[] Y) Batch(int step, int from, int count)
        {
            var rng = new Rng(40 + (ulong)step);
            var x = Enumerable.Range(0, 2 * Share * Length).Select(_ => (float)rng.Normal()).ToArray();
            var y = Enumerable.Range(0, 2 * Share).Select(_ => rng.NextInt(4)).ToArray();
            return (x.AsSpan(from * Length, count * Length).ToArray(), y.AsSpan(from, count).ToArray());
        }
        using var whole = new SmokeModel(2 * Share, Length, ModelUse.Training);
        whole.Initialize(8);
        var start = whole.Parameters.ToArray();
        var trainer = new Trainer(whole, options);
        for (int s = 0; s < Steps; s++) { var (x, y) = Batch(s, 0, 2 * Share); trainer.TrainStep(x, y, 2 * Share, Length); }

        var ranks = ThreadRanks.Run(2, (rank, collective) =>
        {
            using var m = new SmokeModel(Share, Length, ModelUse.Training, ComputeDevice.CudaEmulation());
            if (rank == 0) start.CopyTo(m.Parameters);
            var t = new Trainer(m, options, collective);
            for (int s = 0; s < Steps; s++) { var (x, y) = Batch(s, rank * Share, Share); t.TrainStep(x, y, Share, Length); }
            return m.Parameters.ToArray();
        });
        Assert.Equal(ranks[0], ranks[1]);
        double diff = 0, scale = 0;
        for (int i = 0; i < start.Length; i++) { diff = Math.Max(diff, Math.Abs(ranks[0][i] - whole.Parameters[i])); scale = Math.Max(scale, Math.Abs(whole.Parameters[i])); }
        output.WriteLine($"{Steps} steps, 2 emulated GPU ranks × batch {Share} against one CPU process × batch {2 * Share}: parameters within {diff / scale:E2} of their largest magnitude");
        Assert.True(diff < 1e-5 * scale, $"parameters differ by {diff / scale:E2} of their scale");
    }
}
