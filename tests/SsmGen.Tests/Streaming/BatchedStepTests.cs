using SsmGen.Reference;
using SsmGen.Tests.Generated;
using Xunit.Abstractions;

namespace SsmGen.Tests.Streaming;

/// <summary>
/// Many streams per step: streams that join, leave, restart and change places between steps give, bit for bit, the
/// outputs of stepping each alone (every kind), and those outputs follow the float64 reference recurrence. A bad call
/// is refused before any stream moves on.
/// </summary>
public class BatchedStepTests(ITestOutputHelper output)
{
    private const int Streams = 6, MaxSteps = 30;

    /// <summary>Stream k joins at step Start(k) and reads Length(k) inputs; stream 3 restarts (Reset) after its first 7.</summary>
    private static int Start(int k) => 2 * k;
    private static int Length(int k) => k == 1 ? 9 : MaxSteps - 3 * k;
    private const int Restarted = 3, RestartAfter = 7;

    private sealed class Inputs(ModelConfig cfg, int k)
    {
        public readonly int[] Tokens = TestConfigs.RandomTokens(MaxSteps, Math.Max(cfg.Vocab, 1), 100 + (ulong)k);
        public readonly float[] Features = TestConfigs.RandomArray(MaxSteps * Math.Max(cfg.Input, 1), 200 + (ulong)k).Select(v => (float)v).ToArray();
    }

    // The input stream k reads at its own step i: a restarted stream reads its sequence again from the start.
    private static int InputIndex(int k, int i) => k == Restarted && i >= RestartAfter ? i - RestartAfter : i;

    /// <summary>Every kind with fp32 step weights; models covering every kind again with BF16, int8 and dynamic int8 ones.</summary>
    public static TheoryData<string, WeightFormat> Models
    {
        get
        {
            var models = new TheoryData<string, WeightFormat>();
            foreach (string name in new[] { "VectorTokens", "TinyRealMean", "MambaTokens", "MambaOdd", "MambaSigned", "DeltaTokens", "S4Tokens", "RnnTokens", "IdsTokens", "AttentionTokens", "AllKinds", "Hybrid" })
                models.Add(name, WeightFormat.Float32);
            foreach (string name in new[] { "TinyRealMean", "MambaTokens", "DeltaTokens", "S4Tokens", "AllKinds", "Hybrid" })
            {
                models.Add(name, WeightFormat.BFloat16);
                models.Add(name, WeightFormat.Int8);
                models.Add(name, WeightFormat.Int8Dynamic);
            }
            return models;
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void StreamsSteppedTogetherGiveExactlyTheirOutputsAlone(string name, WeightFormat format)
    {
        var (m, cfg) = GeneratedVsReferenceTests.Make(name, Streams, MaxSteps, ModelUse.Inference);
        m.Initialize(11);
        m.UseStepWeights(format);
        int o = cfg.Output;
        var inputs = Enumerable.Range(0, Streams).Select(k => new Inputs(cfg, k)).ToArray();

        // Alone: each stream stepped by itself, one token per call.
        var alone = new float[Streams][];
        for (int k = 0; k < Streams; k++)
        {
            alone[k] = new float[Length(k) * o];
            var s = m.CreateState();
            for (int i = 0; i < Length(k); i++)
            {
                if (k == Restarted && i == RestartAfter) s.Reset();
                int at = InputIndex(k, i);
                if (cfg.TokenInput) m.Step(s, inputs[k].Tokens[at], alone[k].AsSpan(i * o, o));
                else m.Step(s, inputs[k].Features.AsSpan(at * cfg.Input, cfg.Input), alone[k].AsSpan(i * o, o));
            }
        }

        // Together: at each step every active stream, in an order shuffled per step.
        var together = Enumerable.Range(0, Streams).Select(k => new float[Length(k) * o]).ToArray();
        var states = Enumerable.Range(0, Streams).Select(_ => m.CreateState()).ToArray();
        var rng = new Random(7);
        int most = 0;
        for (int step = 0; ; step++)
        {
            var active = Enumerable.Range(0, Streams).Where(k => step >= Start(k) && step < Start(k) + Length(k)).OrderBy(_ => rng.Next()).ToArray();
            if (active.Length == 0 && step > Start(Streams - 1)) break;
            if (active.Length == 0) continue;
            most = Math.Max(most, active.Length);
            foreach (int k in active)
                if (k == Restarted && step - Start(k) == RestartAfter) states[k].Reset();
            var batch = active.Select(k => states[k]).ToArray();
            var y = new float[active.Length * o];
            if (cfg.TokenInput)
                m.Step(batch, active.Select(k => inputs[k].Tokens[InputIndex(k, step - Start(k))]).ToArray(), y);
            else
                m.Step(batch, active.SelectMany(k => inputs[k].Features.AsSpan(InputIndex(k, step - Start(k)) * cfg.Input, cfg.Input).ToArray()).ToArray(), y);
            for (int j = 0; j < active.Length; j++)
                y.AsSpan(j * o, o).CopyTo(together[active[j]].AsSpan((step - Start(active[j])) * o));
        }
        Assert.True(most >= 5, $"the schedule should run at least five streams at once (ran {most})");
        for (int k = 0; k < Streams; k++) Assert.Equal(alone[k], together[k]);

        // The batched outputs against the float64 reference recurrence (stream 0, the longest), over the weights as the
        // step reads them (compact ones dequantized by the oracle of CompactStepWeightsTests).
        var reference = new ReferenceModel<double>(cfg);
        var weights = CompactStepWeightsTests.Dequantized(m, format);
        for (int i = 0; i < weights.Length; i++) reference.Parameters[i] = weights[i];
        var expected = cfg.TokenInput
            ? reference.ForwardRecurrent([], inputs[0].Tokens, Length(0))
            : reference.ForwardRecurrent(inputs[0].Features.Select(v => (double)v).ToArray(), [], Length(0));
        double scale = expected.Max(Math.Abs), err = together[0].Zip(expected, (a, b) => Math.Abs(a - b)).Max() / scale;
        output.WriteLine($"{name}, {format} step weights: {most} streams at most per step; stream 0 vs the float64 recurrence {err:E2}");
        // Int8Dynamic also rounds every product's inputs (half a step of max|x| / 127 each), which the reference does not.
        Assert.True(err < (format == WeightFormat.Int8Dynamic ? 3e-2 : 1e-4), $"relative error {err:E2}");
    }

    [Fact]
    public void ABadBatchIsRefusedBeforeAnyStreamMovesOn()
    {
        var (m, cfg) = GeneratedVsReferenceTests.Make("MambaTokens", 3, 8, ModelUse.Inference);
        m.Initialize(1);
        var a = m.CreateState(); var b = m.CreateState();
        var y = new float[3 * cfg.Output];
        m.Step([a, b], [1, 2], y);
        var before = (a.Values.ToArray(), b.Values.ToArray());
        var (other, _) = GeneratedVsReferenceTests.Make("MambaTokens", 3, 8, ModelUse.Inference);
        var foreign = other.CreateState();

        string Refused(Action call) => Assert.ThrowsAny<ArgumentException>(call).Message;
        Assert.Contains("same state", Refused(() => m.Step([a, b, a], [1, 2, 3], y)));
        Assert.Contains("another model instance", Refused(() => m.Step([a, foreign], [1, 2], y)));
        Assert.Contains("1 to 3 streams", Refused(() => m.Step([a, b, m.CreateState(), m.CreateState()], [1, 2, 3, 4], new float[4 * cfg.Output])));
        Assert.Contains("one token per stream", Refused(() => m.Step([a, b], [1], y)));
        Assert.Contains("Token 1", Refused(() => m.Step([a, b], [1, cfg.Vocab], y)));
        Assert.Contains("room for", Refused(() => m.Step([a, b], [1, 2], new float[cfg.Output])));
        Assert.Contains("null", Refused(() => m.Step([a, null!], [1, 2], y)));
        Assert.Contains("reads token ids", Assert.Throws<InvalidOperationException>(() => m.Step([a], new float[1], y)).Message);
        Assert.Equal((1, 1), (a.Position, b.Position));
        Assert.Equal(before.Item1, a.Values);
        Assert.Equal(before.Item2, b.Values);
    }

    [Fact]
    public void BatchedStepsAllocateNothing()
    {
        var (m, cfg) = GeneratedVsReferenceTests.Make("AllKinds", 4, 16, ModelUse.Inference);
        m.Initialize(2);
        var states = Enumerable.Range(0, 4).Select(_ => m.CreateState()).ToArray();
        var x = new float[4 * cfg.Input];
        var y = new float[4 * cfg.Output];
        m.Step(states, x, y); // first call: JIT
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int t = 0; t < 8; t++) m.Step(states, x, y);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
