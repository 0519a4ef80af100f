using SsmGen.Numerics;

namespace SsmGen.Tests.Numerics;

/// <summary>The pool's hand-offs: every part once, spinning workers and sleeping ones woken, failures passed on, nothing allocated.</summary>
public class WorkerPoolTests
{
    private sealed class Counting(int parts) : ParallelWork
    {
        public readonly int[] Runs = new int[parts];
        public int Throw = -1;
        public override void Execute(int part, int parts)
        {
            if (part == Throw) throw new InvalidOperationException("part failed");
            Interlocked.Increment(ref Runs[part]);
        }
    }

    [Fact]
    public void EveryPartRunsOnceWhetherTheWorkersSpinOrSleep()
    {
        var pool = new WorkerPool(3);
        var work = new Counting(40);
        var expected = new int[40];
        for (int run = 0; run < 3000; run++)
        {
            int parts = 1 + run % 40; // fewer parts than threads, as many, and many more
            pool.Run(work, parts);
            for (int p = 0; p < parts; p++) expected[p]++;
            if (run % 500 == 0) Thread.Sleep(5); // longer than the spin: the workers block and must be woken
        }
        Assert.Equal(expected, work.Runs);
    }

    [Fact]
    public void AWorkersFailureReachesTheCallerAndThePoolGoesOn()
    {
        var pool = new WorkerPool(2);
        var work = new Counting(2) { Throw = 1 };
        Assert.Throws<InvalidOperationException>(() => pool.Run(work, 2)); // whichever thread ran part 1
        work.Throw = -1;
        Thread.Sleep(5);
        pool.Run(work, 2);
        Assert.Equal([2, 1], work.Runs); // part 0 is claimed before part 1, so it ran in the failed run too
    }

    private sealed class Placing(WorkerPool pool, int parts) : ParallelWork
    {
        public readonly int[] Index = new int[parts];
        public readonly int[] Thread = new int[parts];
        public override void Execute(int part, int parts)
        {
            Index[part] = pool.ThreadIndex;
            Thread[part] = Environment.CurrentManagedThreadId;
            System.Threading.Thread.SpinWait(20_000); // long enough that the workers take parts too
        }
    }

    [Fact]
    public void EachThreadHasItsOwnIndexAndMorePartsThanThreadsAreShared()
    {
        var pool = new WorkerPool(3);
        var work = new Placing(pool, 60);
        pool.Run(work, 60);
        var byThread = work.Thread.Zip(work.Index).Distinct().ToArray();
        // one index per thread and one thread per index, the caller's 0, the workers' 1 and 2
        Assert.Equal(byThread.Length, byThread.Select(p => p.First).Distinct().Count());
        Assert.Equal(byThread.Length, byThread.Select(p => p.Second).Distinct().Count());
        Assert.All(work.Index, i => Assert.InRange(i, 0, 2));
        Assert.Contains(0, work.Index);
        Assert.True(byThread.Length >= 2, "no worker took a part of sixty");
        Assert.Equal(0, pool.ThreadIndex); // on a thread of no pool's
    }

    [Fact]
    public void RunsAllocateNothing()
    {
        var pool = new WorkerPool(2);
        var work = new Counting(2);
        for (int i = 0; i < 100; i++) pool.Run(work, 2);
        Thread.Sleep(5);
        pool.Run(work, 2); // a sleeping worker woken once before counting
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            pool.Run(work, 2);
            if (i % 250 == 0) Thread.Sleep(3);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal([1101, 1101], work.Runs);
    }

    /// <summary>
    /// Shares cover the items once, in order, in whole grains (the last may end at the count); with blocks enough they
    /// shrink from the first part to the last (within a block), none empty; with few blocks they differ by one at most.
    /// </summary>
    [Theory]
    [InlineData(12544, 16, 16)] // sMNIST's rows over sixteen parts: shrinking
    [InlineData(12545, 16, 12)] // a last grain cut short
    [InlineData(136, 16, 1)]    // just enough blocks for the weights 16 … 1
    [InlineData(128, 16, 1)]    // too few: equal
    [InlineData(8, 8, 1)]
    [InlineData(5, 16, 1)]      // fewer items than parts: some parts empty
    public void SharesCoverTheItemsInOrderAndShrinkWhereThereAreBlocksEnough(int count, int parts, int grain)
    {
        var sizes = new int[parts];
        int at = 0;
        for (int p = 0; p < parts; p++)
        {
            var (s, e) = WorkerPool.Share(count, p, parts, grain);
            Assert.Equal(at, s);
            Assert.True(e >= s, $"part {p}: [{s}, {e})");
            if (e < count) Assert.Equal(0, e % grain);
            sizes[p] = e - s;
            at = e;
        }
        Assert.Equal(count, at);
        int blocks = (count + grain - 1) / grain;
        if (blocks >= parts * (parts + 1) / 2)
        {
            for (int p = 0; p + 1 < parts; p++) Assert.True(sizes[p] + grain >= sizes[p + 1], $"part {p + 1} ({sizes[p + 1]}) above part {p} ({sizes[p]})");
            Assert.All(sizes, size => Assert.True(size > 0));
            Assert.True(sizes[0] > parts / 2 * sizes[^1], $"first {sizes[0]}, last {sizes[^1]}: not shrinking");
        }
        else Assert.True(sizes.Max() - sizes.Min() <= grain, string.Join(", ", sizes));
    }

    /// <summary>Hand-computed: with exactly 136 = 16 + 15 + … + 1 blocks, the shares are the weights themselves.</summary>
    [Fact]
    public void SharesFollowTheirWeightsExactly()
    {
        var sizes = Enumerable.Range(0, 16).Select(p => { var (s, e) = WorkerPool.Share(272, p, 16, 2); return e - s; });
        Assert.Equal(Enumerable.Range(1, 16).Reverse().Select(w => 2 * w), sizes);
    }
}
