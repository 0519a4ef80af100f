// ListOps (Long Range Arena): nested MAX/MIN/MED/SM expressions over digits, classified by their value.
//
//   dotnet run -c Release --project examples/ListOps                      (S4D, the default sizes)
//   dotnet run -c Release --project examples/ListOps -- --kind S4         (S4 at the same sizes)
//   dotnet run -c Release --project examples/ListOps -- --quick           (a short run)
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Spectre.Console;
using SsmGen;
using SsmGen.Checkpoints;
using SsmGen.Examples;
using SsmGen.Examples.ListOps;
using SsmGen.Tasks;
using SsmGen.Training;

const string Usage = """
    Options:
      --kind S4D|S4       the blocks' SSM (default S4D)
      --quick             2 blocks of H = 64, 4,000 training expressions of 32 to 256 tokens, 3 epochs
      --train N           training expressions (default 20,000; 2,000 each for validation and test)
      --min-length N      expressions are longer than N tokens (default 64)
      --max-length N      … and shorter than N (default 512; at most 1,024)
      --epochs N          epochs (default 10)
      --batch N           batch size (default 32)
      --lr X              peak learning rate (default 0.004)
      --seed N            seed of the data and the model (default 1)
      --out DIR           checkpoint and results (default runs/listops-<kind>[-quick])
    """;

string kind = "S4D";
bool quick = false;
int? train = null, minLength = null, maxLength = null, epochs = null;
int batch = 32;
float lr = 4e-3f;
ulong seed = 1;
string? outDir = null;
var outcome = CommandLine.Read(args, Console.Out, Console.Error, Usage, (name, next) =>
{
    string? v = name is "--quick" ? "" : next();
    switch (name)
    {
        case "--kind": kind = v!; return v is "S4D" or "S4";
        case "--quick": quick = true; return true;
        case "--train": return int.TryParse(v, out int t) && t >= 100 && (train = t) > 0;
        case "--min-length": return int.TryParse(v, out int a) && a >= 0 && (minLength = a) >= 0;
        case "--max-length": return int.TryParse(v, out int b) && b is > 2 and <= 1024 && (maxLength = b) > 0;
        case "--epochs": return int.TryParse(v, out int e) && e > 0 && (epochs = e) > 0;
        case "--batch": return int.TryParse(v, out batch) && batch > 0;
        case "--lr": return float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out lr) && lr > 0;
        case "--seed": return ulong.TryParse(v, out seed);
        case "--out": outDir = v; return !string.IsNullOrWhiteSpace(v);
        default: return false;
    }
});
if (outcome != CommandLineOutcome.Run) return outcome == CommandLineOutcome.Help ? 0 : 2;
var options = new ListOpsOptions(MinLength: minLength ?? (quick ? 32 : 64), MaxLength: maxLength ?? (quick ? 256 : 512));
if (options.MaxLength <= options.MinLength + 1) { Console.Error.WriteLine("--max-length must exceed --min-length + 1."); return 2; }
int trainCount = train ?? (quick ? 4000 : 20000), heldOut = quick ? 500 : 2000, epochCount = epochs ?? (quick ? 3 : 10);
string output = outDir ?? Path.Combine("runs", $"listops-{kind.ToLowerInvariant()}{(quick ? "-quick" : "")}");
int length = options.MaxLength - 1;

var clock = Stopwatch.StartNew();
var (trainSet, validation, test) = ListOps.Generate(options, trainCount, heldOut, heldOut, seed);
AnsiConsole.MarkupLineInterpolated($"ListOps: {trainSet.Length:N0} / {validation.Length:N0} / {test.Length:N0} distinct expressions of {options.MinLength + 1} to {options.MaxLength - 1} tokens (mean {trainSet.Average(e => e.Tokens.Length):F0}), depth ≤ {options.MaxDepth}, ≤ {options.MaxArguments} arguments; generated in {clock.Elapsed.TotalSeconds:F1} s.");
using ISsmModel model = (kind, quick) switch
{
    ("S4", true) => new QuickListOpsS4(batch, length),
    ("S4", false) => new ListOpsS4(batch, length),
    (_, true) => new QuickListOpsS4D(batch, length),
    _ => new ListOpsS4D(batch, length),
};
model.Initialize(seed);
model.DropoutSeed = seed;
int steps = trainSet.Length / batch;
var trainer = new Trainer(model, new TrainerOptions
{
    LearningRate = lr,
    SsmLearningRate = 1e-3f,
    WeightDecay = 0.05f,
    WarmupSteps = Math.Min(500, steps),
    TotalSteps = steps * epochCount,
});
AnsiConsole.MarkupLineInterpolated($"{model.GetType().Name}: {model.Config.Layers.Count} {kind} blocks, H = {model.Config.DModel}, {model.Parameters.Length:N0} parameters; batch {batch}, {epochCount} epochs of {steps} steps, every batch padded to {length} tokens.");
Directory.CreateDirectory(output);
var stop = StopRequest.OnCtrlC("finishing this batch, then writing the results so far.");

var tokens = new int[batch * length];
var labels = new int[batch];
void Fill(ListOpsExample[] set, int[] order, int from, int count)
{
    for (int b = 0; b < count; b++)
    {
        var e = set[order[from + b]];
        ListOps.PadLeft(e.Tokens, tokens.AsSpan(b * length, length), length);
        labels[b] = e.Label;
    }
}
double Accuracy(ListOpsExample[] set)
{
    var order = Enumerable.Range(0, set.Length).ToArray();
    int correct = 0;
    for (int s = 0; s < set.Length; s += batch)
    {
        int n = Math.Min(batch, set.Length - s);
        Fill(set, order, s, n);
        correct += trainer.Evaluate(tokens.AsSpan(0, n * length), labels.AsSpan(0, n), n, length);
    }
    return (double)correct / set.Length;
}

var history = new List<(int Epoch, double Loss, double Train, double Validation, double Seconds)>();
double best = -1;
string checkpoint = Path.Combine(output, "checkpoint.safetensors");
for (int epoch = 1; epoch <= epochCount && !stop.Requested; epoch++)
{
    var order = Enumerable.Range(0, trainSet.Length).ToArray();
    var rng = new Rng(seed * 1000 + (ulong)epoch);
    for (int i = order.Length - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (order[i], order[j]) = (order[j], order[i]); }
    var epochClock = Stopwatch.StartNew();
    double loss = 0; int correct = 0, seen = 0, step = 0;
    for (; step < steps && !stop.Requested; step++)
    {
        Fill(trainSet, order, step * batch, batch);
        var r = trainer.TrainStep(tokens, labels, batch, length);
        (loss, correct, seen) = (loss + r.Loss, correct + r.Correct, seen + r.Count);
        if ((step + 1) % Math.Max(1, steps / 10) == 0)
            Console.WriteLine($"epoch {epoch}/{epochCount}  step {step + 1}/{steps}  loss {loss / (step + 1):F4}  acc {100.0 * correct / seen:F1}%  {seen / epochClock.Elapsed.TotalSeconds:F1} seq/s");
    }
    if (step == 0) break;
    double val = Accuracy(validation);
    history.Add((epoch, loss / step, (double)correct / seen, val, epochClock.Elapsed.TotalSeconds));
    if (val > best)
    {
        best = val;
        Checkpoint.Save(model, checkpoint, new Dictionary<string, string> { ["task"] = "listops", ["model"] = model.GetType().Name, ["epoch"] = epoch.ToString(CultureInfo.InvariantCulture), ["seed"] = seed.ToString(CultureInfo.InvariantCulture) });
    }
    AnsiConsole.MarkupLineInterpolated($"epoch {epoch,2}/{epochCount}  loss {loss / step:F4}  train {100.0 * correct / seen:F1}%  [bold]validation {100 * val:F2}%[/]  {epochClock.Elapsed.TotalSeconds:F0} s{(val >= best ? "  (best: checkpoint saved)" : "")}");
}
if (history.Count == 0) return 130;
// the test set is read once, with the best validation checkpoint
Checkpoint.Load(model, checkpoint);
double testAccuracy = Accuracy(test);
var table = new Table().AddColumns("epoch", "train loss", "train acc", "validation acc", "time");
foreach (var h in history) table.AddRow(h.Epoch.ToString(), h.Loss.ToString("F4"), $"{100 * h.Train:F1}%", $"{100 * h.Validation:F2}%", $"{h.Seconds:F0} s");
AnsiConsole.Write(table);
var best1 = history.MaxBy(h => h.Validation);
string summary = $"{model.GetType().Name} on ListOps ({options.MinLength + 1}–{options.MaxLength - 1} tokens, {trainSet.Length:N0} training expressions, seed {seed}): test accuracy {100 * testAccuracy:F2}% with the best validation checkpoint (epoch {best1.Epoch}, validation {100 * best1.Validation:F2}%); {history.Sum(h => h.Seconds) / 60:F1} min of training.";
AnsiConsole.MarkupLineInterpolated($"[bold]{summary}[/]");
var md = new StringBuilder();
md.AppendLine(summary).AppendLine().AppendLine("| epoch | train loss | train acc | validation acc | seconds |").AppendLine("|---|---|---|---|---|");
foreach (var h in history) md.AppendLine(CultureInfo.InvariantCulture, $"| {h.Epoch} | {h.Loss:F4} | {100 * h.Train:F1}% | {100 * h.Validation:F2}% | {h.Seconds:F0} |");
File.WriteAllText(Path.Combine(output, "results.md"), md.ToString());
return 0;
