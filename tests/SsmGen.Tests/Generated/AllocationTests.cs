namespace SsmGen.Tests.Generated;

/// <summary>After construction and one warm-up call, Forward, Backward and Step allocate nothing.</summary>
public class AllocationTests
{
    [Theory]
    [InlineData(32)]    // the FFT convolution (32 modes > 4·log₂ 64)
    [InlineData(200)]   // the recurrent S4D forward; in inference the fused GLU tail
    public void ForwardBackwardAndStepAllocateZeroBytes(int length)
    {
        const int batch = 3;
        var m = new SeqClassifier(batch, length);
        m.Initialize(1);
        m.DropoutSeed = 1;
        var x = new float[batch * length];
        for (int i = 0; i < x.Length; i++) x[i] = MathF.Sin(i);
        var y = new float[batch * 10];
        var dy = new float[batch * 10];
        dy.AsSpan().Fill(0.1f);
        var state = m.CreateState();
        var ys = new float[10];
        var xs = new float[1];

        void Run()
        {
            m.Forward(x, batch, length, y, training: true);
            m.Backward(dy);
            m.Forward(x.AsSpan(0, 2 * (length - 1)), 2, length - 1, y.AsSpan(0, 20));
            for (int t = 0; t < 5; t++) { xs[0] = t; m.Step(state, xs, ys); }
        }
        Run();
        long before = GC.GetAllocatedBytesForCurrentThread();
        Run();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);

        var tokens = new VectorTokens(2, length);
        tokens.Initialize(2);
        var ids = new int[2 * length];
        var yt = new float[2 * length * 7];
        var st = tokens.CreateState();
        void RunTokens()
        {
            tokens.Forward(ids, 2, length, yt, training: true);
            tokens.Backward(yt);
            tokens.Step(st, 3, yt.AsSpan(0, 7));
        }
        RunTokens();
        before = GC.GetAllocatedBytesForCurrentThread();
        RunTokens();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}

/// <summary>Mamba, RNN, IDS, attention and hybrid models: Forward, Backward and Step allocate nothing after a warm-up.</summary>
public class MambaAllocationTests
{
    [Theory]
    [InlineData("MambaTokens", 150)]
    [InlineData("MambaOdd", 70)]
    [InlineData("MambaSigned", 70)]
    [InlineData("DeltaTokens", 100)]   // the recurrences on the worker pool
    [InlineData("S4Tokens", 64)]
    [InlineData("Hybrid", 90)]
    [InlineData("AllKinds", 40)]
    public void ForwardBackwardAndStepAllocateZeroBytes(string name, int length)
    {
        const int batch = 3;
        var (m, cfg) = GeneratedVsReferenceTests.Make(name, batch, length);
        m.Initialize(1);
        int outRows = cfg.Pooling == Pooling.None ? batch * length : batch;
        var y = new float[outRows * cfg.Output];
        var dy = new float[y.Length];
        dy.AsSpan().Fill(0.1f);
        var x = new float[batch * length * cfg.InputWidth];
        var ids = new int[batch * length];
        for (int i = 0; i < x.Length; i++) x[i] = MathF.Sin(i);
        var state = m.CreateState();
        var ys = new float[cfg.Output];
        var xs = new float[cfg.InputWidth];
        void Run()
        {
            if (cfg.TokenInput) m.Forward(ids, batch, length, y, training: true);
            else m.Forward(x, batch, length, y, training: true);
            m.Backward(dy);
            for (int t = 0; t < 5; t++)
            {
                if (cfg.TokenInput) m.Step(state, t % cfg.Vocab, ys);
                else { xs[0] = t; m.Step(state, xs, ys); }
            }
        }
        Run();
        long before = GC.GetAllocatedBytesForCurrentThread();
        Run();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}

/// <summary>The model's workspace serves whichever thread calls it: no lazily made per-thread state.</summary>
public class CrossThreadAllocationTests
{
    [Theory]
    [InlineData("SeqClassifier", 100)]
    [InlineData("MambaTokens", 150)]   // the scan backward's scratch belongs to the scan, not to a thread
    public void ASecondThreadAllocatesNothingEither(string name, int length)
    {
        const int batch = 2;
        var (m, cfg) = GeneratedVsReferenceTests.Make(name, batch, length);
        m.Initialize(1);
        int outRows = cfg.Pooling == Pooling.None ? batch * length : batch;
        var x = new float[batch * length * cfg.InputWidth];
        var ids = new int[batch * length];
        var y = new float[outRows * cfg.Output];
        void Run()
        {
            if (cfg.TokenInput) m.Forward(ids, batch, length, y, training: true);
            else m.Forward(x, batch, length, y, training: true);
            m.Backward(y);
        }
        Run();
        long allocated = -1;
        var t = new Thread(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            Run();
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        });
        t.Start();
        t.Join();
        Assert.Equal(0, allocated);
    }
}
