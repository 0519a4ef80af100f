namespace SsmGen.Cuda;

/// <summary>
/// Where a generated model runs: <see cref="Cpu"/> (the generated C#), a CUDA GPU (<see cref="Cuda"/>: the generated CUDA
/// kernels through NVRTC and the driver) or the CPU emulation of those kernels (<see cref="CudaEmulation"/>, for
/// checking them without a GPU). Pass it to the generated constructor; every other call stays the same.
/// Modules are compiled once per device and source and shared by the models built on it.
/// </summary>
public sealed class ComputeDevice : IDisposable
{
    private readonly Dictionary<string, GpuModule> _modules = new();
    private readonly object _gate = new();

    /// <summary>The generated C# on this machine's CPU.</summary>
    public static ComputeDevice Cpu { get; } = new(null);

    /// <summary>The backend of a GPU device; null for <see cref="Cpu"/>.</summary>
    public GpuBackend? Backend { get; }

    public bool IsGpu => Backend is not null;

    public string Name => Backend?.Name ?? "CPU";

    private ComputeDevice(GpuBackend? backend) => Backend = backend;

    /// <summary>CUDA device <paramref name="ordinal"/>; throws <see cref="CudaUnavailableException"/> saying what to install when there is none.</summary>
    public static ComputeDevice Cuda(int ordinal = 0) => new(CudaBackend.Create(ordinal));

    /// <summary>The generated CUDA kernels compiled for and run on the CPU (slow; for checking kernels without a GPU).</summary>
    public static ComputeDevice CudaEmulation(string? cacheDirectory = null) => new(new EmulatedBackend(cacheDirectory));

    /// <summary>A device over a backend you made.</summary>
    public static ComputeDevice On(GpuBackend backend) => new(backend ?? throw new ArgumentNullException(nameof(backend)));

    /// <summary>The module for <paramref name="source"/>, compiled on first use.</summary>
    public GpuModule Module(string source, string name, IReadOnlyList<string> kernels)
    {
        if (Backend is null) throw new InvalidOperationException("The CPU device runs no CUDA modules.");
        lock (_gate)
        {
            if (!_modules.TryGetValue(source, out var m)) _modules[source] = m = Backend.Load(source, name, kernels);
            return m;
        }
    }

    public override string ToString() => Name;

    public void Dispose()
    {
        if (Backend is null) return;
        lock (_gate) _modules.Clear();
        Backend.Dispose();
    }
}
