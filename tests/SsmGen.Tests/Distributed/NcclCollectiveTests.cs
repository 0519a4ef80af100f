using SsmGen.Cuda;
using SsmGen.Distributed;
using SsmGen.Tests.Cuda;

namespace SsmGen.Tests.Distributed;

/// <summary>A test that needs a CUDA device and NCCL: skipped, with the reason, where either is missing.</summary>
public sealed class NcclFactAttribute : FactAttribute
{
    public NcclFactAttribute()
    {
        if (CudaDeviceProbe.WhyNot is { } device) Skip = "no CUDA device: " + device;
        else if (!NcclCollective.IsAvailable(out string reason)) Skip = "NCCL not available: " + reason;
    }
}

public class NcclCollectiveTests
{
    [Fact]
    public void BadSettingsAreRefusedBeforeAnythingLoads()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new NcclCollective("unused.id", rank: 2, size: 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NcclCollective("unused.id", rank: 0, size: 1, timeout: TimeSpan.Zero));
        if (!CudaLibraries.TryNccl(out string reason)) Assert.Contains("libnccl.so.2", reason); // says what it looked for
    }

    [NcclFact]
    public void AJobOfOneRankGivesBackItsValues()
    {
        string id = Path.Combine(Path.GetTempPath(), $"ssmgen-nccl-{Guid.NewGuid():N}.id");
        try
        {
            using var nccl = new NcclCollective(id, rank: 0, size: 1, device: 0);
            var values = Enumerable.Range(0, 1000).Select(i => i * 0.25f - 3).ToArray();
            var summed = values.ToArray();
            nccl.AllReduceSum(summed);
            Assert.Equal(values, summed);
            var gathered = new float[values.Length];
            nccl.AllGather(values, gathered);
            Assert.Equal(values, gathered);
            Assert.Contains("NCCL", nccl.Name);
        }
        finally { File.Delete(id); }
    }
}
