namespace SsmGen.Numerics;

/// <summary>One piece of data-parallel work: part <c>part</c> of <c>parts</c>. Reused across calls, so running it allocates nothing.</summary>
public abstract class ParallelWork
{
    public abstract void Execute(int part, int parts);
}

/// <summary>
/// A fixed set of worker threads that run <see cref="ParallelWork"/> parts alongside the calling thread.
/// Unlike Parallel.For it allocates nothing per call, which keeps Forward and Backward allocation-free.
/// Calls from several threads at once are serialized.
/// </summary>
public sealed class WorkerPool
{
    /// <summary>The pool the numerics use: one thread per core.</summary>
    public static WorkerPool Shared { get; } = new(Environment.ProcessorCount);

    private readonly Thread[] _threads;
    private readonly SemaphoreSlim[] _start;
    private readonly ManualResetEventSlim _done = new(false);
    private readonly object _gate = new();
    private ParallelWork? _work;
    private int _parts, _pending;
    private Exception? _error;

    /// <summary>Threads that take part in a run, the caller included.</summary>
    public int Concurrency { get; }

    public WorkerPool(int concurrency)
    {
        Concurrency = Math.Max(1, concurrency);
        // ManualResetEventSlim makes its lock object the first time a waiter blocks; block once here so that no
        // later Run allocates it on whichever thread happens to wait first.
        _done.Wait(1);
        _threads = new Thread[Concurrency - 1];
        _start = new SemaphoreSlim[Concurrency - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            int index = i + 1;
            _start[i] = new SemaphoreSlim(0);
            _threads[i] = new Thread(() => Loop(index)) { IsBackground = true, Name = $"SsmGen worker {index}" };
            _threads[i].Start();
        }
    }

    /// <summary>Runs parts 0…parts−1 (parts ≤ <see cref="Concurrency"/>), part 0 on the calling thread; returns when all are done.</summary>
    public void Run(ParallelWork work, int parts)
    {
        parts = Math.Clamp(parts, 1, Concurrency);
        if (parts == 1) { work.Execute(0, 1); return; }
        lock (_gate)
        {
            _work = work; _parts = parts; _error = null;
            _pending = parts - 1;
            _done.Reset();
            for (int i = 0; i < parts - 1; i++) _start[i].Release();
            try { work.Execute(0, parts); }
            finally { _done.Wait(); _work = null; }
            if (_error is not null) throw new AggregateException("A worker failed.", _error);
        }
    }

    private void Loop(int index)
    {
        while (true)
        {
            _start[index - 1].Wait();
            try { _work!.Execute(index, _parts); }
            catch (Exception e) { _error = e; }
            finally { if (Interlocked.Decrement(ref _pending) == 0) _done.Set(); }
        }
    }

    /// <summary>The [start, end) share of <paramref name="count"/> items for a part, in multiples of <paramref name="grain"/>.</summary>
    public static (int Start, int End) Share(int count, int part, int parts, int grain = 1)
    {
        int blocks = (count + grain - 1) / grain;
        int s = (int)((long)blocks * part / parts) * grain, e = (int)((long)blocks * (part + 1) / parts) * grain;
        return (Math.Min(s, count), Math.Min(e, count));
    }
}
