using System.Numerics.Tensors;
using SsmGen.Numerics;

namespace SsmGen.Training;

/// <summary>Losses that return the mean loss and write its gradient; inputs are checked before anything is written.</summary>
public static class Losses
{
    /// <summary>A target that asks nothing: its row adds no loss and no gradient and is not counted (PyTorch's ignore_index).</summary>
    public const int Ignored = -1;

    /// <summary>
    /// Mean softmax cross-entropy of <paramref name="rows"/> rows of logits (rows, classes) against class indices,
    /// over the rows whose target is not <see cref="Ignored"/>; writes dL/dlogits = (softmax − onehot)/counted rows
    /// (zero on ignored rows). Returns 0 when every row is ignored.
    /// </summary>
    public static float CrossEntropy(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, int rows, int classes, Span<float> dLogits)
    {
        if (logits.Length < rows * classes) throw new ArgumentException($"Logits hold {logits.Length} values; {rows}×{classes} needed.", nameof(logits));
        if (dLogits.Length < rows * classes) throw new ArgumentException($"dLogits holds {dLogits.Length} values; {rows}×{classes} needed.", nameof(dLogits));
        if (targets.Length < rows) throw new ArgumentException($"{targets.Length} targets for {rows} rows.", nameof(targets));
        using var pass = PassProfile.Enter(Pass.Loss, 4.0 * rows * classes, 8.0 * rows * classes);
        int counted = 0;
        for (int r = 0; r < rows; r++)
        {
            if (targets[r] == Ignored) continue;
            if ((uint)targets[r] >= (uint)classes) throw new ArgumentOutOfRangeException(nameof(targets), targets[r], $"Target {r} is {targets[r]}, outside [0, {classes}).");
            counted++;
        }
        double total = 0;
        for (int r = 0; r < rows; r++)
        {
            var d = dLogits.Slice(r * classes, classes);
            if (targets[r] == Ignored) { d.Clear(); continue; }
            var z = logits.Slice(r * classes, classes);
            // e^(z − max) once, vectorized, into the gradient's row; the softmax is that over its sum (a byte-level LM's
            // 2,048 rows of 256 took 5.2 ms with two scalar double exponentials per logit)
            float max = TensorPrimitives.Max(z);
            TensorPrimitives.Subtract(z, max, d);
            TensorPrimitives.Exp(d, d);
            double sum = TensorPrimitives.Sum<float>(d);
            total += max + Math.Log(sum) - z[targets[r]];
            TensorPrimitives.Multiply(d, (float)(1.0 / (sum * counted)), d);
            d[targets[r]] -= 1f / counted;
        }
        return counted == 0 ? 0 : (float)(total / counted);
    }

    /// <summary>Mean squared error over all elements; writes dL/dprediction = 2(p − t)/n.</summary>
    public static float MeanSquaredError(ReadOnlySpan<float> prediction, ReadOnlySpan<float> target, Span<float> dPrediction)
    {
        if (prediction.Length != target.Length) throw new ArgumentException($"Prediction has {prediction.Length} values, target {target.Length}.", nameof(target));
        if (dPrediction.Length < prediction.Length) throw new ArgumentException("dPrediction is too short.", nameof(dPrediction));
        double total = 0;
        int n = prediction.Length;
        for (int i = 0; i < n; i++)
        {
            float e = prediction[i] - target[i];
            total += (double)e * e;
            dPrediction[i] = 2f * e / n;
        }
        return (float)(total / n);
    }
}

/// <summary>Evaluation metrics.</summary>
public static class Metrics
{
    /// <summary>Number of rows whose arg-max equals the target (ties go to the lowest index); ignored rows never count.</summary>
    public static int CorrectCount(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, int rows, int classes)
    {
        int correct = 0;
        for (int r = 0; r < rows; r++)
        {
            if (targets[r] == Losses.Ignored) continue;
            var z = logits.Slice(r * classes, classes);
            int best = 0;
            for (int k = 1; k < classes; k++) if (z[k] > z[best]) best = k;
            if (best == targets[r]) correct++;
        }
        return correct;
    }

    /// <summary>Rows whose target is not <see cref="Losses.Ignored"/>.</summary>
    public static int Counted(ReadOnlySpan<int> targets)
    {
        int n = 0;
        foreach (int t in targets) if (t != Losses.Ignored) n++;
        return n;
    }

    /// <summary>Fraction of the counted rows classified correctly.</summary>
    public static float Accuracy(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, int rows, int classes)
    {
        int counted = Counted(targets[..rows]);
        return counted == 0 ? 0 : (float)CorrectCount(logits, targets, rows, classes) / counted;
    }
}
