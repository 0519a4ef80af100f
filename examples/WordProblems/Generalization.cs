using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Spectre.Console;
using SsmGen.Tasks;

namespace SsmGen.Examples.WordProblems;

/// <summary>One kind, group and seed: the training run and the trained model's accuracy at each test length.</summary>
public sealed record GeneralizationRun(RunResult Training, LengthAccuracy[] Tests);

/// <summary>
/// Length generalization, the protocol of "Unlocking State-Tracking in Linear RNNs Through Negative Eigenvalues":
/// train on words up to one length (a curriculum 2…length), then test on held-out words several times longer,
/// streamed through Step so that no test length is bounded by the model's buffers. With the default kinds (Mamba
/// with transitions in (0, 1) and in (−1, 1)) and groups (Z2: parity; Z3: counting modulo 3) it checks the paper's
/// claims: a diagonal transition needs a negative eigenvalue for parity, and a complex one for counting modulo 3.
/// </summary>
public static class Generalization
{
    public static int Run(Options o, FiniteGroup[] groups)
    {
        Directory.CreateDirectory(o.Output);
        var clock = Stopwatch.StartNew();
        var runs = new List<GeneralizationRun>();
        int total = groups.Length * o.Kinds.Length * o.Seeds;
        AnsiConsole.MarkupLineInterpolated($"Length generalization: kinds {string.Join(", ", o.Kinds)} at depth {o.Depth}; groups {string.Join(", ", groups.Select(g => g.Name))}; trained on lengths 2–{o.Length} (curriculum, batch {o.Batch}; {o.Budgets()}), tested on held-out words of lengths {string.Join(", ", o.TestLengths)}; seeds {o.Seed}–{o.Seed + (ulong)o.Seeds - 1}; {total} runs.");
        foreach (var g in groups)
        {
            var validation = Runner.Validation(g, o.Length, o.Seed);
            var tests = o.TestLengths.Select(k => Runner.Validation(g, k, o.Seed + 1000)).ToArray();
            foreach (string kind in o.Kinds)
                for (ulong seed = o.Seed; seed < o.Seed + (ulong)o.Seeds; seed++)
                {
                    LengthAccuracy[] accuracy = [];
                    var config = new RunConfig(kind, o.Depth, g.Name, o.Length, o.StepsOf(kind), o.Batch, o.LearningRateOf(kind), seed);
                    var r = Runner.Train(config, g, validation, Enumerable.Range(Math.Min(2, o.Length), o.Length - Math.Min(2, o.Length) + 1).ToArray(),
                        trained: model => accuracy = tests.Select(t => Runner.StreamAccuracy(model, t, o.Length)).ToArray());
                    runs.Add(new GeneralizationRun(r, accuracy));
                    Console.WriteLine($"[{clock.Elapsed:hh\\:mm\\:ss}] run {runs.Count,2}/{total}  {g.Name,-4} {kind,-9} seed {seed}: trained {100 * r.ValidationAccuracy,6:F2}% at {o.Length} ({r.StepsTaken} steps, {r.Seconds:F0} s); "
                        + string.Join(", ", accuracy.Select(a => $"{a.Length}: {Percent(a.Beyond ?? a.PerToken)}")));
                    Write(o, groups, runs, clock.Elapsed);
                }
        }
        Console.WriteLine(File.ReadAllText(Path.Combine(o.Output, "generalization.md")));
        AnsiConsole.MarkupLineInterpolated($"{runs.Count} runs in {clock.Elapsed.TotalMinutes:F1} min; generalization.json, generalization.md and generalization.png in {o.Output}.");
        return 0;
    }

    private static string Percent(double v) => (100 * v).ToString("F1", CultureInfo.InvariantCulture) + "%";

    private static void Write(Options o, FiniteGroup[] groups, List<GeneralizationRun> runs, TimeSpan elapsed)
    {
        File.WriteAllText(Path.Combine(o.Output, "generalization.json"), JsonSerializer.Serialize(runs, GeneralizationJson.Default.ListGeneralizationRun));
        Runner.WriteCurves(Path.Combine(o.Output, "generalization-curves.csv"), runs.Select(r => r.Training));
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"Per-token accuracy on held-out words, trained on lengths 2–{o.Length} (depth {o.Depth}, d_model 64, batch {o.Batch}, curriculum; {o.Budgets()}), mean over seeds (lowest–highest); at the trained length over all positions, beyond it over the positions past {o.Length} only. Chance: 1/|G|. {runs.Count} runs, {elapsed.TotalMinutes:F1} min.");
        md.AppendLine();
        md.AppendLine("| kind | group | " + string.Join(" | ", o.TestLengths.Select(k => k == o.Length ? $"{k} (trained)" : $"{k}")) + " | words right at " + o.TestLengths.Max() + " |");
        md.AppendLine("|---|---|" + string.Concat(o.TestLengths.Select(_ => "---|")) + "---|");
        foreach (var g in groups)
            foreach (string kind in o.Kinds)
            {
                var mine = runs.Where(r => r.Training.Config.Group == g.Name && r.Training.Config.Kind == kind).ToList();
                if (mine.Count == 0) continue;
                var cells = o.TestLengths.Select((k, i) => Spread(mine.Select(r => r.Tests[i].Beyond ?? r.Tests[i].PerToken)));
                md.AppendLine($"| {kind} | {g.Name} | {string.Join(" | ", cells)} | {Spread(mine.Select(r => r.Tests[^1].Words))} |");
            }
        File.WriteAllText(Path.Combine(o.Output, "generalization.md"), md.ToString());
        Plots.Generalization(Path.Combine(o.Output, "generalization.png"), runs, o.Length);
    }

    /// <summary>Draws generalization.png again from the generalization.json in <c>o.Output</c> (no training).</summary>
    public static int Replot(Options o)
    {
        string json = Path.Combine(o.Output, "generalization.json");
        if (!File.Exists(json)) throw new ArgumentException($"There is no generalization.json in {o.Output}; give the folder of a --generalize run with --out.");
        var runs = JsonSerializer.Deserialize(File.ReadAllText(json), GeneralizationJson.Default.ListGeneralizationRun)
            ?? throw new ArgumentException($"{json} holds no runs.");
        if (runs.Count == 0) throw new ArgumentException($"{json} holds no runs.");
        Plots.Generalization(Path.Combine(o.Output, "generalization.png"), runs, runs[0].Training.Config.Length);
        Console.WriteLine($"generalization.png from {runs.Count} runs in {o.Output}.");
        return 0;
    }

    private static string Spread(IEnumerable<double> values)
    {
        var v = values.ToList();
        return v.Count == 1 ? Percent(v[0]) : $"{Percent(v.Average())} ({Percent(v.Min())}–{Percent(v.Max())})";
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(List<GeneralizationRun>))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(WriteIndented = true)]
internal partial class GeneralizationJson : System.Text.Json.Serialization.JsonSerializerContext { }
