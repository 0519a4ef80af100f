using System.Diagnostics;
using SsmGen.Cuda;
using SsmGen.Tasks;
using SsmGen.Training;

namespace SsmGen.Examples.WordProblems;

/// <summary>One training run: a model kind at a depth, on one group and sequence length.</summary>
public sealed record RunConfig(string Kind, int Depth, string Group, int Length, int Steps, int Batch, float LearningRate, ulong Seed);

/// <summary>
/// What a run reached. <see cref="ValidationAccuracy"/>: the best per-token accuracy on the held-out words of the
/// run's full length; <see cref="PrefixAccuracy"/>[k − 1] is the per-token validation accuracy over the first k
/// positions, the best over the run's evaluations; the models are causal, so it is exactly the accuracy on the
/// held-out words cut to length k. <see cref="Solved"/>: the target was reached at every length the run was asked
/// for. <see cref="Curve"/>: every evaluation, written beside the JSON as CSV (<see cref="Runner.WriteCurves"/>).
/// </summary>
public sealed record RunResult(RunConfig Config, double ValidationAccuracy, double[] PrefixAccuracy, int StepsTaken, double Seconds, bool Solved,
    [property: System.Text.Json.Serialization.JsonIgnore] IReadOnlyList<CurvePoint> Curve);

/// <summary>One evaluation of a run: after <see cref="Step"/> steps, training on words cut to <see cref="Length"/>, the held-out words cut to it scored <see cref="Accuracy"/> per token.</summary>
public sealed record CurvePoint(int Step, int Length, double Accuracy);

/// <summary>
/// A trained model on held-out words of one length: per-token accuracy over all positions (<see cref="PerToken"/>),
/// over the positions past the trained length (<see cref="Beyond"/>, null at the trained length itself), and the share
/// of words right at every position (<see cref="Words"/>).
/// </summary>
public sealed record LengthAccuracy(int Length, double PerToken, double? Beyond, double Words);

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
    /// Trains on words of length <c>c.Length</c> until the accuracy reaches <see cref="Target"/> or the step budget
    /// is spent (checked every <see cref="EvaluateEvery"/> steps). With <paramref name="curriculum"/> (ascending
    /// lengths ending at <c>c.Length</c>) the words are first cut to the shortest length, and the run moves to the
    /// next length once the held-out words cut to the current one reach the target: one run, one budget, and the
    /// longest length it reached. Every batch is fresh words from a seeded stream that never yields a held-out word.
    /// </summary>
    /// <param name="trained">Called with the trained model before it is disposed (to test it further).</param>
    public static RunResult Train(RunConfig c, FiniteGroup group, WordProblemSet validation, IReadOnlyList<int>? curriculum = null, Action<int, int, double>? progress = null,
        ComputeDevice? device = null, Action<ISsmModel>? trained = null)
    {
        var clock = Stopwatch.StartNew();
        curriculum ??= [c.Length];
        if (curriculum.Count == 0 || curriculum[^1] != c.Length || curriculum.Zip(curriculum.Skip(1)).Any(p => p.First >= p.Second) || curriculum[0] < 1)
            throw new ArgumentException($"The curriculum must be ascending lengths ending at the run's length {c.Length}; got {string.Join(", ", curriculum)}.", nameof(curriculum));
        using var model = Zoo.Create(c.Kind, c.Depth, c.Batch, c.Length, device);
        model.Initialize(c.Seed);
        var trainer = new Trainer(model, new TrainerOptions
        {
            LearningRate = c.LearningRate,
            WeightDecay = 0.01f,
            WarmupSteps = Math.Min(100, c.Steps / 10),
            TotalSteps = c.Steps,
        });
        var stream = new WordProblemStream(group, c.Length, validation, c.Seed + 17);
        var word = new int[c.Length];
        var target = new int[c.Length];
        var xb = new int[c.Batch * c.Length];
        var yb = new int[c.Batch * c.Length];
        var logits = new float[c.Batch * c.Length * model.Config.Output];
        var best = new double[c.Length];
        var curve = new List<CurvePoint>();
        int step = 0, stage = 0;
        while (step < c.Steps && stage < curriculum.Count)
        {
            // the first k tokens of fresh full-length words: a held-out word is never their source
            int k = curriculum[stage];
            for (int b = 0; b < c.Batch; b++)
            {
                stream.Next(word, target);
                word.AsSpan(0, k).CopyTo(xb.AsSpan(b * k, k));
                target.AsSpan(0, k).CopyTo(yb.AsSpan(b * k, k));
            }
            trainer.TrainStep(xb.AsSpan(0, c.Batch * k), yb.AsSpan(0, c.Batch * k), c.Batch, k);
            step++;
            if (step % EvaluateEvery == 0 || step == c.Steps)
            {
                var prefix = PrefixAccuracy(model, validation, c.Batch, logits);
                for (int j = 0; j < best.Length; j++) best[j] = Math.Max(best[j], prefix[j]);
                progress?.Invoke(step, k, prefix[k - 1]);
                curve.Add(new CurvePoint(step, k, prefix[k - 1]));
                while (stage < curriculum.Count && best[curriculum[stage] - 1] >= Target) stage++;
            }
        }
        trained?.Invoke(model);
        return new RunResult(c, best[^1], best, step, clock.Elapsed.TotalSeconds, stage == curriculum.Count, curve);
    }

    /// <summary>Every run's learning curve as CSV rows: kind, depth, group, seed, step, training length, held-out accuracy there.</summary>
    public static void WriteCurves(string path, IEnumerable<RunResult> runs)
    {
        var csv = new System.Text.StringBuilder("kind,depth,group,seed,step,length,accuracy\n");
        foreach (var r in runs)
            foreach (var p in r.Curve)
                csv.Append(System.FormattableString.Invariant($"{r.Config.Kind},{r.Config.Depth},{r.Config.Group},{r.Config.Seed},{p.Step},{p.Length},{p.Accuracy:F4}\n"));
        File.WriteAllText(path, csv.ToString());
    }

    /// <summary>
    /// Words of <paramref name="set"/> streamed through <see cref="ISsmModel.Step(SsmState, int, Span{float})"/> token by
    /// token, so they may be longer than the model's maxLength: the per-token accuracy over every position, over the
    /// positions past <paramref name="trainedLength"/>, and the share of words right at every position.
    /// </summary>
    public static LengthAccuracy StreamAccuracy(ISsmModel model, WordProblemSet set, int trainedLength)
    {
        var state = model.CreateState();
        var y = new float[model.Config.Output];
        long correct = 0, beyond = 0, beyondCount = 0;
        int wholeWords = 0;
        for (int s = 0; s < set.Count; s++)
        {
            state.Reset();
            bool allRight = true;
            for (int t = 0; t < set.Length; t++)
            {
                model.Step(state, set.Tokens[s * set.Length + t], y);
                bool right = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(y) == set.Targets[s * set.Length + t];
                if (right) correct++;
                else allRight = false;
                if (t >= trainedLength) { beyondCount++; if (right) beyond++; }
            }
            if (allRight) wholeWords++;
        }
        return new LengthAccuracy(set.Length, (double)correct / ((long)set.Count * set.Length),
            beyondCount == 0 ? null : (double)beyond / beyondCount, (double)wholeWords / set.Count);
    }

    /// <summary>Per-token accuracy over the first k positions of every held-out word, for k = 1 … Length.</summary>
    public static double[] PrefixAccuracy(ISsmModel model, WordProblemSet set, int batch, float[] logits)
    {
        int length = set.Length, classes = model.Config.Output;
        var correct = new long[length];
        for (int s = 0; s < set.Count; s += batch)
        {
            int n = Math.Min(batch, set.Count - s);
            model.Forward(set.Tokens.AsSpan(s * length, n * length), n, length, logits);
            for (int row = 0; row < n * length; row++)
            {
                var scores = logits.AsSpan(row * classes, classes);
                int argmax = 0;
                for (int c = 1; c < classes; c++) if (scores[c] > scores[argmax]) argmax = c;
                if (argmax == set.Targets[s * length + row]) correct[row % length]++;
            }
        }
        var prefix = new double[length];
        long sum = 0;
        for (int t = 0; t < length; t++)
        {
            sum += correct[t];
            prefix[t] = (double)sum / ((long)set.Count * (t + 1));
        }
        return prefix;
    }
}
