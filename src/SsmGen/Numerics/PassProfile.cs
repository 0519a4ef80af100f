using System.Diagnostics;

namespace SsmGen.Numerics;

/// <summary>The kinds of pass a training step spends its time in, as <see cref="PassProfile"/> sorts them.</summary>
public enum Pass
{
    /// <summary>LayerNorm and RMSNorm, forward and backward.</summary>
    Norm,
    /// <summary>Linear layers: the matrix products of the projections, heads and decoders.</summary>
    Projection,
    /// <summary>S4D's FFT convolution and Mamba's short causal convolution.</summary>
    Convolution,
    /// <summary>The selective scan, forward and backward.</summary>
    Scan,
    /// <summary>Activations, gates, dropout and residual sums.</summary>
    ElementWise,
    /// <summary>The loss and dL/d(output).</summary>
    Loss,
    /// <summary>Gradient clipping and AdamW.</summary>
    Optimizer,
}

/// <summary>
/// Where a step's time goes: while recording, the library's kernels add their wall time, their floating-point
/// operations and the bytes they must move (each input read and each output written once) to their <see cref="Pass"/>.
/// What no kernel claims (generated loops, the S4D discretization and chain rule, hand-offs) is the step's time less their sum.
/// Beside the passes it sums how long the <see cref="WorkerPool"/>'s threads sat idle inside the parallel runs the
/// recording thread started (<see cref="Waiting"/>): time inside the passes that no core worked.
/// Records the thread that started it, one model at a time; when not recording a kernel pays one static read.
/// </summary>
public static class PassProfile
{
    private static readonly int Count = Enum.GetValues<Pass>().Length;
    private static readonly long[] s_ticks = new long[Count];
    private static readonly double[] s_flops = new double[Count], s_bytes = new double[Count];
    private static bool s_recording;
    private static int s_thread;
    private static long s_waitTicks;
    [ThreadStatic] private static int t_depth;

    /// <summary>Clears the totals and starts recording on the calling thread.</summary>
    public static void Start()
    {
        Array.Clear(s_ticks); Array.Clear(s_flops); Array.Clear(s_bytes);
        s_waitTicks = 0;
        s_thread = Environment.CurrentManagedThreadId;
        s_recording = true;
    }

    /// <summary>Stops recording and returns the totals since <see cref="Start"/>, per pass.</summary>
    public static PassTotals[] Stop()
    {
        s_recording = false;
        var totals = new PassTotals[Count];
        for (int i = 0; i < Count; i++)
            totals[i] = new PassTotals((Pass)i, Stopwatch.GetElapsedTime(0, s_ticks[i]), s_flops[i], s_bytes[i]);
        return totals;
    }

    /// <summary>
    /// Thread time spent idle inside the parallel runs recorded since <see cref="Start"/>, summed over the threads: a
    /// worker's wait for its hand-off, and each thread's wait, after its last part, for the others to finish theirs.
    /// </summary>
    public static TimeSpan Waiting => Stopwatch.GetElapsedTime(0, s_waitTicks);

    /// <summary>Whether parallel runs started on the calling thread are being recorded.</summary>
    internal static bool RecordsCallingThread => s_recording && Environment.CurrentManagedThreadId == s_thread;

    /// <summary>Adds idle thread time (Stopwatch ticks) of a run started on the recording thread.</summary>
    internal static void AddWaiting(long ticks) => s_waitTicks += ticks;

    /// <summary>Opens a pass; only the outermost open pass on the recording thread counts (kernels call kernels).</summary>
    internal static Scope Enter(Pass pass, double flops, double bytes)
    {
        if (!s_recording || Environment.CurrentManagedThreadId != s_thread || t_depth++ > 0) return default;
        s_flops[(int)pass] += flops;
        s_bytes[(int)pass] += bytes;
        return new Scope(pass, Stopwatch.GetTimestamp());
    }

    internal readonly struct Scope(Pass pass, long start) : IDisposable
    {
        public void Dispose()
        {
            if (start != 0) s_ticks[(int)pass] += Stopwatch.GetTimestamp() - start;
            if (s_recording && Environment.CurrentManagedThreadId == s_thread) t_depth--;
        }
    }
}

/// <summary>One pass's totals: wall time, floating-point operations, and bytes its kernels must move.</summary>
public readonly record struct PassTotals(Pass Pass, TimeSpan Time, double Flops, double Bytes);
