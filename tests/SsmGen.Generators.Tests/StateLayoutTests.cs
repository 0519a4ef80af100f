using System.Text.RegularExpressions;

namespace SsmGen.Generators.Tests;

/// <summary>
/// A stream's state has one layout, the plan's: the CPU shell declares it as constants and both steps address the
/// state through them, so the GPU step cannot drift from the CPU one.
/// </summary>
public class StateLayoutTests
{
    private static (string Cpu, string Gpu) Generated()
    {
        var (cpu, gpu) = GeneratorHarness.GenerateAllKinds();
        return (cpu.ToString(), gpu.ToString());
    }

    [Fact]
    public void TheLayoutIsEachBlocksSegmentsInOrderThenThePooledSum()
    {
        var (cpu, _) = Generated();
        var constants = Regex.Matches(cpu, @"private const int (S_\w+) = (\d+);").ToDictionary(m => m.Groups[1].Value, m => int.Parse(m.Groups[2].Value));
        // GeneratorHarness.AllKinds: H = 16. S4D N = 8: 4 complex modes → x is 2·16·4, the six mode tables 6·16·4. Mamba N = 4, Expand 2 → E = 32,
        // ConvWidth 4: window 32·3, h 32·4. RNN hidden 8, IDS N = 2. Then the running sum for mean pooling (16).
        var expected = new Dictionary<string, int>
        {
            ["S_l0_x"] = 0, ["S_l0_modes"] = 128, ["S_l1_window"] = 512, ["S_l1_h"] = 608,
            ["S_l2_h"] = 736, ["S_l3_h"] = 744, ["S_pool"] = 746,
        };
        Assert.Equal(expected.OrderBy(p => p.Key), constants.OrderBy(p => p.Key));
        Assert.Contains("private const int FixedStateSize = 762;", cpu);
        Assert.Contains("private static int KeyValueCacheAt(int cache, int maxLength) => FixedStateSize + cache * 2 * maxLength * H;", cpu);
    }

    [Fact]
    public void BothStepsAddressTheStateOnlyThroughTheLayoutsNames()
    {
        var (cpu, gpu) = Generated();
        var gpuOffsets = Regex.Matches(gpu, @"At\((?:state|s), (KeyValueCacheAt\([^)]*\)|[^(),;]+)\)").Select(m => m.Groups[1].Value).ToList();
        Assert.True(gpuOffsets.Count >= 7, string.Join(" | ", gpuOffsets));
        Assert.All(gpuOffsets, offset => Assert.Matches(@"^(S_l\d+_[a-z]+|S_pool|KeyValueCacheAt\(\d+, _maxLength\))$", offset));
        var cpuSlices = Regex.Matches(cpu, @"(?:state|stream|streams\[s\]\.Values)(?:\.AsSpan\(\))?\.(?:Slice|AsSpan)\((KeyValueCacheAt\([^)]*\)|[^(),;]+),").Select(m => m.Groups[1].Value).ToList();
        Assert.True(cpuSlices.Count >= 7, string.Join(" | ", cpuSlices));
        Assert.All(cpuSlices, offset => Assert.Matches(@"^(S_l\d+_[a-z]+|S_pool|KeyValueCacheAt\(\d+, _maxLength\))$", offset));
    }
}
