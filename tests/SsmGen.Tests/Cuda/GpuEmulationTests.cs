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
    public void ForwardAndBackwardMatchTheReference(string name, int length)
    {
        var (gen, cfg) = GeneratedVsReferenceTests.Make(name, 3, length, ModelUse.Training, Emulation);
        using (gen) GeneratedVsReferenceTests.CompareWithReference(gen, cfg, length, batch: 3, maxBatch: 3, maxLength: length, output, ForwardTolerance, GradientTolerance);
    }

    [EmulationTheory]
    [InlineData("TinyRealMean", 9, 40)]
    [InlineData("VectorTokens", 7, 30)]
    public void SmallerCallsThanTheBuffersMatchTheReference(string name, int length, int maxLength)
    {
        var (gen, cfg) = GeneratedVsReferenceTests.Make(name, 5, maxLength, ModelUse.Training, Emulation);
        using (gen) GeneratedVsReferenceTests.CompareWithReference(gen, cfg, length, batch: 2, maxBatch: 5, maxLength, output, ForwardTolerance, GradientTolerance);
    }
}
