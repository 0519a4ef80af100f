using SsmGen.Distributed;

namespace SsmGen.Tests.Distributed;

/// <summary>
/// A job of several ranks inside one process, one thread per rank: each collective is a shared table and two barrier
/// waits, so tests of what ranks exchange run without MPI. A rank that does not arrive within the timeout makes the
/// others throw instead of waiting for ever.
/// </summary>
internal sealed class ThreadRanks(int size)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private readonly Barrier _barrier = new(size);
    private readonly float[][] _slots = new float[size][];

    /// <summary>Runs <paramref name="rank"/>(r, collective) on one thread per rank and returns each rank's result.</summary>
    public static T[] Run<T>(int size, Func<int, ICollective, T> rank)
    {
        var job = new ThreadRanks(size);
        var results = new T[size];
        var errors = new Exception?[size];
        var threads = Enumerable.Range(0, size).Select(r => new Thread(() =>
        {
            try { results[r] = rank(r, new Member(job, r)); }
            catch (Exception e) { errors[r] = e; }
        }, maxStackSize: 16 << 20)).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        var first = errors.FirstOrDefault(e => e is not null && e is not TimeoutException) ?? errors.FirstOrDefault(e => e is not null);
        if (first is not null) throw new AggregateException($"A rank failed: {first.Message}", first);
        return results;
    }

    private void Wait()
    {
        if (!_barrier.SignalAndWait(Patience)) throw new TimeoutException("Another rank did not reach the collective.");
    }

    private sealed class Member(ThreadRanks job, int rank) : ICollective
    {
        public int Rank => rank;
        public int Size => job._slots.Length;
        public string Name => "threads";

        public void AllGather(ReadOnlySpan<float> mine, Span<float> all)
        {
            job._slots[rank] = mine.ToArray();
            job.Wait();
            for (int r = 0; r < Size; r++)
            {
                if (job._slots[r].Length != mine.Length) throw new InvalidOperationException($"Rank {r} gathers {job._slots[r].Length} values, rank {rank} {mine.Length}.");
                job._slots[r].CopyTo(all.Slice(r * mine.Length, mine.Length));
            }
            job.Wait(); // nobody overwrites a slot before everyone has read it
        }

        public void AllReduceSum(Span<float> values)
        {
            var all = new float[values.Length * Size];
            AllGather(values, all);
            values.Clear();
            for (int r = 0; r < Size; r++) System.Numerics.Tensors.TensorPrimitives.Add(values, all.AsSpan(r * values.Length, values.Length), values);
        }

        public void Broadcast(Span<float> values, int root = 0)
        {
            var all = new float[values.Length * Size];
            AllGather(values, all);
            all.AsSpan(root * values.Length, values.Length).CopyTo(values);
        }

        public void Barrier() => job.Wait();
        public void Dispose() { }
    }
}
