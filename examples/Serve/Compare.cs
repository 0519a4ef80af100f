using System.Globalization;
using SsmGen.Examples.Sonnets;

namespace SsmGen.Examples.Serve;

/// <summary>
/// <c>ssm-serve compare</c>: the same checkpoint stepped with every WeightFormat's matrices side by side, on held-out
/// data: how far each compact step's logits move from the fp32 step's (per token, the largest change over the
/// largest |logit|), how often the top prediction changes, and the task's own metric (bits per character on text,
/// accuracy on digits streamed pixel by pixel).
/// </summary>
public static class Compare
{
    private static readonly WeightFormat[] Formats = Enum.GetValues<WeightFormat>();

    public static int Run(ServedModel m, CommandOptions o, TextWriter output)
    {
        var models = Formats.Select(f => ServedModel.Load(m.Path, m.Model.MaxBatch, f).Model).ToArray();
        int v = m.Model.Config.Output;
        var logits = Formats.Select(_ => new List<float[]>()).ToArray(); // per format, one row per scored position
        var targets = new List<int>();
        string metric;
        if (m.Task == ServedTask.NextCharacter)
        {
            string text = File.ReadAllText(o.TextFile ?? throw new ArgumentException("compare on a character model needs --text FILE (held-out text)."));
            if (text.Length < 2) throw new ArgumentException($"{o.TextFile} holds {text.Length} characters; bits per character need at least 2.");
            int[] ids = CharVocabulary.Encode(text);
            for (int f = 0; f < Formats.Length; f++)
            {
                var state = models[f].CreateState();
                for (int t = 0; t + 1 < ids.Length; t++)
                {
                    var y = new float[v];
                    models[f].Step(state, ids[t], y);
                    logits[f].Add(y);
                }
            }
            targets.AddRange(ids.Skip(1));
            metric = "bits/char";
        }
        else
        {
            if (o.DigitsFile is null || o.LabelsFile is null) throw new ArgumentException("compare on a classifier needs --digits FILE and --labels FILE (SequentialMnist --export-digits writes both).");
            var lines = new BoundedLineReader(new StreamReader(o.DigitsFile), ServedModel.MaxDigitLineLength);
            var digits = new List<float[]>();
            for (string? line; (line = lines.ReadLine()) is not null;)
                if (line.Trim().Length > 0) digits.Add(Commands.ParseDigit(line, lines.LineNumber));
            targets.AddRange(File.ReadAllLines(o.LabelsFile).Where(l => l.Trim().Length > 0).Select(l => int.Parse(l.Trim(), CultureInfo.InvariantCulture)));
            if (targets.Count != digits.Count) throw new InvalidDataException($"{o.DigitsFile} holds {digits.Count} digits and {o.LabelsFile} {targets.Count} labels.");
            const int L = ServedModel.DigitLength;
            for (int f = 0; f < Formats.Length; f++)
            {
                var model = models[f];
                int batch = model.MaxBatch;
                for (int first = 0; first < digits.Count; first += batch)
                {
                    int n = Math.Min(batch, digits.Count - first);
                    var streams = Enumerable.Range(0, n).Select(_ => model.CreateState()).ToArray();
                    var x = new float[n];
                    var y = new float[n * v];
                    for (int t = 0; t < L; t++)
                    {
                        for (int s = 0; s < n; s++) x[s] = digits[first + s][t];
                        model.Step(streams, x, y);
                    }
                    for (int s = 0; s < n; s++) logits[f].Add(y.AsSpan(s * v, v).ToArray());
                }
            }
            metric = "accuracy";
        }

        output.WriteLine($"{m.TypeName} on {targets.Count:N0} {(m.Task == ServedTask.NextCharacter ? "characters" : "digits")} ({(m.Task == ServedTask.NextCharacter ? o.TextFile : o.DigitsFile)}):");
        output.WriteLine($"| step matrices | {metric} | logits change vs fp32: max | mean | top-1 differs from fp32 |");
        output.WriteLine("|---|---|---|---|---|");
        for (int f = 0; f < Formats.Length; f++)
        {
            double score = m.Task == ServedTask.NextCharacter
                ? logits[f].Zip(targets, (y, t) => -LogSoftmax(y, t) / Math.Log(2)).Average()
                : 100.0 * logits[f].Zip(targets, (y, t) => Commands.ArgMax(y) == t ? 1 : 0).Average();
            var change = logits[f].Zip(logits[0], (y, r) => MaxAbsDiff(y, r) / Math.Max(r.Max(MathF.Abs), 1e-30f)).ToArray();
            double differs = 100.0 * logits[f].Zip(logits[0], (y, r) => Commands.ArgMax(y) != Commands.ArgMax(r) ? 1 : 0).Average();
            string scoreText = m.Task == ServedTask.NextCharacter ? score.ToString("F4", CultureInfo.InvariantCulture) : $"{score.ToString("F2", CultureInfo.InvariantCulture)}%";
            output.WriteLine($"| {Formats[f]} | {scoreText} | {change.Max():E2} | {change.Average():E2} | {differs:F2}% |");
        }
        return 0;
    }

    private static double MaxAbsDiff(float[] a, float[] b)
    {
        double d = 0;
        for (int i = 0; i < a.Length; i++) d = Math.Max(d, Math.Abs((double)a[i] - b[i]));
        return d;
    }

    private static double LogSoftmax(float[] y, int target)
    {
        double max = y.Max(), sum = 0;
        foreach (float v in y) sum += Math.Exp(v - max);
        return y[target] - max - Math.Log(sum);
    }
}
