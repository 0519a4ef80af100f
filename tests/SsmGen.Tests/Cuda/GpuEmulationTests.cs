using SsmGen.Cuda;
using SsmGen.Tests.Generated;
using Xunit.Abstractions;

namespace SsmGen.Tests.Cuda;

/// <summary>A theory that runs CUDA C in the CPU emulation: skipped, with the reason, where g++ is missing.</summary>
public sealed class EmulationTheoryAttribute : TheoryAttribute
{
    public EmulationTheoryAttribute()
    {
        if (!EmulatedBackend.IsAvailable(out string reason)) Skip = "CUDA emulation not available: " + reason;
    }
}

/// <summary>
/// The generated GPU path (CUDA kernels, launches, cuBLAS-shaped GEMMs, device buffers, host/device parameter
/// sync) run in the CPU emulation against the double reference: what the kernels compute, without a GPU.
/// </summary>
public class GpuEmulationTests(ITestOutputHelper output)
{
    private static readonly ComputeDevice Emulation = ComputeDevice.CudaEmulation();

    // Float32 kernels against float64: the scan multiplies Ā once per step (no anchored chain as on the CPU),
    // so its error grows with the length a little faster than the CPU path's.
    private const double ForwardTolerance = 1e-5, GradientTolerance = 1e-4;

    [EmulationTheory]
    [InlineData("TinyRealMean", 7)]     // ZOH with trainable B, bilinear with dropout; 2 and 3 modes; mean pooling
    [InlineData("TinyRealMean", 150)]
    [InlineData("VectorTokens", 9)]     // token input, per-token output, 16 and 8 modes
    [InlineData("VectorLast", 5)]       // last pooling, 32 modes, a repeated block
    [InlineData("Wide16", 6)]
    [InlineData("MambaTokens", 9)]      // two Mamba blocks, N = 16, E = 32 (one warp), RMSNorm, no decoder bias: one scan chunk
    [InlineData("MambaTokens", 70)]     // three chunks of 32, the last partial
    [InlineData("MambaTokens", 600)]    // 19 chunks: three tiles of the fused forward scan (8 chunks each), the state carried between them
    [InlineData("MambaOdd", 150)]       // E = 18 (a warp with idle lanes), N = 4, LayerNorm, Δ rank 3, conv 3: three chunks of 64
    [InlineData("MambaSigned", 600)]    // transitions 2·exp(Δ·A) − 1 beside a plain block of the same N: 19 chunks, three tiles
    [InlineData("Hybrid", 130)]         // S4D, Mamba (N = 8, conv 2), S4D
    [InlineData("RnnTokens", 23)]       // RNN blocks: tanh with hidden 12, ReLU with hidden 6
    [InlineData("IdsTokens", 19)]       // IDS blocks, N = 4 and N = 5
    [InlineData("AttentionTokens", 13)] // transformer blocks: 2 heads of 4; 4 heads of 2 with MLP ratio 2
    [InlineData("AllKinds", 70)]        // attention, S4D, RNN, Mamba (2 chunks), IDS in one stack
    [InlineData("DeltaTokens", 7)]      // delta rule: 2 heads of 4 with 2 Householder steps and the gate; an ungated head of 3
    [InlineData("DeltaTokens", 40)]     // chunks of 16 tokens (2 steps) and of 32 (1 step), the last partial: states passed between chunks
    [InlineData("S4Tokens", 9)]         // S4 (N = 8 and 4, kernel length 64: 33 roots each) around an S4D block
    [InlineData("S4Tokens", 64)]        // the whole kernel length
    public void ForwardAndBackwardMatchTheReference(string name, int length)
    {
        var (gen, cfg) = GeneratedVsReferenceTests.Make(name, 3, length, ModelUse.Training, Emulation);
        using (gen) GeneratedVsReferenceTests.CompareWithReference(gen, cfg, length, batch: 3, maxBatch: 3, maxLength: length, output, ForwardTolerance, GradientTolerance);
    }

    /// <summary>More batch rows than the S4D kernel gradient's batch slices (8): a slice then sums several rows.</summary>
    [EmulationFact]
    public void MoreRowsThanGradientSlicesMatchTheReference()
    {
        var (gen, cfg) = GeneratedVsReferenceTests.Make("TinyRealMean", 11, 70, ModelUse.Training, Emulation);
        using (gen) GeneratedVsReferenceTests.CompareWithReference(gen, cfg, 70, batch: 11, maxBatch: 11, maxLength: 70, output, ForwardTolerance, GradientTolerance);
    }

    [EmulationTheory]
    [InlineData("TinyRealMean", 9, 40)]
    [InlineData("VectorTokens", 7, 30)]
    [InlineData("MambaTokens", 40, 100)]
    public void SmallerCallsThanTheBuffersMatchTheReference(string name, int length, int maxLength)
    {
        var (gen, cfg) = GeneratedVsReferenceTests.Make(name, 5, maxLength, ModelUse.Training, Emulation);
        using (gen) GeneratedVsReferenceTests.CompareWithReference(gen, cfg, length, batch: 2, maxBatch: 5, maxLength, output, ForwardTolerance, GradientTolerance);
    }
}

/// <summary>
/// Training through the unchanged Trainer on the emulated GPU: the step's tail (cross-entropy, clipping, AdamW) runs on
/// the device and must follow the CPU Trainer's host arithmetic step for step — losses, norms, correct counts, and
/// after the steps the parameters, the clipped gradients and the optimizer's moments.
/// </summary>
public class GpuEmulationTrainingTests(ITestOutputHelper output)
{
    private static (float[] X, int[] Y) SineBatch(ref Rng rng, int batch, int length)
    {
        // class k: a sine of frequency k + 1 plus noise
        var x = new float[batch * length];
        var y = new int[batch];
        for (int b = 0; b < batch; b++)
        {
            y[b] = (int)(rng.NextUInt64() % 4);
            for (int t = 0; t < length; t++) x[b * length + t] = MathF.Sin((y[b] + 1) * t * 0.25f) + 0.1f * (float)rng.Uniform(-1, 1);
        }
        return (x, y);
    }

    private static double MaxRelative(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        double scale = 0, diff = 0;
        for (int i = 0; i < expected.Length; i++) { scale = Math.Max(scale, Math.Abs(expected[i])); diff = Math.Max(diff, Math.Abs(expected[i] - actual[i])); }
        return diff / Math.Max(scale, 1e-30);
    }

    private static void AssertStepsAgree(StepResultPair r, int step)
    {
        Assert.True(Math.Abs(r.Cpu.Loss - r.Gpu.Loss) <= 1e-4 * Math.Max(1, Math.Abs(r.Cpu.Loss)), $"step {step}: CPU loss {r.Cpu.Loss}, GPU loss {r.Gpu.Loss}");
        Assert.True(Math.Abs(r.Cpu.GradientNorm - r.Gpu.GradientNorm) <= 1e-3 * r.Cpu.GradientNorm, $"step {step}: CPU norm {r.Cpu.GradientNorm}, GPU norm {r.Gpu.GradientNorm}");
        Assert.Equal(r.Cpu.Count, r.Gpu.Count);
        Assert.True(Math.Abs(r.Cpu.Correct - r.Gpu.Correct) <= 1, $"step {step}: CPU {r.Cpu.Correct} correct, GPU {r.Gpu.Correct}"); // a near tie may flip
    }

    private readonly record struct StepResultPair(SsmGen.Training.StepResult Cpu, SsmGen.Training.StepResult Gpu);

    private void AssertStatesAgree(ISsmModel cpu, ISsmModel gpu, SsmGen.Training.Trainer tc, SsmGen.Training.Trainer tg, double parameterBound)
    {
        double p = MaxRelative(cpu.Parameters, gpu.Parameters), g = MaxRelative(cpu.Gradients, gpu.Gradients);
        double m = MaxRelative(tc.Optimizer.FirstMoments, tg.Optimizer.FirstMoments), v = MaxRelative(tc.Optimizer.SecondMoments, tg.Optimizer.SecondMoments);
        output.WriteLine($"relative to the largest entry: parameters {p:E2}, clipped gradients {g:E2}, first moments {m:E2}, second moments {v:E2}");
        Assert.True(p < parameterBound, $"parameters apart by {p:E2}");
        Assert.True(g < 1e-3 && m < 1e-3 && v < 1e-3, $"gradients {g:E2}, moments {m:E2} / {v:E2} apart");
        Assert.Equal(tc.Optimizer.StepCount, tg.Optimizer.StepCount);
    }

    [EmulationFact]
    public void TheDeviceTrainingStepRefusesIgnoredTargetsBeforeChangingAnything()
    {
        using var device = ComputeDevice.CudaEmulation();
        using var gpu = new SmokeModel(8, 24, ModelUse.Training, device);
        gpu.Initialize(5);
        var trainer = new SsmGen.Training.Trainer(gpu, new SsmGen.Training.TrainerOptions());
        var rng = new Rng(6);
        var (x, y) = SineBatch(ref rng, 8, 24);
        y[3] = SsmGen.Training.Losses.Ignored;
        var before = gpu.Parameters.ToArray();
        var e = Assert.Throws<NotSupportedException>(() => trainer.TrainStep(x, y, 8, 24));
        Assert.Contains("Losses.Ignored", e.Message);
        Assert.Equal(before, gpu.Parameters.ToArray());
        Assert.Equal(0, trainer.Step);
    }

    [EmulationFact]
    public void TrainingStepsFollowTheCpuModel()
    {
        using var device = ComputeDevice.CudaEmulation();
        using var cpu = new SmokeModel(8, 24);
        using var gpu = new SmokeModel(8, 24, ModelUse.Training, device);
        Assert.True(gpu.TrainsOnDevice);
        Assert.False(cpu.TrainsOnDevice);
        cpu.Initialize(5);
        gpu.Initialize(5);
        var options = new SsmGen.Training.TrainerOptions { LearningRate = 0.01f, SsmLearningRate = 0.005f, TotalSteps = 30, WarmupSteps = 2 };
        var tc = new SsmGen.Training.Trainer(cpu, options);
        var tg = new SsmGen.Training.Trainer(gpu, options);
        var rng = new Rng(11);
        float firstLoss = 0, lastLoss = 0;
        for (int step = 0; step < 30; step++)
        {
            var (x, y) = SineBatch(ref rng, 8, 24);
            var r = new StepResultPair(tc.TrainStep(x, y, 8, 24), tg.TrainStep(x, y, 8, 24));
            AssertStepsAgree(r, step);
            if (step == 0) firstLoss = r.Gpu.Loss;
            lastLoss = r.Gpu.Loss;
        }
        output.WriteLine($"loss {firstLoss:F4} → {lastLoss:F4}");
        AssertStatesAgree(cpu, gpu, tc, tg, 1e-3);
        Assert.True(lastLoss < firstLoss, $"loss did not fall: {firstLoss} → {lastLoss}");
    }

    [EmulationFact]
    public void PerTokenStepsWithDropoutAndActiveClippingFollowTheCpuModel()
    {
        using var device = ComputeDevice.CudaEmulation();
        using var cpu = new VectorTokens(4, 12);
        using var gpu = new VectorTokens(4, 12, ModelUse.Training, device);
        cpu.Initialize(3);
        gpu.Initialize(3);
        // A small clipping norm: every step clips, so the device's clipping factor is exercised.
        var options = new SsmGen.Training.TrainerOptions { LearningRate = 0.02f, TotalSteps = 8, WarmupSteps = 1, MaxGradNorm = 0.05f };
        var tc = new SsmGen.Training.Trainer(cpu, options);
        var tg = new SsmGen.Training.Trainer(gpu, options);
        var rng = new Rng(4);
        for (int step = 0; step < 8; step++)
        {
            var tokens = new int[4 * 12];
            for (int i = 0; i < tokens.Length; i++) tokens[i] = (int)(rng.NextUInt64() % 7);
            var targets = tokens.Select(t => (t * 3 + 1) % 7).ToArray(); // a per-token map to learn
            var r = new StepResultPair(tc.TrainStep(tokens, targets, 4, 12), tg.TrainStep(tokens, targets, 4, 12));
            AssertStepsAgree(r, step);
            Assert.True(r.Gpu.GradientNorm > options.MaxGradNorm, $"step {step}: norm {r.Gpu.GradientNorm} did not need clipping");
            // The gradients left behind are the clipped ones: their norm is the clipping norm (an oracle of its own).
            double clipped = Math.Sqrt(gpu.Gradients.ToArray().Sum(g => (double)g * g));
            Assert.True(Math.Abs(clipped - options.MaxGradNorm) < 1e-4, $"step {step}: clipped norm {clipped}");
        }
        AssertStatesAgree(cpu, gpu, tc, tg, 1e-3);
    }

    [EmulationFact]
    public void RestoredMomentsReachTheDeviceAndDisposingBringsThemHome()
    {
        using var device = ComputeDevice.CudaEmulation();
        using var cpu = new SmokeModel(4, 16);
        var gpu = new SmokeModel(4, 16, ModelUse.Training, device);
        cpu.Initialize(8);
        gpu.Initialize(8);
        var options = new SsmGen.Training.TrainerOptions { TotalSteps = 10, WarmupSteps = 1 };
        var tc = new SsmGen.Training.Trainer(cpu, options);
        var tg = new SsmGen.Training.Trainer(gpu, options);
        var rng = new Rng(2);
        for (int step = 0; step < 3; step++)
        {
            var (x, y) = SineBatch(ref rng, 4, 16);
            tc.TrainStep(x, y, 4, 16);
            tg.TrainStep(x, y, 4, 16);
        }
        // Both optimizers restart from the same saved state; a device that kept its own moments would now diverge.
        var m = Enumerable.Range(0, cpu.Parameters.Length).Select(i => 1e-3f * (i % 5 - 2)).ToArray();
        var v = Enumerable.Range(0, cpu.Parameters.Length).Select(i => 1e-5f * (i % 3 + 1)).ToArray();
        tc.Optimizer.Restore(m, v, 1);
        tg.Optimizer.Restore(m, v, 1);
        for (int step = 0; step < 2; step++)
        {
            var (x, y) = SineBatch(ref rng, 4, 16);
            AssertStepsAgree(new StepResultPair(tc.TrainStep(x, y, 4, 16), tg.TrainStep(x, y, 4, 16)), step);
        }
        AssertStatesAgree(cpu, gpu, tc, tg, 1e-3);
        // One more device step, then the model goes: the optimizer keeps the moments the device wrote.
        var (x2, y2) = SineBatch(ref rng, 4, 16);
        tc.TrainStep(x2, y2, 4, 16);
        tg.TrainStep(x2, y2, 4, 16);
        gpu.Dispose();
        double drift = MaxRelative(tc.Optimizer.FirstMoments, tg.Optimizer.FirstMoments);
        Assert.True(drift < 1e-3, $"first moments after Dispose apart by {drift:E2}");
    }

    [EmulationFact]
    public void AnOptimizerMovesBetweenModelsWithItsMoments()
    {
        using var device = ComputeDevice.CudaEmulation();
        using var a = new SmokeModel(4, 16, ModelUse.Training, device);
        using var b = new SmokeModel(4, 16, ModelUse.Training, device);
        a.Initialize(6);
        b.Initialize(9);
        var shared = new SsmGen.Training.AdamW(a.ParameterTable);
        var rng = new Rng(7);
        var logits = new float[4 * SmokeModel.OutputSize];
        float[] Step(SmokeModel m, SsmGen.Training.AdamW optimizer)
        {
            var (x, y) = SineBatch(ref rng, 4, 16);
            m.Forward(x, 4, 16, logits, training: true);
            m.FinishTrainingStep(y, optimizer, 1f, 1f);
            return m.Gradients.ToArray(); // the clipped gradients the update used
        }
        // The moment update m ← β₁·m + (1 − β₁)·g, computed here from the moments and gradients read back.
        void AssertFollows(float[] before, float[] gradients)
        {
            var after = shared.FirstMoments.ToArray();
            for (int i = 0; i < after.Length; i++)
                Assert.True(Math.Abs(after[i] - (0.9f * before[i] + 0.1f * gradients[i])) <= 1e-6f * (1 + Math.Abs(after[i])), $"moment {i}: {after[i]}");
        }
        Step(a, shared);
        var m1 = shared.FirstMoments.ToArray();
        AssertFollows(m1, Step(b, shared)); // b starts from a's moments, not from zero
        var m2 = shared.FirstMoments.ToArray();
        Step(a, new SsmGen.Training.AdamW(a.ParameterTable)); // a lets go of its released copy: no second free, b keeps the optimizer
        AssertFollows(m2, Step(b, shared));
        Assert.Equal(3, shared.StepCount);
    }

    [EmulationFact]
    public void BadStepInputThrowsBeforeAnythingChanges()
    {
        using var device = ComputeDevice.CudaEmulation();
        using var gpu = new SmokeModel(4, 16, ModelUse.Training, device);
        gpu.Initialize(1);
        var optimizer = new SsmGen.Training.AdamW(gpu.ParameterTable);
        var logits = new float[4 * SmokeModel.OutputSize];
        Assert.Throws<InvalidOperationException>(() => gpu.FinishTrainingStep(new int[4], optimizer, 1f, 1f)); // no Forward yet
        gpu.Forward(new float[4 * 16], 4, 16, logits, training: true);
        gpu.Gradients.Fill(0.5f);
        var before = gpu.Parameters.ToArray();
        var e1 = Assert.Throws<ArgumentException>(() => gpu.FinishTrainingStep(new int[3], optimizer, 1f, 1f));
        Assert.Contains("3 targets", e1.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => gpu.FinishTrainingStep(new[] { 0, 1, 4, 2 }, optimizer, 1f, 1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => gpu.FinishTrainingStep(new int[4], optimizer, 1f, 0f));
        var other = new SsmGen.Training.AdamW(TinyRealMean.Table);
        var e2 = Assert.Throws<ArgumentException>(() => gpu.FinishTrainingStep(new int[4], other, 1f, 1f));
        Assert.Contains("moments for", e2.Message);
        Assert.Equal(before, gpu.Parameters.ToArray());
        Assert.All(gpu.Gradients.ToArray(), g => Assert.Equal(0.5f, g));
        Assert.Equal(0, optimizer.StepCount);
        Assert.Equal(0, other.StepCount);
        Assert.Throws<InvalidOperationException>(() => new SmokeModel(4, 16).FinishTrainingStep(new int[4], optimizer, 1f, 1f)); // a CPU model
    }
}

/// <summary>What a GPU model refuses, and how it says so.</summary>
public class GpuModelRefusalTests
{
    [EmulationFact]
    public void ADisposedModelRefusesToRun()
    {
        using var device = ComputeDevice.CudaEmulation();
        var model = new SmokeModel(2, 4, ModelUse.Training, device);
        model.Initialize(1);
        var y = new float[2 * 4];
        model.Forward(new float[8], 2, 4, y);
        model.Dispose();
        Assert.Throws<ObjectDisposedException>(() => model.Forward(new float[8], 2, 4, y));
        model.Dispose(); // a second Dispose does nothing
    }

    [EmulationFact]
    public void AnRnnWiderThanTheGpuPathRefusesTheDeviceAndSaysWhy()
    {
        using var device = ComputeDevice.CudaEmulation();
        var e = Assert.Throws<NotSupportedException>(() => new WideRnn(1, 2, ModelUse.Inference, device));
        Assert.Contains("hidden size 6145 exceeds the GPU path's 6144", e.Message);
        Assert.DoesNotContain(WideRnn.CudaKernels, k => k.StartsWith("rnn_", StringComparison.Ordinal)); // its module still compiles
        using var cpu = new WideRnn(1, 2, ModelUse.Inference); // the CPU runs it
        var y = new float[2];
        cpu.Forward(new float[] { 1f, 2f }, 1, 2, y);
        Assert.All(y, v => Assert.True(float.IsFinite(v)));
    }

    [EmulationFact]
    public void ADeltaHeadWiderThanTheGpuPathRefusesTheDeviceAndSaysWhy()
    {
        using var device = ComputeDevice.CudaEmulation();
        var e = Assert.Throws<NotSupportedException>(() => new WideDeltaHead(1, 2, ModelUse.Training, device));
        Assert.Contains("block 1 has head size 65, above the GPU path's 64", e.Message);
        Assert.DoesNotContain("block 0", e.Message); // the head of 64 next to it is not the problem
        using var cpu = new WideDeltaHead(1, 2, ModelUse.Inference); // the CPU runs it
        var y = new float[2];
        cpu.Forward(new float[] { 1f, 2f }, 1, 2, y);
        Assert.All(y, v => Assert.True(float.IsFinite(v)));
    }

    [EmulationFact]
    public void DisposingTheDeviceBeforeTheModelStillFreesTheModel()
    {
        var device = ComputeDevice.CudaEmulation();
        var model = new SmokeModel(1, 4, ModelUse.Inference, device);
        model.Initialize(2);
        var state = model.CreateState();
        var y = new float[model.Config.Output];
        model.Step(state, new float[] { 1f }, y); // a stream on the device
        device.Dispose();
        model.Dispose(); // must not throw: the stream cannot come home, the model is still disposed
        Assert.Throws<ObjectDisposedException>(() => model.Step(state, new float[] { 1f }, y));
    }
}
