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

    /// <summary>A matrix stored column-major: element (r, c) at c·rows + r.</summary>
    private static float[] ColumnMajor(double[,] m)
    {
        int rows = m.GetLength(0), cols = m.GetLength(1);
        var a = new float[rows * cols];
        for (int c = 0; c < cols; c++)
            for (int r = 0; r < rows; r++) a[c * rows + r] = (float)m[r, c];
        return a;
    }

    private static double[,] Transpose(double[,] m)
    {
        var t = new double[m.GetLength(1), m.GetLength(0)];
        for (int r = 0; r < m.GetLength(0); r++)
            for (int c = 0; c < m.GetLength(1); c++) t[c, r] = m[r, c];
        return t;
    }

    [EmulationFact]
    public void SgemmIsColumnMajorWithTransposes()
    {
        using var gpu = new EmulatedBackend();
        var rng = new Random(3);
        const int m = 3, n = 4, k = 5;
        double[,] Random2(int r, int c) { var x = new double[r, c]; for (int i = 0; i < r; i++) for (int j = 0; j < c; j++) x[i, j] = Math.Round(rng.NextDouble() - 0.5, 3); return x; }
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
            {
                // The product is of the logical matrices opA (m × k) and opB (k × n); what is stored is opA or its
                // transpose, column-major, as cuBLAS reads it.
                var opA = Random2(m, k); var opB = Random2(k, n); var c0 = Random2(m, n);
                var a = ColumnMajor(ta ? Transpose(opA) : opA);
                var b = ColumnMajor(tb ? Transpose(opB) : opB);
                var c = ColumnMajor(c0);
                fixed (float* pa = a, pb = b, pc = c)
                    gpu.Sgemm(ta, tb, m, n, k, 2f, (ulong)pa, ta ? k : m, (ulong)pb, tb ? n : k, 0.5f, (ulong)pc, m);
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                    {
                        double s = 0;
                        for (int l = 0; l < k; l++) s += opA[i, l] * opB[l, j];
                        Assert.Equal(2 * s + 0.5 * c0[i, j], c[j * m + i], 5);
                    }
            }
    }

    [EmulationFact]
    public void ACompileErrorNamesTheModule()
    {
        using var gpu = new EmulatedBackend(Path.Combine(Path.GetTempPath(), "ssmgen-emulation-test-" + Guid.NewGuid().ToString("N")));
        var e = Assert.Throws<NvrtcException>(() => gpu.Load("extern \"C\" __global__ void k( { }", "broken.cu", ["k"]));
        Assert.Contains("broken.cu", e.Message);
    }

    // Warp w sums its lanes' values w + 1 times by butterfly shuffles (so warps pass different numbers of warp
    // meetings), then the block meets and thread 0 reads every warp's result: wrong unless shuffles exchange within
    // the warp and __syncthreads waits for every warp, however many shuffles each did.
    private const string ShuffleSource = """
        extern "C" __global__ void warp_rounds(float* __restrict__ out)
        {
            __shared__ float per_warp[4];
            int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
            float v = (float)lane;
            for (int round = 0; round <= warp; round++)
                for (int o = 16; o >= 1; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
            if (lane == 0) per_warp[warp] = v;
            __syncthreads();
            if (threadIdx.x == 0) for (int w = 0; w < 4; w++) out[w] = per_warp[w];
        }
        """;

    [EmulationFact]
    public void WarpShufflesStayInTheirWarpAndBarriersWaitForEveryWarp()
    {
        using var gpu = new EmulatedBackend();
        var module = gpu.Load(ShuffleSource, "shuffle.cu", ["warp_rounds"]);
        ulong dout = gpu.Allocate(4 * 4);
        void** args = stackalloc void*[1];
        args[0] = &dout;
        gpu.Launch(module["warp_rounds"], new Dim3(1), new Dim3(128), args);
        var got = new float[4];
        fixed (float* p = got) gpu.CopyToHost(p, dout, 16);
        // one round turns every lane's value into the warp's total: 0 + … + 31 = 496, then each round multiplies by 32
        for (int w = 0; w < 4; w++) Assert.Equal(496.0 * Math.Pow(32, w), got[w], 0);
        gpu.Free(dout);
    }

}
