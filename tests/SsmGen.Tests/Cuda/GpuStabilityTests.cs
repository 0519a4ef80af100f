using SsmGen.Cuda;
using SsmGen.Tests.Generated;
using Xunit.Abstractions;

namespace SsmGen.Tests.Cuda;

/// <summary>
/// The stability rule (|Ā| &lt; 1 in float, no exp overflow) holds on the GPU's training path as on the CPU: with
/// S4D parameters pushed where float arithmetic breaks — log Δ far past e^80, a real part of A that rounds Ā to 1 —
/// the emulated GPU's training Forward, Backward and streaming Step match the CPU model, which applies the rule.
/// </summary>
public class GpuStabilityTests(ITestOutputHelper output)
{
    private static readonly ComputeDevice Emulation = ComputeDevice.CudaEmulation();

    /// <summary>Overwrites every tensor whose name ends with <paramref name="suffix"/> by f(index).</summary>
    private static void Set(ISsmModel m, string suffix, Func<int, float> f)
    {
        foreach (var p in m.ParameterTable.Where(p => p.Name.EndsWith(suffix, StringComparison.Ordinal)))
            for (int i = 0; i < p.Length; i++) m.Parameters[p.Offset + i] = f(i);
    }

    [EmulationTheory]
    [InlineData("overflowing log Δ", 100f, 0f)]        // Δ = e^100 is +∞ in float: Δ·A·i gives ∞·0 and cos(∞) = NaN
    [InlineData("Ā rounding to 1", -12f, -30f)]       // Δ·Re A ≈ −6e-19: |exp(ΔA)| and the bilinear |Ā| round to 1
    public void TheGpuTrainingPathAppliesTheStabilityRule(string what, float logDt, float logAReal)
    {
        const int batch = 2, length = 12;
        var (gpu, cfg) = GeneratedVsReferenceTests.Make("TinyRealMean", batch, length, ModelUse.Training, Emulation); // S4D ZOH + bilinear
        var (cpu, _) = GeneratedVsReferenceTests.Make("TinyRealMean", batch, length);
        using (gpu)
        {
            cpu.Initialize(5);
            Set(cpu, "log_dt", _ => logDt);
            Set(cpu, "log_A_real", _ => logAReal);
            cpu.Parameters.CopyTo(gpu.Parameters);
            var x = TestConfigs.RandomArray(batch * length * cfg.Input, 6).Select(v => (float)v).ToArray();
            float[] yc = new float[batch * cfg.Output], yg = new float[batch * cfg.Output];
            cpu.Forward(x, batch, length, yc, training: true);
            gpu.Forward(x, batch, length, yg, training: true);
            Assert.All(yc, v => Assert.True(float.IsFinite(v), "the CPU model's output is not finite"));
            double forward = GpuEmulationStepTests.MaxRelative(yc, yg);

            var dy = TestConfigs.RandomArray(yc.Length, 7).Select(v => (float)v).ToArray();
            cpu.ZeroGradients(); gpu.ZeroGradients();
            cpu.Backward(dy); gpu.Backward(dy);
            double gradients = GpuEmulationStepTests.MaxRelative(cpu.Gradients, gpu.Gradients);

            var (sc, sg) = (cpu.CreateState(), gpu.CreateState());
            float[] zc = new float[cfg.Output], zg = new float[cfg.Output];
            double step = 0;
            for (int t = 0; t < length; t++)
            {
                cpu.Step(sc, x.AsSpan(t * cfg.Input, cfg.Input), zc);
                gpu.Step(sg, x.AsSpan(t * cfg.Input, cfg.Input), zg);
                step = Math.Max(step, GpuEmulationStepTests.MaxRelative(zc, zg));
            }
            output.WriteLine($"{what}: forward {forward:E2}, gradients {gradients:E2}, Step {step:E2} (GPU emulation vs CPU)");
            Assert.True(forward < 1e-4, $"forward differs by {forward:E2}");
            Assert.True(gradients < 1e-3, $"gradients differ by {gradients:E2}");
            Assert.True(step < 1e-4, $"Step differs by {step:E2}");
        }
    }
}
