using System.Runtime.InteropServices;
using System.Text;
using static SsmGen.Cuda.CudaDriver;

namespace SsmGen.Cuda;

/// <summary>
/// <see cref="GpuBackend"/> on an NVIDIA GPU: NVRTC compiles modules (through <see cref="KernelCache"/>), the CUDA
/// driver API loads and launches them, and cuBLAS does the GEMMs.
/// </summary>
/// <remarks>
/// Use one backend from one thread at a time. Any thread will do: each call first makes the backend's context
/// current on the calling thread (cuCtxSetCurrent, which costs next to nothing). Launches, copies and GEMMs all go
/// to the default stream, so they run in the order they were issued.
/// </remarks>
public sealed unsafe class CudaBackend : GpuBackend
{
    // Pins the dialect, so a newer NVRTC with another default compiles the same language.
    /// <summary>The NVRTC options every generated module is compiled with.</summary>
    public static IReadOnlyList<string> CompileOptions { get; } = ["--std=c++17"];

    private readonly int _device;
    private readonly nint _context;
    private readonly string _name;
    private readonly List<nint> _modules = [];
    private nint _cublas;
    private bool _disposed;

    /// <summary>
    /// A backend on device <paramref name="ordinal"/>, using its primary context (the one the CUDA runtime and
    /// cuBLAS use too). Throws <see cref="CudaUnavailableException"/> when the driver is not installed or finds no
    /// usable device, <see cref="ArgumentOutOfRangeException"/> when there are fewer devices than the ordinal asks for.
    /// </summary>
    public static CudaBackend Create(int ordinal = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ordinal);
        CudaLibraries.Require(CudaLibraries.Driver);

        // A failing cuInit means this machine cannot run CUDA (no device, a stub library, a driver whose kernel
        // module does not match), which callers treat like a missing library rather than a bug.
        int status = cuInit(0);
        if (status == ErrorNoDevice) throw new CudaUnavailableException($"no CUDA device: the NVIDIA driver found none ({Describe(status)}).");
        if (status != 0) throw new CudaUnavailableException($"no CUDA device can be used: cuInit failed: {Describe(status)}.");
        int count;
        Check(cuDeviceGetCount(&count), "cuDeviceGetCount");
        if (count == 0) throw new CudaUnavailableException("no CUDA device: the NVIDIA driver found none.");
        if (ordinal >= count)
            throw new ArgumentOutOfRangeException(nameof(ordinal), ordinal,
                $"CUDA device {ordinal} does not exist: the driver found {count} device{(count == 1 ? "" : "s")} (ordinals 0 to {count - 1}).");

        int device;
        Check(cuDeviceGet(&device, ordinal), "cuDeviceGet");
        nint context;
        Check(cuDevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain");
        try
        {
            Check(cuCtxSetCurrent(context), "cuCtxSetCurrent");
            return new CudaBackend(device, context);
        }
        catch
        {
            cuDevicePrimaryCtxRelease_v2(device);
            throw;
        }
    }

    private CudaBackend(int device, nint context)
    {
        _device = device;
        _context = context;

        const int nameLength = 256;
        byte* name = stackalloc byte[nameLength];
        Check(cuDeviceGetName(name, nameLength, device), "cuDeviceGetName");
        _name = Marshal.PtrToStringUTF8((nint)name) ?? "CUDA device";

        ComputeCapability = (Attribute(AttributeComputeCapabilityMajor, "compute capability major"),
            Attribute(AttributeComputeCapabilityMinor, "compute capability minor"));
        Architecture = $"sm_{ComputeCapability.Major}{ComputeCapability.Minor}";
        MultiprocessorCount = Attribute(AttributeMultiprocessorCount, "multiprocessor count");

        nuint total;
        Check(cuDeviceTotalMem_v2(&total, device), "cuDeviceTotalMem_v2");
        TotalMemory = (long)total;

        // These two only feed a reported figure, so a driver that does not answer leaves it 0 (unknown) rather
        // than refusing the device.
        int clockKHz, busBits;
        if (cuDeviceGetAttribute(&clockKHz, AttributeMemoryClockRate, device) == 0 &&
            cuDeviceGetAttribute(&busBits, AttributeGlobalMemoryBusWidth, device) == 0)
            PeakBandwidthBytesPerSecond = 2.0 * clockKHz * 1000 * busBits / 8; // double data rate

        int version;
        Check(cuDriverGetVersion(&version), "cuDriverGetVersion");
        DriverVersion = (version / 1000, version % 1000 / 10);
    }

    /// <summary>The device and its architecture, e.g. "NVIDIA H100 80GB HBM3 (sm_90)".</summary>
    public override string Name => $"{_name} ({Architecture})";

    /// <summary>The device's real architecture, e.g. <c>sm_90</c>: what CUBINs are compiled for.</summary>
    public string Architecture { get; }

    public (int Major, int Minor) ComputeCapability { get; }

    public int MultiprocessorCount { get; }

    /// <summary>Device memory in bytes.</summary>
    public long TotalMemory { get; }

    /// <summary>Theoretical memory bandwidth, 2 × memory clock × bus width; 0 where the driver does not report them.</summary>
    public double PeakBandwidthBytesPerSecond { get; }

    /// <summary>The CUDA version the driver supports, e.g. (12, 4).</summary>
    public (int Major, int Minor) DriverVersion { get; }

    /// <summary>Where <see cref="Load"/> caches compiled modules; <see cref="KernelCache.DefaultDirectory"/> when null.</summary>
    public string? KernelCacheDirectory { get; set; }

    public override ulong Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Enter();
        if (bytes == 0) return 0; // Like malloc(0): nothing to allocate, and Free(0) does nothing.
        ulong address;
        Check(cuMemAlloc_v2(&address, (nuint)bytes), "cuMemAlloc_v2", $"{bytes} bytes");
        int status = cuMemsetD8_v2(address, 0, (nuint)bytes);
        if (status != 0)
        {
            cuMemFree_v2(address);
            Check(status, "cuMemsetD8_v2");
        }
        return address;
    }

    public override void Free(ulong address)
    {
        Enter();
        if (address != 0) Check(cuMemFree_v2(address), "cuMemFree_v2");
    }

    public override void* AllocatePinned(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Enter();
        if (bytes == 0) return null;
        void* pointer;
        Check(cuMemAllocHost_v2(&pointer, (nuint)bytes), "cuMemAllocHost_v2", $"{bytes} bytes");
        return pointer;
    }

    public override void FreePinned(void* pointer)
    {
        Enter();
        if (pointer != null) Check(cuMemFreeHost(pointer), "cuMemFreeHost");
    }

    public override void CopyToDevice(ulong destination, void* source, long bytes)
    {
        if (Transfer(bytes)) Check(cuMemcpyHtoD_v2(destination, source, (nuint)bytes), "cuMemcpyHtoD_v2");
    }

    public override void CopyToHost(void* destination, ulong source, long bytes)
    {
        if (Transfer(bytes)) Check(cuMemcpyDtoH_v2(destination, source, (nuint)bytes), "cuMemcpyDtoH_v2");
    }

    public override void CopyOnDevice(ulong destination, ulong source, long bytes)
    {
        if (Transfer(bytes)) Check(cuMemcpyDtoD_v2(destination, source, (nuint)bytes), "cuMemcpyDtoD_v2");
    }

    public override void Clear(ulong address, long bytes)
    {
        if (Transfer(bytes)) Check(cuMemsetD8_v2(address, 0, (nuint)bytes), "cuMemsetD8_v2");
    }

    /// <summary>
    /// Compiles <paramref name="source"/> for this device (a CUBIN, from the kernel cache when it is there), loads
    /// it and looks up <paramref name="kernels"/>, which must be declared <c>extern "C"</c>. When NVRTC is older
    /// than the device, it compiles PTX for the newest architecture it knows below the device's, and the driver
    /// compiles that for the device as it loads it; the module's description says which happened.
    /// </summary>
    public override GpuModule Load(string source, string name, IReadOnlyList<string> kernels)
    {
        ArgumentNullException.ThrowIfNull(kernels);
        Enter();
        var nvrtc = Nvrtc.Version();
        string target = ChooseTarget(ComputeCapability.Major * 10 + ComputeCapability.Minor, Nvrtc.SupportedArchitectures())
            ?? throw new CudaUnavailableException(
                $"NVRTC {nvrtc.Major}.{nvrtc.Minor} cannot compile for {Architecture}: it knows no architecture at or below it; install an NVRTC that supports this GPU.");
        var output = KernelCache.GetOrCompile(source, name, target, out bool fromCache, CompileOptions, KernelCacheDirectory);

        string origin = fromCache ? "from the disk cache" : $"compiled by NVRTC {nvrtc.Major}.{nvrtc.Minor}";
        string description = output.IsCubin
            ? $"{target} CUBIN {origin}"
            : $"{target} PTX {origin}, compiled for {Architecture} by the driver (NVRTC {nvrtc.Major}.{nvrtc.Minor} does not know {Architecture})";

        nint module;
        fixed (byte* image = output.Image) Check(cuModuleLoadData(&module, image), "cuModuleLoadData", $"{name}, {target}");
        var functions = new Dictionary<string, GpuFunction>();
        try
        {
            foreach (string kernel in kernels)
            {
                nint function;
                byte[] kernelName = Encoding.UTF8.GetBytes(kernel + "\0");
                fixed (byte* p = kernelName)
                    Check(cuModuleGetFunction(&function, module, p), "cuModuleGetFunction", $"kernel '{kernel}' of {name}; is it extern \"C\"?");
                functions[kernel] = new GpuFunction(function, kernel);
            }
        }
        catch
        {
            cuModuleUnload(module);
            throw;
        }
        _modules.Add(module);
        return new GpuModule(functions, description);
    }

    /// <summary>
    /// What to compile for a device of compute capability <paramref name="capability"/> (e.g. 90): its own CUBIN
    /// when NVRTC supports it, else PTX for the newest supported architecture below it (PTX runs on later GPUs once
    /// the driver compiles it), else null.
    /// </summary>
    internal static string? ChooseTarget(int capability, IReadOnlyList<int> supported)
    {
        if (supported.Contains(capability)) return $"sm_{capability}";
        int below = supported.Where(a => a < capability).DefaultIfEmpty(0).Max();
        return below > 0 ? $"compute_{below}" : null;
    }

    public override void Launch(GpuFunction function, Dim3 grid, Dim3 block, void** arguments)
    {
        Enter();
        Check(cuLaunchKernel(function.Handle, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, 0, 0, arguments, null),
            "cuLaunchKernel", $"kernel '{function.Name}', grid ({grid.X}, {grid.Y}, {grid.Z}), block ({block.X}, {block.Y}, {block.Z})");
    }

    public override void Sgemm(bool transposeA, bool transposeB, int m, int n, int k, float alpha, ulong a, int lda, ulong b, int ldb, float beta, ulong c, int ldc)
    {
        Enter();
        Cublas.Check(Cublas.cublasSgemm_v2(CublasHandle(), transposeA ? Cublas.Transpose : Cublas.NoTranspose,
            transposeB ? Cublas.Transpose : Cublas.NoTranspose, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc), "cublasSgemm_v2");
    }

    public override void Synchronize()
    {
        Enter();
        Check(cuCtxSynchronize(), "cuCtxSynchronize");
    }

    /// <summary>
    /// Unloads the modules, destroys the cuBLAS handle and releases the primary context (which frees the device
    /// memory once no other user holds it). Calling it again does nothing.
    /// </summary>
    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        // Statuses are ignored here: after a kernel fault every call returns the same sticky error, and the
        // context must be let go regardless.
        cuCtxSetCurrent(_context);
        if (_cublas != 0) Cublas.cublasDestroy_v2(_cublas);
        _cublas = 0;
        foreach (nint module in _modules) cuModuleUnload(module);
        _modules.Clear();
        cuDevicePrimaryCtxRelease_v2(_device);
        cuCtxSetCurrent(0); // Leave no released context current on this thread.
    }

    /// <summary>Refuses a disposed backend and makes the context current on the calling thread.</summary>
    private void Enter()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Check(cuCtxSetCurrent(_context), "cuCtxSetCurrent");
    }

    /// <summary>Checks a transfer's size and enters; false when there is nothing to move.</summary>
    private bool Transfer(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Enter();
        return bytes > 0;
    }

    // Created on the first GEMM, so a machine with the driver but without cuBLAS can still run kernels.
    private nint CublasHandle()
    {
        if (_cublas != 0) return _cublas;
        CudaLibraries.Require(CudaLibraries.Cublas);
        nint handle;
        Cublas.Check(Cublas.cublasCreate_v2(&handle), "cublasCreate_v2");
        return _cublas = handle;
    }

    private int Attribute(int attribute, string what)
    {
        int value;
        Check(cuDeviceGetAttribute(&value, attribute, _device), "cuDeviceGetAttribute", what);
        return value;
    }
}
