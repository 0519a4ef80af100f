using SsmGen.Cuda;

namespace SsmGen.Tests.Cuda;

/// <summary>A test that runs CUDA C in the CPU emulation: skipped, with the reason, where g++ is missing.</summary>
public sealed class EmulationFactAttribute : FactAttribute
{
    public EmulationFactAttribute()
    {
        if (!EmulatedBackend.IsAvailable(out string reason)) Skip = "CUDA emulation not available: " + reason;
    }
}

/// <summary>The CPU emulation gives CUDA's execution model its meaning: indices, barriers, shared memory, GEMM.</summary>
public unsafe class EmulatedBackendTests
{
    // A block-wide tree reduction: wrong without working barriers and per-block shared memory.
    private const string Source = """
        extern "C" __global__ void block_sums(const float* __restrict__ x, float* __restrict__ sums, int n)
        {
            __shared__ float partial[128];
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            partial[threadIdx.x] = i < n ? x[i] : 0.0f;
            __syncthreads();
            for (int stride = blockDim.x / 2; stride > 0; stride /= 2)
            {
                if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
                __syncthreads();
            }
            if (threadIdx.x == 0) sums[blockIdx.x] = partial[0];
        }
        extern "C" __global__ void index_map(int* __restrict__ out)
        {
            int t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
            int b = blockIdx.x + gridDim.x * blockIdx.y;
            out[b * blockDim.x * blockDim.y * blockDim.z + t] = 1000 * b + t;
        }
        """;

    [EmulationFact]
    public void BarriersAndSharedMemoryGiveBlockSums()
    {
        using var gpu = new EmulatedBackend();
        var module = gpu.Load(Source, "sums.cu", ["block_sums", "index_map"]);
        const int n = 300, blocks = 3;
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = i % 7 - 3 + 0.25f * i;
        ulong dx = gpu.Allocate(n * 4), ds = gpu.Allocate(blocks * 4);
        fixed (float* px = x) gpu.CopyToDevice(dx, px, n * 4);
        int count = n;
        void** args = stackalloc void*[3];
        args[0] = &dx; args[1] = &ds; args[2] = &count;
        gpu.Launch(module["block_sums"], new Dim3(blocks), new Dim3(128), args);
        var sums = new float[blocks];
        fixed (float* ps = sums) gpu.CopyToHost(ps, ds, blocks * 4);
        for (int b = 0; b < blocks; b++)
        {
            double expected = 0;
            for (int i = b * 128; i < Math.Min(n, (b + 1) * 128); i++) expected += x[i];
            Assert.Equal(expected, sums[b], 3);
        }
        gpu.Free(dx); gpu.Free(ds);
    }

    [EmulationFact]
    public void ThreadAndBlockIndicesCoverTheGrid()
    {
        using var gpu = new EmulatedBackend();
        var module = gpu.Load(Source, "sums.cu", ["block_sums", "index_map"]);
        ulong d = gpu.Allocate(6 * 12 * 4);
        void** args = stackalloc void*[1];
        args[0] = &d;
        gpu.Launch(module["index_map"], new Dim3(3, 2), new Dim3(4, 3), args);
        var o = new int[72];
        fixed (int* p = o) gpu.CopyToHost(p, d, 72 * 4);
        for (int b = 0; b < 6; b++)
            for (int t = 0; t < 12; t++) Assert.Equal(1000 * b + t, o[b * 12 + t]);
        gpu.Free(d);
    }

    [EmulationFact]
    public void SgemmIsColumnMajorWithTransposes()
    {
        using var gpu = new EmulatedBackend();
        var rng = new Random(3);
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
            {
                const int m = 3, n = 4, k = 5;
                var a = Enumerable.Range(0, m * k).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
                var b = Enumerable.Range(0, k * n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
                var c = Enumerable.Range(0, m * n).Select(_ => (float)rng.NextDouble()).ToArray();
                int lda = ta ? k : m, ldb = tb ? n : k;
                // op(A)[i, l] and op(B)[l, j] written out from the column-major definition
                double A(int i, int l) => ta ? a[i * lda + l] : a[l * lda + i];
                double B(int l, int j) => tb ? b[l * ldb + j] : b[j * ldb + l];
                var expected = new double[m * n];
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                    {
                        double s = 0;
                        for (int l = 0; l < k; l++) s += A(i, l) * B(l, j);
                        expected[j * m + i] = 2 * s + 0.5 * c[j * m + i];
                    }
                fixed (float* pa = a, pb = b, pc = c)
                    gpu.Sgemm(ta, tb, m, n, k, 2f, (ulong)pa, lda, (ulong)pb, ldb, 0.5f, (ulong)pc, m);
                for (int i = 0; i < m * n; i++) Assert.Equal(expected[i], c[i], 5);
            }
    }

    [EmulationFact]
    public void ACompileErrorNamesTheModule()
    {
        using var gpu = new EmulatedBackend(Path.Combine(Path.GetTempPath(), "ssmgen-emulation-test-" + Guid.NewGuid().ToString("N")));
        var e = Assert.Throws<NvrtcException>(() => gpu.Load("extern \"C\" __global__ void k( { }", "broken.cu", ["k"]));
        Assert.Contains("broken.cu", e.Message);
    }
}
