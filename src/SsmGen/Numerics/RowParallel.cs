namespace SsmGen.Numerics;

/// <summary>Pointers and sizes handed to a row kernel (a plain struct, so handing it over allocates nothing).</summary>
public unsafe struct RowArgs
{
    public float* P0, P1, P2, P3, P4, P5, P6;
    public int Width, Count, Extra;
    public float Scale;
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

    internal sealed class PartialsJob : ParallelWork
    {
        public delegate*<ref RowArgs, int, int, float*, void> Body;
        public RowArgs Args;
        public int Rows, Width;
        public float* Partials;
        public override void Execute(int part, int parts)
        {
            var (s, e) = WorkerPool.Share(Rows, part, parts, 16);
            float* partial = Partials + (long)part * Width;
            new Span<float>(partial, Width).Clear();
            if (s < e) Body(ref Args, s, e, partial);
        }
    }

    /// <summary>
    /// <see cref="Run"/> for a row kernel that also sums over its rows: each part gets its own zeroed partial sums,
    /// <paramref name="width"/> floats for <paramref name="first"/> then as many for <paramref name="second"/> (when
    /// not null), and the parts' sums are added to them in part order after every part finished — the same sum on
    /// every call with the same rows and pool.
    /// </summary>
    public static void RunWithPartials(delegate*<ref RowArgs, int, int, float*, void> body, RowArgs args, int rows, long costPerRow, float* first, float* second, int width, Workspace? workspace = null)
    {
        var pool = WorkerPool.Shared;
        var ws = workspace ?? Workspace.ForCurrentThread;
        int parts = pool.Concurrency == 1 || rows * costPerRow < 1 << 15 ? 1 : pool.PartsFor((rows + 15) / 16);
        int row = second is null ? width : 2 * width;
        if (ws.Partials.Length < parts * row) ws.Partials = new AlignedBuffer(parts * row);
        fixed (float* partials = ws.Partials)
        {
            var job = ws.PartialsJob;
            job.Body = body; job.Args = args; job.Rows = rows; job.Width = row; job.Partials = partials;
            if (parts == 1) job.Execute(0, 1);
            else pool.Run(job, parts);
            for (int p = 0; p < parts; p++)
            {
                float* part = partials + (long)p * row;
                for (int c = 0; c < width; c++) first[c] += part[c];
                if (second is not null)
                    for (int c = 0; c < width; c++) second[c] += part[width + c];
            }
        }
    }

    /// <param name="costPerRow">Rough elements touched per row: small totals run on the calling thread.</param>
    /// <param name="grain">Rows handed out together (1 for few, long rows such as whole sequences).</param>
    public static void Run(delegate*<ref RowArgs, int, int, void> body, RowArgs args, int rows, long costPerRow, Workspace? workspace = null, int grain = 16)
    {
        var pool = WorkerPool.Shared;
        if (pool.Concurrency == 1 || rows * costPerRow < 1 << 15) { body(ref args, 0, rows); return; }
        if (workspace is not null) { Start(workspace.RowJob, body, args, rows, grain); return; }
        // Without a workspace, one job for every caller, held while it runs: the pool runs one job at a time anyway,
        // and a job made per thread allocated on each new thread's first call.
        lock (s_sharedJob) Start(s_sharedJob, body, args, rows, grain);
    }

    private static readonly Job s_sharedJob = new();

    private static void Start(Job job, delegate*<ref RowArgs, int, int, void> body, RowArgs args, int rows, int grain)
    {
        job.Body = body; job.Args = args; job.Rows = rows; job.Grain = grain;
        WorkerPool.Shared.Run(job, WorkerPool.Shared.PartsFor((rows + grain - 1) / grain));
    }
}
