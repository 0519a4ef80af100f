namespace SsmGen.Cuda;

/// <summary>
/// A CUDA driver or cuBLAS call that returned an error: <see cref="Call"/> names the call and <see cref="Status"/>
/// is its CUresult or cublasStatus_t, so a caller can tell one failure from another without parsing the message.
/// </summary>
public sealed class CudaException(string call, int status, string message) : Exception(message)
{
    /// <summary>The failing call, e.g. <c>cuLaunchKernel</c> or <c>cublasSgemm_v2</c>.</summary>
    public string Call { get; } = call;

    /// <summary>The numeric status the call returned.</summary>
    public int Status { get; } = status;
}
