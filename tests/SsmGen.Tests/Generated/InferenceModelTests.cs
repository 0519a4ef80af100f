using SsmGen.Checkpoints;
using SsmGen.Reference;
using SsmGen.Training;
using Xunit.Abstractions;

namespace SsmGen.Tests.Generated;

/// <summary>
/// The inference-only build (ModelUse.Inference): loaded from a checkpoint a training build saved, its Forward
/// and Step match the double-precision reference; it holds no gradients and refuses every training call.
/// </summary>
public class InferenceModelTests(ITestOutputHelper output)
{
    public static TheoryData<string> Models => GeneratedVsReferenceTests.Models;

    [Theory]
    [MemberData(nameof(Models))]
    public void ACheckpointLoadedForInferenceMatchesTheReference(string name)
    {
        const int batch = 2, length = 23;
        var (trained, cfg) = GeneratedVsReferenceTests.Make(name, batch, length);
        trained.Initialize(11);
        string path = Path.Combine(Path.GetTempPath(), $"ssmgen-inference-{name}-{Environment.ProcessId}.safetensors");
        try
        {
            Checkpoint.Save(trained, path);
            var (model, _) = GeneratedVsReferenceTests.Make(name, batch, length, ModelUse.Inference);
            Checkpoint.Load(model, path);
            Assert.Equal(ModelUse.Inference, model.Use);
            Assert.Equal(0, model.Gradients.Length);

            var reference = new ReferenceModel<double>(cfg);
            for (int i = 0; i < trained.Parameters.Length; i++) reference.Parameters[i] = trained.Parameters[i];
            var x = TestConfigs.RandomArray(batch * length * cfg.Input, 5);
            var tokens = TestConfigs.RandomTokens(batch * length, Math.Max(cfg.Vocab, 1), 6);
            int rows = cfg.Pooling == Pooling.None ? batch * length : batch;
            var y = new float[rows * cfg.Output];
            double[] expected;
            if (cfg.TokenInput) { model.Forward(tokens, batch, length, y); expected = reference.Forward(tokens, batch, length); }
            else { model.Forward(x.Select(v => (float)v).ToArray(), batch, length, y); expected = reference.Forward(x, batch, length); }
            double scale = expected.Max(Math.Abs);
            double err = y.Zip(expected, (a, b) => Math.Abs(a - b)).Max() / scale;

            // Streaming the first sequence token by token gives its outputs too (the last one for pooled models).
            var state = model.CreateState();
            var ys = new float[cfg.Output];
            for (int t = 0; t < length; t++)
            {
                if (cfg.TokenInput) model.Step(state, tokens[t], ys);
                else model.Step(state, x.AsSpan(t * cfg.Input, cfg.Input).ToArray().Select(v => (float)v).ToArray(), ys);
            }
            var lastRow = expected.AsSpan((cfg.Pooling == Pooling.None ? length - 1 : 0) * cfg.Output, cfg.Output).ToArray();
            double stepErr = ys.Zip(lastRow, (a, b) => Math.Abs(a - b)).Max() / Math.Max(lastRow.Max(Math.Abs), 1e-12);
            output.WriteLine($"{name}: inference Forward vs reference {err:E2}, Step {stepErr:E2}");
            Assert.True(err < 1e-5, $"Forward relative error {err:E2}");
            Assert.True(stepErr < 1e-4, $"Step relative error {stepErr:E2}");
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void TrainingCallsOnAnInferenceModelThrowAndChangeNothing()
    {
        var (model, cfg) = GeneratedVsReferenceTests.Make("MambaTokens", 2, 8, ModelUse.Inference);
        model.Initialize(1);
        var tokens = TestConfigs.RandomTokens(16, cfg.Vocab, 2);
        var before = new float[16 * cfg.Output];
        model.Forward(tokens, 2, 8, before);
        var y = new float[16 * cfg.Output];
        var e1 = Assert.Throws<InvalidOperationException>(() => model.Forward(tokens, 2, 8, y, training: true));
        Assert.Contains("inference", e1.Message);
        Assert.All(y, v => Assert.Equal(0f, v)); // refused before writing anything
        var e2 = Assert.Throws<InvalidOperationException>(() => model.Backward(new float[y.Length]));
        Assert.Contains("Backward", e2.Message);
        var e3 = Assert.Throws<ArgumentException>(() => new Trainer(model, new TrainerOptions()));
        Assert.Contains("inference", e3.Message);
        // The refused calls left the model as it was: the same inference output as before them.
        model.Forward(tokens, 2, 8, y);
        Assert.Equal(before, y);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MambaTokens(1, 1, (ModelUse)7));
    }
}
