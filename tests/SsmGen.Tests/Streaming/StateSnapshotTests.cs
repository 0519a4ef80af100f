using SsmGen.Cuda;
using SsmGen.Streaming;
using SsmGen.Tests.Cuda;
using SsmGen.Tests.Generated;

namespace SsmGen.Tests.Streaming;

/// <summary>
/// Saved states: a stream saved, restored into another instance with the same weights and continued gives the
/// uninterrupted stream's outputs bit for bit; forks of a prefix continue like separate streams; every bad snapshot
/// is refused with the reason and leaves the state as it was.
/// </summary>
public class StateSnapshotTests
{
    private const int Prefix = 9, Suffix = 7;

    private static (ISsmModel Model, ModelConfig Cfg) Make(string name, ulong seed, ComputeDevice? device = null)
    {
        var (m, cfg) = GeneratedVsReferenceTests.Make(name, 1, Prefix + Suffix, ModelUse.Training, device);
        m.Initialize(seed);
        return (m, cfg);
    }

    private static float[] Run(ISsmModel m, ModelConfig cfg, SsmState s, int from, int count, ulong inputSeed)
    {
        var y = new float[cfg.Output];
        var all = new float[count * cfg.Output];
        var tokens = TestConfigs.RandomTokens(from + count, Math.Max(cfg.Vocab, 1), inputSeed);
        var x = TestConfigs.RandomArray((from + count) * Math.Max(cfg.Input, 1), inputSeed);
        for (int t = from; t < from + count; t++)
        {
            if (cfg.TokenInput) m.Step(s, tokens[t], y);
            else m.Step(s, x.AsSpan(t * cfg.Input, cfg.Input).ToArray().Select(v => (float)v).ToArray(), y);
            y.CopyTo(all, (t - from) * cfg.Output);
        }
        return all;
    }

    [Theory]
    [InlineData("AllKinds")]   // attention's cache, S4D's modes, the RNN's and IDS's hidden states, Mamba's conv window and scan state
    [InlineData("S4Tokens")]   // S4's step tables beside its states
    [InlineData("DeltaTokens")]
    [InlineData("TinyRealMean")] // real input, mean pooling's running sum
    public void ARestoredStreamContinuesBitForBit(string name)
    {
        var (a, cfg) = Make(name, 5);
        var (b, _) = Make(name, 99);
        a.Parameters.CopyTo(b.Parameters);
        using (a)
        using (b)
        {
            var sa = a.CreateState();
            Run(a, cfg, sa, 0, Prefix, 3);
            byte[] snapshot = StateSnapshot.Save(a, sa);
            Assert.Equal(StateSnapshot.SizeOf(a), snapshot.Length);
            var expected = Run(a, cfg, sa, Prefix, Suffix, 3);

            var sb = b.CreateState();
            StateSnapshot.Restore(b, sb, snapshot);
            Assert.Equal(Prefix, sb.Position);
            Assert.Equal(expected, Run(b, cfg, sb, Prefix, Suffix, 3));
        }
    }

    [Fact]
    public void ForksOfAPrefixContinueLikeSeparateStreams()
    {
        var (m, cfg) = Make("AllKinds", 5);
        using (m)
        {
            var prefix = m.CreateState();
            Run(m, cfg, prefix, 0, Prefix, 3);
            var fork = StateSnapshot.Fork(m, prefix);
            Assert.Equal(Prefix, fork.Position);
            // the two continuations read different tokens from Prefix on; each must equal a stream that read it all
            var one = Run(m, cfg, prefix, Prefix, Suffix, 3);
            var other = Run(m, cfg, fork, Prefix, Suffix, 4);
            Assert.NotEqual(one, other);
            foreach (var (continuation, seed) in new[] { (one, 3UL), (other, 4UL) })
            {
                var alone = m.CreateState();
                Run(m, cfg, alone, 0, Prefix, 3);
                Assert.Equal(continuation, Run(m, cfg, alone, Prefix, Suffix, seed));
            }
        }
    }

    private static void AssertRefused(ISsmModel m, SsmState s, byte[] bytes, string because)
    {
        var before = s.Values.ToArray();
        int position = s.Position;
        var e = Assert.Throws<InvalidDataException>(() => StateSnapshot.Restore(m, s, bytes));
        Assert.Contains(because, e.Message);
        Assert.Equal(before, s.Values);
        Assert.Equal(position, s.Position);
    }

    [Fact]
    public void BadSnapshotsAreRefusedWithTheReasonAndChangeNothing()
    {
        var (m, cfg) = Make("AllKinds", 5);
        var (otherWeights, _) = Make("AllKinds", 6);
        var (otherModel, otherCfg) = Make("S4Tokens", 5);
        using (m)
        using (otherWeights)
        using (otherModel)
        {
            var s = m.CreateState();
            Run(m, cfg, s, 0, Prefix, 3);
            byte[] good = StateSnapshot.Save(m, s);
            var target = m.CreateState();
            Run(m, cfg, target, 0, 3, 4); // a stream in progress: a refused restore must leave it as it is

            AssertRefused(m, target, [1, 2, 3], "Not an SsmGen state snapshot");
            var version = (byte[])good.Clone(); version[8] = 9;
            AssertRefused(m, target, version, "version 9");
            var flipped = (byte[])good.Clone(); flipped[40] ^= 0x10;
            AssertRefused(m, target, flipped, "damaged");
            AssertRefused(m, target, good[..^5], "truncated");

            var so = otherModel.CreateState();
            Run(otherModel, otherCfg, so, 0, 2, 3);
            AssertRefused(m, target, StateSnapshot.Save(otherModel, so), "another architecture");

            var sw = otherWeights.CreateState();
            Run(otherWeights, cfg, sw, 0, 2, 3);
            AssertRefused(m, target, StateSnapshot.Save(otherWeights, sw), "other weights");

            // a state of another instance is the caller's mistake, named as such
            Assert.Contains("another model instance", Assert.Throws<ArgumentException>(() => StateSnapshot.Restore(otherWeights, target, good)).Message);
            StateSnapshot.Restore(m, target, good); // and the good one still restores
            Assert.Equal(Prefix, target.Position);
        }
    }

    /// <summary>A stream stepped on the (emulated) GPU, saved, and continued on the CPU model with the same weights.</summary>
    [EmulationFact]
    public void AStreamMovesFromTheGpuToTheCpu()
    {
        var (gpu, cfg) = Make("Hybrid", 5, ComputeDevice.CudaEmulation());
        var (cpu, _) = Make("Hybrid", 99);
        gpu.Parameters.CopyTo(cpu.Parameters);
        using (gpu)
        using (cpu)
        {
            var sg = gpu.CreateState();
            Run(gpu, cfg, sg, 0, Prefix, 3);
            byte[] snapshot = StateSnapshot.Save(gpu, sg);
            var expected = Run(gpu, cfg, sg, Prefix, Suffix, 3);
            var sc = cpu.CreateState();
            StateSnapshot.Restore(cpu, sc, snapshot);
            var actual = Run(cpu, cfg, sc, Prefix, Suffix, 3);
            double scale = expected.Max(Math.Abs), diff = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
            Assert.True(diff <= 1e-5 * scale, $"CPU continuation {diff / scale:E2} from the GPU's");
        }
    }
}
