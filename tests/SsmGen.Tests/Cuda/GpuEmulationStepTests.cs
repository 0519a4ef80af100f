using SsmGen.Cuda;
using SsmGen.Reference;
using SsmGen.Tests.Generated;
using Xunit.Abstractions;

namespace SsmGen.Tests.Cuda;

/// <summary>
/// Streaming Step on the emulated GPU: every layer kind's step kernels against the double reference (the output for
/// each prefix) and the stream's values against the CPU model's state, value for value in the same layout; streams
/// that interleave, are read and written on the host, reset, or outlive their model.
/// </summary>
public class GpuEmulationStepTests(ITestOutputHelper output)
{
    private static readonly ComputeDevice Emulation = ComputeDevice.CudaEmulation();

    /// <summary>Largest absolute difference relative to the largest expected magnitude.</summary>
    internal static double MaxRelative(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        double scale = 0, diff = 0;
        for (int i = 0; i < expected.Length; i++) { scale = Math.Max(scale, Math.Abs(expected[i])); diff = Math.Max(diff, Math.Abs(expected[i] - actual[i])); }
        return diff / Math.Max(scale, 1e-30);
    }

    private static void Step(ISsmModel m, ModelConfig cfg, SsmState s, double[] x, int[] tokens, int t, float[] y)
    {
        if (cfg.TokenInput) m.Step(s, tokens[t], y);
        else m.Step(s, x.AsSpan(t * cfg.Input, cfg.Input).ToArray().Select(v => (float)v).ToArray(), y);
    }

    /// <summary>
    /// The device's sequence pass against its step over a long sequence, both against the reference's recurrence: the
    /// delta rule's chunked WY form (chunks of 16 and 32 tokens, states passed between 19 and 10 of them) against the
    /// token-by-token step kernel; S4's convolution with the kernel from the generating function against its DPLR step.
    /// </summary>
    [EmulationTheory]
    [InlineData("DeltaTokens", 300)]
    [InlineData("S4Long", 4096)] // S4's kernel from 2,049 roots against its DPLR step, 4,096 steps
    public void TheDeviceSequencePassAndStepMatchTheReferenceRecurrence(string name, int length)
    {
        var (gpu, cfg) = GeneratedVsReferenceTests.Make(name, 1, length, ModelUse.Training, Emulation);
        using (gpu) RecurrentModeTests.SequenceAndStepMatchTheReferenceRecurrence(gpu, cfg, name, length, output);
    }

    [EmulationTheory]
    [InlineData("TinyRealMean", 12)]   // S4D ZOH with trainable B and bilinear; mean pooling (the running sum in the state)
    [InlineData("VectorTokens", 9)]    // per-token outputs, 16 and 8 modes
    [InlineData("VectorLast", 7)]      // last pooling, 32 modes
    [InlineData("MambaTokens", 10)]    // Mamba, N = 16, RMSNorm, conv window 4
    [InlineData("MambaOdd", 9)]        // E = 18, N = 4, LayerNorm, conv window 3
    [InlineData("MambaSigned", 12)]    // negative transitions in the step kernel
    [InlineData("Hybrid", 8)]
    [InlineData("RnnTokens", 11)]
    [InlineData("IdsTokens", 11)]
    [InlineData("AttentionTokens", 9)] // rotary positions and the key/value cache
    [InlineData("AllKinds", 8)]
    [InlineData("DeltaTokens", 20)]    // the convolution window and both heads' states in the stream's state
    [InlineData("S4Tokens", 12)]       // S4's step tables, prepared on the host, in the stream's state
    public void StepsMatchTheReferenceAndLeaveTheCpuModelsState(string name, int length)
    {
        var (gpu, cfg) = GeneratedVsReferenceTests.Make(name, 1, length, ModelUse.Training, Emulation);
        var (cpu, _) = GeneratedVsReferenceTests.Make(name, 1, length);
        using (gpu)
        {
            gpu.Initialize(17);
            gpu.Parameters.CopyTo(cpu.Parameters);
            var reference = new ReferenceModel<double>(cfg);
            for (int i = 0; i < cpu.Parameters.Length; i++) reference.Parameters[i] = cpu.Parameters[i];
            var x = TestConfigs.RandomArray(length * cfg.Input, 5);
            var tokens = TestConfigs.RandomTokens(length, Math.Max(cfg.Vocab, 1), 6);
            SsmState sg = gpu.CreateState(), sc = cpu.CreateState();
            float[] yg = new float[cfg.Output], yc = new float[cfg.Output];
            double worst = 0, worstCpu = 0;
            for (int t = 0; t < length; t++)
            {
                Step(gpu, cfg, sg, x, tokens, t, yg);
                Step(cpu, cfg, sc, x, tokens, t, yc);
                // the reference's output for the prefix of t + 1 values: its last row (per token) or its pooled row
                double[] prefix = cfg.TokenInput ? reference.Forward(tokens.AsSpan(0, t + 1).ToArray(), 1, t + 1) : reference.Forward(x.AsSpan(0, (t + 1) * cfg.Input).ToArray(), 1, t + 1);
                var expected = prefix.AsSpan(prefix.Length - cfg.Output, cfg.Output).ToArray();
                double scale = Math.Max(expected.Max(Math.Abs), 1e-12);
                worst = Math.Max(worst, expected.Zip(yg, (a, b) => Math.Abs(a - b)).Max() / scale);
                worstCpu = Math.Max(worstCpu, MaxRelative(yc, yg));
            }
            double state = MaxRelative(sc.Values, sg.Values);
            output.WriteLine($"{name}, {length} steps: GPU Step vs reference {worst:E2}, vs CPU Step {worstCpu:E2}; stream values vs the CPU model's {state:E2}");
            Assert.True(worst < 1e-4, $"Step vs reference {worst:E2}");
            Assert.True(state < 1e-4, $"the stream's values differ from the CPU model's by {state:E2}");
            Assert.Equal(length, sg.Position);
        }
    }

    /// <summary>
    /// Two streams take turns on one GPU model (one is resident at a time); a stream read and written on the host
    /// continues from what was written; a reset stream starts over with the parameters of its new start; disposing
    /// the model brings the resident stream home. The CPU model does the same on its own states throughout.
    /// </summary>
    [EmulationFact]
    public void StreamsTakeTurnsAreWrittenOnTheHostResetAndComeHome()
    {
        const int length = 6;
        var (gpu, cfg) = GeneratedVsReferenceTests.Make("AllKinds", 1, 2 * length, ModelUse.Training, Emulation);
        var (cpu, _) = GeneratedVsReferenceTests.Make("AllKinds", 1, 2 * length);
        gpu.Initialize(23);
        gpu.Parameters.CopyTo(cpu.Parameters);
        var x = TestConfigs.RandomArray(4 * length * cfg.Input, 8);
        SsmState ga = gpu.CreateState(), gb = gpu.CreateState(), ca = cpu.CreateState(), cb = cpu.CreateState();
        float[] yg = new float[cfg.Output], yc = new float[cfg.Output];
        double worst = 0;
        void Both(SsmState g, SsmState c, int t)
        {
            Step(gpu, cfg, g, x, [], t, yg);
            Step(cpu, cfg, c, x, [], t, yc);
            worst = Math.Max(worst, MaxRelative(yc, yg));
        }

        for (int t = 0; t < length; t++) { Both(ga, ca, t); Both(gb, cb, length + t); }
        // the host reads stream a and writes it (the S4D mode tables, the caches, every state value halved)
        float[] gpuValues = ga.Values, cpuValues = ca.Values;
        for (int i = 0; i < gpuValues.Length; i++) { gpuValues[i] *= 0.5f; cpuValues[i] *= 0.5f; }
        // bad input changes nothing, on the device either
        var before = ga.Values.ToArray();
        Assert.Throws<ArgumentException>(() => gpu.Step(ga, new float[cfg.Input + 1], yg));
        Assert.Throws<ArgumentException>(() => gpu.Step(ga, new float[cfg.Input], new float[cfg.Output - 1]));
        Assert.Throws<ArgumentException>(() => gpu.Step(ca, new float[cfg.Input], yg));
        Assert.Equal(length, ga.Position);
        Assert.Equal(before, ga.Values);
        // new parameters, and stream b starts over: its first step discretizes the S4D blocks from them
        for (int i = 0; i < cpu.Parameters.Length; i += 3) { gpu.Parameters[i] *= 1.05f; cpu.Parameters[i] *= 1.05f; }
        gb.Reset(); cb.Reset();
        for (int t = 0; t < length; t++) { Both(gb, cb, 2 * length + t); Both(ga, ca, 3 * length + t); }
        double b = MaxRelative(cb.Values, gb.Values);
        gpu.Dispose(); // stream a is on the device: it comes home
        double a = MaxRelative(ca.Values, ga.Values);
        output.WriteLine($"two streams, {4 * length} GPU steps: outputs vs the CPU model {worst:E2}; stream values {a:E2} (brought home by Dispose), {b:E2}");
        Assert.True(worst < 1e-4, $"outputs differ by {worst:E2}");
        Assert.True(a < 1e-4 && b < 1e-4, $"stream values differ by {a:E2} / {b:E2}");
        Assert.Equal(2 * length, ga.Position);
        Assert.Throws<ObjectDisposedException>(() => gpu.Step(gb, new float[cfg.Input], yg));
        Assert.Equal(length, gb.Position);
    }

    /// <summary>Streaming between a Forward and its Backward uses its own buffers: the gradients are the CPU model's.</summary>
    [EmulationFact]
    public void AStepBetweenForwardAndBackwardLeavesTheGradientsAlone()
    {
        const int batch = 2, length = 9;
        var (gpu, cfg) = GeneratedVsReferenceTests.Make("AllKinds", batch, length, ModelUse.Training, Emulation);
        var (cpu, _) = GeneratedVsReferenceTests.Make("AllKinds", batch, length);
        using (gpu)
        {
            gpu.Initialize(29);
            gpu.Parameters.CopyTo(cpu.Parameters);
            var x = TestConfigs.RandomArray(batch * length * cfg.Input, 9);
            var xf = x.Select(v => (float)v).ToArray();
            int rows = cfg.Pooling == Pooling.None ? batch * length : batch;
            float[] yg = new float[rows * cfg.Output], yc = new float[rows * cfg.Output], dy = TestConfigs.RandomArray(rows * cfg.Output, 10).Select(v => (float)v).ToArray();
            gpu.ZeroGradients(); cpu.ZeroGradients();
            gpu.Forward(xf, batch, length, yg, training: true);
            cpu.Forward(xf, batch, length, yc, training: true);
            var s = gpu.CreateState();
            var ys = new float[cfg.Output];
            for (int t = 0; t < length; t++) Step(gpu, cfg, s, x, [], t, ys);
            gpu.Backward(dy);
            cpu.Backward(dy);
            double g = MaxRelative(cpu.Gradients, gpu.Gradients);
            output.WriteLine($"gradients after Forward, {length} Steps, Backward vs the CPU model's Forward, Backward: {g:E2}");
            Assert.True(g < 1e-4, $"gradients differ by {g:E2}");
        }
    }
}
