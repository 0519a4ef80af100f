using SsmGen.Cuda;

namespace SsmGen.Tests.Cuda;

/// <summary>
/// Whether this machine can run CUDA: the driver loads, cuInit succeeds and it finds a device. Probed once per
/// test run; null when it can, else why not.
/// </summary>
internal static unsafe class CudaDeviceProbe
{
    private static readonly Lazy<string?> Reason = new(Probe);

    public static string? WhyNot => Reason.Value;

    private static string? Probe()
    {
        if (!CudaLibraries.TryDriver(out string reason)) return reason;
        int status = CudaDriver.cuInit(0);
        if (status != 0) return "cuInit failed: " + CudaDriver.Describe(status);
        int count;
        status = CudaDriver.cuDeviceGetCount(&count);
        if (status != 0) return "cuDeviceGetCount failed: " + CudaDriver.Describe(status);
        return count == 0 ? "the driver found none" : null;
    }
}

/// <summary>A test that needs an NVIDIA GPU: skipped, with the reason, where there is none.</summary>
public sealed class CudaDeviceFactAttribute : FactAttribute
{
    public CudaDeviceFactAttribute()
    {
        if (CudaDeviceProbe.WhyNot is { } reason) Skip = "no CUDA device: " + reason;
    }
}

/// <summary>A theory that needs an NVIDIA GPU.</summary>
public sealed class CudaDeviceTheoryAttribute : TheoryAttribute
{
    public CudaDeviceTheoryAttribute()
    {
        if (CudaDeviceProbe.WhyNot is { } reason) Skip = "no CUDA device: " + reason;
    }
}
