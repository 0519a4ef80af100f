namespace SsmGen.Numerics;

/// <summary>
/// A kernel over channels [h0, h1) of its operands: reads <paramref name="input"/> and <paramref name="second"/>
/// (empty when it has one input), writes the channels' part of <paramref name="output"/> and nothing else. It runs as
/// a part of a <see cref="WorkerPool"/> run, so it must not start work on the pool itself.
/// </summary>
public delegate void ChannelRange(ReadOnlySpan<float> input, ReadOnlySpan<float> second, Span<float> output, int length, int h0, int h1);

/// <summary>
/// Runs a <see cref="ChannelRange"/> kernel over [0, channels), split across the <see cref="WorkerPool"/> when the
/// work pays for the hand-off (the generated S4D kernel and its Horner sums, one channel's work independent of the
/// others'). The spans are pinned for the call and handed to the parts as spans again.
/// </summary>
public static unsafe class ChannelParallel
{
    internal sealed class Job : ParallelWork
    {
        public ChannelRange? Body;
        public float* Input, Second, Output;
        public int InputLength, SecondLength, OutputLength, Length, Channels;

        public override void Execute(int part, int parts)
        {
            var (s, e) = WorkerPool.Share(Channels, part, parts);
            if (s < e) Body!(new ReadOnlySpan<float>(Input, InputLength), new ReadOnlySpan<float>(Second, SecondLength), new Span<float>(Output, OutputLength), Length, s, e);
        }
    }

    /// <summary>
    /// body(input, second, output, length, h0, h1) over every channel, in parts on the pool when channels·length is large;
    /// <paramref name="flops"/>, the operations the body executes, are counted with its time under
    /// <see cref="Pass.Convolution"/> (the S4D kernel and its backward are the convolution's work).
    /// </summary>
    public static void Run(ChannelRange body, ReadOnlySpan<float> input, ReadOnlySpan<float> second, Span<float> output, int length, int channels, Workspace? workspace = null, double flops = 0)
    {
        ArgumentNullException.ThrowIfNull(body);
        using var pass = PassProfile.Enter(Pass.Convolution, flops, 4.0 * (input.Length + second.Length + output.Length));
        var pool = WorkerPool.Shared;
        if (pool.Concurrency == 1 || channels < 2 || (long)channels * length < 1 << 14) { body(input, second, output, length, 0, channels); return; }
        var job = (workspace ?? Workspace.ForCurrentThread).ChannelJob;
        fixed (float* pi = input, ps = second, po = output)
        {
            job.Body = body; job.Input = pi; job.Second = ps; job.Output = po;
            job.InputLength = input.Length; job.SecondLength = second.Length; job.OutputLength = output.Length; job.Length = length; job.Channels = channels;
            try { pool.Run(job, pool.PartsFor(channels)); }
            finally { job.Body = null; job.Input = job.Second = job.Output = null; }
        }
    }
}
