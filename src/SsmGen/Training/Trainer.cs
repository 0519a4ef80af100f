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
    }
}

/// <summary>Result of one training step.</summary>
public readonly record struct StepResult(float Loss, float GradientNorm, int Correct, int Count);

/// <summary>
/// A classification (or, with <see cref="RegressionStep"/>, regression) training step for any generated model: forward (training mode), cross-entropy,
/// backward, clipping by global norm, AdamW with a cosine schedule. Buffers are sized once.
/// For per-token models (Pooling.None) there is one target per token. A model on a GPU finishes the step on the
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
    /// <summary>Steps taken (drives the schedule); set it when resuming from a checkpoint.</summary>
    public long Step { get; set; }

    public Trainer(ISsmModel model, TrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (model.Use != ModelUse.Training) throw new ArgumentException("The model was built for inference (ModelUse.Inference): it has no gradients to train with.", nameof(model));
        _model = model;
        Options = options;
        _classes = model.Config.Output;
        int rows = model.Config.Pooling == Pooling.None ? model.MaxBatch * model.MaxLength : model.MaxBatch;
        _logits = new float[rows * _classes];
        _dLogits = new float[rows * _classes];
        Optimizer = new AdamW(model.ParameterTable, options.LearningRate, options.WeightDecay, options.SsmLearningRate);
        Schedule = new CosineSchedule(options.WarmupSteps, options.TotalSteps);
    }

    private int Rows(int batch, int length) => _model.Config.Pooling == Pooling.None ? batch * length : batch;

    /// <summary>One step on real-valued inputs (B, L, Input).</summary>
    public StepResult TrainStep(ReadOnlySpan<float> input, ReadOnlySpan<int> targets, int batch, int length)
    {
        int rows = Rows(batch, length);
        CheckTargets(targets, rows, training: true);
        _model.Forward(input, batch, length, _logits, training: true);
        return Finish(targets, rows);
    }

    /// <summary>One step on token ids (B, L).</summary>
    public StepResult TrainStep(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets, int batch, int length)
    {
        int rows = Rows(batch, length);
        CheckTargets(targets, rows, training: true);
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
        if (_model is IDeviceTrainingStep { TrainsOnDevice: true })
            throw new NotSupportedException("The GPU training step finishes classification steps only; train regression on the CPU.");
        _model.Forward(input, batch, length, _logits, training: true);
        var prediction = _logits.AsSpan(0, rows * _classes);
        var d = _dLogits.AsSpan(0, rows * _classes);
        float loss = Losses.MeanSquaredError(prediction, targets, d);
        return new StepResult(loss, BackwardAndUpdate(d), 0, targets.Length);
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
        if (ignored && training && _model is IDeviceTrainingStep { TrainsOnDevice: true })
            throw new NotSupportedException("Ignored targets (Losses.Ignored) are not supported by the GPU training step yet; train this task on the CPU.");
    }

    private StepResult Finish(ReadOnlySpan<int> targets, int rows)
    {
        if (_model is IDeviceTrainingStep { TrainsOnDevice: true } device)
        {
            var result = device.FinishTrainingStep(targets, Optimizer, Schedule.Factor(Step), Options.MaxGradNorm);
            Step++;
            return result;
        }
        var logits = _logits.AsSpan(0, rows * _classes);
        var d = _dLogits.AsSpan(0, rows * _classes);
        float loss = Losses.CrossEntropy(logits, targets, rows, _classes, d);
        int correct = Metrics.CorrectCount(logits, targets, rows, _classes);
        return new StepResult(loss, BackwardAndUpdate(d), correct, Metrics.Counted(targets));
    }

    /// <summary>Backward from dL/d(output), clipping by global norm, the AdamW step; returns the norm before clipping.</summary>
    private float BackwardAndUpdate(ReadOnlySpan<float> dOutput)
    {
        _model.ZeroGradients();
        _model.Backward(dOutput);
        float norm = GradientClipping.ClipByGlobalNorm(_model.Gradients, Options.MaxGradNorm);
        Optimizer.Step(_model.Parameters, _model.Gradients, Schedule.Factor(Step));
        Step++;
        return norm;
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
