using System.Runtime.InteropServices;

namespace SsmGen.Cuda;

/// <summary>
/// The CUDA driver API (libcuda) calls <see cref="CudaBackend"/> needs, bound by their exported names: the
/// <c>_v2</c> names are what cuda.h's macros expand to, and the unsuffixed ones are the old 32-bit-size entry points.
/// Handles (CUcontext, CUmodule, CUfunction, CUstream) are pointers; CUdevice is an int and CUdeviceptr a 64-bit integer.
/// </summary>
internal static unsafe partial class CudaDriver
{
    // CUdevice_attribute values used here (cuda.h).
    internal const int AttributeMultiprocessorCount = 16;
    internal const int AttributeMemoryClockRate = 36;      // kHz
    internal const int AttributeGlobalMemoryBusWidth = 37; // bits
    internal const int AttributeComputeCapabilityMajor = 75;
    internal const int AttributeComputeCapabilityMinor = 76;

    // CUresult values that mean "this machine cannot run CUDA" rather than a bug in the caller.
    internal const int ErrorNoDevice = 100;

    /// <summary>Throws <see cref="CudaException"/> naming <paramref name="call"/> when <paramref name="status"/> is not CUDA_SUCCESS.</summary>
    internal static void Check(int status, string call)
    {
        if (status != 0) throw new CudaException(call, status, $"{call} failed: {Describe(status)}.");
    }

    /// <summary>As <see cref="Check(int, string)"/>, with what the call was doing, e.g. which kernel it launched.</summary>
    internal static void Check(int status, string call, string context)
    {
        if (status != 0) throw new CudaException(call, status, $"{call} failed ({context}): {Describe(status)}.");
    }

    /// <summary>The error's name and text, e.g. "CUDA_ERROR_INVALID_VALUE: invalid argument (CUDA status 1)".</summary>
    internal static string Describe(int status)
    {
        byte* name = null, text = null;
        // Both return CUDA_ERROR_INVALID_VALUE and leave the pointer null for a status they do not know.
        string n = cuGetErrorName(status, &name) == 0 && name != null ? Marshal.PtrToStringUTF8((nint)name) ?? "" : "unknown CUDA error";
        string t = cuGetErrorString(status, &text) == 0 && text != null ? Marshal.PtrToStringUTF8((nint)text) ?? "" : "";
        return t.Length > 0 ? $"{n}: {t} (CUDA status {status})" : $"{n} (CUDA status {status})";
    }

    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuInit(uint flags);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuDriverGetVersion(int* version);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuGetErrorName(int status, byte** name);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuGetErrorString(int status, byte** text);

    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuDeviceGetCount(int* count);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuDeviceGet(int* device, int ordinal);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuDeviceGetName(byte* name, int length, int device);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuDeviceGetAttribute(int* value, int attribute, int device);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuDeviceTotalMem_v2(nuint* bytes, int device);

    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuDevicePrimaryCtxRetain(nint* context, int device);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuDevicePrimaryCtxRelease_v2(int device);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuCtxSetCurrent(nint context);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuCtxSynchronize();

    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuModuleLoadData(nint* module, void* image);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuModuleGetFunction(nint* function, nint module, byte* name);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuModuleUnload(nint module);
    [LibraryImport(CudaLibraries.Driver)]
    internal static partial int cuLaunchKernel(nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedMemoryBytes, nint stream, void** parameters, void** extra);

    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuMemAlloc_v2(ulong* address, nuint bytes);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuMemFree_v2(ulong address);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuMemAllocHost_v2(void** pointer, nuint bytes);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuMemFreeHost(void* pointer);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuMemcpyHtoD_v2(ulong destination, void* source, nuint bytes);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuMemcpyDtoH_v2(void* destination, ulong source, nuint bytes);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuMemcpyDtoD_v2(ulong destination, ulong source, nuint bytes);
    [LibraryImport(CudaLibraries.Driver)] internal static partial int cuMemsetD8_v2(ulong destination, byte value, nuint count);
}
