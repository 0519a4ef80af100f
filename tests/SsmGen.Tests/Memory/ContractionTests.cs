using System.Numerics;
using SsmGen.Memory;
using Xunit.Abstractions;

namespace SsmGen.Tests.Memory;

/// <summary>The stability measurements against hand-built contractions whose rates are known.</summary>
public class ContractionTests(ITestOutputHelper output)
{
    [Fact]
    public void AFixedContractionForgetsItsStartAtTheSlowestModesRate()
    {
        // three rotating modes with |Ā| = 0.9, 0.8, 0.5: the distance between two starts decays at 0.9 per step
        const int Steps = 120, Modes = 3;
        Complex[] a = [Complex.FromPolarCoordinates(0.9, 0.3), Complex.FromPolarCoordinates(0.8, 1.1), Complex.FromPolarCoordinates(0.5, 2.0)];
        var transitions = new Complex[Steps * Modes];
        var drive = new Complex[Steps * Modes];
        var noise = TestConfigs.RandomArray(Steps * Modes, 4);
        for (int t = 0; t < Steps; t++)
            for (int m = 0; m < Modes; m++) (transitions[t * Modes + m], drive[t * Modes + m]) = (a[m], noise[t * Modes + m]);
        var report = ContractionCheck.Analyze(transitions, drive, Steps, Modes, [1, 1, 1]);
        output.WriteLine($"max |Ā| {report.MaxModulus}, fitted rate {report.FittedRate:F6}, predicted {report.PredictedRate:F6}");
        Assert.Equal(0.9, report.MaxModulus, 12);
        Assert.Equal(0.9, report.PredictedRate, 12);
        Assert.Equal(0.9, report.FittedRate, 3);
        // the contraction bound holds at every step and within max|b|·√M/(1 − ρ)
        double ceiling = noise.Max(Math.Abs) * Math.Sqrt(Modes) / (1 - 0.9);
        for (int t = 0; t < Steps; t++)
        {
            Assert.True(report.StateNorm[t] <= report.Bound[t] * (1 + 1e-12), $"step {t}: ‖h‖ {report.StateNorm[t]} above the bound {report.Bound[t]}");
            Assert.True(report.Bound[t] <= ceiling, $"step {t}: bound {report.Bound[t]} above {ceiling}");
        }
    }

    [Fact]
    public void AnInputDependentContractionDecaysAtItsGeometricMean()
    {
        // one mode whose |Ā_t| alternates between 0.95 and 0.6 (as a selective gate would): rate √(0.95·0.6)
        const int Steps = 200;
        var transitions = Enumerable.Range(0, Steps).Select(t => new Complex(t % 2 == 0 ? 0.95 : 0.6, 0)).ToArray();
        var report = ContractionCheck.Analyze(transitions, new Complex[Steps], Steps, 1, [2]);
        double expected = Math.Sqrt(0.95 * 0.6);
        output.WriteLine($"fitted {report.FittedRate:F6}, predicted {report.PredictedRate:F6}, expected {expected:F6}");
        Assert.Equal(expected, report.FittedRate, 3);
        // over an odd number of steps the window's mean holds one unpaired factor: within 0.005 of the pair's mean
        Assert.True(Math.Abs(report.PredictedRate - expected) < 5e-3, $"predicted {report.PredictedRate}");
        Assert.All(report.StateNorm, n => Assert.Equal(0, n));
    }

    [Fact]
    public void AnExpandingModeIsReportedNotHidden()
    {
        const int Steps = 30;
        var transitions = new Complex[Steps * 2];
        for (int t = 0; t < Steps; t++) (transitions[2 * t], transitions[2 * t + 1]) = (1.02, 0.5);
        var report = ContractionCheck.Analyze(transitions, new Complex[Steps * 2], Steps, 2, [1, 1]);
        Assert.Equal(1.02, report.MaxModulus, 12);
        Assert.Equal(1.02, report.FittedRate, 3);
        Assert.Contains("initial differences", Assert.Throws<ArgumentException>(() => ContractionCheck.Analyze(transitions, new Complex[Steps * 2], Steps, 2, [1])).Message);
    }

    [Fact]
    public void AnS4DBlockContractsAtItsSlowestOscillatorsRate()
    {
        // the block's own numbers: max |Ā| is its slowest oscillator's radius, the state stays under the contraction
        // bound, and two starts converge at that radius per step
        const int Length = 400;
        using var model = new TinyRealMean(1, Length);
        model.Initialize(2);
        var op = SsmGen.Interpretability.S4DOperator.FromModel(model);
        var input = TestConfigs.RandomArray(Length * model.Config.Input, 3).Select(v => (float)v).ToArray();
        for (int block = 0; block < 2; block++)
        {
            var report = ContractionCheck.ForS4DBlock(op, input, Length, block);
            double slowest = op.Oscillators.Blocks[block].Oscillators.Max(o => o.Radius);
            output.WriteLine($"block {block}: max |Ā| {report.MaxModulus:F6} (slowest oscillator {slowest:F6}), fitted rate {report.FittedRate:F6}, predicted {report.PredictedRate:F6}");
            Assert.Equal(slowest, report.MaxModulus, 12);
            Assert.True(report.MaxModulus < 1);
            Assert.Equal(slowest, report.PredictedRate, 9);
            Assert.True(Math.Abs(report.FittedRate - slowest) < 2e-3, $"block {block}: fitted {report.FittedRate} against {slowest}");
            for (int t = 0; t < Length; t++)
            {
                Assert.True(report.StateNorm[t] <= report.Bound[t] * (1 + 1e-12));
                Assert.True(report.Distance[t] <= report.DistanceBound[t] * (1 + 1e-12), $"block {block}, step {t}: distance above its bound");
            }
            Assert.True(report.FittedRate <= report.PredictedRate + 1e-9, "two starts met more slowly than the slowest mode allows");
        }
        Assert.Contains("Block 2 is outside", Assert.Throws<ArgumentOutOfRangeException>(() => ContractionCheck.ForS4DBlock(op, input, Length, 2)).Message);
    }
}
