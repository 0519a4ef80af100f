using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace SsmGen.Numerics;

/// <summary>
/// One piece of data-parallel work: part <c>part</c> of <c>parts</c>, each part run once by whichever thread of the pool
/// claims it. Reused across calls, so running it allocates nothing.
/// </summary>
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
    private readonly long[] _started, _finished; // per worker, in a timed run: when it took up the run and when it found no part left
    private bool _timed; // whether this run's idle time goes to the PassProfile
    private readonly int[] _workerIds;
    private readonly ManualResetEventSlim _done = new(false);
    private readonly object _gate = new();
    private ParallelWork? _work;
    private int _parts, _next, _pending, _generation, _callerAsleep;
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
        _started = new long[Concurrency - 1];
        _finished = new long[Concurrency - 1];
        _workerIds = new int[Concurrency - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            int slot = i;
            _wake[i] = new SemaphoreSlim(0);
            _threads[i] = new Thread(() => Loop(slot)) { IsBackground = true, Name = $"SsmGen worker {slot + 1}" };
            _workerIds[i] = _threads[i].ManagedThreadId;
            _threads[i].Start();
        }
    }

    /// <summary>
    /// Runs parts 0…parts−1 on the calling thread and up to <see cref="Concurrency"/> − 1 workers, each thread claiming
    /// the next part as it comes free; returns when all are done. More parts than threads even out the threads' times:
    /// in this virtual machine one core often runs 10–20% slower than the other for a while, and with a part per thread
    /// the faster one waited for it (an sMNIST step's threads spent ~7% of their time each waiting, docs/benchmarks.md).
    /// Which thread runs a part varies from run to run, so a part's result must not depend on it; scratch that is per
    /// thread is found through <see cref="ThreadIndex"/>.
    /// </summary>
    public void Run(ParallelWork work, int parts)
    {
        if (parts <= 1) { work.Execute(0, 1); return; }
        int threads = Math.Min(parts, Concurrency);
        if (threads == 1) { for (int p = 0; p < parts; p++) work.Execute(p, parts); return; }
        lock (_gate)
        {
            _work = work; _parts = parts; _error = null; _next = 0;
            _pending = threads - 1;
            bool timed = _timed = PassProfile.RecordsCallingThread; // published to the workers with the generation
            long start = timed ? Stopwatch.GetTimestamp() : 0;
            int generation = ++_generation;
            for (int i = 0; i < threads - 1; i++)
            {
                // the new generation is published (a full fence) before a worker's sleep flag is read, and the worker sets
                // its flag (a full fence) before it reads the generation: one of the two sees the other, so no wake is lost
                Volatile.Write(ref _handed[i], generation);
                Interlocked.MemoryBarrier();
                if (Volatile.Read(ref _asleep[i]) != 0) _wake[i].Release();
            }
            RunParts(work, parts);
            long callerDone = timed ? Stopwatch.GetTimestamp() : 0;
            WaitForWorkers();
            if (timed) PassProfile.AddWaiting(Idle(threads - 1, start, callerDone, Stopwatch.GetTimestamp()));
            _work = null;
            if (_error is not null) ExceptionDispatchInfo.Throw(_error);
        }
    }

    /// <summary>Idle thread time of a run from <paramref name="start"/> to <paramref name="end"/>: the caller's after its last part, each worker's before it took up the run and after its last part.</summary>
    private long Idle(int workers, long start, long callerDone, long end)
    {
        long idle = end - callerDone;
        for (int i = 0; i < workers; i++) idle += (_started[i] - start) + (end - _finished[i]);
        return idle;
    }

    /// <summary>
    /// How many parts to cut <paramref name="items"/> (rows, channel blocks, chunks) into: up to eight per thread, so that
    /// a thread slowed down for a while leaves the others at most one small part to wait for at the end.
    /// </summary>
    public int PartsFor(int items) => Math.Clamp(items, 1, PartsPerThread * Concurrency);

    private const int PartsPerThread = 8;

    /// <summary>
    /// Claims parts and runs them until none is left. A part that throws ends the claiming for every thread; the first
    /// failure is kept and thrown to the caller as itself once all threads are done, whichever thread ran the part.
    /// </summary>
    private void RunParts(ParallelWork work, int parts)
    {
        try
        {
            for (int part; (part = Interlocked.Increment(ref _next) - 1) < parts;) work.Execute(part, parts);
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _error, e, null);
            Volatile.Write(ref _next, parts); // claims after this one find nothing
        }
    }

    /// <summary>
    /// The calling thread's place in this pool, for scratch kept per thread: 1 … <see cref="Concurrency"/> − 1 on its
    /// workers, 0 on any other thread (a run's caller; runs are serialized, so one at a time). Found among the workers'
    /// ids rather than kept in a thread-static field, whose first use on a new calling thread allocates.
    /// </summary>
    public int ThreadIndex
    {
        get
        {
            int id = Environment.CurrentManagedThreadId;
            for (int i = 0; i < _workerIds.Length; i++)
                if (_workerIds[i] == id) return i + 1;
            return 0;
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
            bool timed = _timed;
            if (timed) _started[slot] = Stopwatch.GetTimestamp();
            RunParts(_work!, _parts);
            if (timed) _finished[slot] = Stopwatch.GetTimestamp(); // before the decrement, whose fence the caller's read of _pending pairs with
            if (Interlocked.Decrement(ref _pending) == 0 && Volatile.Read(ref _callerAsleep) != 0) _done.Set();
        }
    }

    /// <summary>
    /// The [start, end) share of <paramref name="count"/> items for a part, in multiples of <paramref name="grain"/>.
    /// Where there are blocks enough, the shares shrink in steps from the first part to the last (weights parts, parts − 1,
    /// …, 1, each part at least a block): the threads claim parts in order, so the parts left at the end are small and a
    /// core slowed down for a while leaves the other little to wait for (equal shares left up to a whole part; the idle
    /// time `--passes` prints). Otherwise the shares are equal. Depends on the counts alone.
    /// </summary>
    public static (int Start, int End) Share(int count, int part, int parts, int grain = 1)
    {
        long blocks = (count + grain - 1) / grain, total = (long)parts * (parts + 1) / 2;
        long s, e;
        if (blocks >= total) { s = blocks * Before(part, parts) / total; e = blocks * Before(part + 1, parts) / total; }
        else { s = blocks * part / parts; e = blocks * (part + 1) / parts; }
        return ((int)Math.Min(s * grain, count), (int)Math.Min(e * grain, count));
    }

    /// <summary>The weights of the parts before <paramref name="part"/>: parts + (parts − 1) + … for <paramref name="part"/> terms.</summary>
    private static long Before(int part, int parts) => (long)part * parts - (long)part * (part - 1) / 2;
}
