using SsmGen.Distributed;
using SsmGen.Training;

namespace SsmGen.Tests.Distributed;

/// <summary>
/// The backward's reports of finished gradients (ISsmModel.GradientsFinal), which the data-parallel trainer all-reduces
/// while the backward goes on, and that trainer against one that all-reduces after the backward.
/// </summary>
public class OverlappedGradientsTests
{
    public static TheoryData<string> Models => new() { nameof(PieceModel), nameof(MambaTokens), nameof(Hybrid), nameof(DeltaTokens), nameof(RnnTokens) };

    private static ISsmModel Make(string name, int batch, int length) => name switch
    {
        nameof(PieceModel) => new PieceModel(batch, length, ModelUse.Training),
        nameof(MambaTokens) => new MambaTokens(batch, length, ModelUse.Training),
        nameof(Hybrid) => new Hybrid(batch, length, ModelUse.Training),
        nameof(DeltaTokens) => new DeltaTokens(batch, length, ModelUse.Training),
        _ => new RnnTokens(batch, length, ModelUse.Training),
    };

    private static void Forward(ISsmModel m, int batch, int length, ulong seed)
    {
        var cfg = m.Config;
        var rng = new Rng(seed);
        int rows = cfg.Pooling == Pooling.None ? batch * length : batch;
        var y = new float[rows * cfg.Output];
        if (cfg.Vocab > 0) m.Forward(Enumerable.Range(0, batch * length).Select(_ => rng.NextInt(cfg.Vocab)).ToArray(), batch, length, y, training: true);
        else m.Forward(Enumerable.Range(0, batch * length * cfg.Input).Select(_ => (float)rng.Normal()).ToArray(), batch, length, y, training: true);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void EachReportedRangeIsFinalWhenReported(string name)
    {
        const int Batch = 2, Length = 16;
        using var m = Make(name, Batch, Length);
        m.Initialize(3);
        Forward(m, Batch, Length, 4);
        int rows = m.Config.Pooling == Pooling.None ? Batch * Length : Batch;
        var rng = new Rng(5);
        var dy = Enumerable.Range(0, rows * m.Config.Output).Select(_ => (float)rng.Normal()).ToArray();
        var reports = new List<(int From, float[] Values)>();
        m.GradientsFinal = from => reports.Add((from, m.Gradients[from..].ToArray()));
        m.ZeroGradients();
        m.Backward(dy);
        m.GradientsFinal = null;

        Assert.True(reports.Count >= 2, $"{reports.Count} reports");
        Assert.Equal(0, reports[^1].From);
        for (int i = 1; i < reports.Count; i++) Assert.True(reports[i].From < reports[i - 1].From, "each report reaches further toward the start");
        var final = m.Gradients.ToArray();
        foreach (var (from, values) in reports) Assert.Equal(final[from..], values); // nothing written there after the report
        Assert.Contains(final, v => v != 0);
    }

    [Fact]
    public void OverlappedAllReduceGivesTheBitsOfReducingAfterTheBackward()
    {
        const int Share = 2, Length = 24, Steps = 3;
        float[][] Train(bool overlap) => ThreadRanks.Run(2, (rank, collective) =>
        {
            using var m = new MambaTokens(Share, Length, ModelUse.Training);
            m.Initialize(7);
            var trainer = new Trainer(m, new TrainerOptions { WarmupSteps = 1, TotalSteps = 10, OverlapGradients = overlap }, collective);
            for (int s = 0; s < Steps; s++)
            {
                var rng = new Rng((ulong)(100 * s + rank));
                var tokens = Enumerable.Range(0, Share * Length).Select(_ => rng.NextInt(7)).ToArray();
                trainer.TrainStep(tokens, tokens.Select(t => (t + 1) % 7).ToArray(), Share, Length);
            }
            return m.Parameters.ToArray().Concat(trainer.Optimizer.FirstMoments.ToArray()).ToArray();
        });
        var after = Train(overlap: false);
        var overlapped = Train(overlap: true);
        Assert.Equal(after[0], after[1]);
        Assert.Equal(after[0], overlapped[0]);
        Assert.Equal(after[1], overlapped[1]);
    }
}
