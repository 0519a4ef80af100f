using System.Runtime.Intrinsics;
using SsmGen.Numerics;

namespace SsmGen.Tests.Numerics;

public class FastMathExp2Tests
{
    /// <summary>The scan's decay 2^x against Math.Pow over its whole domain, including the clamps.</summary>
    [Fact]
    public void Exp2DecayMatchesPowAcrossItsRange()
    {
        var rng = new Rng(4);
        double worst = 0;
        for (int i = 0; i < 200_000; i++)
        {
            float x = -(float)Math.Pow(10, rng.Uniform(-9, 2.2)); // −1e-9 … −158
            float got = FastMath.Exp2Decay(Vector512.Create(x)).GetElement(0);
            double want = Math.Pow(2, Math.Clamp(x, -150, SsmGen.Numerics.Stability.MaxLog2Decay));
            double err = Math.Abs(got - want) / Math.Max(want, 1e-30);
            if (want > 1e-37) worst = Math.Max(worst, err); // normal range: relative error
            else Assert.True(Math.Abs(got - want) < 1e-37, $"2^{x} = {got}, want {want}");
            Assert.True(got is >= 0 and < 1, $"2^{x} = {got} is not in [0, 1)");
        }
        Assert.True(worst < 3e-7, $"relative error {worst:E2}");
    }
}
