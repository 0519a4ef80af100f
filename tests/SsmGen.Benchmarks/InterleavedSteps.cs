using System.Diagnostics;

namespace SsmGen.Benchmarks;

/// <summary>
/// <c>--steps [seconds]</c>: the streaming steps of <see cref="StreamingStep"/> and <see cref="BatchedStep"/> timed in
/// 50-ms windows taken in turn, configuration after configuration, for the whole run, reporting each one's fastest
/// window and its median. On a shared machine whose speed drifts by tens of percent over minutes, a benchmark
/// that runs each configuration in its own block of time compares moments, not code; interleaved windows put every
/// configuration through the same moments, and the fastest window is the closest to what the code costs.
/// </summary>
public static class InterleavedSteps
{
    private sealed class Config(string stack, string matrices, int streams, Action step)
    {
        public readonly string Stack = stack;
        public readonly string Matrices = matrices;
        public readonly int Streams = streams;
        public readonly Action Step = step;
        public readonly List<double> Windows = []; // µs per token
    }

    public static void Run(double seconds)
    {
        var configs = new List<Config>();
        foreach (var format in Enum.GetValues<WeightFormat>())
        {
            var s4d = new SmnistBench(BatchedStep.MaxStreams, 1, ModelUse.Inference);
            s4d.Initialize(1);
            s4d.UseStepWeights(format);
            var mamba = new MambaStackBench(BatchedStep.MaxStreams, 1, ModelUse.Inference);
            mamba.Initialize(1);
            mamba.UseStepWeights(format);
            // every format at one stream; fp32 and the fastest compact format at more
            foreach (int streams in format is WeightFormat.Float32 or WeightFormat.Int8Dynamic ? new[] { 1, 4, 16, 64 } : [1])
            {
                var s4dStates = Enumerable.Range(0, streams).Select(_ => s4d.CreateState()).ToArray();
                var x = Enumerable.Range(0, streams).Select(s => 0.1f * s).ToArray();
                var s4dY = new float[streams * SmnistBench.OutputSize];
                configs.Add(new("S4DStack4", format.ToString(), streams, () =>
                {
                    if (s4dStates[0].Position >= StreamingStep.StreamLength) foreach (var s in s4dStates) s.Reset();
                    s4d.Step(s4dStates, x, s4dY);
                }));
                var mambaStates = Enumerable.Range(0, streams).Select(_ => mamba.CreateState()).ToArray();
                var tokens = Enumerable.Range(0, streams).Select(s => (7 * s + 3) % MambaStackBench.VocabSize).ToArray();
                var mambaY = new float[streams * MambaStackBench.OutputSize];
                configs.Add(new("MambaStack4", format.ToString(), streams, () =>
                {
                    if (mambaStates[0].Position >= StreamingStep.StreamLength) foreach (var s in mambaStates) s.Reset();
                    mamba.Step(mambaStates, tokens, mambaY);
                }));
            }
        }
        // The plain-C peer of the Mamba step, on a copy of the same weights (checked against SsmGen's step first).
        var reference = new MambaStackBench(1, 1, ModelUse.Inference);
        reference.Initialize(1);
        using var plainC = new PlainCMamba(reference);
        int position = 0;
        configs.Add(new("MambaStack4", $"plain C fp32 (gcc {PlainCMamba.CompilerFlags})", 1, () =>
        {
            if (++position >= StreamingStep.StreamLength) { plainC.Reset(); position = 0; }
            plainC.Step(7);
        }));
        foreach (var c in configs) Window(c, 200); // warm-up: every path compiled and its data touched
        foreach (var c in configs) c.Windows.Clear();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds)
            foreach (var c in configs) Window(c, 50);

        Console.WriteLine($"Interleaved 50-ms windows over {seconds:F0} s, one thread ({configs[0].Windows.Count} windows per configuration): µs per token, fastest window (median).");
        Console.WriteLine("| stack | matrices | streams | µs per token, fastest (median) | tokens/s, fastest | × one stream, same matrices |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var c in configs.OrderBy(c => c.Stack).ThenBy(c => configs.IndexOf(c)))
        {
            double best = c.Windows.Min(), median = c.Windows.Order().ElementAt(c.Windows.Count / 2);
            double one = configs.First(o => o.Stack == c.Stack && o.Matrices == c.Matrices && o.Streams == 1).Windows.Min();
            Console.WriteLine($"| {c.Stack} | {c.Matrices} | {c.Streams} | {best:F2} ({median:F2}) | {1e6 / best:F0} | {one / best:F2} |");
        }
        double peer = configs[^1].Windows.Min();
        foreach (var c in configs.Where(c => c.Stack == "MambaStack4" && c.Streams == 1 && c != configs[^1]))
            Console.WriteLine($"MambaStack4 at one stream, {c.Matrices} matrices: {peer / c.Windows.Min():F2}× the plain-C fp32 step's speed (fastest windows; target for the compact step ≥ 2.5×).");
    }

    private static void Window(Config c, int milliseconds)
    {
        var clock = Stopwatch.StartNew();
        int steps = 0;
        while (clock.ElapsedMilliseconds < milliseconds) { c.Step(); steps++; }
        c.Windows.Add(clock.Elapsed.TotalMicroseconds / steps / c.Streams);
    }
}
