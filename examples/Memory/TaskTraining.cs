using SsmGen.Tasks;
using SsmGen.Training;

namespace SsmGen.Examples.Memory;

/// <summary>Training on a memory task, the same recipe for every model: AdamW with cosine decay, shuffled epochs.</summary>
public static class TaskTraining
{
    public static TrainerOptions Options(int steps) => new()
    {
        LearningRate = 3e-3f, WeightDecay = 0.01f, WarmupSteps = Math.Min(200, steps / 10), TotalSteps = steps,
    };

    /// <summary>Trains <paramref name="model"/> for <paramref name="steps"/> batches; <paramref name="report"/> sees (step, loss) every <paramref name="every"/> steps and at the end.</summary>
    public static Trainer Train(ISsmModel model, MemoryTaskSet train, int steps, int batch, ulong seed, int every, Action<int, float, Trainer> report)
    {
        int length = train.Length;
        var trainer = new Trainer(model, Options(steps));
        var order = Enumerable.Range(0, train.Count).ToArray();
        var rng = new Rng(seed + 1);
        var (x, y) = (new int[batch * length], new int[batch * length]);
        for (int step = 0, cursor = train.Count; step < steps; step++)
        {
            for (int b = 0; b < batch; b++, cursor++)
            {
                if (cursor == train.Count) { Shuffle(order, ref rng); cursor = 0; }
                train.Tokens.AsSpan(order[cursor] * length, length).CopyTo(x.AsSpan(b * length));
                train.Targets.AsSpan(order[cursor] * length, length).CopyTo(y.AsSpan(b * length));
            }
            var r = trainer.TrainStep(x, y, batch, length);
            if ((step + 1) % every == 0 || step + 1 == steps) report(step + 1, r.Loss, trainer);
        }
        return trainer;
    }

    /// <summary>Held-out accuracy on the asked positions, in whole batches (a last partial batch is left out).</summary>
    public static double Accuracy(Trainer trainer, MemoryTaskSet set, int batch)
    {
        int correct = 0, counted = 0;
        for (int s = 0; s + batch <= set.Count; s += batch)
        {
            var targets = set.Targets.AsSpan(s * set.Length, batch * set.Length);
            correct += trainer.Evaluate(set.Tokens.AsSpan(s * set.Length, batch * set.Length), targets, batch, set.Length);
            counted += Metrics.Counted(targets);
        }
        return (double)correct / counted;
    }

    private static void Shuffle(int[] a, ref Rng rng)
    {
        for (int i = a.Length - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (a[i], a[j]) = (a[j], a[i]); }
    }
}
