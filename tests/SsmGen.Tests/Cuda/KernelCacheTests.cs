using SsmGen.Cuda;

namespace SsmGen.Tests.Cuda;

/// <summary>
/// The on-disk cache of NVRTC output: hits return the compiled bytes, any change of input misses, damaged entries
/// are recompiled and rewritten, and a cache that cannot be written never stops a compile. Each test has its own
/// temporary directory, never the user's cache.
/// </summary>
public sealed class KernelCacheTests : IDisposable
{

    private readonly string _directory = Directory.CreateTempSubdirectory("ssmgen-kernel-cache-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private NvrtcOutput Get(out bool fromCache, string source = TestKernels.Axpy, string name = "axpy.cu", string architecture = "sm_80",
        IReadOnlyList<string>? options = null, string? directory = null)
        => KernelCache.GetOrCompile(source, name, architecture, out fromCache, options, directory ?? _directory);

    [NvrtcFact]
    public void ASecondCallIsAHitWithTheSameBytes()
    {
        var compiled = Get(out bool firstFromCache);
        var cached = Get(out bool secondFromCache);

        Assert.False(firstFromCache);
        Assert.True(secondFromCache);
        Assert.Equal(compiled.Architecture, cached.Architecture);
        Assert.Equal(compiled.Image, cached.Image);
        Assert.Equal(compiled.Log, cached.Log);
        string entry = Assert.Single(Directory.GetFiles(_directory)); // no temporary file left behind
        Assert.EndsWith(".nvrtc", entry);
    }

    [NvrtcFact]
    public void TheOverloadWithoutFromCacheUsesTheSameEntries()
    {
        var compiled = KernelCache.GetOrCompile(TestKernels.Axpy, "axpy.cu", "sm_80", directory: _directory);
        var cached = Get(out bool fromCache);
        Assert.True(fromCache);
        Assert.Equal(compiled.Image, cached.Image);
    }

    [NvrtcFact]
    public void ADifferentSourceNameOptionOrArchitectureMisses()
    {
        Get(out bool fromCache);
        Assert.False(fromCache);

        Get(out fromCache, source: TestKernels.Axpy + "\n// edited\n");
        Assert.False(fromCache);
        Get(out fromCache, name: "other.cu");
        Assert.False(fromCache);
        Get(out fromCache, options: ["--std=c++17"]);
        Assert.False(fromCache);
        var sm90 = Get(out fromCache, architecture: "sm_90");
        Assert.False(fromCache);
        Assert.Equal("sm_90", sm90.Architecture);
        var ptx = Get(out fromCache, architecture: "compute_80");
        Assert.False(fromCache);
        Assert.False(ptx.IsCubin);

        Assert.Equal(6, Directory.GetFiles(_directory).Length);
        Get(out fromCache, options: ["--std=c++17"]);
        Assert.True(fromCache);
    }

    [NvrtcTheory]
    [InlineData("magic")]
    [InlineData("format version")]
    [InlineData("payload length")]
    [InlineData("hash")]
    [InlineData("payload")]
    [InlineData("truncated")]
    [InlineData("extended")]
    [InlineData("empty")]
    public void ADamagedEntryIsRecompiledAndRewritten(string damage)
    {
        var compiled = Get(out _);
        string entry = Assert.Single(Directory.GetFiles(_directory));
        byte[] intact = File.ReadAllBytes(entry);
        byte[] damaged = damage switch
        {
            "magic" => Flip(intact, 0),
            "format version" => Flip(intact, 4),
            "payload length" => Flip(intact, 8),
            "hash" => Flip(intact, 20),
            "payload" => Flip(intact, intact.Length - 1),
            "truncated" => intact[..(intact.Length / 2)],
            "extended" => [.. intact, 0],
            _ => [],
        };
        File.WriteAllBytes(entry, damaged);

        var recompiled = Get(out bool fromCache);
        Assert.False(fromCache);
        Assert.Equal(compiled.Image, recompiled.Image);

        // Rewritten whole: the next call is a hit again.
        Assert.Equal(intact.Length, new FileInfo(entry).Length);
        var cached = Get(out fromCache);
        Assert.True(fromCache);
        Assert.Equal(compiled.Image, cached.Image);
    }

    [NvrtcFact]
    public void AnUnwritableDirectoryStillCompiles()
    {
        // A directory below a regular file cannot be created by anyone, root included (who ignores permission bits).
        string file = Path.Combine(_directory, "a-file");
        File.WriteAllText(file, "");
        string unwritable = Path.Combine(file, "kernels");

        var output = Get(out bool fromCache, directory: unwritable);
        Assert.False(fromCache);
        Assert.True(output.IsCubin);
        Assert.NotEmpty(output.Image);
        Get(out fromCache, directory: unwritable);
        Assert.False(fromCache);
        Assert.Equal([file], Directory.GetFiles(_directory));
    }

    [NvrtcFact]
    public void CompileErrorsAreNotCached()
    {
        const string broken = "__global__ void broken( { }";
        Assert.Throws<NvrtcException>(() => Get(out _, source: broken, name: "broken.cu"));
        Assert.Throws<NvrtcException>(() => Get(out _, source: broken, name: "broken.cu"));
        Assert.Empty(Directory.GetFiles(_directory));
    }

    [NvrtcFact]
    public void ConcurrentMissesLeaveOneWholeEntry()
    {
        var images = new byte[4][];
        Parallel.For(0, images.Length, i => images[i] = Get(out _).Image);

        Assert.All(images, image => Assert.Equal(images[0], image));
        Assert.Single(Directory.GetFiles(_directory));
        Get(out bool fromCache);
        Assert.True(fromCache);
    }

    [Fact]
    public void TheDefaultDirectoryFollowsSsmgenThenXdgThenHome()
    {
        Assert.Equal("/k", KernelCache.ResolveDirectory("/k", "/xdg", "/home/u"));
        Assert.Equal(Path.Combine("/xdg", "ssmgen", "kernels"), KernelCache.ResolveDirectory(null, "/xdg", "/home/u"));
        Assert.Equal(Path.Combine("/xdg", "ssmgen", "kernels"), KernelCache.ResolveDirectory("", "/xdg", "/home/u"));
        // A relative XDG_CACHE_HOME is invalid by the spec and ignored.
        Assert.Equal(Path.Combine("/home/u", ".cache", "ssmgen", "kernels"), KernelCache.ResolveDirectory(null, "relative", "/home/u"));
        Assert.Equal(Path.Combine("/home/u", ".cache", "ssmgen", "kernels"), KernelCache.ResolveDirectory(null, null, "/home/u"));
        Assert.Null(KernelCache.ResolveDirectory(null, null, ""));
    }

    private static byte[] Flip(byte[] bytes, int index)
    {
        byte[] copy = (byte[])bytes.Clone();
        copy[index] ^= 0x5A;
        return copy;
    }
}
