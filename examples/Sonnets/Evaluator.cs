namespace SsmGen.Examples.Sonnets;

/// <summary>
/// Next-character loss and accuracy of a per-token model on a text, read in consecutive windows of
/// <c>length</c> characters (each window starts from an empty state; the last one may be shorter). Every character
/// but the first is predicted exactly once.
/// </summary>
public sealed class Evaluator
{
    private readonly ISsmModel _model;
    private readonly int _batch, _length, _classes;
    private readonly int[] _inputs;
    private readonly float[] _logits;

    public Evaluator(ISsmModel model, int batch, int length)
    {
        if (model.Config.Pooling != Pooling.None) throw new ArgumentException("The evaluator needs a per-token model (Pooling.None).", nameof(model));
        if (batch > model.MaxBatch || length > model.MaxLength)
            throw new ArgumentException($"Windows of {batch} × {length} exceed the model's buffers ({model.MaxBatch} × {model.MaxLength}).");
        _model = model;
        _batch = batch;
        _length = length;
        _classes = model.Config.Output;
        _inputs = new int[batch * length];
        _logits = new float[batch * length * _classes];
    }

    /// <summary>Mean cross-entropy in nats per predicted character, and the fraction whose arg-max is right.</summary>
    public (double Loss, double Accuracy) Evaluate(ReadOnlySpan<int> text)
    {
        int targets = text.Length - 1;
        if (targets < 1) throw new ArgumentException("The text needs at least two characters.", nameof(text));
        double loss = 0;
        long correct = 0;
        int full = targets / _length;
        for (int w = 0; w < full; w += _batch)
        {
            int n = Math.Min(_batch, full - w);
            Score(text, w * _length, n, _length, ref loss, ref correct);
        }
        int rest = targets - full * _length;
        if (rest > 0) Score(text, full * _length, 1, rest, ref loss, ref correct);
        return (loss / targets, (double)correct / targets);
    }

    /// <summary>Windows <c>start + b·length</c>, b &lt; <paramref name="n"/>: inputs text[i], targets text[i + 1].</summary>
    private void Score(ReadOnlySpan<int> text, int start, int n, int length, ref double loss, ref long correct)
    {
        int rows = n * length;
        text.Slice(start, rows).CopyTo(_inputs);
        _model.Forward(_inputs.AsSpan(0, rows), n, length, _logits.AsSpan(0, rows * _classes));
        for (int r = 0; r < rows; r++)
        {
            var z = _logits.AsSpan(r * _classes, _classes);
            int target = text[start + r + 1], best = 0;
            float max = z[0];
            for (int k = 1; k < _classes; k++) if (z[k] > max) { max = z[k]; best = k; }
            double sum = 0;
            for (int k = 0; k < _classes; k++) sum += Math.Exp(z[k] - max);
            loss += max + Math.Log(sum) - z[target];
            if (best == target) correct++;
        }
    }
}
