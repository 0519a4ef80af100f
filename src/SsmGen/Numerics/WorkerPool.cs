using System.Diagnostics;

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

    /// <summary>
    /// How long a thread waiting for the next part (a worker) or for the other parts (the caller) spins on pause
    /// instructions before it blocks. A training step's passes follow each other with gaps far shorter than this, and
    /// blocking and waking take system calls, costly in a virtual machine: waiting through SemaphoreSlim and
    /// ManualResetEventSlim (whose spinning yields with sched_yield), an sMNIST step spent 2–4% of its samples in them,
    /// and spinning first made its median step 2–4% faster (docs/benchmarks.md). An idle pool sleeps after it.
    /// </summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 1000;

    private readonly Thread[] _threads;
    private readonly SemaphoreSlim[] _wake;
    private readonly int[] _handed, _asleep; // per worker: the run it was last handed, and whether it may be blocked on _wake
    private readonly ManualResetEventSlim _done = new(false);
    private readonly object _gate = new();
    private ParallelWork? _work;
    private int _parts, _pending, _generation, _callerAsleep;
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
        _wake = new SemaphoreSlim[Concurrency - 1];
        _handed = new int[Concurrency - 1];
        _asleep = new int[Concurrency - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            int slot = i;
            _wake[i] = new SemaphoreSlim(0);
            _threads[i] = new Thread(() => Loop(slot)) { IsBackground = true, Name = $"SsmGen worker {slot + 1}" };
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
            int generation = ++_generation;
            for (int i = 0; i < parts - 1; i++)
            {
                // the new generation is published (a full fence) before a worker's sleep flag is read, and the worker sets
                // its flag (a full fence) before it reads the generation: one of the two sees the other, so no wake is lost
                Volatile.Write(ref _handed[i], generation);
                Interlocked.MemoryBarrier();
                if (Volatile.Read(ref _asleep[i]) != 0) _wake[i].Release();
            }
            try { work.Execute(0, parts); }
            finally { WaitForWorkers(); _work = null; }
            if (_error is not null) throw new AggregateException("A worker failed.", _error);
        }
    }

    private void WaitForWorkers()
    {
        long start = Stopwatch.GetTimestamp();
        for (int spins = 0; Volatile.Read(ref _pending) != 0; spins++)
        {
            if (Spin(spins, start)) continue;
            _done.Reset();
            Interlocked.Exchange(ref _callerAsleep, 1);
            if (Volatile.Read(ref _pending) != 0) _done.Wait(); // a late Set from an earlier run wakes it early: the loop checks again
            Volatile.Write(ref _callerAsleep, 0);
        }
    }

    /// <summary>One more round of pause instructions while <see cref="SpinTicks"/> since <paramref name="start"/> have not passed (the clock read every 16th round); false when it is time to block.</summary>
    private static bool Spin(int spins, long start)
    {
        if ((spins & 15) == 15 && Stopwatch.GetTimestamp() - start >= SpinTicks) return false;
        Thread.SpinWait(4);
        return true;
    }

    private void Loop(int slot)
    {
        int seen = 0;
        while (true)
        {
            long start = Stopwatch.GetTimestamp();
            for (int spins = 0; Volatile.Read(ref _handed[slot]) == seen; spins++)
            {
                if (Spin(spins, start)) continue;
                Interlocked.Exchange(ref _asleep[slot], 1);
                if (Volatile.Read(ref _handed[slot]) == seen) _wake[slot].Wait(); // a Release left over from a run it caught spinning: the loop checks again
                Volatile.Write(ref _asleep[slot], 0);
                start = Stopwatch.GetTimestamp();
            }
            seen = Volatile.Read(ref _handed[slot]);
            try { _work!.Execute(slot + 1, _parts); }
            catch (Exception e) { _error = e; }
            finally
            {
                if (Interlocked.Decrement(ref _pending) == 0 && Volatile.Read(ref _callerAsleep) != 0) _done.Set();
            }
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
