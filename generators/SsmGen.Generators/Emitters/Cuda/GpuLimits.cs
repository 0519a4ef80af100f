namespace SsmGen.Generators.Emitters.Cuda;

/// <summary>The launch limits the emitted GPU code works within, written once (the generated GpuPath names them).</summary>
internal static class GpuLimits
{
    /// <summary>Threads per block of the one-thread-per-element kernels.</summary>
    public const int Threads = 128;

    /// <summary>The largest grid extent in y (and z) CUDA allows; loops over more stride by gridDim.y.</summary>
    public const int MaxGridY = 65535;
}
