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
    [InlineData("MambaOdd", 150)]       // E = 18 (a warp with idle lanes), N = 4, LayerNorm, Δ rank 3, conv 3: three chunks of 64
    [InlineData("Hybrid", 130)]         // S4D, Mamba (N = 8, conv 2), S4D
    [InlineData("RnnTokens", 23)]       // RNN blocks: tanh with hidden 12, ReLU with hidden 6
    [InlineData("IdsTokens", 19)]       // IDS blocks, N = 4 and N = 5
    [InlineData("AttentionTokens", 13)] // transformer blocks: 2 heads of 4; 4 heads of 2 with MLP ratio 2
    [InlineData("AllKinds", 70)]        // attention, S4D, RNN, Mamba (2 chunks), IDS in one stack
    public void ForwardAndBackwardMatchTheReference(string name, int length)
    {
        var (gen, cfg) = GeneratedVsReferenceTests.Make(name, 3, length, ModelUse.Training, Emulation);
        using (gen) GeneratedVsReferenceTests.CompareWithReference(gen, cfg, length, batch: 3, maxBatch: 3, maxLength: length, output, ForwardTolerance, GradientTolerance);
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

/// <summary>Training through the unchanged Trainer on the emulated GPU follows the CPU model step for step.</summary>
public class GpuEmulationTrainingTests(ITestOutputHelper output)
{
    [EmulationFact]
    public void TrainingStepsFollowTheCpuModel()
    {
        using var device = ComputeDevice.CudaEmulation();
        using var cpu = new SmokeModel(8, 24);
        using var gpu = new SmokeModel(8, 24, ModelUse.Training, device);
        cpu.Initialize(5);
        gpu.Initialize(5);
        var options = new SsmGen.Training.TrainerOptions { LearningRate = 0.01f, SsmLearningRate = 0.005f, TotalSteps = 30, WarmupSteps = 2 };
        var tc = new SsmGen.Training.Trainer(cpu, options);
        var tg = new SsmGen.Training.Trainer(gpu, options);
        var rng = new Rng(11);
        float firstLoss = 0, lastLoss = 0;
        for (int step = 0; step < 30; step++)
        {
            // class k: a sine of frequency k + 1 plus noise
            var x = new float[8 * 24];
            var y = new int[8];
            for (int b = 0; b < 8; b++)
            {
                y[b] = (int)(rng.NextUInt64() % 4);
                for (int t = 0; t < 24; t++) x[b * 24 + t] = MathF.Sin((y[b] + 1) * t * 0.25f) + 0.1f * (float)rng.Uniform(-1, 1);
            }
            var rc = tc.TrainStep(x, y, 8, 24);
            var rg = tg.TrainStep(x, y, 8, 24);
            Assert.True(Math.Abs(rc.Loss - rg.Loss) <= 1e-3 * Math.Max(1, Math.Abs(rc.Loss)), $"step {step}: CPU loss {rc.Loss}, GPU loss {rg.Loss}");
            if (step == 0) firstLoss = rg.Loss;
            lastLoss = rg.Loss;
        }
        var pc = cpu.Parameters.ToArray();
        var pg = gpu.Parameters.ToArray();
        double maxDiff = pc.Zip(pg, (a, b) => Math.Abs(a - b)).Max();
        output.WriteLine($"loss {firstLoss:F4} → {lastLoss:F4}; max parameter difference after 30 steps {maxDiff:E2}");
        Assert.True(maxDiff < 1e-3, $"parameters drifted apart by {maxDiff:E2}");
        Assert.True(lastLoss < firstLoss, $"loss did not fall: {firstLoss} → {lastLoss}");
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
}
