// Sequential MNIST with a generated S4D model: 784 pixels as a sequence, one digit class per sequence.
//
//   dotnet run -c Release --project examples/SequentialMnist                 (sMNIST, 20 epochs)
//   dotnet run -c Release --project examples/SequentialMnist -- --permuted   (psMNIST)
//   dotnet run -c Release --project examples/SequentialMnist -- --quick      (a short run)
//   ... -- --resume runs/smnist/checkpoint.safetensors                       (continue a run)
//   mpirun -np 2 -x DOTNET_PROCESSOR_COUNT=1 dotnet examples/SequentialMnist/bin/Release/net10.0/SequentialMnist.dll --quick
//                                           (data parallel: each rank trains on its share of every batch)
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Spectre.Console;
using SsmGen;
using SsmGen.Examples;
using SsmGen.Checkpoints;
using SsmGen.Distributed;
using SsmGen.Examples.Mnist;
using SsmGen.Training;

var options = Options.Parse(args, Console.Error);
if (options is null) return 2;
// Under mpirun: data parallel over MPI. Every rank walks the same shuffled batches and trains on its own rows of
// each; rank 0 alone fetches the data first, prints, evaluates and writes checkpoints and plots.
using ICollective collective = MpiCollective.LaunchedByMpirun ? new MpiCollective() : SingleProcess.Instance;
try
{
    return Run(options, collective);
}
catch (Exception e) when (e is InvalidDataException or InvalidOperationException or IOException or ArgumentException)
{
    if (collective is MpiCollective { Size: > 1 } mpi)
    {
        // this rank cannot go on: say why, and end the whole job rather than leave the other ranks waiting for it
        Console.Error.WriteLine($"rank {mpi.Rank}: error: {e.Message}");
        mpi.Abort(1);
    }
    AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {e.Message}");
    return 1;
}

static int Run(Options o, ICollective collective)
{
    bool lead = collective.Rank == 0;
    if (o.Batch % collective.Size != 0)
        throw new ArgumentException($"--batch {o.Batch} does not split evenly over {collective.Size} ranks.");
    int share = o.Batch / collective.Size, firstRow = collective.Rank * share;
    if (!lead)
    {
        Console.SetOut(TextWriter.Null);
        AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null) });
    }
    MnistData? fetched = lead ? MnistData.Load(o.DataDir, m => AnsiConsole.MarkupLineInterpolated($"[grey]{m}[/]")) : null;
    collective.Barrier(); // the other ranks read what rank 0 fetched
    var data = fetched ?? MnistData.Load(o.DataDir, _ => { });
    var (train, test) = data.Split(testCount: 1500, o.Seed);
    if (o.TrainLimit is int limit) train = train[..Math.Min(limit, train.Length)];
    int[]? perm = o.Permuted ? MnistData.PsmnistPermutation(o.Seed) : null;
    ISsmModel model = (o.Kind, o.Quick) switch
    {
        ("S4", true) => new QuickSmnistS4Model(share, MnistData.Pixels),
        ("S4", false) => new SmnistS4Model(share, MnistData.Pixels),
        (_, true) => new QuickSmnistModel(share, MnistData.Pixels),
        _ => new SmnistModel(share, MnistData.Pixels),
    };
    model.Initialize(o.Seed);
    model.DropoutSeed = o.Seed + (ulong)collective.Rank * 0x9E3779B9UL; // each rank's rows get their own dropout masks
    int stepsPerEpoch = train.Length / o.Batch;
    var trainer = new Trainer(model, MnistData.Recipe(o.LearningRate, stepsPerEpoch, o.Epochs) with { OverlapGradients = !o.NoOverlap }, collective);
    Directory.CreateDirectory(o.Output);
    if (o.ExportDigits > 0 && lead) ExportDigits(o, data, test, perm);
    string checkpointPath = Path.Combine(o.Output, "checkpoint.safetensors");
    string optimizerPath = Path.Combine(o.Output, "optimizer.safetensors");
    var history = new List<EpochRecord>();
    int firstEpoch = 1;
    if (o.Resume is not null)
    {
        firstEpoch = Resume(o, model, trainer, history);
        AnsiConsole.MarkupLineInterpolated($"Resumed from [bold]{o.Resume}[/] after epoch {firstEpoch - 1} (step {trainer.Step}).");
    }
    AnsiConsole.MarkupLineInterpolated($"[bold]{(o.Permuted ? "psMNIST" : "sMNIST")}[/]: {train.Length:N0} training / {test.Length:N0} held-out digits, 784 steps each{(o.MaxShift > 0 ? $", training digits shifted by up to {o.MaxShift} px" : "")}; {model.GetType().Name}: {model.Config.Layers.Count} {o.Kind} blocks, H = {model.Config.DModel}, N = {StateSize(model.Config.Layers[0])}, {model.Parameters.Length:N0} parameters; batch {o.Batch}{(collective.Size > 1 ? $" over {collective.Size} ranks ({collective.Name}; {share} rows each)" : "")}.");

    var stop = StopRequest.OnCtrlC("finishing this batch, saving a checkpoint, then exiting.");

    var xb = new float[share * MnistData.Pixels];
    var yb = new int[share];
    var total = Stopwatch.StartNew();
    bool interactive = !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
    for (int epoch = firstEpoch; epoch <= o.Epochs && !stop.Requested; epoch++)
    {
        var order = (int[])train.Clone();
        var rng = new Rng(o.Seed * 1000 + (ulong)epoch);
        MnistData.Shuffle(order, rng);
        var clock = Stopwatch.StartNew();
        double lossSum = 0; int correct = 0, seen = 0, step = 0;
        string Status() => seen == 0 ? $"epoch {epoch}/{o.Epochs}" :
            $"epoch {epoch}/{o.Epochs}  loss {lossSum / step:F4}  acc {100.0 * correct / seen:F1}%  {seen / clock.Elapsed.TotalSeconds:F1} seq/s";
        void TrainBatch()
        {
            for (int b = 0; b < o.Batch; b++)
            {
                int k = order[step * o.Batch + b];
                int s = o.MaxShift, dx = s == 0 ? 0 : rng.NextInt(2 * s + 1) - s, dy = s == 0 ? 0 : rng.NextInt(2 * s + 1) - s;
                if (b < firstRow || b >= firstRow + share) continue; // another rank's row (its shifts drawn all the same)
                data.CopySequence(k, perm, dx, dy, xb.AsSpan((b - firstRow) * MnistData.Pixels, MnistData.Pixels));
                yb[b - firstRow] = data.Labels[k];
            }
            var r = trainer.TrainStep(xb, yb, share, MnistData.Pixels);
            lossSum += r.Loss; correct += r.Correct; seen += r.Count; step++;
        }
        if (interactive)
        {
            AnsiConsole.Progress().AutoClear(true)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask(Status(), maxValue: stepsPerEpoch);
                    while (step < stepsPerEpoch && !stop.Requested) { TrainBatch(); task.Increment(1); task.Description = Status(); }
                });
        }
        else
        {
            int every = Math.Max(1, stepsPerEpoch / 10);
            while (step < stepsPerEpoch && !stop.Requested)
            {
                TrainBatch();
                if (step % every == 0 || step == stepsPerEpoch)
                {
                    double eta = clock.Elapsed.TotalSeconds / step * (stepsPerEpoch - step);
                    Console.WriteLine($"{Status()}  step {step}/{stepsPerEpoch}  ETA {eta:F0} s");
                }
            }
        }
        if (stop.Requested && step < stepsPerEpoch)
        {
            // An interrupted epoch is not recorded; the checkpoint holds the weights after the last batch,
            // and a resume repeats this epoch.
            if (lead) SaveCheckpoint(o, model, trainer, history, epoch - 1, checkpointPath, optimizerPath);
            AnsiConsole.MarkupLineInterpolated($"Saved [bold]{checkpointPath}[/] during epoch {epoch}; continue with --resume {checkpointPath}.");
            return 130;
        }
        double trainSeconds = clock.Elapsed.TotalSeconds;
        double testAcc = lead ? data.Accuracy(trainer, test, perm, share) : 0; // the ranks hold the same weights: one evaluates
        var rec = new EpochRecord(epoch, lossSum / step, (double)correct / seen, testAcc, clock.Elapsed.TotalSeconds);
        history.Add(rec);
        if (lead)
        {
            SaveCheckpoint(o, model, trainer, history, epoch, checkpointPath, optimizerPath);
            Plots.Curves(Path.Combine(o.Output, "curves.png"), history, $"{(o.Permuted ? "psMNIST" : "sMNIST")} — {model.GetType().Name}");
            Plots.Kernels(Path.Combine(o.Output, "kernels.png"), model);
        }
        collective.Barrier(); // the next epoch starts together (and a resume finds the checkpoint complete)
        AnsiConsole.MarkupLineInterpolated($"[grey]training: {step / trainSeconds:F2} steps/s, {seen / trainSeconds:F1} seq/s ({collective.Size} rank{(collective.Size > 1 ? "s" : "")}, {Environment.ProcessorCount} thread{(Environment.ProcessorCount > 1 ? "s" : "")} each)[/]");
        AnsiConsole.MarkupLineInterpolated(
            $"epoch {epoch,2}/{o.Epochs}  loss {rec.TrainLoss:F4}  train {100 * rec.TrainAccuracy:F1}%  [bold]test {100 * rec.TestAccuracy:F2}%[/]  {seen / rec.Seconds:F1} seq/s  {rec.Seconds:F0} s  (total {total.Elapsed.TotalMinutes:F1} min)");
    }

    var table = new Table().AddColumns("epoch", "train loss", "train acc", "test acc", "time");
    foreach (var h in history)
        table.AddRow(h.Epoch.ToString(), h.TrainLoss.ToString("F4"), $"{100 * h.TrainAccuracy:F1}%", $"{100 * h.TestAccuracy:F2}%", $"{h.Seconds:F0} s");
    AnsiConsole.Write(table);
    if (history.Count > 0)
        AnsiConsole.MarkupLineInterpolated($"Best test accuracy {100 * history.Max(h => h.TestAccuracy):F2}% on {test.Length:N0} held-out digits; {history.Sum(h => h.Seconds) / 60:F1} min of training. Checkpoint, curves.png and kernels.png in {o.Output}.");
    return 0;
}

static int StateSize(LayerConfig layer) => layer switch { S4DLayerConfig l => l.N, S4LayerConfig l => l.N, _ => 0 };

static void SaveCheckpoint(Options o, ISsmModel model, Trainer trainer, List<EpochRecord> history, int epoch, string path, string optimizerPath)
{
    var meta = new Dictionary<string, string>
    {
        ["task"] = o.Task,
        ["model"] = model.GetType().Name,
        ["epoch"] = epoch.ToString(CultureInfo.InvariantCulture),
        ["step"] = trainer.Step.ToString(CultureInfo.InvariantCulture),
        ["seed"] = o.Seed.ToString(CultureInfo.InvariantCulture),
        ["history"] = JsonSerializer.Serialize(history.Select(h => new[] { h.Epoch, h.TrainLoss, h.TrainAccuracy, h.TestAccuracy, h.Seconds }).ToArray(), HistoryJson.Default.DoubleArrayArray),
    };
    // Optimizer first: a crash between the two writes leaves an older model with newer moments, never the reverse.
    Checkpoint.Write(optimizerPath,
        [("adamw.m", [trainer.Optimizer.FirstMoments.Length], trainer.Optimizer.FirstMoments.ToArray()),
         ("adamw.v", [trainer.Optimizer.SecondMoments.Length], trainer.Optimizer.SecondMoments.ToArray())],
        new Dictionary<string, string> { ["step"] = trainer.Optimizer.StepCount.ToString(CultureInfo.InvariantCulture) });
    Checkpoint.Save(model, path, meta);
}

static int Resume(Options o, ISsmModel model, Trainer trainer, List<EpochRecord> history)
{
    var file = SafetensorsFile.Read(o.Resume!);
    string Meta(string key) => file.Metadata.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"Checkpoint {o.Resume} has no '{key}' metadata; it was not written by this example.");
    if (Meta("task") != o.Task || Meta("model") != model.GetType().Name)
        throw new InvalidDataException($"Checkpoint {o.Resume} is for {Meta("task")} with {Meta("model")}; this run is {o.Task} with {model.GetType().Name}.");
    string optimizerPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(o.Resume!))!, "optimizer.safetensors");
    var opt = SafetensorsFile.Read(optimizerPath);
    var m = new float[trainer.Optimizer.FirstMoments.Length];
    var v = new float[m.Length];
    opt.ReadAsFloat32("adamw.m", m);
    opt.ReadAsFloat32("adamw.v", v);
    long optStep = long.Parse(opt.Metadata.TryGetValue("step", out var s) ? s : "0", CultureInfo.InvariantCulture);
    var rows = JsonSerializer.Deserialize(Meta("history"), HistoryJson.Default.DoubleArrayArray) ?? [];
    // Everything is read and checked; now change state.
    Checkpoint.Load(model, file);
    trainer.Optimizer.Restore(m, v, optStep);
    trainer.Step = long.Parse(Meta("step"), CultureInfo.InvariantCulture);
    history.AddRange(rows.Select(r => new EpochRecord((int)r[0], r[1], r[2], r[3], r[4])));
    return int.Parse(Meta("epoch"), CultureInfo.InvariantCulture) + 1;
}

// Held-out digits as plain text, the input format of ssm-serve's classify command.
static void ExportDigits(Options o, MnistData data, int[] test, int[]? perm)
{
    int n = Math.Min(o.ExportDigits, test.Length);
    var digits = new StringBuilder();
    var labels = new StringBuilder();
    var pixels = new float[MnistData.Pixels];
    for (int i = 0; i < n; i++)
    {
        data.CopySequence(test[i], perm, pixels);
        digits.AppendLine(string.Join(' ', pixels.Select(v => v.ToString("R", CultureInfo.InvariantCulture))));
        labels.AppendLine(data.Labels[test[i]].ToString(CultureInfo.InvariantCulture));
    }
    File.WriteAllText(Path.Combine(o.Output, "held-out-digits.txt"), digits.ToString());
    File.WriteAllText(Path.Combine(o.Output, "held-out-labels.txt"), labels.ToString());
    AnsiConsole.MarkupLineInterpolated($"Wrote {n} held-out digits to {Path.Combine(o.Output, "held-out-digits.txt")} (for ssm-serve classify).");
}

[System.Text.Json.Serialization.JsonSerializable(typeof(double[][]))]
internal partial class HistoryJson : System.Text.Json.Serialization.JsonSerializerContext { }
