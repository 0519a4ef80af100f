using System.Runtime.Intrinsics;
using SsmGen.Numerics;

namespace SsmGen.Tests.Numerics;

public class FastMathSumEach16Tests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>The shuffle tree against float64 sums; and one vector's TreeSum equals its lane in the sixteen.</summary>
    [Fact]
    public void LaneCIsTheSumOfVectorC()
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
        {
            output.WriteLine("Skipped: this CPU has no AVX-512F; the tree is AVX-512 only, and its callers take their portable paths here.");
            return;
        }
        var rng = new Random(12);
        for (int round = 0; round < 50; round++)
        {
            var values = Enumerable.Range(0, 256).Select(_ => (float)(rng.NextDouble() * 2 - 1) * (1 << rng.Next(8))).ToArray();
            var vectors = Enumerable.Range(0, 16).Select(c => Vector512.Create(values.AsSpan(16 * c, 16))).ToArray();
            var sums = FastMath.SumEach16(vectors);
            for (int c = 0; c < 16; c++)
            {
                double expected = 0, magnitude = 0;
                for (int i = 0; i < 16; i++) { expected += values[16 * c + i]; magnitude += Math.Abs(values[16 * c + i]); }
                Assert.True(Math.Abs(sums[c] - expected) <= 1e-6 * magnitude, $"lane {c}: {sums[c]} vs {expected}");
                Assert.Equal(sums[c], FastMath.TreeSum(vectors[c])); // the same additions in the same order
            }
        }
        Assert.Throws<ArgumentException>(() => FastMath.SumEach16(new Vector512<float>[15]));
    }
}
