using System.Reflection;
using System.Text;
using SsmGen.Cuda;
using Xunit.Abstractions;

namespace SsmGen.Tests.Cuda;

/// <summary>
/// Every CUDA kernel generated for the test and example models compiles through NVRTC, to PTX and to CUBIN for
/// sm_80 and sm_90, without an error or a warning; the PTX has an entry for every kernel the model launches.
/// </summary>
public class GeneratedKernelCompileTests(ITestOutputHelper output)
{
    /// <summary>Every generated model type the tests can see (the tests' own and the examples').</summary>
    public static TheoryData<string> Models()
    {
        var data = new TheoryData<string>();
        foreach (var t in ModelTypes()) data.Add(t.FullName!);
        return data;
    }

    private static IEnumerable<Type> ModelTypes() => typeof(GeneratedKernelCompileTests).Assembly.GetTypes()
        .Where(t => t.IsClass && typeof(ISsmModel).IsAssignableFrom(t) && t.GetProperty("CudaSource", BindingFlags.Public | BindingFlags.Static) is not null)
        .OrderBy(t => t.FullName);

    [Fact]
    public void TheExamplesModelsAreAmongThem()
    {
        var names = ModelTypes().Select(t => t.Name).ToList();
        Assert.Contains("SmnistModel", names);
        Assert.Contains("SonnetModel", names);
        Assert.True(names.Count >= 40, $"only {names.Count} models found");
    }

    [NvrtcTheory]
    [MemberData(nameof(Models))]
    public void CompilesWithoutWarningsForSm80AndSm90(string model)
    {
        var type = typeof(GeneratedKernelCompileTests).Assembly.GetType(model)!;
        string source = (string)type.GetProperty("CudaSource")!.GetValue(null)!;
        var kernels = (IReadOnlyList<string>)type.GetProperty("CudaKernels")!.GetValue(null)!;
        var ptx = Nvrtc.Compile(source, type.Name + ".cu", "compute_80", CudaBackend.CompileOptions);
        Assert.Equal("", ptx.Log);
        string text = Encoding.ASCII.GetString(ptx.Image);
        foreach (string k in kernels) Assert.Contains($".entry {k}(", text);
        foreach (string arch in new[] { "sm_80", "sm_90" })
        {
            var cubin = Nvrtc.Compile(source, type.Name + ".cu", arch, CudaBackend.CompileOptions);
            Assert.Equal("", cubin.Log);
            Assert.True(cubin.Image.Length > 1000, $"{arch} CUBIN of {cubin.Image.Length} bytes");
        }
        output.WriteLine($"{type.Name}: {kernels.Count} kernels, {source.Length} characters of CUDA C");
    }
}
