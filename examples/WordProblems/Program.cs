// The central experiment of "The Illusion of State in State-Space Models": which layer kinds track state?
// Group word problems as token tagging (input g_1 … g_k, target at each position g_1·…·g_t), one model kind at a
// depth, or a sweep finding the smallest depth (1–4) that reaches 99% per-token validation accuracy.
//
//   dotnet run -c Release --project examples/WordProblems -- --kind Rnn --depth 1 --group A5 --length 10
//   dotnet run -c Release --project examples/WordProblems -- --sweep            (the default sweep)
//   dotnet run -c Release --project examples/WordProblems -- --quick            (a few minutes; CI runs it)
//   dotnet run -c Release --project examples/WordProblems -- --generalize       (parity and counting mod 3, Mamba
//                                                                                with and without negative eigenvalues)
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Spectre.Console;
using SsmGen.Examples.WordProblems;
using SsmGen.Tasks;

var o = Options.Parse(args, Console.Error);
if (o is null) return 2;
try
{
    var groups = (o.Sweep || o.Generalize ? o.Groups : [o.Group]).Select(FiniteGroup.Parse).ToArray();
    foreach (var g in groups)
        if (g.Order > Zoo.MaxOrder) throw new ArgumentException($"{g.Name} has {g.Order} elements; the example's models take at most {Zoo.MaxOrder}.");
    return o.Replot ? Replot(o) : o.Generalize ? Generalization.Run(o, groups) : o.Sweep ? Sweep(o, groups) : Single(o, groups[0]);
}
catch (ArgumentException e)
{
    AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {e.Message}");
    return 1;
}

static int Single(Options o, FiniteGroup g)
{
    var validation = Runner.Validation(g, o.Length, o.Seed);
    AnsiConsole.MarkupLineInterpolated($"[bold]{o.Kind}[/], depth {o.Depth}, on [bold]{g.Name}[/] (order {g.Order}{(g.IsSolvable ? ", solvable" : ", non-solvable")}), length {o.Length}: fresh training words, {validation.Count:N0} held-out; up to {o.StepsOf(o.Kind)} steps of batch {o.Batch}.");
    int[] curriculum = o.PerLength ? [o.Length] : Enumerable.Range(Math.Min(2, o.Length), o.Length - Math.Min(2, o.Length) + 1).ToArray();
    var r = Runner.Train(new RunConfig(o.Kind, o.Depth, g.Name, o.Length, o.StepsOf(o.Kind), o.Batch, o.LearningRateOf(o.Kind), o.Seed), g, validation, curriculum,
        (step, k, acc) => Console.WriteLine($"  step {step,5}: training at length {k,2}, validation accuracy there {100 * acc:F2}%"));
    int solvedUpTo = Enumerable.Range(1, o.Length).TakeWhile(k => r.PrefixAccuracy[k - 1] >= Runner.Target).DefaultIfEmpty(0).Last();
    Console.WriteLine($"  accuracy over the first k positions: {string.Join(", ", Enumerable.Range(1, o.Length).Select(k => $"{k}: {100 * r.PrefixAccuracy[k - 1]:F1}%"))}");
    Console.WriteLine($"  99% reached up to length {solvedUpTo}.");
    AnsiConsole.MarkupLine((r.Solved ? "[green]solved[/]" : "[yellow]not solved[/]") + Markup.Escape($": {100 * r.ValidationAccuracy:F2}% per-token validation accuracy after {r.StepsTaken} steps, {r.Seconds:F1} s."));
    return 0;
}

static int Sweep(Options o, FiniteGroup[] groups)
{
    Directory.CreateDirectory(o.Output);
    var results = new List<RunResult>();
    // minimum depth per (kind, group, length); null = not reached at the kind's deepest model
    var minDepth = new Dictionary<(string Kind, string Group, int Length), int?>();
    var clock = Stopwatch.StartNew();
    int maxRuns = groups.Length * o.Kinds.Sum(Zoo.MaxDepthOf) * (o.PerLength ? o.Lengths.Length : 1);
    AnsiConsole.MarkupLineInterpolated($"Sweep: kinds {string.Join(", ", o.Kinds)}; groups {string.Join(", ", groups.Select(g => g.Name))}; lengths {string.Join(", ", o.Lengths)}; batch {o.Batch}, d_model 64; budget and peak learning rate per run: {o.Budgets()}; at most {maxRuns} runs.");
    AnsiConsole.MarkupLine(o.PerLength
        ? "One run per length; needed depth is assumed not to fall as the length grows: each length starts at the depth the previous one needed."
        : $"One run per kind, group and depth with a length curriculum: words are cut to the shortest length until the held-out words cut to it reach 99%, then to the next; the budget covers the whole curriculum. Depths stop growing once every length is solved.");
    void Report(RunResult r, string detail) =>
        Console.WriteLine($"[{clock.Elapsed:hh\\:mm\\:ss}] run {results.Count,3}/{maxRuns}  {r.Config.Group,-6} {r.Config.Kind,-9} depth {r.Config.Depth}  {detail}  {r.StepsTaken,5} steps  {r.Seconds,5:F1} s");
    foreach (var g in groups)
    {
        if (o.PerLength)
            foreach (int k in o.Lengths)
            {
                var validation = Runner.Validation(g, k, o.Seed);
                foreach (string kind in o.Kinds)
                {
                    int start = o.Lengths.Where(l => l < k).Select(l => minDepth[(kind, g.Name, l)] ?? Zoo.MaxDepth).DefaultIfEmpty(1).Max();
                    int? found = null;
                    for (int d = start; d <= Zoo.MaxDepthOf(kind) && found is null; d++)
                    {
                        var r = Runner.Train(new RunConfig(kind, d, g.Name, k, o.StepsOf(kind), o.Batch, o.LearningRateOf(kind), o.Seed), g, validation);
                        results.Add(r);
                        if (r.Solved) found = d;
                        Report(r, $"k = {k,2}: {100 * r.PrefixAccuracy[^1],6:F2}% {(r.Solved ? "solved" : "      ")}");
                    }
                    minDepth[(kind, g.Name, k)] = found;
                }
                WriteOutputs(o, groups, results, minDepth, clock.Elapsed);
            }
        else
        {
            int longest = o.Lengths.Max();
            var validation = Runner.Validation(g, longest, o.Seed);
            foreach (string kind in o.Kinds)
            {
                for (int d = 1; d <= Zoo.MaxDepthOf(kind) && o.Lengths.Any(k => !minDepth.ContainsKey((kind, g.Name, k))); d++)
                {
                    var r = Runner.Train(new RunConfig(kind, d, g.Name, longest, o.StepsOf(kind), o.Batch, o.LearningRateOf(kind), o.Seed), g, validation, o.Lengths);
                    results.Add(r);
                    foreach (int k in o.Lengths)
                        if (!minDepth.ContainsKey((kind, g.Name, k)) && r.PrefixAccuracy[k - 1] >= Runner.Target) minDepth[(kind, g.Name, k)] = d;
                    int solvedUpTo = o.Lengths.TakeWhile(k => r.PrefixAccuracy[k - 1] >= Runner.Target).DefaultIfEmpty(0).Last();
                    Report(r, $"{100 * r.PrefixAccuracy[^1],6:F2}% at k = {longest}, 99% up to k = {solvedUpTo,2}");
                }
                foreach (int k in o.Lengths) minDepth.TryAdd((kind, g.Name, k), null);
                WriteOutputs(o, groups, results, minDepth, clock.Elapsed);
            }
        }
    }
    // A drawn table wraps into columns of single letters in an 80-column log; redirected output gets the markdown.
    if (Console.IsOutputRedirected) Console.WriteLine(File.ReadAllText(Path.Combine(o.Output, "min-depth.md")));
    else AnsiConsole.Write(Table(o, groups, minDepth));
    AnsiConsole.MarkupLineInterpolated($"{results.Count} runs in {clock.Elapsed.TotalMinutes:F1} min; runs.json, curves.csv, min-depth.md and min-depth.png in {o.Output}.");
    return 0;
}


/// <summary>The plots of the runs in o.Output again from their JSON: a --generalize run's and a sweep's, whichever are there (no training).</summary>
static int Replot(Options o)
{
    bool generalization = File.Exists(Path.Combine(o.Output, "generalization.json"));
    string json = Path.Combine(o.Output, "runs.json");
    if (!generalization && !File.Exists(json)) throw new ArgumentException($"There is no runs.json or generalization.json in {o.Output}; give the folder of a sweep or a --generalize run with --out.");
    if (generalization) Generalization.Replot(o);
    if (!File.Exists(json)) return 0;
    var runs = JsonSerializer.Deserialize(File.ReadAllText(json), RunJson.Default.ListRunResult) ?? [];
    if (runs.Count == 0) throw new ArgumentException($"{json} holds no runs.");
    // the sweep's rule: the minimum depth at k is the smallest depth whose run reached the target at k
    var lengths = Enumerable.Range(o.Lengths.Min(), runs.Max(r => r.Config.Length) - o.Lengths.Min() + 1).ToArray();
    var kinds = runs.Select(r => r.Config.Kind).Distinct().ToArray();
    var groups = runs.Select(r => r.Config.Group).Distinct().Select(FiniteGroup.Parse).ToArray();
    var minDepth = new Dictionary<(string, string, int), int?>();
    foreach (var g in groups)
        foreach (string kind in kinds)
            foreach (int k in lengths)
                minDepth[(kind, g.Name, k)] = runs.Where(r => r.Config.Kind == kind && r.Config.Group == g.Name && r.PrefixAccuracy.Length >= k && r.PrefixAccuracy[k - 1] >= Runner.Target)
                    .Select(r => (int?)r.Config.Depth).Min();
    Plots.MinDepth(Path.Combine(o.Output, "min-depth.png"), o with { Kinds = kinds, Lengths = lengths }, groups, minDepth);
    Console.WriteLine($"min-depth.png from {runs.Count} runs in {o.Output}.");
    return 0;
}

static Table Table(Options o, FiniteGroup[] groups, Dictionary<(string, string, int), int?> minDepth)
{
    var t = new Table().AddColumn("kind").AddColumn("group");
    foreach (int k in o.Lengths) t.AddColumn(k.ToString(CultureInfo.InvariantCulture));
    foreach (var g in groups)
        foreach (string kind in o.Kinds)
            t.AddRow(new[] { kind, g.Name }.Concat(o.Lengths.Select(k => Cell(minDepth, kind, g.Name, k))).ToArray());
    return t;
}

static string Cell(Dictionary<(string, string, int), int?> minDepth, string kind, string group, int k) =>
    minDepth.TryGetValue((kind, group, k), out var d) ? d?.ToString(CultureInfo.InvariantCulture) ?? $">{Zoo.MaxDepthOf(kind)}" : "";

static void WriteOutputs(Options o, FiniteGroup[] groups, List<RunResult> results, Dictionary<(string, string, int), int?> minDepth, TimeSpan elapsed)
{
    File.WriteAllText(Path.Combine(o.Output, "runs.json"), JsonSerializer.Serialize(results, RunJson.Default.ListRunResult));
    Runner.WriteCurves(Path.Combine(o.Output, "curves.csv"), results);
    var md = new StringBuilder();
    string protocol = o.PerLength ? "one run per length" : "one run per kind, group and depth with a curriculum over the lengths, the budget shared by all of them";
    md.AppendLine($"Minimum depth reaching {100 * Runner.Target:F0}% per-token validation accuracy (batch {o.Batch}, d_model 64, seed {o.Seed}; step budget and peak learning rate: {o.Budgets()}; {protocol}); \">d\": not reached at depth d, the deepest model of the kind. {results.Count} runs, {elapsed.TotalMinutes:F1} min.");
    md.AppendLine();
    md.AppendLine("| kind | group | " + string.Join(" | ", o.Lengths) + " |");
    md.AppendLine("|---|---|" + string.Concat(o.Lengths.Select(_ => "---|")));
    foreach (var g in groups)
        foreach (string kind in o.Kinds)
            md.AppendLine($"| {kind} | {g.Name} | " + string.Join(" | ", o.Lengths.Select(k => Cell(minDepth, kind, g.Name, k))) + " |");
    File.WriteAllText(Path.Combine(o.Output, "min-depth.md"), md.ToString());
    Plots.MinDepth(Path.Combine(o.Output, "min-depth.png"), o, groups, minDepth);
}

[System.Text.Json.Serialization.JsonSerializable(typeof(List<RunResult>))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(WriteIndented = true)]
internal partial class RunJson : System.Text.Json.Serialization.JsonSerializerContext { }
