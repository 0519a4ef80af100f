using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;

namespace SsmGen.Examples.Serve.Http;

/// <summary>
/// A stream that lives between requests: its state, the logits after its last token (the prediction of the next),
/// and when it was last used. One request at a time uses it (<see cref="TryAcquire"/>).
/// </summary>
public sealed class StreamSession(string id, SsmState state, int vocabulary)
{
    private int _busy;
    private long _lastUsed = Stopwatch.GetTimestamp();

    public string Id { get; } = id;
    /// <summary>Touched only on the model's thread.</summary>
    public SsmState State { get; } = state;
    public float[] Logits { get; } = new float[vocabulary];
    /// <summary>False until a token has been consumed since the session began or was restored.</summary>
    public bool HasLogits { get; set; }
    public TimeSpan Idle => Stopwatch.GetElapsedTime(Volatile.Read(ref _lastUsed));

    public bool TryAcquire() => Interlocked.CompareExchange(ref _busy, 1, 0) == 0;
    public void Release()
    {
        Volatile.Write(ref _lastUsed, Stopwatch.GetTimestamp());
        Volatile.Write(ref _busy, 0);
    }
}

/// <summary>
/// One request's run through a stream: its prompt's tokens, then <see cref="Generate"/> greedy tokens, each written
/// to <see cref="Tokens"/> as soon as it is chosen and fed back (so the stream ends having consumed all of them, as
/// the command-line generate does). Advanced one token per shared step by the <see cref="ModelWorker"/>.
/// </summary>
public sealed class StepJob(StreamSession session, int[] prompt, int generate, CancellationToken cancel)
{
    private readonly Channel<int> _tokens = Channel.CreateUnbounded<int>(new() { SingleReader = true, SingleWriter = true });
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _fedPrompt, _fedGenerated, _emitted, _last;

    public StreamSession Session { get; } = session;
    public int Generate { get; } = generate;
    public CancellationToken Cancel { get; } = cancel;
    /// <summary>The generated tokens as they come; completed when the job ends (with the error, if it failed).</summary>
    public ChannelReader<int> Tokens => _tokens.Reader;

    internal bool NeedsStep => _fedPrompt < prompt.Length || _fedGenerated < _emitted;
    internal int NextInput => _fedPrompt < prompt.Length ? prompt[_fedPrompt] : _last;

    /// <summary>On admission: with no prompt, the first token comes from the session's last logits.</summary>
    internal void Begin()
    {
        if (prompt.Length == 0 && Generate > 0) Emit(Commands.ArgMax(Session.Logits));
    }

    internal void AfterStep(ReadOnlySpan<float> logits)
    {
        logits.CopyTo(Session.Logits);
        Session.HasLogits = true;
        if (_fedPrompt < prompt.Length) _fedPrompt++;
        else _fedGenerated++;
        if (_fedPrompt == prompt.Length && _emitted < Generate) Emit(Commands.ArgMax(logits));
    }

    /// <summary>Completes when the model's thread is done with the job (finished, failed or cancelled): until then the session is in use.</summary>
    public Task Ended => _ended.Task;

    internal void Finish(Exception? error = null)
    {
        _tokens.Writer.TryComplete(error);
        _ended.TrySetResult();
    }

    private void Emit(int token)
    {
        _last = token;
        _emitted++;
        _tokens.Writer.TryWrite(token);
    }
}

/// <summary>
/// The only thread that touches the model. Requests hand it work; it runs every active stream's next token in one
/// batched <see cref="ISsmModel.Step(ReadOnlySpan{SsmState}, ReadOnlySpan{int}, Span{float})"/> (up to the model's
/// MaxBatch streams per step; streams join and leave between steps), the queued digits of concurrent classify
/// requests in one Forward, and the small jobs (new states, snapshots) between steps.
/// </summary>
public sealed class ModelWorker : IDisposable
{
    private readonly ISsmModel _model;
    private readonly int _vocabulary;
    private readonly Thread _thread;
    private readonly AutoResetEvent _wake = new(false);
    private readonly ConcurrentQueue<Action> _actions = new();
    private readonly ConcurrentQueue<StepJob> _incoming = new();
    private readonly ConcurrentQueue<ClassifyJob> _classify = new();
    private readonly List<StepJob> _active = [];
    private readonly Action? _everySecond;
    private readonly SsmState[] _streams;
    private readonly int[] _inputs;
    private readonly float[] _outputs;
    private readonly float[]? _pixels, _digitLogits;
    private readonly long[] _stepTicks = new long[4096]; // the latest shared steps' durations, a ring
    private volatile bool _stopping;
    private int _queued;
    private long _steps, _streamSteps, _stepTicksTotal;

    private sealed record ClassifyJob(float[] Pixels, int Count, TaskCompletionSource<float[]> Done, CancellationToken Cancel);

    /// <param name="maxQueued">Most step jobs waiting for a place in the batch; more are refused.</param>
    /// <param name="everySecond">Run on the model's thread about once a second (the server expires idle sessions).</param>
    public ModelWorker(ISsmModel model, int maxQueued, Action? everySecond = null)
    {
        _model = model;
        _vocabulary = model.Config.Output;
        MaxQueued = maxQueued;
        _streams = new SsmState[model.MaxBatch];
        _inputs = new int[model.MaxBatch];
        _outputs = new float[model.MaxBatch * _vocabulary];
        if (model.Config.Vocab == 0)
        {
            _pixels = new float[model.MaxBatch * ServedModel.DigitLength];
            _digitLogits = new float[model.MaxBatch * _vocabulary];
        }
        _everySecond = everySecond;
        _thread = new Thread(Run) { IsBackground = true, Name = "ssm-serve model" };
        _thread.Start();
    }

    public int MaxQueued { get; }
    /// <summary>Shared steps run so far, and stream-tokens they advanced (their ratio: the mean streams per step).</summary>
    public long Steps => Interlocked.Read(ref _steps);
    public long StreamSteps => Interlocked.Read(ref _streamSteps);
    /// <summary>Time spent in shared steps so far.</summary>
    public double StepSeconds => Interlocked.Read(ref _stepTicksTotal) / (double)Stopwatch.Frequency;

    /// <summary>The <paramref name="p"/> quantile of the latest 4,096 shared steps' durations, in µs (0 before any).</summary>
    public double StepMicroseconds(double p)
    {
        int count = (int)Math.Min(Steps, _stepTicks.Length);
        if (count == 0) return 0;
        var ticks = new long[count];
        for (int i = 0; i < count; i++) ticks[i] = Volatile.Read(ref _stepTicks[i]);
        Array.Sort(ticks);
        return ticks[Math.Min(count - 1, (int)Math.Ceiling(p * count) - 1)] * 1e6 / Stopwatch.Frequency;
    }

    /// <summary>Runs <paramref name="action"/> on the model's thread between steps.</summary>
    public Task<T> Invoke<T>(Func<ISsmModel, T> action)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _actions.Enqueue(() =>
        {
            try { done.SetResult(action(_model)); }
            catch (Exception e) { done.SetException(e); }
        });
        _wake.Set();
        return done.Task;
    }

    /// <summary>Queues a job; false when <see cref="MaxQueued"/> jobs already wait.</summary>
    public bool TrySubmit(StepJob job)
    {
        if (Interlocked.Increment(ref _queued) > MaxQueued)
        {
            Interlocked.Decrement(ref _queued);
            return false;
        }
        _incoming.Enqueue(job);
        _wake.Set();
        return true;
    }

    /// <summary>Logits of <paramref name="count"/> digits (≤ the model's MaxBatch), in one Forward with other requests' digits.</summary>
    public Task<float[]> Classify(float[] pixels, int count, CancellationToken cancel)
    {
        var done = new TaskCompletionSource<float[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        _classify.Enqueue(new ClassifyJob(pixels, count, done, cancel));
        _wake.Set();
        return done.Task;
    }

    private void Run()
    {
        long lastSecond = Stopwatch.GetTimestamp();
        while (!_stopping)
        {
            while (_actions.TryDequeue(out var action)) action();
            while (_active.Count < _streams.Length && _incoming.TryDequeue(out var job))
            {
                Interlocked.Decrement(ref _queued);
                if (job.Cancel.IsCancellationRequested) { job.Finish(new OperationCanceledException(job.Cancel)); continue; }
                job.Begin();
                if (job.NeedsStep) _active.Add(job);
                else job.Finish();
            }
            if (!_classify.IsEmpty) ClassifyQueued();
            if (_active.Count > 0) StepActive();
            else if (_actions.IsEmpty && _incoming.IsEmpty && _classify.IsEmpty) _wake.WaitOne(TimeSpan.FromSeconds(1));

            if (_everySecond is not null && Stopwatch.GetElapsedTime(lastSecond) >= TimeSpan.FromSeconds(1))
            {
                _everySecond();
                lastSecond = Stopwatch.GetTimestamp();
            }
        }
        foreach (var job in _active) job.Finish(new OperationCanceledException("The server is stopping."));
        while (_incoming.TryDequeue(out var waiting)) waiting.Finish(new OperationCanceledException("The server is stopping."));
        while (_classify.TryDequeue(out var digits)) digits.Done.TrySetCanceled();
        while (_actions.TryDequeue(out var action)) action();
    }

    private void StepActive()
    {
        for (int i = _active.Count - 1; i >= 0; i--)
            if (_active[i].Cancel.IsCancellationRequested)
            {
                _active[i].Finish(new OperationCanceledException(_active[i].Cancel));
                _active.RemoveAt(i);
            }
        int n = _active.Count;
        if (n == 0) return;
        for (int i = 0; i < n; i++)
        {
            _streams[i] = _active[i].Session.State;
            _inputs[i] = _active[i].NextInput;
        }
        long started = Stopwatch.GetTimestamp();
        try
        {
            _model.Step(_streams.AsSpan(0, n), _inputs.AsSpan(0, n), _outputs.AsSpan(0, n * _vocabulary));
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // Refused before any stream moved (a stream out of room, say): those jobs end with the reason.
            foreach (var job in _active) job.Finish(e);
            _active.Clear();
            return;
        }
        finally { Array.Clear(_streams, 0, n); }
        long ticks = Stopwatch.GetTimestamp() - started;
        Volatile.Write(ref _stepTicks[Steps % _stepTicks.Length], ticks);
        Interlocked.Add(ref _stepTicksTotal, ticks);
        Interlocked.Increment(ref _steps);
        Interlocked.Add(ref _streamSteps, n);
        for (int i = n - 1; i >= 0; i--)
        {
            var job = _active[i];
            job.AfterStep(_outputs.AsSpan(i * _vocabulary, _vocabulary));
            if (!job.NeedsStep)
            {
                job.Finish();
                _active.RemoveAt(i);
            }
        }
    }

    private void ClassifyQueued()
    {
        const int L = ServedModel.DigitLength;
        var taken = new List<ClassifyJob>();
        int count = 0;
        while (_classify.TryPeek(out var next) && count + next.Count <= _model.MaxBatch)
        {
            _classify.TryDequeue(out _);
            if (next.Cancel.IsCancellationRequested) { next.Done.TrySetCanceled(next.Cancel); continue; }
            next.Pixels.AsSpan(0, next.Count * L).CopyTo(_pixels.AsSpan(count * L));
            count += next.Count;
            taken.Add(next);
        }
        if (count == 0) return;
        try
        {
            _model.Forward(_pixels.AsSpan(0, count * L), count, L, _digitLogits.AsSpan(0, count * _vocabulary));
        }
        catch (Exception e)
        {
            foreach (var job in taken) job.Done.TrySetException(e);
            return;
        }
        int at = 0;
        foreach (var job in taken)
        {
            job.Done.TrySetResult(_digitLogits.AsSpan(at * _vocabulary, job.Count * _vocabulary).ToArray());
            at += job.Count;
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Set();
        _thread.Join();
        _wake.Dispose();
    }
}
