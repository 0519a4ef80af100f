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

    private sealed class OneSlowPart(int slowMs) : ParallelWork
    {
        public override void Execute(int part, int parts)
        {
            if (part == 0) Thread.Sleep(slowMs);
        }
    }

    /// <summary>
    /// Two threads, one part that takes 40 ms and one that takes nothing: whichever thread runs the short part (or none)
    /// sits idle ~40 ms, and only runs recorded on the recording thread count.
    /// </summary>
    [Fact]
    public void ThreadsWaitingInsideParallelRunsAreSummed()
    {
        var pool = new WorkerPool(2);
        var work = new OneSlowPart(40);
        pool.Run(work, 2); // not recorded: before Start
        PassProfile.Start();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        pool.Run(work, 2);
        var wall = clock.Elapsed;
        var other = new Thread(() => pool.Run(work, 2)); // another thread's run: not counted
        other.Start();
        other.Join();
        PassProfile.Stop();
        pool.Run(work, 2); // after Stop
        var waiting = PassProfile.Waiting;
        // one thread idle for about the run, the other hardly: below 1.5 times its wall time (the other runs would add ~40 ms each)
        Assert.InRange(waiting.TotalMilliseconds, 30, 1.5 * wall.TotalMilliseconds);
        PassProfile.Start();
        PassProfile.Stop();
        Assert.Equal(TimeSpan.Zero, PassProfile.Waiting); // cleared by Start
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
