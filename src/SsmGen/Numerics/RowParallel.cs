namespace SsmGen.Numerics;

/// <summary>Pointers and sizes handed to a row kernel (a plain struct, so handing it over allocates nothing).</summary>
public unsafe struct RowArgs
{
    public float* P0, P1, P2, P3, P4, P5, P6;
    public int Width, Count, Extra;
}

/// <summary>
/// Runs a row kernel <c>body(ref args, firstRow, endRow)</c> over [0, rows), split across the
/// <see cref="WorkerPool"/> when the work is large enough to pay for the hand-off.
/// </summary>
public static unsafe class RowParallel
{
    internal sealed class Job : ParallelWork
    {
        public delegate*<ref RowArgs, int, int, void> Body;
        public RowArgs Args;
        public int Rows, Grain = 16;
        public override void Execute(int part, int parts)
        {
            var (s, e) = WorkerPool.Share(Rows, part, parts, Grain);
            if (s < e) Body(ref Args, s, e);
        }
    }

    /// <param name="costPerRow">Rough elements touched per row: small totals run on the calling thread.</param>
    /// <param name="grain">Rows handed out together (1 for few, long rows such as whole sequences).</param>
    public static void Run(delegate*<ref RowArgs, int, int, void> body, RowArgs args, int rows, long costPerRow, Workspace? workspace = null, int grain = 16)
    {
        var pool = WorkerPool.Shared;
        if (pool.Concurrency == 1 || rows * costPerRow < 1 << 15) { body(ref args, 0, rows); return; }
        var job = (workspace ?? Workspace.ForCurrentThread).RowJob;
        job.Body = body; job.Args = args; job.Rows = rows; job.Grain = grain;
        pool.Run(job, pool.Concurrency);
    }
}
