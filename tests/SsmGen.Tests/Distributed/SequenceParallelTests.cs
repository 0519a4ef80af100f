using SsmGen.Distributed;
using Xunit.Abstractions;

namespace SsmGen.Tests.Distributed;

/// <summary>
/// Sequence parallelism against the same model run on whole sequences: the ranks (threads of this process, see
/// <see cref="ThreadRanks"/>) each run a piece of every sequence, and their outputs, put end to end, and their gradients,
/// summed, must be those of one process running the whole sequence, within float rounding.
/// </summary>
public class SequenceParallelTests(ITestOutputHelper output)
{
    private const int Batch = 2;

    // Inputs and dL/d(output) drawn per (sequence, position), so a piece reads exactly its slice of them.
    private static float[] Draw(int length, int from, int count, int width, ulong seed)
    {
        var all = new float[Batch * count * width];
        for (int b = 0; b < Batch; b++)
            for (int t = 0; t < count; t++)
            {
                var rng = new Rng(seed * 1_000_003 + (ulong)(b * length + from + t));
                for (int f = 0; f < width; f++) all[(b * count + t) * width + f] = (float)rng.Normal();
            }
        return all;
    }

    private static (float[] Output, float[] Gradients) Run(PieceModel model, int length, int from, int count)
    {
        var x = Draw(length, from, count, 2, 11);
        var y = new float[Batch * count * 3];
        model.Forward(x, Batch, count, y, training: true);
        var dy = Draw(length, from, count, 3, 97);
        model.ZeroGradients();
        model.Backward(dy);
        return (y, model.Gradients.ToArray());
    }

    /// <summary>max |a − b| over max |b|, of one tensor.</summary>
    private static double Relative(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double diff = 0, scale = 1e-30;
        for (int i = 0; i < b.Length; i++) { diff = Math.Max(diff, Math.Abs(a[i] - b[i])); scale = Math.Max(scale, Math.Abs(b[i])); }
        return diff / scale;
    }

    [Theory]
    [InlineData(new[] { 4096, 4096 })]
    [InlineData(new[] { 3000, 2900, 2292 })]
    public void PiecesOnRanksMatchTheWholeSequenceForwardAndBackward(int[] pieces)
    {
        int length = pieces.Sum();
        Assert.True(length >= 8192);
        using var whole = new PieceModel(Batch, length, ModelUse.Training);
        whole.Initialize(5);
        var (y, g) = Run(whole, length, 0, length);
        var parameters = whole.Parameters.ToArray();

        var results = ThreadRanks.Run(pieces.Length, (rank, collective) =>
        {
            using var model = new PieceModel(Batch, pieces[rank], ModelUse.Training);
            parameters.CopyTo(model.Parameters);
            model.SequenceParallel = new SequenceParallel(collective);
            return Run(model, length, pieces.Take(rank).Sum(), pieces[rank]);
        });

        // outputs: each rank's piece against its slice of the whole
        double worstOutput = 0;
        for (int r = 0, from = 0; r < pieces.Length; from += pieces[r], r++)
            for (int b = 0; b < Batch; b++)
                worstOutput = Math.Max(worstOutput, Relative(results[r].Output.AsSpan(b * pieces[r] * 3, pieces[r] * 3), y.AsSpan((b * length + from) * 3, pieces[r] * 3)));
        // gradients: the ranks' sum, per tensor
        var sum = new float[g.Length];
        foreach (var (_, gr) in results) System.Numerics.Tensors.TensorPrimitives.Add(sum, gr, sum);
        double worstGradient = 0;
        string worstTensor = "";
        foreach (var p in whole.ParameterTable)
        {
            double rel = Relative(sum.AsSpan(p.Offset, p.Length), g.AsSpan(p.Offset, p.Length));
            if (rel > worstGradient) (worstGradient, worstTensor) = (rel, p.Name);
        }
        output.WriteLine($"L = {length} in pieces {string.Join(" + ", pieces)}: outputs within {worstOutput:E2} of their largest magnitude, gradients within {worstGradient:E2} ({worstTensor})");
        Assert.True(worstOutput < 1e-5, $"outputs differ by {worstOutput:E2} of their scale");
        Assert.True(worstGradient < 3e-4, $"gradients of {worstTensor} differ by {worstGradient:E2} of their scale");
    }

    [Fact]
    public void TrainingOnPiecesTakesTheStepsOfTrainingOnWholeSequences()
    {
        const int Length = 2048, Steps = 3;
        int[] pieces = [1200, 848]; // unequal, and the second piece ignores more targets: the ranks count differently
        var options = new SsmGen.Training.TrainerOptions { LearningRate = 3e-3f, WarmupSteps = 1, TotalSteps = 10 };
        int[] Targets(int from, int count)
        {
            var all = new int[Batch * count];
            for (int b = 0; b < Batch; b++)
                for (int t = 0; t < count; t++)
                {
                    int position = from + t;
                    all[b * count + t] = position % 5 == 0 || (position > 1500 && position % 3 == 0) ? SsmGen.Training.Losses.Ignored : (b * Length + position) * 7 % 3;
                }
            return all;
        }
        using var whole = new PieceModel(Batch, Length, ModelUse.Training);
        whole.Initialize(6);
        var start = whole.Parameters.ToArray();
        var trainer = new SsmGen.Training.Trainer(whole, options);
        for (int s = 0; s < Steps; s++) trainer.TrainStep(Draw(Length, 0, Length, 2, 20 + (ulong)s), Targets(0, Length), Batch, Length);

        var ranks = ThreadRanks.Run(2, (rank, collective) =>
        {
            using var model = new PieceModel(Batch, pieces[rank], ModelUse.Training);
            if (rank == 0) start.CopyTo(model.Parameters); // the trainer broadcasts rank 0's parameters
            model.SequenceParallel = new SequenceParallel(collective);
            var t = new SsmGen.Training.Trainer(model, options, collective);
            int from = pieces.Take(rank).Sum();
            for (int s = 0; s < Steps; s++) t.TrainStep(Draw(Length, from, pieces[rank], 2, 20 + (ulong)s), Targets(from, pieces[rank]), Batch, pieces[rank]);
            return model.Parameters.ToArray();
        });
        Assert.Equal(ranks[0], ranks[1]); // the all-reduced step keeps the ranks identical

        // a trainer not given the pieces' collective would leave each rank with part of the gradient: refused before the forward
        ThreadRanks.Run(2, (rank, collective) =>
        {
            using var model = new PieceModel(Batch, pieces[rank], ModelUse.Training);
            model.SequenceParallel = new SequenceParallel(collective);
            var alone = new SsmGen.Training.Trainer(model, options);
            var step = model.DropoutStep;
            int from = pieces.Take(rank).Sum();
            var e = Assert.Throws<InvalidOperationException>(() => alone.TrainStep(Draw(Length, from, pieces[rank], 2, 20), Targets(from, pieces[rank]), Batch, pieces[rank]));
            Assert.Contains("collective the model's SequenceParallel uses", e.Message);
            Assert.Equal(step, model.DropoutStep);
            return 0;
        });
        double rel = Relative(ranks[0], whole.Parameters), moved = Relative(start, whole.Parameters);
        output.WriteLine($"{Steps} AdamW steps on L = {Length} in pieces {pieces[0]} + {pieces[1]} (some targets ignored): parameters within {rel:E2} of their largest magnitude (the steps moved them {moved:E2})");
        Assert.True(rel < 1e-6, $"parameters differ by {rel:E2} of their scale");
        Assert.True(moved > 1e-4, $"the steps moved the parameters only {moved:E2}");
    }

    [Fact]
    public void AJobOfOneRankRunsTheWholeSequenceBitForBit()
    {
        using var plain = new PieceModel(Batch, 64, ModelUse.Training);
        using var single = new PieceModel(Batch, 64, ModelUse.Training);
        plain.Initialize(2);
        plain.Parameters.CopyTo(single.Parameters);
        single.SequenceParallel = new SequenceParallel(SingleProcess.Instance);
        var (y0, g0) = Run(plain, 64, 0, 64);
        var (y1, g1) = Run(single, 64, 0, 64);
        Assert.Equal(y0, y1);
        Assert.Equal(g0, g1);

        // a Backward pairs with a Forward run the same way: changing the setting in between is refused
        plain.Forward(Draw(64, 0, 64, 2, 3), Batch, 64, new float[Batch * 64 * 3], training: true);
        plain.SequenceParallel = new SequenceParallel(SingleProcess.Instance);
        Assert.Contains("needs a Forward first", Assert.Throws<InvalidOperationException>(() => plain.Backward(new float[Batch * 64 * 3])).Message);
    }

    [Fact]
    public void ModelsThatCannotPassStateAndShortPiecesAreRefused()
    {
        var seq = new SequenceParallel(SingleProcess.Instance);
        using var pooled = new PooledPieceModel(1, 16);
        Assert.Contains("output per token", Assert.Throws<NotSupportedException>(() => pooled.SequenceParallel = seq).Message);
        using var attention = new AttentionPieceModel(1, 16);
        Assert.Contains("block 1", Assert.Throws<NotSupportedException>(() => attention.SequenceParallel = seq).Message);
        Assert.Null(attention.SequenceParallel);

        // a piece shorter than the convolution's reach is refused before anything changes
        ThreadRanks.Run(2, (rank, collective) =>
        {
            using var model = new PieceModel(1, 16, ModelUse.Training);
            model.SequenceParallel = new SequenceParallel(collective);
            var step = model.DropoutStep;
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => model.Forward(new float[2 * 2], 1, 2, new float[2 * 3], training: true));
            Assert.Contains("at least 3 tokens", e.Message);
            Assert.Equal(step, model.DropoutStep);
            return 0;
        });
    }
}
