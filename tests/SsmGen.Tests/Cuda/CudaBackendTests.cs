using SsmGen.Cuda;

namespace SsmGen.Tests.Cuda;

/// <summary>
/// The CUDA driver backend. Without a driver only the refusal and the pure parts run; on a GPU the memory round
/// trip, an NVRTC-compiled kernel, cuBLAS's GEMM and the error reports are checked against the device.
/// </summary>
public sealed unsafe class CudaBackendTests : IDisposable
{

    // Compiled modules go here rather than into the user's kernel cache.
    private readonly string _kernelCache = Directory.CreateTempSubdirectory("ssmgen-cuda-backend-").FullName;

    public void Dispose() => Directory.Delete(_kernelCache, recursive: true);

    private CudaBackend NewBackend()
    {
        var backend = CudaBackend.Create();
        backend.KernelCacheDirectory = _kernelCache;
        return backend;
    }

    [Fact]
    public void CreateSaysWhatIsMissing()
    {
        if (!CudaLibraries.TryDriver(out _))
        {
            var e = Assert.Throws<CudaUnavailableException>(() => CudaBackend.Create());
            Assert.Contains("libcuda.so.1", e.Message);
            Assert.Contains("install the NVIDIA driver", e.Message);
            return;
        }
        // The driver is installed: either there is a device to use, or the refusal says there is none.
        try
        {
            using var backend = CudaBackend.Create();
            Assert.StartsWith("sm_", backend.Architecture);
        }
        catch (CudaUnavailableException e)
        {
            Assert.Contains("no CUDA device", e.Message);
        }
    }

    [Fact]
    public void ANegativeOrdinalIsRefusedBeforeTheDriverIsLoaded()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CudaBackend.Create(-1));
        Assert.Equal("ordinal", e.ParamName);
    }

    [Fact]
    public void TheTargetIsTheDevicesCubinElsePtxForTheNewestArchitectureBelowIt()
    {
        int[] nvrtc118 = [35, 37, 50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90];
        Assert.Equal("sm_90", CudaBackend.ChooseTarget(90, nvrtc118));
        Assert.Equal("sm_86", CudaBackend.ChooseTarget(86, nvrtc118));
        Assert.Equal("compute_90", CudaBackend.ChooseTarget(100, nvrtc118));
        Assert.Equal("compute_90", CudaBackend.ChooseTarget(120, nvrtc118));
        Assert.Equal("compute_100", CudaBackend.ChooseTarget(120, [80, 90, 100]));
        Assert.Null(CudaBackend.ChooseTarget(30, nvrtc118));
    }

    [CudaDeviceFact]
    public void DescribesTheDevice()
    {
        using var backend = NewBackend();
        Assert.Matches("^sm_[0-9]+$", backend.Architecture);
        Assert.EndsWith($"({backend.Architecture})", backend.Name);
        Assert.True(backend.MultiprocessorCount > 0);
        Assert.True(backend.TotalMemory > 0);
        Assert.True(backend.PeakBandwidthBytesPerSecond > 0);
        Assert.True(backend.DriverVersion.Major >= 11, $"driver supports CUDA {backend.DriverVersion}");
    }

    [CudaDeviceFact]
    public void AnOrdinalPastTheLastDeviceNamesTheCount()
    {
        int found;
        CudaDriver.Check(CudaDriver.cuDeviceGetCount(&found), "cuDeviceGetCount");
        int count = found;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CudaBackend.Create(count));
        Assert.Contains($"found {count} device", e.Message);
    }

    [CudaDeviceFact]
    public void MemoryRoundTripsThroughPinnedStaging()
    {
        using var backend = NewBackend();
        const int count = 1 << 16;
        const long bytes = count * sizeof(float);
        float* host = (float*)backend.AllocatePinned(bytes);
        ulong a = backend.Allocate(bytes), b = backend.Allocate(bytes);
        try
        {
            var staging = new Span<float>(host, count);
            staging.Fill(float.NaN);
            backend.CopyToHost(host, a, bytes);
            Assert.All(staging.ToArray(), v => Assert.Equal(0f, v)); // Allocate zeroes

            for (int i = 0; i < count; i++) host[i] = i * 0.5f;
            backend.CopyToDevice(a, host, bytes);
            backend.CopyOnDevice(b, a, bytes);
            staging.Fill(-1);
            backend.CopyToHost(host, b, bytes);
            for (int i = 0; i < count; i++) Assert.Equal(i * 0.5f, host[i]);

            backend.Clear(b, bytes);
            backend.CopyToHost(host, b, bytes);
            Assert.All(staging.ToArray(), v => Assert.Equal(0f, v));
        }
        finally
        {
            backend.Free(a);
            backend.Free(b);
            backend.FreePinned(host);
        }
    }

    [CudaDeviceFact]
    public void RunsAnNvrtcCompiledKernel()
    {
        using var backend = NewBackend();
        var module = backend.Load(TestKernels.Axpy, "axpy.cu", ["axpy"]);
        Assert.Contains(backend.Architecture, module.Description);
        Assert.Contains("compiled", module.Description);

        const int n = 1000;
        float[] xs = [.. Enumerable.Range(0, n).Select(i => (float)i)];
        float[] ys = [.. Enumerable.Range(0, n).Select(i => 1f - i)];
        ulong x = Upload(backend, xs), y = Upload(backend, ys);
        try
        {
            float a = 2;
            int count = n;
            void** arguments = stackalloc void*[] { &a, &x, &y, &count };
            backend.Launch(module["axpy"], new Dim3((n + 255) / 256), new Dim3(256), arguments);
            backend.Synchronize();
            float[] result = Download(backend, y, n);
            for (int i = 0; i < n; i++) Assert.Equal(2f * i + (1f - i), result[i]);
        }
        finally
        {
            backend.Free(x);
            backend.Free(y);
        }

        // The same source again comes from the kernel cache.
        Assert.Contains("from the disk cache", backend.Load(TestKernels.Axpy, "axpy.cu", ["axpy"]).Description);
    }

    [CudaDeviceTheory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void SgemmMatchesAHandLoopOverColumnMajorMatrices(bool transposeA, bool transposeB)
    {
        const int m = 3, n = 4, k = 5;
        const float alpha = 2, beta = -1;
        // Stored shapes: A is m×k (k×m when transposed), B k×n (n×k); leading dimensions are padded so that a
        // row/column mix-up or a write past a column shows.
        int aRows = transposeA ? k : m, aColumns = transposeA ? m : k, lda = aRows + 1;
        int bRows = transposeB ? n : k, bColumns = transposeB ? k : n, ldb = bRows + 2;
        int ldc = m + 1;
        // Small integers, so every order of summation gives the exact same float.
        float[] aValues = [.. Enumerable.Range(0, lda * aColumns).Select(i => (float)(i % 7 - 3))];
        float[] bValues = [.. Enumerable.Range(0, ldb * bColumns).Select(i => (float)(i % 5 - 2))];
        float[] cValues = [.. Enumerable.Range(0, ldc * n).Select(i => (float)(i % 3))];

        float[] expected = (float[])cValues.Clone();
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float sum = 0;
                for (int p = 0; p < k; p++)
                {
                    float opA = transposeA ? aValues[p + i * lda] : aValues[i + p * lda];
                    float opB = transposeB ? bValues[j + p * ldb] : bValues[p + j * ldb];
                    sum += opA * opB;
                }
                expected[i + j * ldc] = alpha * sum + beta * cValues[i + j * ldc];
            }

        using var backend = NewBackend();
        ulong a = Upload(backend, aValues), b = Upload(backend, bValues), c = Upload(backend, cValues);
        try
        {
            backend.Sgemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            backend.Synchronize();
            Assert.Equal(expected, Download(backend, c, cValues.Length));
        }
        finally
        {
            backend.Free(a);
            backend.Free(b);
            backend.Free(c);
        }
    }

    [CudaDeviceFact]
    public void ABadSgemmArgumentNamesTheCublasCall()
    {
        using var backend = NewBackend();
        ulong buffer = backend.Allocate(64 * sizeof(float));
        try
        {
            // lda below m is invalid for an untransposed A.
            var e = Assert.Throws<CudaException>(() => backend.Sgemm(false, false, 4, 4, 4, 1, buffer, 1, buffer, 4, 0, buffer, 4));
            Assert.Equal("cublasSgemm_v2", e.Call);
            Assert.Equal(7, e.Status);
            Assert.Contains("CUBLAS_STATUS_INVALID_VALUE", e.Message);
        }
        finally
        {
            backend.Free(buffer);
        }
    }

    [CudaDeviceFact]
    public void AnInvalidLaunchNamesCuLaunchKernel()
    {
        using var backend = NewBackend();
        var module = backend.Load(TestKernels.Axpy, "axpy.cu", ["axpy"]);
        float a = 1;
        ulong x = 0, y = 0;
        int n = 0;
        void** arguments = stackalloc void*[] { &a, &x, &y, &n };

        // No GPU has 2048 threads a block, so the launch is refused before it runs.
        var e = Assert.Throws<CudaException>(() => backend.Launch(module["axpy"], new Dim3(1), new Dim3(2048), arguments));
        Assert.Equal("cuLaunchKernel", e.Call);
        Assert.Contains("cuLaunchKernel", e.Message);
        Assert.Contains("axpy", e.Message);
        backend.Synchronize(); // a refused launch leaves the context usable
    }

    [CudaDeviceFact]
    public void AnUnknownKernelNamesCuModuleGetFunction()
    {
        using var backend = NewBackend();
        var e = Assert.Throws<CudaException>(() => backend.Load(TestKernels.Axpy, "axpy.cu", ["axpy", "saxpy"]));
        Assert.Equal("cuModuleGetFunction", e.Call);
        Assert.Contains("'saxpy'", e.Message);
        Assert.Contains("CUDA_ERROR_NOT_FOUND", e.Message);
    }

    [CudaDeviceFact]
    public void BackendsShareThePrimaryContextAndDisposeOnlyTheirOwnHold()
    {
        var first = NewBackend();
        using var second = NewBackend();
        ulong buffer = second.Allocate(16);
        first.Dispose();
        first.Dispose(); // a second Dispose does nothing
        Assert.Throws<ObjectDisposedException>(() => first.Allocate(16));

        float[] values = [1, 2, 3, 4];
        fixed (float* p = values) second.CopyToDevice(buffer, p, 16);
        Assert.Equal(values, Download(second, buffer, 4));
        second.Free(buffer);
    }

    private static ulong Upload(GpuBackend backend, float[] values)
    {
        long bytes = values.Length * sizeof(float);
        ulong address = backend.Allocate(bytes);
        fixed (float* p = values) backend.CopyToDevice(address, p, bytes);
        return address;
    }

    private static float[] Download(GpuBackend backend, ulong address, int count)
    {
        var values = new float[count];
        fixed (float* p = values) backend.CopyToHost(p, address, count * sizeof(float));
        return values;
    }
}
