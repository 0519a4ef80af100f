using System.Diagnostics;
using System.Globalization;
using System.Text;
using SsmGen.Examples.Sonnets;

namespace SsmGen.Examples.Serve;

/// <summary>The commands of ssm-serve; each writes plain text that scripts can compare.</summary>
public static class Commands
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private static readonly char[] Separators = [' ', ',', '\t'];

    public static int Info(ServedModel m, TextWriter output)
    {
        output.WriteLine($"{m.Path}: {m.TypeName} ({m.Task}), {m.Model.Parameters.Length:N0} parameters, {m.FileBytes:N0} bytes; built for {m.Model.Use}; the step reads its matrices as {m.Model.StepWeights}.");
        return 0;
    }

    /// <summary>
    /// Digits from <paramref name="input"/>, one per line of at most <see cref="ServedModel.MaxDigitLineLength"/>
    /// characters; a class and the logits per digit.
    /// </summary>
    public static int Classify(ServedModel m, CommandOptions o, TextReader input, TextWriter output)
    {
        Require(m, ServedTask.ClassifyDigits, "classify");
        int batch = o.Batch, classes = m.Model.Config.Output;
        var pixels = new float[batch * ServedModel.DigitLength];
        var logits = new float[batch * classes];
        var lines = new BoundedLineReader(input, ServedModel.MaxDigitLineLength);
        int count = 0;
        while (true)
        {
            string? line;
            try
            {
                if ((line = lines.ReadLine()) is null) break;
                if (line.Trim().Length == 0) continue;
                ParseDigit(line, lines.LineNumber, pixels.AsSpan(count * ServedModel.DigitLength, ServedModel.DigitLength));
            }
            catch (FormatException) { if (count > 0) Emit(count); throw; } // the digits before the bad line are answered

            if (++count == batch) { Emit(count); count = 0; }
        }
        if (count > 0) Emit(count);
        return 0;

        void Emit(int n)
        {
            m.Model.Forward(pixels.AsSpan(0, n * ServedModel.DigitLength), n, ServedModel.DigitLength, logits);
            for (int b = 0; b < n; b++)
            {
                var row = logits.AsSpan(b * classes, classes);
                output.WriteLine(ArgMax(row).ToString(Inv) + "\t" + Join(row));
            }
            output.Flush();
        }
    }

    /// <summary>Characters from <paramref name="input"/>; after each, the predicted next character.</summary>
    public static int Stream(ServedModel m, CommandOptions o, TextReader input, TextWriter output)
    {
        Require(m, ServedTask.NextCharacter, "stream");
        var state = Session.Open(m.Model, o.Session);
        var logits = new float[m.Model.Config.Output];
        int c;
        while ((c = input.Read()) >= 0)
        {
            int token = CharVocabulary.Encode((char)c);
            m.Model.Step(state, token, logits);
            int next = ArgMax(logits);
            if (o.Logits) output.WriteLine($"{token}\t{next}\t{Join(logits)}");
            else output.Write(CharVocabulary.Decode(next));
            output.Flush();
        }
        if (!o.Logits) output.WriteLine();
        Session.Save(m.Model, state, o.Session);
        return 0;
    }

    /// <summary>
    /// The prompt, then a greedy continuation of <c>o.Count</c> characters, each written and flushed as soon as it is
    /// chosen, so a reader sees the text grow.
    /// </summary>
    public static int Generate(ServedModel m, CommandOptions o, TextWriter output)
    {
        Require(m, ServedTask.NextCharacter, "generate");
        var state = Session.Open(m.Model, o.Session);
        var logits = new float[m.Model.Config.Output];
        output.Write(o.Prompt);
        output.Flush();
        foreach (char ch in o.Prompt) m.Model.Step(state, CharVocabulary.Encode(ch), logits);
        for (int i = 0; i < o.Count; i++)
        {
            int next = ArgMax(logits);
            output.Write(CharVocabulary.Decode(next));
            output.Flush();
            m.Model.Step(state, next, logits);
        }
        output.WriteLine();
        output.Flush();
        Session.Save(m.Model, state, o.Session);
        return 0;
    }

    /// <summary>Latency at batch 1, time from process start to the first result, and peak memory.</summary>
    public static int Bench(ServedModel m, CommandOptions o, TextWriter output)
    {
        var model = m.Model;
        var logits = new float[model.Config.Output];
        if (m.Task == ServedTask.NextCharacter)
        {
            var state = model.CreateState();
            model.Step(state, CharVocabulary.Encode('S'), logits);
            double firstMs = SinceStart();
            for (int i = 0; i < 200; i++) model.Step(state, ArgMax(logits), logits); // warm-up
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < o.Tokens; i++) model.Step(state, ArgMax(logits), logits);
            double seconds = clock.Elapsed.TotalSeconds;
            output.WriteLine($"{m.TypeName} ({model.StepWeights} step matrices): first output {firstMs:F1} ms after process start; Step at batch 1: {1e6 * seconds / o.Tokens:F1} µs per token, {o.Tokens / seconds:N0} tokens/s over {o.Tokens:N0} tokens; peak memory {PeakMiB():F1} MiB.");
        }
        else
        {
            var pixels = new float[ServedModel.DigitLength];
            for (int t = 0; t < pixels.Length; t++) pixels[t] = (t * 37 % 101) / 100f;
            model.Forward(pixels, 1, ServedModel.DigitLength, logits);
            double firstMs = SinceStart();
            int runs = Math.Max(3, o.Tokens / 200);
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < runs; i++) model.Forward(pixels, 1, ServedModel.DigitLength, logits);
            double ms = 1e3 * clock.Elapsed.TotalSeconds / runs;
            output.WriteLine($"{m.TypeName}: first output {firstMs:F1} ms after process start; Forward of one 784-step digit: {ms:F2} ms ({1e6 * ms / 1e3 / ServedModel.DigitLength:F2} µs per step) over {runs} digits; peak memory {PeakMiB():F1} MiB.");
        }
        return 0;
    }

    private static double SinceStart() => (DateTime.Now - Process.GetCurrentProcess().StartTime).TotalMilliseconds;
    private static double PeakMiB() { using var p = Process.GetCurrentProcess(); p.Refresh(); return p.PeakWorkingSet64 / (1024.0 * 1024.0); }

    private static void Require(ServedModel m, ServedTask task, string command)
    {
        if (m.Task != task)
            throw new ArgumentException($"'{command}' needs a {(task == ServedTask.ClassifyDigits ? "digit classifier" : "character model")}; {m.Path} holds a {m.TypeName}.");
    }

    internal static float[] ParseDigit(string line, int lineNumber)
    {
        var pixels = new float[ServedModel.DigitLength];
        ParseDigit(line, lineNumber, pixels);
        return pixels;
    }

    private static void ParseDigit(string line, int lineNumber, Span<float> pixels)
    {
        var parts = line.Split(Separators, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length != pixels.Length)
            throw new FormatException($"Line {lineNumber} has {parts.Length} values; a digit has {pixels.Length} (28×28 pixels in [0, 1]).");
        for (int i = 0; i < parts.Length; i++)
            if (!float.TryParse(parts[i], NumberStyles.Float, Inv, out pixels[i]) || !float.IsFinite(pixels[i]))
                throw new FormatException($"Line {lineNumber}, value {i + 1}: '{parts[i]}' is not a finite number.");
    }

    internal static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    private static string Join(ReadOnlySpan<float> v)
    {
        var sb = new StringBuilder(v.Length * 12);
        for (int i = 0; i < v.Length; i++) { if (i > 0) sb.Append(' '); sb.Append(v[i].ToString("R", Inv)); }
        return sb.ToString();
    }
}
