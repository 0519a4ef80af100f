// Trains an S4D classifier that SsmGen generates from the attributes below on a task this program
// makes itself, then streams one held-out sequence through the recurrent Step.
//
//   dotnet run -c Release --project examples/SyntheticTraining            (full run)
//   dotnet run -c Release --project examples/SyntheticTraining -- --quick (a short run)
using System.Diagnostics;
using SsmGen;
using SsmGen.Examples;
using SsmGen.Training;

var options = ExampleOptions.Parse(args);
if (options is null) return 2;

Console.WriteLine($"Task: which of {BurstTask.Classes} tones is hidden in {BurstTask.Length} steps of noise " +
                  $"({options.TrainCount} training / {options.TestCount} held-out sequences, seed {options.Seed}).");
var train = BurstTask.Generate(options.TrainCount, options.Seed);
var test = BurstTask.Generate(options.TestCount, options.Seed + 1_000_003);

const int batch = 32;
var model = new BurstClassifier(batch, BurstTask.Length);
model.Initialize(options.Seed);
model.DropoutSeed = options.Seed;
int stepsPerEpoch = options.TrainCount / batch;
var trainer = new Trainer(model, new TrainerOptions
{
    LearningRate = 1e-2f,
    SsmLearningRate = 1e-3f,
    WeightDecay = 0.01f,
    WarmupSteps = Math.Min(50, stepsPerEpoch),
    TotalSteps = stepsPerEpoch * options.Epochs,
});
Console.WriteLine($"Model: {BurstClassifier.LayerCount} S4D blocks, H = {BurstClassifier.DModel}, N = 64, {BurstClassifier.ParameterCount:N0} parameters.");

var order = Enumerable.Range(0, options.TrainCount).ToArray();
var xb = new float[batch * BurstTask.Length];
var yb = new int[batch];
var rng = new Rng(options.Seed);
var total = Stopwatch.StartNew();
for (int epoch = 1; epoch <= options.Epochs; epoch++)
{
    var clock = Stopwatch.StartNew();
    for (int i = order.Length - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (order[i], order[j]) = (order[j], order[i]); }
    double loss = 0; int correct = 0, seen = 0;
    for (int s = 0; s < stepsPerEpoch; s++)
    {
        for (int b = 0; b < batch; b++)
        {
            int k = order[s * batch + b];
            train.Inputs.AsSpan(k * BurstTask.Length, BurstTask.Length).CopyTo(xb.AsSpan(b * BurstTask.Length));
            yb[b] = train.Labels[k];
        }
        var r = trainer.TrainStep(xb, yb, batch, BurstTask.Length);
        loss += r.Loss; correct += r.Correct; seen += r.Count;
    }
    double testAcc = Evaluate(trainer, test);
    Console.WriteLine($"epoch {epoch,2}/{options.Epochs}  loss {loss / stepsPerEpoch:F4}  train acc {100.0 * correct / seen,5:F1}%  " +
                      $"test acc {100 * testAcc,5:F1}%  {seen / clock.Elapsed.TotalSeconds,6:F0} seq/s  {clock.Elapsed.TotalSeconds:F1} s");
}
double final = Evaluate(trainer, test);
Console.WriteLine($"Test accuracy: {100 * final:F1}% on {options.TestCount} held-out sequences after {total.Elapsed.TotalSeconds:F0} s of training.");

// Streaming inference: the recurrent Step reproduces the convolution-mode Forward token by token.
var state = model.CreateState();
var streamed = new float[BurstTask.Classes];
for (int t = 0; t < BurstTask.Length; t++) model.Step(state, test.Inputs.AsSpan(t, 1), streamed);
var full = new float[BurstTask.Classes];
model.Forward(test.Inputs.AsSpan(0, BurstTask.Length), 1, BurstTask.Length, full);
double gap = streamed.Zip(full, (a, b) => Math.Abs(a - b)).Max();
Console.WriteLine($"Streaming Step over sequence 0: class {ArgMax(streamed)} (label {test.Labels[0]}), max |Step − Forward| = {gap:E1}.");
return 0;

static double Evaluate(Trainer trainer, BurstTask.Data data)
{
    int correct = 0;
    for (int s = 0; s + batch <= data.Labels.Length; s += batch)
        correct += trainer.Evaluate(data.Inputs.AsSpan(s * BurstTask.Length, batch * BurstTask.Length), data.Labels.AsSpan(s, batch), batch, BurstTask.Length);
    return (double)correct / (data.Labels.Length / batch * batch);
}

static int ArgMax(float[] v) => Array.IndexOf(v, v.Max());

namespace SsmGen.Examples
{
    /// <summary>The model: declared here, generated at build time.</summary>
    [SsmModel(Input = 1, DModel = 64, Output = BurstTask.Classes, Pooling = Pooling.Mean)]
    [S4DLayer(N = 64, Init = S4DInit.Lin, DtMin = 0.01, DtMax = 0.5, Dropout = 0.1, Repeat = 2)]
    public partial class BurstClassifier { }

    /// <summary>
    /// A tone burst of one of four periods (3, 5, 8, 13 steps), 32 steps long, at a random place in a noisy sequence;
    /// the class is the period. Gaussian noise σ = 0.5 against a burst amplitude of 1.
    /// </summary>
    public static class BurstTask
    {
        public const int Classes = 4, Length = 256, Burst = 32;
        private static readonly double[] Periods = [3, 5, 8, 13];
        private const double Noise = 0.5;

        public sealed record Data(float[] Inputs, int[] Labels);

        public static Data Generate(int count, ulong seed)
        {
            var rng = new Rng(seed);
            var x = new float[count * Length];
            var y = new int[count];
            for (int i = 0; i < count; i++)
            {
                int c = y[i] = rng.NextInt(Classes);
                int start = rng.NextInt(Length - Burst);
                double phase = rng.Uniform(0, 2 * Math.PI);
                for (int t = 0; t < Length; t++)
                {
                    double v = Noise * rng.Normal();
                    if (t >= start && t < start + Burst) v += Math.Sin(2 * Math.PI * (t - start) / Periods[c] + phase);
                    x[i * Length + t] = (float)v;
                }
            }
            return new Data(x, y);
        }
    }

    /// <summary>Command-line options.</summary>
    public sealed record ExampleOptions(int Epochs, int TrainCount, int TestCount, ulong Seed)
    {
        public static ExampleOptions? Parse(string[] args)
        {
            var o = new ExampleOptions(Epochs: 4, TrainCount: 4096, TestCount: 1024, Seed: 1);
            for (int i = 0; i < args.Length; i++)
            {
                string a = args[i];
                string? Next() => i + 1 < args.Length ? args[++i] : null;
                switch (a)
                {
                    case "--quick": o = o with { Epochs = 3, TrainCount = 2048, TestCount = 512 }; break;
                    case "--epochs" when int.TryParse(Next(), out int e) && e > 0: o = o with { Epochs = e }; break;
                    case "--train" when int.TryParse(Next(), out int n) && n >= 32: o = o with { TrainCount = n }; break;
                    case "--seed" when ulong.TryParse(Next(), out ulong s): o = o with { Seed = s }; break;
                    default:
                        Console.Error.WriteLine($"Unknown or invalid option '{a}'. Options: --quick, --epochs N (≥ 1), --train N (≥ 32), --seed S.");
                        return null;
                }
            }
            return o;
        }
    }
}
