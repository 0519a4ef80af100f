using SsmGen.Distributed;
using SsmGen.Training;

namespace SsmGen.Tests.Distributed;

/// <summary>
/// The trainer's data-parallel arithmetic without MPI: a collective of two ranks whose other rank holds exactly the
/// same batch (its all-reduce doubles every value) must give the single-process step, since the two shares' mean
/// gradient is the share's own; and the broadcast must reach the parameters.
/// </summary>
public class TrainerCollectiveTests
{
    /// <summary>Two ranks where the other one mirrors this one: sums are twice this rank's values.</summary>
    private sealed class MirroredRanks : ICollective
    {
        public int Broadcasts, Reduces;
        public int Rank => 0;
        public int Size => 2;
        public string Name => "mirrored";
        public void AllReduceSum(Span<float> values) { Reduces++; System.Numerics.Tensors.TensorPrimitives.Multiply(values, 2f, values); }
        public void Broadcast(Span<float> values, int root = 0) { Broadcasts++; values.Fill(0.25f); }
        public void AllGather(ReadOnlySpan<float> mine, Span<float> all) { mine.CopyTo(all); mine.CopyTo(all[mine.Length..]); }
        public void Barrier() { }
        public void Dispose() { }
    }

    [Fact]
    public void BadSettingsAreRefusedBeforeAnythingStarts()
    {
        // checked before MPI is loaded, so this runs on a machine without it too
        Assert.Contains("timeout must be positive", Assert.Throws<ArgumentOutOfRangeException>(() => new MpiCollective(TimeSpan.Zero)).Message);
        Assert.Contains("rank 0 only", Assert.Throws<ArgumentOutOfRangeException>(() => SingleProcess.Instance.Broadcast(new float[3], root: 1)).Message);
    }

    [Fact]
    public void TwoIdenticalSharesTakeTheStepOfOne()
    {
        const int Batch = 4, Length = 12;
        var alone = new SmokeModel(Batch, Length);
        var shared = new SmokeModel(Batch, Length);
        alone.Initialize(3);
        shared.Initialize(3);
        var ranks = new MirroredRanks();
        var options = new TrainerOptions { WarmupSteps = 1, TotalSteps = 10 };
        var a = new Trainer(alone, options);
        var b = new Trainer(shared, options, ranks);
        Assert.Equal(1, ranks.Broadcasts);
        Assert.All(shared.Parameters.ToArray(), v => Assert.Equal(0.25f, v)); // the broadcast wrote the parameters
        shared.Parameters.CopyTo(alone.Parameters); // from the same start
        var rng = new Rng(8);
        for (int step = 0; step < 4; step++)
        {
            var x = Enumerable.Range(0, Batch * Length).Select(_ => (float)rng.Normal()).ToArray();
            var y = Enumerable.Range(0, Batch).Select(_ => rng.NextInt(SmokeModel.OutputSize)).ToArray();
            var ra = a.TrainStep(x, y, Batch, Length);
            var rb = b.TrainStep(x, y, Batch, Length);
            Assert.Equal(2 * ra.Count, rb.Count); // the whole batch: both shares
            Assert.Equal(2 * ra.Correct, rb.Correct);
            Assert.Equal(ra.Loss, rb.Loss, 1e-6f);
        }
        Assert.True(ranks.Reduces >= 8, $"{ranks.Reduces} all-reduces over 4 steps");
        var pa = alone.Parameters.ToArray(); var pb = shared.Parameters.ToArray();
        double scale = pa.Max(MathF.Abs), diff = pa.Zip(pb, (p, q) => Math.Abs(p - q)).Max();
        Assert.True(diff <= 1e-6 * scale, $"parameters differ by {diff} (scale {scale})");
    }
}
