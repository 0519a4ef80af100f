using SsmGen.Numerics;

namespace SsmGen.Tests.Numerics;

/// <summary>The pass profile behind the benchmarks' split of a step: what it counts, where, and when.</summary>
[Collection(nameof(PassProfileTests))] // the profile is process-wide: no other test of this class runs beside
public class PassProfileTests
{
    [Fact]
    public void KernelsReportTheirPassWorkAndTime()
    {
        const int rows = 96, inF = 32, outF = 48;
        var x = new float[rows * inF]; var w = new float[outF * inF]; var y = new float[rows * outF];
        var n = new float[rows * inF]; var mean = new float[rows]; var rstd = new float[rows];
        x.AsSpan().Fill(0.5f); w.AsSpan().Fill(0.25f);
        Gemm.LinearForward(x, w, ReadOnlySpan<float>.Empty, y, rows, inF, outF); // not recorded: before Start

        PassProfile.Start();
        Gemm.LinearForward(x, w, ReadOnlySpan<float>.Empty, y, rows, inF, outF);
        Gemm.LinearForward(x, w, ReadOnlySpan<float>.Empty, y, rows, inF, outF);
        BlockKernels.LayerNormForward(x, new float[inF], new float[inF], n, mean, rstd, rows, inF);
        var totals = PassProfile.Stop().ToDictionary(t => t.Pass);
        Gemm.LinearForward(x, w, ReadOnlySpan<float>.Empty, y, rows, inF, outF); // not recorded: after Stop

        Assert.Equal(2 * 2.0 * rows * inF * outF, totals[Pass.Projection].Flops);
        Assert.Equal(2 * 4.0 * (rows * (inF + outF) + inF * outF), totals[Pass.Projection].Bytes);
        Assert.True(totals[Pass.Projection].Time > TimeSpan.Zero);
        Assert.Equal(7.0 * rows * inF, totals[Pass.Norm].Flops);
        Assert.True(totals[Pass.Norm].Time > TimeSpan.Zero);
        foreach (var pass in new[] { Pass.Convolution, Pass.Scan, Pass.ElementWise, Pass.Loss, Pass.Optimizer })
            Assert.Equal(new PassTotals(pass, TimeSpan.Zero, 0, 0), totals[pass]);
    }

    /// <summary>A channel kernel's stated operations (the generated S4D kernel and its Horner sums) count under the convolution.</summary>
    [Fact]
    public void ChannelKernelsCountTheirStatedWorkAsConvolution()
    {
        var input = new float[64]; var output = new float[64 * 300];
        PassProfile.Start();
        ChannelParallel.Run((_, _, o, length, h0, h1) => o.Slice(h0 * length, (h1 - h0) * length).Fill(1f), input, [], output, 300, 64, flops: 1234);
        ChannelParallel.Run((_, _, o, length, h0, h1) => { }, input, [], output, 300, 64); // no work stated: its time counts, no operations
        var convolution = PassProfile.Stop().Single(t => t.Pass == Pass.Convolution);
        Assert.Equal(1234, convolution.Flops);
        Assert.True(convolution.Time > TimeSpan.Zero);
        Assert.All(output, v => Assert.Equal(1f, v));
    }

    [Fact]
    public void OtherThreadsAreNotCounted()
    {
        var x = new float[4096]; var y = new float[4096];
        PassProfile.Start();
        var other = new Thread(() => BlockKernels.SiluForward(x, y));
        other.Start();
        other.Join();
        var elementWise = PassProfile.Stop().Single(t => t.Pass == Pass.ElementWise);
        Assert.Equal(0, elementWise.Bytes);
        Assert.Equal(TimeSpan.Zero, elementWise.Time);
    }
}
