// The central experiment of "The Illusion of State in State-Space Models": which layer kinds track state?
// Group word problems as token tagging (input g_1 … g_k, target at each position g_1·…·g_t), one model kind at a
// depth, or a sweep finding the smallest depth (1–4) that reaches 99% per-token validation accuracy.
//
//   dotnet run -c Release --project examples/WordProblems -- --kind Rnn --depth 1 --group A5 --length 10
//   dotnet run -c Release --project examples/WordProblems -- --sweep            (the default sweep)
//   dotnet run -c Release --project examples/WordProblems -- --quick            (a few minutes; CI runs it)
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
    var groups = (o.Sweep ? o.Groups : [o.Group]).Select(FiniteGroup.Parse).ToArray();
    foreach (var g in groups)
        if (g.Order > Zoo.MaxOrder) throw new ArgumentException($"{g.Name} has {g.Order} elements; the example's models take at most {Zoo.MaxOrder}.");
    return o.Sweep ? Sweep(o, groups) : Single(o, groups[0]);
}
catch (ArgumentException e)
{
    AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {e.Message}");
    return 1;
}

static int Single(Options o, FiniteGroup g)
{
    var validation = Runner.Validation(g, o.Length, o.Seed);
    AnsiConsole.MarkupLineInterpolated($"[bold]{o.Kind}[/], depth {o.Depth}, on [bold]{g.Name}[/] (order {g.Order}{(g.IsSolvable ? ", solvable" : ", non-solvable")}), length {o.Length}: fresh training words, {validation.Count:N0} held-out; up to {o.Steps} steps of batch {o.Batch}.");
    var r = Runner.Train(new RunConfig(o.Kind, o.Depth, g.Name, o.Length, o.Steps, o.Batch, o.LearningRate, o.Seed), g, validation,
        (step, acc) => Console.WriteLine($"  step {step,5}: validation accuracy {100 * acc:F2}%"));
    AnsiConsole.MarkupLine((r.Solved ? "[green]solved[/]" : "[yellow]not solved[/]") + Markup.Escape($": {100 * r.ValidationAccuracy:F2}% per-token validation accuracy after {r.StepsTaken} steps, {r.Seconds:F1} s."));
    return 0;
}

static int Sweep(Options o, FiniteGroup[] groups)
{
    Directory.CreateDirectory(o.Output);
    var results = new List<RunResult>();
    // minimum depth per (kind, group, length); null = not reached at depth 4
    var minDepth = new Dictionary<(string Kind, string Group, int Length), int?>();
    var clock = Stopwatch.StartNew();
    AnsiConsole.MarkupLineInterpolated($"Sweep: kinds {string.Join(", ", o.Kinds)}; groups {string.Join(", ", groups.Select(g => g.Name))}; lengths {string.Join(", ", o.Lengths)}; budget {o.Steps} steps of batch {o.Batch} per run (d_model 64).");
    AnsiConsole.MarkupLine("Needed depth is assumed not to fall as the length grows: each length starts at the depth the previous one needed.");
    foreach (var g in groups)
        foreach (int k in o.Lengths)
        {
            var validation = Runner.Validation(g, k, o.Seed);
            foreach (string kind in o.Kinds)
            {
                int start = o.Lengths.Where(l => l < k).Select(l => minDepth[(kind, g.Name, l)] ?? Zoo.MaxDepth).DefaultIfEmpty(1).Max();
                int? found = null;
                for (int d = start; d <= Zoo.MaxDepth && found is null; d++)
                {
                    var r = Runner.Train(new RunConfig(kind, d, g.Name, k, o.Steps, o.Batch, o.LearningRate, o.Seed), g, validation);
                    results.Add(r);
                    if (r.Solved) found = d;
                    Console.WriteLine($"[{clock.Elapsed:hh\\:mm\\:ss}] {g.Name,-6} k = {k,2}  {kind,-9} depth {d}: {100 * r.ValidationAccuracy,6:F2}%  {(r.Solved ? "solved" : "      ")}  {r.StepsTaken,5} steps  {r.Seconds,5:F1} s");
                }
                minDepth[(kind, g.Name, k)] = found;
            }
            WriteOutputs(o, groups, results, minDepth, clock.Elapsed);
        }
    AnsiConsole.Write(Table(o, groups, minDepth));
    AnsiConsole.MarkupLineInterpolated($"{results.Count} runs in {clock.Elapsed.TotalMinutes:F1} min; runs.json, min-depth.md and min-depth.png in {o.Output}.");
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
    minDepth.TryGetValue((kind, group, k), out var d) ? d?.ToString(CultureInfo.InvariantCulture) ?? ">4" : "";

static void WriteOutputs(Options o, FiniteGroup[] groups, List<RunResult> results, Dictionary<(string, string, int), int?> minDepth, TimeSpan elapsed)
{
    File.WriteAllText(Path.Combine(o.Output, "runs.json"), JsonSerializer.Serialize(results, RunJson.Default.ListRunResult));
    var md = new StringBuilder();
    md.AppendLine($"Minimum depth reaching {100 * Runner.Target:F0}% per-token validation accuracy within {o.Steps} steps (batch {o.Batch}, d_model 64); \">4\": not reached at depth 4. {results.Count} runs, {elapsed.TotalMinutes:F1} min.");
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
