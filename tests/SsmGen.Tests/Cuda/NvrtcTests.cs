using System.Text;
using SsmGen.Cuda;

namespace SsmGen.Tests.Cuda;

/// <summary>A test that needs NVRTC: skipped, with the reason, where the library is not installed.</summary>
public sealed class NvrtcFactAttribute : FactAttribute
{
    public NvrtcFactAttribute()
    {
        if (!CudaLibraries.TryNvrtc(out string reason)) Skip = "NVRTC not available: " + reason;
    }
}

/// <summary>The NVRTC interop: CUDA C to PTX and CUBIN without a GPU, and compile errors reported with NVRTC's log.</summary>
public class NvrtcTests
{

    [NvrtcFact]
    public void ReportsItsVersion()
    {
        var (major, minor) = Nvrtc.Version();
        Assert.True(major >= 11, $"NVRTC {major}.{minor}");
    }

    [NvrtcFact]
    public void ListsTheArchitecturesItSupports()
    {
        var architectures = Nvrtc.SupportedArchitectures();
        Assert.Contains(80, architectures);
        Assert.Equal(architectures.Order(), architectures);
    }

    [NvrtcFact]
    public void CompilesToPtxForAVirtualArchitecture()
    {
        var ptx = Nvrtc.Compile(TestKernels.Axpy, "axpy.cu", "compute_80");
        string text = Encoding.ASCII.GetString(ptx.Image).TrimEnd('\0');
        Assert.False(ptx.IsCubin);
        Assert.Equal("", ptx.Log);
        Assert.Contains(".target sm_80", text);
        Assert.Contains(".entry axpy(", text);
        Assert.Contains("fma.rn.f32", text);
    }

    [NvrtcTheory]
    [InlineData("sm_80")]
    [InlineData("sm_90")]
    public void CompilesToCubinForARealArchitecture(string architecture)
    {
        var cubin = Nvrtc.Compile(TestKernels.Axpy, "axpy.cu", architecture);
        Assert.True(cubin.IsCubin);
        Assert.Equal("", cubin.Log);
        Assert.Equal(new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'F' }, cubin.Image.Take(4).ToArray());
        Assert.Contains("axpy", Encoding.ASCII.GetString(cubin.Image));
    }

    [NvrtcFact]
    public void ACompileErrorCarriesTheLog()
    {
        var e = Assert.Throws<NvrtcException>(() => Nvrtc.Compile("__global__ void broken( { }", "broken.cu", "compute_80"));
        Assert.Contains("broken.cu", e.Message);
        Assert.Contains("error", e.Log);
    }

    [Fact]
    public void AnUnknownArchitectureIsRefusedBeforeAnyNativeCall()
    {
        var e = Assert.Throws<ArgumentException>(() => Nvrtc.Compile(TestKernels.Axpy, "axpy.cu", "ampere"));
        Assert.Contains("compute_XX", e.Message);
    }
}

/// <summary>A theory that needs NVRTC.</summary>
public sealed class NvrtcTheoryAttribute : TheoryAttribute
{
    public NvrtcTheoryAttribute()
    {
        if (!CudaLibraries.TryNvrtc(out string reason)) Skip = "NVRTC not available: " + reason;
    }
}
