namespace SsmGen.Cuda;

/// <summary>A CUDA grid or block shape.</summary>
public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    public ulong Count => (ulong)X * Y * Z;

    /// <summary>A one-dimensional shape: <paramref name="x"/> blocks or threads.</summary>
    public static implicit operator Dim3(uint x) => new(x);
}

/// <summary>
/// One kernel argument in an 8-byte slot: a device address, or an int or float in the low 4 bytes (the slot's
/// address is what cuLaunchKernel reads, and it takes as many bytes as the kernel's parameter has).
/// </summary>
public readonly struct KernelArgument
{
    public readonly ulong Bits;
    private KernelArgument(ulong bits) => Bits = bits;
    public static implicit operator KernelArgument(ulong address) => new(address);
    public static implicit operator KernelArgument(int value) => new((uint)value);
    /// <summary>A 64-bit count (an element count past 2³¹), for a kernel parameter declared long.</summary>
    public static implicit operator KernelArgument(long value) => new((ulong)value);
    public static implicit operator KernelArgument(float value) => new(BitConverter.SingleToUInt32Bits(value));
}

/// <summary>A kernel of a loaded module: a CUfunction on a GPU, an entry point in the CPU emulation.</summary>
public readonly record struct GpuFunction(nint Handle, string Name);

/// <summary>A CUDA C source loaded on one backend, with its kernels looked up by name.</summary>
public sealed class GpuModule(IReadOnlyDictionary<string, GpuFunction> kernels, string description)
{
    /// <summary>How the module was obtained, e.g. "sm_90 CUBIN from the disk cache".</summary>
    public string Description { get; } = description;

    public GpuFunction this[string kernel] => kernels.TryGetValue(kernel, out var f)
        ? f
        : throw new KeyNotFoundException($"The module has no kernel '{kernel}'.");
}

/// <summary>
/// What the generated GPU code needs from a device: memory, pinned host staging, module loading, kernel
/// launches, single-precision GEMM and synchronization. Device addresses are 64-bit integers (CUdeviceptr).
/// Two implementations: <c>CudaBackend</c> (driver API, NVRTC and cuBLAS on an NVIDIA GPU) and
/// <c>EmulatedBackend</c> (the same CUDA C compiled for the CPU, to check kernels on machines without a GPU).
/// </summary>
public abstract unsafe class GpuBackend : IDisposable
{
    /// <summary>The device in words, e.g. "NVIDIA H100 80GB HBM3 (sm_90)".</summary>
    public abstract string Name { get; }

    /// <summary>Device memory of <paramref name="bytes"/> bytes, zeroed.</summary>
    public abstract ulong Allocate(long bytes);
    public abstract void Free(ulong address);
    /// <summary>Page-locked host memory for transfers.</summary>
    public abstract void* AllocatePinned(long bytes);
    public abstract void FreePinned(void* pointer);
    public abstract void CopyToDevice(ulong destination, void* source, long bytes);
    public abstract void CopyToHost(void* destination, ulong source, long bytes);
    public abstract void CopyOnDevice(ulong destination, ulong source, long bytes);
    public abstract void Clear(ulong address, long bytes);

    /// <summary>Compiles (or finds in a cache) and loads <paramref name="source"/>, and looks up <paramref name="kernels"/>.</summary>
    public abstract GpuModule Load(string source, string name, IReadOnlyList<string> kernels);

    /// <summary>Launches <paramref name="function"/>; <paramref name="arguments"/> points at each argument's value, as cuLaunchKernel takes them.</summary>
    public abstract void Launch(GpuFunction function, Dim3 grid, Dim3 block, void** arguments);

    /// <summary>Launches <paramref name="function"/> with arguments by value (the form generated code uses: no unsafe code).</summary>
    public void Launch(GpuFunction function, Dim3 grid, Dim3 block, params ReadOnlySpan<KernelArgument> arguments)
    {
        ulong* values = stackalloc ulong[arguments.Length];
        void** pointers = stackalloc void*[arguments.Length];
        for (int i = 0; i < arguments.Length; i++) { values[i] = arguments[i].Bits; pointers[i] = values + i; }
        Launch(function, grid, block, pointers);
    }

    /// <summary>
    /// C = α·op(A)·op(B) + β·C over column-major matrices, cuBLAS's sgemm: op(A) is m×k, op(B) k×n, C m×n.
    /// </summary>
    public abstract void Sgemm(bool transposeA, bool transposeB, int m, int n, int k, float alpha, ulong a, int lda, ulong b, int ldb, float beta, ulong c, int ldc);

    /// <summary>Waits until every launched kernel and copy has finished; reports a failed launch.</summary>
    public abstract void Synchronize();

    public abstract void Dispose();
}
