using System.Diagnostics;
using SsmGen.Memory;
using SsmGen.Training;

namespace SsmGen.Examples.Forecasting;

/// <summary>
/// A forecaster: reads the context before an origin and writes the next <see cref="Series.Horizon"/> values. Every one
/// works on the same scaled differences: the context and targets minus the context's last value, divided by the
/// training span's root-mean-square change over the horizon, so a model forecasts the change from now in units of
/// order one (and a rising series like CO₂ never leaves the range the model was trained on).
/// </summary>
public abstract class Forecaster
{
    public abstract string Name { get; }
    public abstract int Parameters { get; }
    /// <summary>Bytes the forecaster keeps per stream to continue the series (its state, or the history it reads).</summary>
    public abstract long StateBytes { get; }
    /// <summary>Fits on the training origins; the validation origins pick among its settings or checkpoints.</summary>
    public abstract void Fit(Series series, Scaling scaling, Action<string> progress);
    /// <summary>Scaled forecasts (origins, horizon) for scaled contexts (origins, context).</summary>
    public abstract void Predict(ReadOnlySpan<float> contexts, int count, Span<float> forecasts);
}

/// <summary>The scaled-differences view of a series (see <see cref="Forecaster"/>).</summary>
public sealed class Scaling
{
    public Series Series { get; }
    public double Scale { get; }

    public Scaling(Series series)
    {
        Series = series;
        // the root-mean-square change from the last context value to each forecast target, over the training span
        var x = series.Values;
        double sum = 0;
        int count = 0;
        foreach (int o in series.TrainOrigins)
            for (int t = 0; t < Series.Horizon; t++, count++) sum += (x[o + t] - x[o - 1]) * (x[o + t] - x[o - 1]);
        Scale = Math.Sqrt(sum / count);
        if (!(Scale > 0)) throw new InvalidDataException($"{series.Description}: the training span never changes.");
    }

    /// <summary>Scaled contexts (origins, C) and targets (origins, 24) of the given origins.</summary>
    public (float[] Contexts, float[] Targets) Windows(int[] origins)
    {
        int c = Series.Context, h = Series.Horizon;
        var x = Series.Values;
        var contexts = new float[origins.Length * c];
        var targets = new float[origins.Length * h];
        for (int i = 0; i < origins.Length; i++)
        {
            int o = origins[i];
            double now = x[o - 1];
            for (int t = 0; t < c; t++) contexts[i * c + t] = (float)((x[o - c + t] - now) / Scale);
            for (int t = 0; t < h; t++) targets[i * h + t] = (float)((x[o + t] - now) / Scale);
        }
        return (contexts, targets);
    }

    /// <summary>Back to the series' units: the forecast of step t from origin o.</summary>
    public double Unscale(int origin, float scaled) => Series.Values[origin - 1] + scaled * Scale;
}

/// <summary>Tomorrow is today: every step of the horizon repeats the last value.</summary>
public sealed class Naive : Forecaster
{
    public override string Name => "naive";
    public override int Parameters => 0;
    public override long StateBytes => 4;
    public override void Fit(Series series, Scaling scaling, Action<string> progress) { }
    public override void Predict(ReadOnlySpan<float> contexts, int count, Span<float> forecasts) => forecasts[..(count * Series.Horizon)].Clear();
}

/// <summary>Each step repeats the value one season earlier (two seasons when the horizon is longer than one).</summary>
public sealed class SeasonalNaive(int season, int context) : Forecaster
{
    public override string Name => "seasonal naive";
    public override int Parameters => 0;
    public override long StateBytes => 4L * season * ((Series.Horizon + season - 1) / season);
    public override void Fit(Series series, Scaling scaling, Action<string> progress) { }
    public override void Predict(ReadOnlySpan<float> contexts, int count, Span<float> forecasts)
    {
        for (int i = 0; i < count; i++)
            for (int t = 0; t < Series.Horizon; t++)
            {
                int back = season * (t / season + 1);   // steps back from the target: a whole number of seasons
                forecasts[i * Series.Horizon + t] = contexts[i * context + context + t - back];
            }
    }
}

/// <summary>
/// A least-squares linear autoregression: every step of the horizon a ridge regression on the whole context (direct
/// multistep), λ chosen on the validation span.
/// </summary>
public sealed class LinearAutoregression(int context) : Forecaster
{
    private LinearProbe? _fit;
    public double Ridge { get; private set; }
    public override string Name => "linear AR";
    public override int Parameters => (context + 1) * Series.Horizon;
    public override long StateBytes => 4L * context;

    public override void Fit(Series series, Scaling scaling, Action<string> progress)
    {
        var (x, y) = scaling.Windows(series.TrainOrigins);
        var (vx, vy) = scaling.Windows(series.ValidationOrigins);
        int rows = series.TrainOrigins.Length, vrows = series.ValidationOrigins.Length;
        double best = double.PositiveInfinity;
        foreach (double ridge in new[] { 1e-3, 1e-1, 1, 10, 100 })
        {
            var fit = LinearProbe.Fit(x, y, rows, context, Series.Horizon, ridge);
            var p = fit.Predict(vx, vrows);
            double mse = p.Select((v, i) => (v - vy[i]) * (v - vy[i])).Average();
            if (mse < best) (best, _fit, Ridge) = (mse, fit, ridge);
        }
        progress($"  linear AR: λ = {Ridge} (validation MSE {best:F4} in scaled units)");
    }

    public override void Predict(ReadOnlySpan<float> contexts, int count, Span<float> forecasts)
    {
        var p = _fit!.Predict(contexts[..(count * context)], count);
        for (int i = 0; i < p.Length; i++) forecasts[i] = (float)p[i];
    }
}

/// <summary>
/// A generated sequence model trained on the scaled windows with mean squared error; the parameters it keeps are
/// those of the validation check (every tenth of the steps, on up to 256 validation windows) with the lowest error.
/// </summary>
public sealed class NeuralForecaster(string name, Func<int, int, ISsmModel> create, int steps, int batch, ulong seed) : Forecaster
{
    private ISsmModel? _model;
    public override string Name => name;
    public override int Parameters => _model?.Parameters.Length ?? 0;
    public override long StateBytes => _model is null ? 0 : ModelCost.StateBytes(_model.Config, _model.MaxLength);
    public int BestStep { get; private set; }
    public double Seconds { get; private set; }

    public override void Fit(Series series, Scaling scaling, Action<string> progress)
    {
        int c = series.Context, h = Series.Horizon;
        var model = _model = create(batch, c);
        model.Initialize(seed);
        var (x, y) = scaling.Windows(series.TrainOrigins);
        // validation checks read at most 256 windows, evenly spaced over the span
        var validation = series.ValidationOrigins;
        validation = Enumerable.Range(0, Math.Min(256, validation.Length)).Select(i => validation[(int)((long)i * validation.Length / Math.Min(256, validation.Length))]).ToArray();
        var (vx, vy) = scaling.Windows(validation);
        int rows = series.TrainOrigins.Length, vrows = validation.Length;
        var trainer = new Trainer(model, new TrainerOptions { LearningRate = 2e-3f, WeightDecay = 0.01f, WarmupSteps = Math.Min(100, steps / 10), TotalSteps = steps });
        var rng = new Rng(seed + 7);
        var (bx, by) = (new float[batch * c], new float[batch * h]);
        var best = (Error: double.PositiveInfinity, Parameters: model.Parameters.ToArray());
        var vp = new float[vrows * h];
        var clock = Stopwatch.StartNew();
        int every = Math.Max(steps / 10, 1);
        for (int step = 1; step <= steps; step++)
        {
            for (int b = 0; b < batch; b++)
            {
                int i = rng.NextInt(rows);
                x.AsSpan(i * c, c).CopyTo(bx.AsSpan(b * c));
                y.AsSpan(i * h, h).CopyTo(by.AsSpan(b * h));
            }
            var r = trainer.RegressionStep(bx, by, batch, c);
            if (step % every == 0 || step == steps)
            {
                Predict(vx, vrows, vp);
                double error = vp.Select((v, i) => (double)(v - vy[i]) * (v - vy[i])).Average();
                if (error < best.Error) { best = (error, model.Parameters.ToArray()); BestStep = step; }
                if (step % (2 * every) == 0 || step == steps)
                    progress($"  {name}: step {step}, training MSE {r.Loss:F4}, validation MSE {error:F4} (scaled units)");
            }
        }
        best.Parameters.CopyTo(model.Parameters);
        Seconds = clock.Elapsed.TotalSeconds;
        progress($"  {name}: kept step {BestStep} (validation MSE {best.Error:F4}), trained in {Seconds:F0} s");
    }

    public override void Predict(ReadOnlySpan<float> contexts, int count, Span<float> forecasts)
    {
        var model = _model!;
        int c = model.MaxLength, h = Series.Horizon;
        for (int s = 0; s < count; s += model.MaxBatch)
        {
            int n = Math.Min(model.MaxBatch, count - s);
            model.Forward(contexts.Slice(s * c, n * c), n, c, forecasts.Slice(s * h, n * h));
        }
    }
}
