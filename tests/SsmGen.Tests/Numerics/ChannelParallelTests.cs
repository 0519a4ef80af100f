using SsmGen.Numerics;
using Xunit;

namespace SsmGen.Tests.Numerics;

public class ChannelParallelTests
{
    // adds, so a channel run twice shows twice; each channel reads its own input and all of the second operand
    private static void AddRows(ReadOnlySpan<float> input, ReadOnlySpan<float> second, Span<float> output, int length, int h0, int h1)
    {
        for (int h = h0; h < h1; h++)
            for (int l = 0; l < length; l++) output[h * length + l] += input[h] + (second.IsEmpty ? 0 : second[l]);
    }

    [Theory]
    [InlineData(37, 1000, true)]  // past the hand-off threshold: parts on the pool
    [InlineData(37, 1000, false)]
    [InlineData(3, 10, true)]     // small: on the calling thread
    [InlineData(1, 20000, true)]  // one channel: nothing to share
    public void EveryChannelRunsOnceWithItsOperands(int channels, int length, bool withSecond)
    {
        var input = Enumerable.Range(0, channels).Select(h => 1000f * h).ToArray();
        var second = withSecond ? Enumerable.Range(0, length).Select(l => (float)l).ToArray() : [];
        var output = new float[channels * length];
        ChannelParallel.Run(AddRows, input, second, output, length, channels, new Workspace());
        for (int h = 0; h < channels; h++)
            for (int l = 0; l < length; l++)
                Assert.Equal(1000f * h + (withSecond ? l : 0), output[h * length + l]);
    }

    [Fact]
    public unsafe void AFailingPartThrowsAndTheJobForgetsItsOperands()
    {
        var ws = new Workspace();
        // the part holding the last channel throws: on the pool's last part, or on the calling thread when it runs alone
        Assert.ThrowsAny<Exception>(() => ChannelParallel.Run((_, _, _, _, _, h1) => { if (h1 == 64) throw new InvalidOperationException("part"); }, new float[64], [], new float[64 * 1000], 1000, 64, ws));
        Assert.Null(ws.ChannelJob.Body);
        Assert.True(ws.ChannelJob.Input == null && ws.ChannelJob.Second == null && ws.ChannelJob.Output == null);
        var output = new float[64 * 1000];
        ChannelParallel.Run(AddRows, Enumerable.Repeat(2f, 64).ToArray(), [], output, 1000, 64, ws); // the same workspace serves again
        Assert.All(output, v => Assert.Equal(2f, v));
    }
}
