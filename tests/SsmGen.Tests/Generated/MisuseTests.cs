using SsmGen.Cuda;
using SsmGen.Tests.Cuda;

namespace SsmGen.Tests.Generated;

/// <summary>
/// Misuse is loud and changes nothing: a non-finite input is refused naming where it is (every kind, Forward and
/// Step), two threads in one model throw instead of corrupting each other's outputs, a disposed model refuses work,
/// and Backward needs a training Forward.
/// </summary>
public class MisuseTests
{
    public static TheoryData<string> RealInputKinds => new() { "S4D", "Mamba", "RNN", "IDS", "Attention", "AllKinds" };

    private static ISsmModel Build(string kind) => kind switch
    {
        "S4D" => new TinyRealMean(3, 8),
        "Mamba" => new MambaOdd(3, 8),
        "RNN" => new RealRnn(3, 8),
        "IDS" => new RealIds(3, 8),
        "Attention" => new RealAttention(3, 8),
        _ => new AllKinds(3, 8),
    };

    [Theory]
    [MemberData(nameof(RealInputKinds))]
    public void ANonFiniteInputIsRefusedNamingItsPlaceAndChangesNothing(string kind)
    {
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            var model = Build(kind);
            model.Initialize(3);
            int inputSize = model.Config.Input, rows = model.Config.Pooling == Pooling.None ? 3 * 8 : 3;
            var input = TestConfigs.RandomArray(3 * 8 * inputSize, 5).Select(v => (float)v).ToArray();
            input[(1 * 8 + 5) * inputSize + inputSize - 1] = bad;   // sequence 1, position 5, last feature
            var output = Enumerable.Repeat(7f, rows * model.Config.Output).ToArray();
            var parameters = model.Parameters.ToArray();
            ulong dropoutStep = model.DropoutStep;

            var e = Assert.Throws<ArgumentException>(() => model.Forward(input, 3, 8, output, training: true));
            Assert.Contains($"sequence 1, position 5, feature {inputSize - 1}", e.Message);
            Assert.All(output, v => Assert.Equal(7f, v));
            Assert.Equal(parameters, model.Parameters.ToArray());
            Assert.Equal(dropoutStep, model.DropoutStep);
            Assert.Throws<InvalidOperationException>(() => model.Backward(new float[rows * model.Config.Output])); // nothing to differentiate

            var state = model.CreateState();
            var x = new float[inputSize];
            x[0] = bad;
            var y = new float[model.Config.Output];
            var se = Assert.Throws<ArgumentException>(() => model.Step(state, x, y));
            Assert.Contains("feature 0", se.Message);
            Assert.Equal(0, state.Position);
            Assert.All(state.Values, v => Assert.Equal(0f, v));

            // The same model and stream work on as before.
            x[0] = 0.5f;
            model.Step(state, x, y);
            Assert.Equal(1, state.Position);
            Assert.All(y, v => Assert.True(float.IsFinite(v)));
        }
    }

    [EmulationFact]
    public void TheGpuPathRefusesANonFiniteInputBeforeAnythingChanges()
    {
        var (gpu, cfg) = GeneratedVsReferenceTests.Make("AllKinds", 2, 6, ModelUse.Training, ComputeDevice.CudaEmulation());
        using (gpu)
        {
            gpu.Initialize(4);
            var input = TestConfigs.RandomArray(2 * 6 * cfg.Input, 8).Select(v => (float)v).ToArray();
            input[(0 * 6 + 2) * cfg.Input] = float.NaN;   // sequence 0, position 2, feature 0
            var output = Enumerable.Repeat(7f, 2 * cfg.Output).ToArray();
            var parameters = gpu.Parameters.ToArray();
            var e = Assert.Throws<ArgumentException>(() => gpu.Forward(input, 2, 6, output, training: true));
            Assert.Contains("sequence 0, position 2, feature 0", e.Message);
            Assert.All(output, v => Assert.Equal(7f, v));
            Assert.Equal(parameters, gpu.Parameters.ToArray());
            var state = gpu.CreateState();
            Assert.Throws<ArgumentException>(() => gpu.Step(state, [float.PositiveInfinity, 0f], new float[cfg.Output]));
            Assert.Equal(0, state.Position);
        }
    }

    [Fact]
    public void AnS4ModelLongerThanItsKernelIsRefusedWithTheReason()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new S4Tokens(1, 65));
        Assert.Contains("kernel length 64", e.Message);
        using var fits = new S4Tokens(1, 64);
    }

    [Fact]
    public void TwoThreadsInOneModelThrowInsteadOfCorruptingResults()
    {
        const int batch = 2, length = 256;
        var model = new SeqClassifier(batch, length);
        model.Initialize(1);
        var inputs = new ulong[] { 11, 12 }.Select(seed => TestConfigs.RandomArray(batch * length, seed).Select(v => (float)v).ToArray()).ToArray();
        var expected = inputs.Select(x => { var y = new float[batch * 10]; model.Forward(x, batch, length, y); return y; }).ToArray();

        int refused = 0, wrong = 0, completed = 0;
        using var start = new Barrier(2);
        var threads = Enumerable.Range(0, 2).Select(k => new Thread(() =>
        {
            var y = new float[batch * 10];
            start.SignalAndWait();
            for (int i = 0; i < 60; i++)
            {
                try { model.Forward(inputs[k], batch, length, y); }
                catch (InvalidOperationException) { Interlocked.Increment(ref refused); continue; }
                Interlocked.Increment(ref completed);
                if (!y.SequenceEqual(expected[k])) Interlocked.Increment(ref wrong);
            }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();

        Assert.Equal(0, wrong);
        Assert.True(refused > 0, $"the two threads never overlapped in {completed} calls");
        Assert.True(completed > 0);
        // The guard is released after each call, refused or not: the model still works.
        var again = new float[batch * 10];
        model.Forward(inputs[0], batch, length, again);
        Assert.Equal(expected[0], again);
    }

    [Fact]
    public void ADisposedModelRefusesWork()
    {
        var model = new TinyRealMean(2, 4);
        model.Initialize(1);
        var state = model.CreateState();
        model.Dispose();
        var y = new float[2 * 3];
        Assert.Throws<ObjectDisposedException>(() => model.Forward(new float[2 * 4 * 2], 2, 4, y));
        Assert.Throws<ObjectDisposedException>(() => model.Backward(new float[6]));
        Assert.Throws<ObjectDisposedException>(() => model.Step(state, new float[2], new float[3]));
        Assert.Throws<ObjectDisposedException>(() => model.Initialize(2));
        model.Dispose(); // twice is fine
    }

    [Fact]
    public void BackwardNeedsATrainingForward()
    {
        var model = new TinyRealMean(2, 4);
        model.Initialize(1);
        var x = TestConfigs.RandomArray(2 * 4 * 2, 3).Select(v => (float)v).ToArray();
        var y = new float[2 * 3];
        model.Forward(x, 2, 4, y);
        var e = Assert.Throws<InvalidOperationException>(() => model.Backward(new float[6]));
        Assert.Contains("training Forward", e.Message);
        model.Forward(x, 2, 4, y, training: true);
        model.Backward(new float[6]);
    }
}
