using SsmGen.Distributed;

namespace SsmGen.Training;

/// <summary>Settings of a <see cref="Trainer"/>.</summary>
public sealed record TrainerOptions
{
    public float LearningRate { get; init; } = 1e-2f;
    public float SsmLearningRate { get; init; } = 1e-3f;
    public float WeightDecay { get; init; } = 0.01f;
    public int WarmupSteps { get; init; } = 10;
    public int TotalSteps { get; init; } = 1000;
    /// <summary>Largest global gradient norm; larger gradients are scaled down to it. +∞ turns clipping off.</summary>
    public float MaxGradNorm { get; init; } = 1f;
    /// <summary>What a step whose loss or gradient norm is NaN or infinite does instead of updating; see <see cref="NonFiniteStep"/>.</summary>
    public NonFiniteStep OnNonFinite { get; init; } = NonFiniteStep.Throw;
    /// <summary>
    /// Data parallel: all-reduce each block's gradients on a thread of their own as soon as the backward has finished
    /// them, while it goes on (the same bits as all-reducing after it). Off under sequence parallelism, whose backward
    /// exchanges states with the other ranks itself.
    /// </summary>
    public bool OverlapGradients { get; init; } = true;

    /// <summary>Throws, naming the setting, when a value would make training meaningless (or silently NaN).</summary>
    public void Validate()
    {
        static void Positive(float value, string name)
        {
            if (!(value > 0) || float.IsNaN(value)) throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive; got {value}.");
        }
        Positive(LearningRate, nameof(LearningRate));
        if (float.IsInfinity(LearningRate)) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be finite.");
        if (!(SsmLearningRate >= 0) || float.IsInfinity(SsmLearningRate)) throw new ArgumentOutOfRangeException(nameof(SsmLearningRate), SsmLearningRate, $"SsmLearningRate must be finite and not negative; got {SsmLearningRate}.");
        if (!(WeightDecay >= 0) || float.IsInfinity(WeightDecay)) throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, $"WeightDecay must be finite and not negative; got {WeightDecay}.");
        if (WarmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(WarmupSteps), WarmupSteps, $"WarmupSteps must not be negative; got {WarmupSteps}.");
        if (TotalSteps < 1) throw new ArgumentOutOfRangeException(nameof(TotalSteps), TotalSteps, $"TotalSteps must be at least 1; got {TotalSteps}.");
        Positive(MaxGradNorm, nameof(MaxGradNorm));
        if (!Enum.IsDefined(OnNonFinite)) throw new ArgumentOutOfRangeException(nameof(OnNonFinite), OnNonFinite, $"OnNonFinite must be Throw or Skip; got {(int)OnNonFinite}.");
    }
}

/// <summary>
/// What the <see cref="Trainer"/> does when a step's loss or global gradient norm is NaN or infinite (a NaN or
/// infinity in the inputs, or a learning rate that diverged). The check comes after the backward and before the
/// AdamW update, so in both cases the parameters, the optimizer's moments and step count, and
/// <see cref="Trainer.Step"/> (the schedule) stay as they were; only the gradients and the model's dropout
/// counter show that the step ran.
/// </summary>
public enum NonFiniteStep
{
    /// <summary>Throw a <see cref="NonFiniteStepException"/> naming the loss, the norm and the step.</summary>
    Throw,
    /// <summary>Return the step's result with <see cref="StepResult.Skipped"/> set and count it in <see cref="Trainer.SkippedSteps"/>.</summary>
    Skip,
}

/// <summary>A training step's loss or gradient norm was NaN or infinite; the update was not applied.</summary>
public sealed class NonFiniteStepException(long step, float loss, float gradientNorm)
    : InvalidOperationException($"Training step {step} was not applied: its loss is {loss} and its gradient norm is {gradientNorm}, and both must be finite. " +
                                "The parameters and the optimizer's moments are unchanged. Look for NaN or infinite input values, or lower the learning rate.")
{
    /// <summary>The trainer's <see cref="Trainer.Step"/> when the step was attempted (0-based).</summary>
    public long Step { get; } = step;
    public float Loss { get; } = loss;
    public float GradientNorm { get; } = gradientNorm;
}

/// <summary>Result of one training step.</summary>
public readonly record struct StepResult(float Loss, float GradientNorm, int Correct, int Count)
{
    /// <summary>True when the step was not applied because its loss or norm was not finite (<see cref="NonFiniteStep.Skip"/>).</summary>
    public bool Skipped { get; init; }
}

/// <summary>
/// A classification (or, with <see cref="RegressionStep"/>, regression) training step for any generated model: forward (training mode), cross-entropy,
/// backward, clipping by global norm, AdamW with a cosine schedule. Buffers are sized once. A step whose loss or
/// gradient norm is not finite is never applied (<see cref="TrainerOptions.OnNonFinite"/>).
/// For per-token models (Pooling.None) there is one target per token. A model on a GPU trained by one rank finishes the step on the
/// device (<see cref="IDeviceTrainingStep"/>): same arithmetic, no parameters or gradients crossing the bus.
/// </summary>
public sealed class Trainer
{
    private readonly ISsmModel _model;
    private readonly float[] _logits, _dLogits;
    private readonly int _classes;

    public AdamW Optimizer { get; }
    public CosineSchedule Schedule { get; }
    public TrainerOptions Options { get; }
    /// <summary>Steps taken (drives the schedule); set it when resuming from a checkpoint. Skipped steps do not count.</summary>
    public long Step { get; set; }
    /// <summary>Steps skipped for a non-finite loss or gradient norm (<see cref="NonFiniteStep.Skip"/>).</summary>
    public long SkippedSteps { get; private set; }

    /// <summary>The ranks this trainer's steps are averaged over (<see cref="SingleProcess"/> unless given).</summary>
    public ICollective Collective { get; }
    private readonly float[] _totals = new float[3]; // loss · count, correct, count: summed over the ranks
    private readonly OverlappedAllReduce? _overlap;
    private bool _overlapping; // this step's backward hands its finished gradients to _overlap
    /// <summary>Gradients all-reduced per call (4 MiB of floats).</summary>
    public const int GradientBucket = 1 << 20;

    /// <summary>
    /// A trainer; with a <paramref name="collective"/> of several ranks, data-parallel: rank 0's parameters are
    /// broadcast now, and every step averages the ranks' gradients (each rank's weighted by the targets it counted)
    /// before clipping and AdamW, so every rank takes the same step and keeps the same parameters and moments. Each
    /// rank passes its own share of the batch; <see cref="StepResult"/> then reports the whole batch.
    /// </summary>
    public Trainer(ISsmModel model, TrainerOptions options, ICollective? collective = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (model.Use != ModelUse.Training) throw new ArgumentException("The model was built for inference (ModelUse.Inference): it has no gradients to train with.", nameof(model));
        Collective = collective ?? SingleProcess.Instance;
        if (Collective.Size > 1)
        {
            Collective.Broadcast(model.Parameters);
            // A GPU model's gradients come home for the all-reduce (its device context belongs to this thread), so its
            // steps finish on the host: clipping and AdamW there, the parameters uploaded before the next forward.
            if (options.OverlapGradients && model is not IDeviceTrainingStep { TrainsOnDevice: true })
            {
                _overlap = new OverlappedAllReduce(model, Collective);
                model.GradientsFinal = from => { if (_overlapping) _overlap.Final(from); };
            }
        }
        _model = model;
        Options = options;
        _classes = model.Config.Output;
        int rows = model.Config.Pooling == Pooling.None ? model.MaxBatch * model.MaxLength : model.MaxBatch;
        _logits = new float[rows * _classes];
        _dLogits = new float[rows * _classes];
        Optimizer = new AdamW(model.ParameterTable, options.LearningRate, options.WeightDecay, options.SsmLearningRate);
        Schedule = new CosineSchedule(options.WarmupSteps, options.TotalSteps);
    }

    /// <summary>The step finishes on the model's GPU (one rank only: several ranks all-reduce on the host).</summary>
    private bool OnDevice => Collective.Size == 1 && _model is IDeviceTrainingStep { TrainsOnDevice: true };

    private int Rows(int batch, int length) => _model.Config.Pooling == Pooling.None ? batch * length : batch;

    /// <summary>One step on real-valued inputs (B, L, Input).</summary>
    public StepResult TrainStep(ReadOnlySpan<float> input, ReadOnlySpan<int> targets, int batch, int length)
    {
        int rows = Rows(batch, length);
        CheckTargets(targets, rows, training: true);
        CheckSequenceSplit();
        _model.Forward(input, batch, length, _logits, training: true);
        return Finish(targets, rows);
    }

    /// <summary>One step on token ids (B, L).</summary>
    public StepResult TrainStep(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets, int batch, int length)
    {
        int rows = Rows(batch, length);
        CheckTargets(targets, rows, training: true);
        CheckSequenceSplit();
        _model.Forward(tokens, batch, length, _logits, training: true);
        return Finish(targets, rows);
    }

    /// <summary>
    /// One regression step on real-valued inputs (B, L, Input): mean squared error against real targets, one per output
    /// value ((B, Output), or (B, L, Output) without pooling), then the same backward, clipping and AdamW step.
    /// <see cref="StepResult.Count"/> is the number of target values; nothing is counted as correct.
    /// </summary>
    public StepResult RegressionStep(ReadOnlySpan<float> input, ReadOnlySpan<float> targets, int batch, int length)
    {
        int rows = Rows(batch, length);
        if (targets.Length != rows * _classes) throw new ArgumentException($"Got {targets.Length} target values; this batch has {rows}·{_classes} outputs.", nameof(targets));
        for (int i = 0; i < targets.Length; i++)
            if (!float.IsFinite(targets[i])) throw new ArgumentException($"Target value {i} is {targets[i]}; regression targets must be finite.", nameof(targets));
        if (OnDevice)
            throw new NotSupportedException("The GPU training step finishes classification steps only; train regression on the CPU.");
        CheckSequenceSplit();
        _model.Forward(input, batch, length, _logits, training: true);
        var prediction = _logits.AsSpan(0, rows * _classes);
        var d = _dLogits.AsSpan(0, rows * _classes);
        float loss = Losses.MeanSquaredError(prediction, targets, d);
        return BackwardAndUpdate(loss, d, 0, targets.Length);
    }

    /// <summary>Before a step's forward: a model running pieces of sequences must be trained over the ranks that share them.</summary>
    private void CheckSequenceSplit()
    {
        if (_model.SequenceParallel is { Size: > 1 } sp && !ReferenceEquals(sp.Collective, Collective))
            throw new InvalidOperationException("Under sequence parallelism the trainer must be given the collective the model's SequenceParallel uses: the ranks' gradients are partial sums to be added.");
    }

    private void CheckTargets(ReadOnlySpan<int> targets, int rows, bool training)
    {
        if (targets.Length != rows) throw new ArgumentException($"Got {targets.Length} targets; this batch has {rows} output rows.", nameof(targets));
        bool ignored = false;
        foreach (int t in targets)
        {
            if (t == Losses.Ignored) { ignored = true; continue; }
            if ((uint)t >= (uint)_classes) throw new ArgumentOutOfRangeException(nameof(targets), t, $"Targets must be in [0, {_classes}) or Losses.Ignored.");
        }
        if (ignored && training && OnDevice)
            throw new NotSupportedException("Ignored targets (Losses.Ignored) are not supported by the GPU training step yet; train this task on the CPU.");
    }

    private StepResult Finish(ReadOnlySpan<int> targets, int rows)
    {
        if (OnDevice && _model is IDeviceTrainingStep device)
        {
            // The device's AdamW kernel reads the same two statistics and leaves everything alone when one is not finite.
            var result = device.FinishTrainingStep(targets, Optimizer, Schedule.Factor(Step), Options.MaxGradNorm);
            if (IsNonFinite(result)) return NonFinite(result);
            Step++;
            return result;
        }
        var logits = _logits.AsSpan(0, rows * _classes);
        var d = _dLogits.AsSpan(0, rows * _classes);
        float loss = Losses.CrossEntropy(logits, targets, rows, _classes, d);
        int correct = Metrics.CorrectCount(logits, targets, rows, _classes);
        return BackwardAndUpdate(loss, d, correct, Metrics.Counted(targets));
    }

    /// <summary>
    /// Backward from dL/d(output), clipping by global norm, and the AdamW step unless the loss or the norm (before
    /// clipping) is not finite.
    /// </summary>
    private StepResult BackwardAndUpdate(float loss, Span<float> dOutput, int correct, int count)
    {
        var pieces = _model.SequenceParallel is { Size: > 1 } sp ? sp : null;
        if (pieces is not null)
        {
            // The ranks' pieces feed each other's gradients (the states crossing them), so every rank's dL/d(output)
            // must already be the whole job's: its own loss is a mean over its own count, rescaled to the total.
            (loss, correct, int total) = Totals(loss, correct, count);
            System.Numerics.Tensors.TensorPrimitives.Multiply(dOutput, total > 0 ? (float)count / total : 0, dOutput);
            count = total;
        }
        _model.ZeroGradients();
        bool overlapped = _overlap is not null && pieces is null;
        if (overlapped) _overlap!.Begin(count);
        _overlapping = overlapped;
        try { _model.Backward(dOutput); }
        catch
        {
            if (overlapped) _overlap!.Abandon(); // let the ranges already handed over finish before anything reuses the gradients
            throw;
        }
        finally { _overlapping = false; }
        if (pieces is not null) ReduceInBuckets(_model.Gradients); // each rank holds its share of the whole job's gradient
        else if (Collective.Size > 1) (loss, correct, count) = AverageOverRanks(loss, correct, count, overlapped);
        float norm = GradientClipping.ClipByGlobalNorm(_model.Gradients, Options.MaxGradNorm);
        var result = new StepResult(loss, norm, correct, count);
        if (IsNonFinite(result)) return NonFinite(result);
        Optimizer.Step(_model.Parameters, _model.Gradients, Schedule.Factor(Step));
        Step++;
        return result;
    }

    /// <summary>
    /// The whole batch's gradient from the ranks' shares: each rank's mean gradient weighted by its counted targets,
    /// summed (in rank order, the same on every rank), over the total count; and the batch's loss and correct count.
    /// </summary>
    private (float Loss, int Correct, int Count) AverageOverRanks(float loss, int correct, int count, bool overlapped)
    {
        var g = _model.Gradients;
        if (overlapped) _overlap!.Finish(); // reduced while the backward ran
        else
        {
            System.Numerics.Tensors.TensorPrimitives.Multiply(g, count, g);
            ReduceInBuckets(g);
        }
        var (meanLoss, allCorrect, total) = Totals(loss, correct, count);
        if (total > 0) System.Numerics.Tensors.TensorPrimitives.Multiply(g, 1f / total, g);
        return (meanLoss, allCorrect, total);
    }

    /// <summary>Sums over the ranks in buckets, so that the collective's scratch stays bounded whatever the model's size.</summary>
    private void ReduceInBuckets(Span<float> g)
    {
        for (int start = 0; start < g.Length; start += GradientBucket)
            Collective.AllReduceSum(g.Slice(start, Math.Min(GradientBucket, g.Length - start)));
    }

    /// <summary>The whole job's mean loss, correct count and count, from each rank's mean loss over its own count.</summary>
    private (float Loss, int Correct, int Count) Totals(float loss, int correct, int count)
    {
        (_totals[0], _totals[1], _totals[2]) = (count == 0 ? 0 : loss * count, correct, count);
        Collective.AllReduceSum(_totals);
        int total = (int)_totals[2];
        return (total > 0 ? _totals[0] / total : 0, (int)_totals[1], total);
    }

    private static bool IsNonFinite(StepResult r) => !float.IsFinite(r.Loss) || !float.IsFinite(r.GradientNorm);

    /// <summary>A step that was not applied: throws or counts it, as the options say; <see cref="Step"/> stays.</summary>
    private StepResult NonFinite(StepResult result)
    {
        if (Options.OnNonFinite == NonFiniteStep.Throw) throw new NonFiniteStepException(Step, result.Loss, result.GradientNorm);
        SkippedSteps++;
        return result with { Skipped = true };
    }

    /// <summary>Inference on real inputs; returns the number of correct rows (ignored targets never count).</summary>
    public int Evaluate(ReadOnlySpan<float> input, ReadOnlySpan<int> targets, int batch, int length)
    {
        int rows = Rows(batch, length);
        CheckTargets(targets, rows, training: false);
        _model.Forward(input, batch, length, _logits);
        return Metrics.CorrectCount(_logits, targets, rows, _classes);
    }

    /// <summary>Inference on token ids; returns the number of correct rows (ignored targets never count).</summary>
    public int Evaluate(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets, int batch, int length)
    {
        int rows = Rows(batch, length);
        CheckTargets(targets, rows, training: false);
        _model.Forward(tokens, batch, length, _logits);
        return Metrics.CorrectCount(_logits, targets, rows, _classes);
    }
}
