using SsmGen.Numerics;

namespace SsmGen.Tests.Numerics;

/// <summary>The pool's hand-offs: spinning workers, sleeping ones woken, failures passed on, nothing allocated.</summary>
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
        var work = new Counting(3);
        var expected = new int[3];
        for (int run = 0; run < 3000; run++)
        {
            int parts = 1 + run % 3;
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
        var e = Assert.Throws<AggregateException>(() => pool.Run(work, 2));
        Assert.IsType<InvalidOperationException>(e.InnerException);
        work.Throw = -1;
        Thread.Sleep(5);
        pool.Run(work, 2);
        Assert.Equal([2, 1], work.Runs);
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
}
