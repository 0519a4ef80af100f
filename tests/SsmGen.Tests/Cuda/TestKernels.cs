namespace SsmGen.Tests.Cuda;

/// <summary>CUDA C the interop tests compile and launch, written once.</summary>
internal static class TestKernels
{
    /// <summary>y ← a·x + y over n floats, one thread per element.</summary>
    public const string Axpy = """
        extern "C" __global__ void axpy(float a, const float* __restrict__ x, float* __restrict__ y, int n)
        {
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n) y[i] = fmaf(a, x[i], y[i]);
        }
        """;
}
