using SsmGen.Checkpoints;
using SsmGen.Examples.Oscillators;
using SsmGen.Training;

namespace SsmGen.Tests.Interpretability;

/// <summary>The oscillator report of examples/Oscillators on a checkpoint saved by a short training run.</summary>
public sealed class OscillatorReportTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ssmgen-oscillators-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Sequences Random(int count, int length, ulong seed)
    {
        var rng = new Rng(seed);
        var inputs = new float[count * length];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            labels[i] = rng.NextInt(4);
            // a tone whose frequency is the label, in noise: something a trained model can separate
            for (int t = 0; t < length; t++) inputs[i * length + t] = (float)(Math.Sin(0.2 * (labels[i] + 1) * t) + 0.3 * rng.Normal());
        }
        return new Sequences(inputs, labels, length, $"{count} tones in noise");
    }

    [Fact]
    public void TheReportIsWrittenForATrainedCheckpoint()
    {
        const int Batch = 8, Length = 48;
        using var model = new SmokeModel(Batch, Length);
        model.Initialize(2);
        var trainer = new Trainer(model, new TrainerOptions { TotalSteps = 20, WarmupSteps = 2 });
        var data = Random(Batch, Length, 5);
        for (int s = 0; s < 20; s++) trainer.TrainStep(data.Inputs, data.Labels, Batch, Length);
        string checkpoint = Path.Combine(_dir, "checkpoint.safetensors");
        Checkpoint.Save(model, checkpoint);

        var steps = new List<string>();
        using var evaluator = new SmokeModel(12, Length, ModelUse.Inference);
        var summary = OscillatorReport.Write(checkpoint, Path.Combine(_dir, "report"), Random(24, Length, 7), Random(8, Length, 9), figures: null, steps.Add, model: evaluator);
        foreach (var file in new[] { "report.md", "oscillators.csv", "operator.txt", "operator.tex", "interactions.csv", "bands.csv" })
            Assert.True(File.Exists(Path.Combine(_dir, "report", file)), $"{file} is missing");
        Assert.Equal(2 * 16 * 8 + 1, File.ReadAllLines(Path.Combine(_dir, "report", "oscillators.csv")).Length);
        Assert.True(summary.KernelCheck < 1e-12, $"kernel check {summary.KernelCheck:E2}");
        Assert.True(summary.OperatorVsReference < 1e-12, $"operator check {summary.OperatorVsReference:E2}");
        Assert.True(summary.OperatorVsModel < 1e-5, $"operator vs the model's Forward {summary.OperatorVsModel:E2}");
        Assert.Equal(["1", "2", "3", "full"], summary.Truncation.Select(r => r.Order));
        Assert.Equal(Enumerable.Range(0, summary.Config.Layers.Count), summary.Series.Fit.Select(f => f.Block));
        Assert.Contains(summary.Series.Polynomial, r => r.Block is null && r.Gelu == 1 && r.Gate == 0);
        Assert.All(Enumerable.Range(0, summary.Config.Layers.Count), i => Assert.Contains(summary.Series.Polynomial, r => r.Block == i));
        // every oscillator falls in one band, and removing bands is measured against the same full accuracy
        Assert.Equal(2 * 16 * 8, summary.Bands.Counts.Sum());
        Assert.Equal(summary.Truncation[^1].Accuracy, summary.Bands.Full, 9);
        // the exact decoder is the model: its accuracy is the trained model's own on these sequences
        var y = new float[24 * 4];
        var eval = Random(24, Length, 7);
        using var check = new SmokeModel(24, Length);
        Checkpoint.Load(check, checkpoint);
        check.Forward(eval.Inputs, 24, Length, y);
        int correct = Enumerable.Range(0, 24).Count(i => Enumerable.Range(0, 4).MaxBy(c => y[i * 4 + c]) == eval.Labels[i]);
        Assert.Equal(correct / 24.0, summary.Truncation[^1].Accuracy, 9);
        Assert.Contains(steps, s => s.Contains("wave interactions"));
        Assert.Contains("## 5. Wave interactions", File.ReadAllText(Path.Combine(_dir, "report", "report.md")));
    }

    [Fact]
    public void ACheckpointWithoutS4DBlocksIsRefusedClearly()
    {
        using var model = new MambaTokens(2, 8);
        model.Initialize(1);
        string checkpoint = Path.Combine(_dir, "mamba.safetensors");
        Checkpoint.Save(model, checkpoint);
        var e = Assert.Throws<InvalidDataException>(() =>
            OscillatorReport.Write(checkpoint, Path.Combine(_dir, "none"), Random(2, 8, 1), Random(2, 8, 2), null, _ => { }));
        Assert.Contains("no S4D block", e.Message);
        Assert.False(Directory.Exists(Path.Combine(_dir, "none")), "nothing is written for a refused checkpoint");
    }
}
