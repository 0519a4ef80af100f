using System.Diagnostics;
using SsmGen.Tasks;
using SsmGen.Training;

namespace SsmGen.Examples.WordProblems;

/// <summary>One training run: a model kind at a depth, on one group and sequence length.</summary>
public sealed record RunConfig(string Kind, int Depth, string Group, int Length, int Steps, int Batch, float LearningRate, ulong Seed);

/// <summary>What a run reached: per-token validation accuracy, steps taken, seconds.</summary>
public sealed record RunResult(RunConfig Config, double ValidationAccuracy, int StepsTaken, double Seconds, bool Solved);

public static class Runner
{
    /// <summary>Per-token validation accuracy that counts as solving the task (the paper's stopping rule).</summary>
    public const double Target = 0.99;
    public const int EvaluateEvery = 100;

    /// <summary>The seeded held-out set of a group and length: 1,000 distinct words (a fifth of all of them for short lengths).</summary>
    public static WordProblemSet Validation(FiniteGroup group, int length, ulong seed)
    {
        double distinct = SsmGen.Tasks.WordProblems.DistinctSequences(group, length);
        int count = (int)Math.Min(1000, Math.Floor(0.2 * distinct));
        if (count < 1) throw new ArgumentException($"{group.Name} has only {distinct:N0} words of length {length}: too few to hold any out; use a longer length.");
        return SsmGen.Tasks.WordProblems.Generate(group, length, 0, count, seed * 7919 + (ulong)length).Validation;
    }

    /// <summary>
    /// Trains until the validation accuracy reaches <see cref="Target"/> (checked every <see cref="EvaluateEvery"/>
    /// steps) or the step budget is spent. Every batch is fresh words from a seeded stream that never yields a
    /// held-out word.
    /// </summary>
    public static RunResult Train(RunConfig c, FiniteGroup group, WordProblemSet validation, Action<int, double>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        var model = Zoo.Create(c.Kind, c.Depth, c.Batch, c.Length);
        model.Initialize(c.Seed);
        var trainer = new Trainer(model, new TrainerOptions
        {
            LearningRate = c.LearningRate,
            WeightDecay = 0.01f,
            WarmupSteps = Math.Min(100, c.Steps / 10),
            TotalSteps = c.Steps,
        });
        var stream = new WordProblemStream(group, c.Length, validation, c.Seed + 17);
        var xb = new int[c.Batch * c.Length];
        var yb = new int[c.Batch * c.Length];
        double accuracy = 0;
        int step = 0;
        while (step < c.Steps)
        {
            for (int b = 0; b < c.Batch; b++) stream.Next(xb.AsSpan(b * c.Length, c.Length), yb.AsSpan(b * c.Length, c.Length));
            trainer.TrainStep(xb, yb, c.Batch, c.Length);
            step++;
            if (step % EvaluateEvery == 0 || step == c.Steps)
            {
                accuracy = Evaluate(trainer, validation, c.Batch);
                progress?.Invoke(step, accuracy);
                if (accuracy >= Target) break;
            }
        }
        return new RunResult(c, accuracy, step, clock.Elapsed.TotalSeconds, accuracy >= Target);
    }

    /// <summary>Per-token accuracy over the whole validation set.</summary>
    public static double Evaluate(Trainer trainer, WordProblemSet set, int batch)
    {
        long correct = 0;
        for (int s = 0; s < set.Count; s += batch)
        {
            int n = Math.Min(batch, set.Count - s);
            correct += trainer.Evaluate(set.Tokens.AsSpan(s * set.Length, n * set.Length), set.Targets.AsSpan(s * set.Length, n * set.Length), n, set.Length);
        }
        return (double)correct / ((long)set.Count * set.Length);
    }
}
