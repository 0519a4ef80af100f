using System.Runtime.InteropServices;

namespace SsmGen.Cuda;

/// <summary>
/// The cuBLAS calls <see cref="CudaBackend"/> needs. Matrices are column-major; device addresses are passed as
/// CUdeviceptr values. α and β are read through host pointers, cuBLAS's default pointer mode.
/// </summary>
internal static unsafe partial class Cublas
{
    // cublasOperation_t.
    internal const int NoTranspose = 0, Transpose = 1;

    /// <summary>Throws <see cref="CudaException"/> naming <paramref name="call"/> when <paramref name="status"/> is not CUBLAS_STATUS_SUCCESS.</summary>
    internal static void Check(int status, string call)
    {
        if (status != 0) throw new CudaException(call, status, $"{call} failed: {StatusName(status)} (cuBLAS status {status}).");
    }

    // A table rather than cublasGetStatusName: that call only exists from cuBLAS 11.4, and a missing export would
    // turn an error report into an EntryPointNotFoundException.
    internal static string StatusName(int status) => status switch
    {
        0 => "CUBLAS_STATUS_SUCCESS",
        1 => "CUBLAS_STATUS_NOT_INITIALIZED",
        3 => "CUBLAS_STATUS_ALLOC_FAILED",
        7 => "CUBLAS_STATUS_INVALID_VALUE",
        8 => "CUBLAS_STATUS_ARCH_MISMATCH",
        11 => "CUBLAS_STATUS_MAPPING_ERROR",
        13 => "CUBLAS_STATUS_EXECUTION_FAILED",
        14 => "CUBLAS_STATUS_INTERNAL_ERROR",
        15 => "CUBLAS_STATUS_NOT_SUPPORTED",
        16 => "CUBLAS_STATUS_LICENSE_ERROR",
        _ => "unknown cuBLAS status",
    };

    [LibraryImport(CudaLibraries.Cublas)] internal static partial int cublasCreate_v2(nint* handle);
    [LibraryImport(CudaLibraries.Cublas)] internal static partial int cublasDestroy_v2(nint handle);

    [LibraryImport(CudaLibraries.Cublas)]
    internal static partial int cublasSgemm_v2(nint handle, int transposeA, int transposeB, int m, int n, int k,
        float* alpha, ulong a, int lda, ulong b, int ldb, float* beta, ulong c, int ldc);

    [LibraryImport(CudaLibraries.Cublas)]
    internal static partial int cublasSgemmStridedBatched(nint handle, int transposeA, int transposeB, int m, int n, int k,
        float* alpha, ulong a, int lda, long strideA, ulong b, int ldb, long strideB, float* beta, ulong c, int ldc, long strideC,
        int batchCount);
}
