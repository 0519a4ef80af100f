using SsmGen.Training;
using Xunit.Abstractions;

namespace SsmGen.Tests.Training;

/// <summary>
/// A step whose loss or gradient norm is NaN or infinite is never applied: it throws (the default) or is skipped,
/// and in both cases the parameters, the optimizer's moments and step count, and the schedule's step stay bit for bit.
/// </summary>
public class NonFiniteStepTests(ITestOutputHelper output)
{
    private const int Batch = 4, Length = 12;

    /// <summary>Everything a step may change, as bits (NaN == NaN).</summary>
    internal sealed record Snapshot(int[] Parameters, int[] FirstMoments, int[] SecondMoments, long OptimizerSteps, long TrainerSteps)
    {
        public static Snapshot Of(ISsmModel model, Trainer trainer) => new(
            Bits(model.Parameters), Bits(trainer.Optimizer.FirstMoments), Bits(trainer.Optimizer.SecondMoments), trainer.Optimizer.StepCount, trainer.Step);

        private static int[] Bits(ReadOnlySpan<float> values)
        {
            var bits = new int[values.Length];
            for (int i = 0; i < bits.Length; i++) bits[i] = BitConverter.SingleToInt32Bits(values[i]);
            return bits;
        }

        public void AssertSameAs(Snapshot other)
        {
            Assert.Equal(other.Parameters, Parameters);
            Assert.Equal(other.FirstMoments, FirstMoments);
            Assert.Equal(other.SecondMoments, SecondMoments);
            Assert.Equal(other.OptimizerSteps, OptimizerSteps);
            Assert.Equal(other.TrainerSteps, TrainerSteps);
        }
    }

    internal static (float[] X, int[] Y, float[] Regression) Batch4(int seed)
    {
        var rng = new Rng((ulong)seed);
        var x = new float[Batch * Length];
        for (int i = 0; i < x.Length; i++) x[i] = (float)rng.Normal();
        var y = new int[Batch];
        for (int b = 0; b < Batch; b++) y[b] = rng.NextInt(SmokeModel.OutputSize);
        var regression = new float[Batch * SmokeModel.OutputSize];
        for (int i = 0; i < regression.Length; i++) regression[i] = (float)rng.Normal();
        return (x, y, regression);
    }

    private static (SmokeModel Model, Trainer Trainer) Trained(NonFiniteStep mode, int goodSteps = 3)
    {
        var model = new SmokeModel(Batch, Length);
        model.Initialize(1);
        var trainer = new Trainer(model, new TrainerOptions { OnNonFinite = mode, WarmupSteps = 2, TotalSteps = 50 });
        for (int s = 0; s < goodSteps; s++)
        {
            var (x, y, _) = Batch4(10 + s);
            trainer.TrainStep(x, y, Batch, Length); // moments not zero, so "unchanged" means something
        }
        return (model, trainer);
    }

    /// <summary>
    /// A NaN born inside the model for the returned scope: one decoder weight made NaN, then restored. (A NaN in the
    /// input never gets this far: Forward refuses it before anything changes.)
    /// </summary>
    internal static IDisposable NaNInside(ISsmModel model)
    {
        var weight = model.ParameterTable.First(p => p.Name == "decoder.weight");
        float old = model.Parameters[weight.Offset];
        model.Parameters[weight.Offset] = float.NaN;
        return new Restore(() => model.Parameters[weight.Offset] = old);
    }

    private sealed class Restore(Action undo) : IDisposable { public void Dispose() => undo(); }

    [Fact]
    public void ANaNInputIsRefusedBeforeTheStepStarts()
    {
        var (model, trainer) = Trained(NonFiniteStep.Throw);
        var before = Snapshot.Of(model, trainer);
        var (x, y, _) = Batch4(99);
        x[17] = float.NaN;
        Assert.Throws<ArgumentException>(() => trainer.TrainStep(x, y, Batch, Length));
        Snapshot.Of(model, trainer).AssertSameAs(before);
    }

    [Fact]
    public void ANaNInsideTheModelThrowsAndLeavesParametersAndMomentsBitIdentical()
    {
        var (model, trainer) = Trained(NonFiniteStep.Throw);
        var (x, y, targets) = Batch4(99);
        using (NaNInside(model))
        {
            var before = Snapshot.Of(model, trainer);
            var e = Assert.Throws<NonFiniteStepException>(() => trainer.TrainStep(x, y, Batch, Length));
            output.WriteLine(e.Message);
            Assert.Equal(3, e.Step);
            Assert.True(float.IsNaN(e.Loss) && float.IsNaN(e.GradientNorm));
            Assert.Contains("Training step 3", e.Message);
            Assert.Contains("NaN", e.Message);
            Snapshot.Of(model, trainer).AssertSameAs(before);
            Assert.Equal(0, trainer.SkippedSteps);

            // The regression step is guarded the same way.
            Assert.Throws<NonFiniteStepException>(() => trainer.RegressionStep(x, targets, Batch, Length));
            Snapshot.Of(model, trainer).AssertSameAs(before);
        }

        // The trainer is still usable: a good batch trains.
        var r = trainer.TrainStep(x, y, Batch, Length);
        Assert.True(float.IsFinite(r.Loss) && !r.Skipped);
        Assert.Equal(4, trainer.Step);
    }

    [Fact]
    public void SkipModeLeavesEverythingAsIfTheStepNeverCameAndTheNextStepTrainsNormally()
    {
        var (model, trainer) = Trained(NonFiniteStep.Skip);
        var (twin, twinTrainer) = Trained(NonFiniteStep.Skip); // never sees the bad batch
        var (x, y, targets) = Batch4(99);
        using (NaNInside(model))
        {
            var before = Snapshot.Of(model, trainer);
            var r = trainer.TrainStep(x, y, Batch, Length);
            Assert.True(r.Skipped);
            Assert.True(float.IsNaN(r.Loss));
            Assert.Equal(1, trainer.SkippedSteps);
            Snapshot.Of(model, trainer).AssertSameAs(before);

            var regression = trainer.RegressionStep(x, targets, Batch, Length);
            Assert.True(regression.Skipped);
            Assert.Equal(2, trainer.SkippedSteps);
            Snapshot.Of(model, trainer).AssertSameAs(before);
        }

        // The next good step is exactly the step the twin takes (SmokeModel has no dropout to tell them apart).
        var good = trainer.TrainStep(x, y, Batch, Length);
        var twinGood = twinTrainer.TrainStep(x, y, Batch, Length);
        Assert.False(good.Skipped);
        Assert.Equal(twinGood, good);
        Snapshot.Of(model, trainer).AssertSameAs(Snapshot.Of(twin, twinTrainer));
        Assert.Equal(2, trainer.SkippedSteps);
    }

    [Fact]
    public void TheTokenOverloadIsGuardedToo()
    {
        var model = new VectorTokens(2, 5);
        model.Initialize(2);
        var trainer = new Trainer(model, new TrainerOptions());
        var tokens = new[] { 1, 2, 3, 4, 5, 6, 0, 1, 2, 3 };
        var targets = tokens.Select(t => (t + 1) % 7).ToArray();
        trainer.TrainStep(tokens, targets, 2, 5);
        // An infinite entry in one embedding row: that token's forward is no longer finite.
        var embedding = model.ParameterTable.Single(p => p.Name == "encoder.weight"); // (vocabulary, d_model)
        model.Parameters[embedding.Offset + 3 * embedding.Shape[^1]] = float.PositiveInfinity;
        var before = Snapshot.Of(model, trainer);
        Assert.Throws<NonFiniteStepException>(() => trainer.TrainStep(tokens, targets, 2, 5));
        Snapshot.Of(model, trainer).AssertSameAs(before);
    }

    [Fact]
    public void AHugeLearningRateIsCaughtWithinAFewStepsInsteadOfLeavingNaNParameters()
    {
        var model = new SmokeModel(Batch, Length);
        model.Initialize(1);
        var trainer = new Trainer(model, new TrainerOptions { LearningRate = 1e4f, SsmLearningRate = 1e4f, WarmupSteps = 0 });
        NonFiniteStepException? caught = null;
        for (int s = 0; s < 20 && caught is null; s++)
        {
            var (x, y, _) = Batch4(s);
            try { trainer.TrainStep(x, y, Batch, Length); }
            catch (NonFiniteStepException e) { caught = e; }
        }
        Assert.NotNull(caught);
        output.WriteLine($"caught at step {caught.Step}: {caught.Message}");
        Assert.True(caught.Step <= 5, $"diverged silently until step {caught.Step}");
        Assert.DoesNotContain(model.Parameters.ToArray(), float.IsNaN);
    }
}

/// <summary>
/// The same guard on the GPU training step (run in the CPU emulation of the generated CUDA): the device's AdamW
/// kernel reads the loss and norm it computed and returns without writing when one is not finite.
/// </summary>
public class DeviceNonFiniteStepTests
{
    private const int Batch = 4, Length = 12;

    private static (SmokeModel Model, Trainer Trainer) Trained(SsmGen.Cuda.ComputeDevice? device, NonFiniteStep mode)
    {
        var model = new SmokeModel(Batch, Length, ModelUse.Training, device);
        model.Initialize(1);
        var trainer = new Trainer(model, new TrainerOptions { OnNonFinite = mode, WarmupSteps = 2, TotalSteps = 50 });
        for (int s = 0; s < 3; s++)
        {
            var (x, y, _) = NonFiniteStepTests.Batch4(10 + s);
            trainer.TrainStep(x, y, Batch, Length);
        }
        return (model, trainer);
    }

    [SsmGen.Tests.Cuda.EmulationFact]
    public void TheDeviceStepThrowsOrSkipsWithoutWritingAndTheNextStepFollowsTheCpu()
    {
        using var device = SsmGen.Cuda.ComputeDevice.CudaEmulation();
        var (x, y, _) = NonFiniteStepTests.Batch4(99);

        var (thrower, throwing) = Trained(device, NonFiniteStep.Throw);
        Assert.True(thrower.TrainsOnDevice);
        using (thrower)
        {
            using var nan = NonFiniteStepTests.NaNInside(thrower);
            var before = NonFiniteStepTests.Snapshot.Of(thrower, throwing);
            var e = Assert.Throws<NonFiniteStepException>(() => throwing.TrainStep(x, y, Batch, Length));
            Assert.True(float.IsNaN(e.Loss));
            NonFiniteStepTests.Snapshot.Of(thrower, throwing).AssertSameAs(before);
        }

        var (gpu, onDevice) = Trained(device, NonFiniteStep.Skip);
        var (cpu, onHost) = Trained(null, NonFiniteStep.Skip);
        using (gpu)
        {
            using (NonFiniteStepTests.NaNInside(gpu))
            using (NonFiniteStepTests.NaNInside(cpu))
            {
                var before = NonFiniteStepTests.Snapshot.Of(gpu, onDevice);
                var skipped = onDevice.TrainStep(x, y, Batch, Length);
                Assert.True(skipped.Skipped);
                Assert.Equal(1, onDevice.SkippedSteps);
                NonFiniteStepTests.Snapshot.Of(gpu, onDevice).AssertSameAs(before);
                Assert.True(onHost.TrainStep(x, y, Batch, Length).Skipped);
            }

            // After the skipped step both take the same good step; float32 kernels and host loops agree closely.
            var g = onDevice.TrainStep(x, y, Batch, Length);
            var c = onHost.TrainStep(x, y, Batch, Length);
            Assert.False(g.Skipped);
            Assert.Equal(c.Loss, g.Loss, 1e-4f);
            Assert.Equal(onHost.Optimizer.StepCount, onDevice.Optimizer.StepCount);
            var pg = gpu.Parameters.ToArray();
            var pc = cpu.Parameters.ToArray();
            for (int i = 0; i < pc.Length; i++) Assert.True(Math.Abs(pg[i] - pc[i]) <= 1e-4f * (1 + Math.Abs(pc[i])), $"parameter {i}: GPU {pg[i]}, CPU {pc[i]}");
        }
    }
}
