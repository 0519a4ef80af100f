using System.Diagnostics;
using System.Globalization;
using SsmGen.Checkpoints;
using SsmGen.Cuda;
using SsmGen.Examples.Mnist;
using SsmGen.Training;

namespace SsmGen.Examples.GpuCheck;

/// <summary>
/// The sMNIST example's full run (examples/SequentialMnist: SmnistModel, batch 16, its split, optimizer settings,
/// shuffles and psMNIST shifts) trained on the GPU, writing a checkpoint the CPU examples read (same tensor names
/// and metadata): where the 2-core machine would take hours, the GPU takes seconds per epoch.
/// </summary>
internal static class TrainMnist
{
    public static void Run(ComputeDevice device, string mnistFile, bool permuted, int epochs, string output, ulong seed = 1)
    {
        var packed = Digits.Load(mnistFile) ?? throw new FileNotFoundException($"No packed digits at '{mnistFile}' (make them with 'pack-mnist').");
        var data = MnistData.FromArrays(packed.Images, packed.Labels);
        var (train, test) = data.Split(testCount: 1500, seed);
        int[]? perm = permuted ? MnistData.PsmnistPermutation(seed) : null;
        const int Batch = 16;
        int maxShift = permuted ? 2 : 0, stepsPerEpoch = train.Length / Batch;
        string task = permuted ? "psmnist" : "smnist";
        using var model = new SmnistModel(Batch, MnistData.Pixels, ModelUse.Training, device);
        model.Initialize(seed);
        model.DropoutSeed = seed;
        var trainer = new Trainer(model, new TrainerOptions
        {
            LearningRate = 4e-3f, SsmLearningRate = 1e-3f, WeightDecay = 0.01f,
            WarmupSteps = Math.Min(200, stepsPerEpoch), TotalSteps = stepsPerEpoch * epochs,
        });
        Directory.CreateDirectory(output);
        var xb = new float[Batch * MnistData.Pixels];
        var yb = new int[Batch];
        var clock = Stopwatch.StartNew();
        double best = 0;
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            var order = (int[])train.Clone();
            var rng = new Rng(seed * 1000 + (ulong)epoch);
            MnistData.Shuffle(order, rng);
            double loss = 0;
            for (int step = 0; step < stepsPerEpoch; step++)
            {
                for (int b = 0; b < Batch; b++)
                {
                    int k = order[step * Batch + b];
                    int dx = maxShift == 0 ? 0 : rng.NextInt(2 * maxShift + 1) - maxShift, dy = maxShift == 0 ? 0 : rng.NextInt(2 * maxShift + 1) - maxShift;
                    data.CopySequence(k, perm, dx, dy, xb.AsSpan(b * MnistData.Pixels, MnistData.Pixels));
                    yb[b] = data.Labels[k];
                }
                loss += trainer.TrainStep(xb, yb, Batch, MnistData.Pixels).Loss;
            }
            double accuracy = data.Accuracy(trainer, test, perm, Batch);
            best = Math.Max(best, accuracy);
            Console.WriteLine(FormattableString.Invariant($"{task} epoch {epoch,2}/{epochs}: train loss {loss / stepsPerEpoch:F4}, held-out accuracy {100 * accuracy:F2}% ({clock.Elapsed.TotalSeconds:F0} s)"));
            Checkpoint.Save(model, Path.Combine(output, "checkpoint.safetensors"), new Dictionary<string, string>
            {
                ["task"] = task,
                ["model"] = nameof(SmnistModel),
                ["epoch"] = epoch.ToString(CultureInfo.InvariantCulture),
                ["step"] = trainer.Step.ToString(CultureInfo.InvariantCulture),
                ["seed"] = seed.ToString(CultureInfo.InvariantCulture),
                ["held_out_accuracy"] = accuracy.ToString("R", CultureInfo.InvariantCulture),
                ["trained_on"] = device.Name,
            });
        }
        Console.WriteLine(FormattableString.Invariant($"{task}: best held-out accuracy {100 * best:F2}% on 1,500 digits; {clock.Elapsed.TotalSeconds:F0} s on {device.Name}"));
    }
}
