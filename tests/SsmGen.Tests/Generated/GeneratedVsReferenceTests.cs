using SsmGen.Reference;
using Xunit.Abstractions;

namespace SsmGen.Tests.Generated;

/// <summary>
/// Generated float32 code against the double-precision reference built from a hand-written config:
/// parameter table, initialization, forward and every parameter gradient.
/// </summary>
public class GeneratedVsReferenceTests(ITestOutputHelper output)
{
    public static TheoryData<string> Models => new() { "TinyRealMean", "VectorTokens", "VectorLast", "Wide16", "MambaTokens", "MambaOdd", "MambaSigned", "DeltaTokens", "S4Tokens", "S4Long", "Hybrid", "RnnTokens", "IdsTokens", "AttentionTokens", "AllKinds" };

    internal static (ISsmModel Gen, ModelConfig Cfg) Make(string name, int maxBatch, int maxLength, ModelUse use = ModelUse.Training, SsmGen.Cuda.ComputeDevice? device = null) => name switch
    {
        "TinyRealMean" => (new TinyRealMean(maxBatch, maxLength, use, device), TestConfigs.RealMean),
        "VectorTokens" => (new VectorTokens(maxBatch, maxLength, use, device), GeneratedConfigs.VectorTokens),
        "VectorLast" => (new VectorLast(maxBatch, maxLength, use, device), GeneratedConfigs.VectorLast),
        "Wide16" => (new Wide16(maxBatch, maxLength, use, device), GeneratedConfigs.Wide16),
        "MambaTokens" => (new MambaTokens(maxBatch, maxLength, use, device), GeneratedConfigs.MambaTokens),
        "MambaOdd" => (new MambaOdd(maxBatch, maxLength, use, device), GeneratedConfigs.MambaOdd),
        "MambaSigned" => (new MambaSigned(maxBatch, maxLength, use, device), GeneratedConfigs.MambaSigned),
        "MambaTwelve" => (new MambaTwelve(maxBatch, maxLength, use, device), GeneratedConfigs.MambaTwelve),
        "DeltaTokens" => (new DeltaTokens(maxBatch, maxLength, use, device), GeneratedConfigs.DeltaTokens),
        "S4Tokens" => (new S4Tokens(maxBatch, maxLength, use, device), GeneratedConfigs.S4Tokens),
        "S4Long" => (new S4Long(maxBatch, maxLength, use, device), GeneratedConfigs.S4Long),
        "Hybrid" => (new Hybrid(maxBatch, maxLength, use, device), GeneratedConfigs.Hybrid),
        "RnnTokens" => (new RnnTokens(maxBatch, maxLength, use, device), GeneratedConfigs.RnnTokens),
        "IdsTokens" => (new IdsTokens(maxBatch, maxLength, use, device), GeneratedConfigs.IdsTokens),
        "AttentionTokens" => (new AttentionTokens(maxBatch, maxLength, use, device), GeneratedConfigs.AttentionTokens),
        "AllKinds" => (new AllKinds(maxBatch, maxLength, use, device), GeneratedConfigs.AllKinds),
        _ => (new SeqClassifier(maxBatch, maxLength, use, device), GeneratedConfigs.SeqClassifier),
    };

    [Theory]
    [MemberData(nameof(Models))]
    public void ParameterTableMatchesTheReferenceLayout(string name)
    {
        var (gen, cfg) = Make(name, 1, 1);
        var expected = ParameterLayout.Build(cfg);
        Assert.Equal(expected.Length, gen.ParameterTable.Count);
        for (int i = 0; i < expected.Length; i++)
        {
            var e = expected[i]; var g = gen.ParameterTable[i];
            Assert.Equal(e.Name, g.Name);
            Assert.Equal(e.Shape, g.Shape);
            Assert.Equal(e.Offset, g.Offset);
            Assert.Equal(e.Group, g.Group);
        }
        Assert.Equal(ParameterLayout.Count(expected), gen.Parameters.Length);
        Assert.Equal(cfg.Input, gen.Config.Input);
        Assert.Equal(cfg.Vocab, gen.Config.Vocab);
        Assert.Equal(cfg.Pooling, gen.Config.Pooling);
        Assert.Equal(cfg.Layers, gen.Config.Layers);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void InitializeMatchesTheReference(string name)
    {
        var (gen, cfg) = Make(name, 1, 1);
        var reference = new ReferenceModel<double>(cfg);
        gen.Initialize(42);
        reference.Initialize(42);
        for (int i = 0; i < reference.Parameters.Length; i++) Assert.Equal(reference.Parameters[i], gen.Parameters[i]);
        Assert.Contains(gen.Parameters.ToArray(), v => v != 0);
    }

    [Theory]
    [InlineData("TinyRealMean", 7)]
    [InlineData("VectorTokens", 9)]
    [InlineData("VectorLast", 5)]
    [InlineData("TinyRealMean", 150)]   // FFT convolution path (L > 64)
    [InlineData("VectorTokens", 100)]
    [InlineData("VectorLast", 130)]
    [InlineData("Wide16", 6)]       // H a multiple of 16: the recurrent S4D forward, the lane convolution in the backward
    [InlineData("Wide16", 97)]
    [InlineData("MambaTokens", 9)]
    [InlineData("MambaTokens", 150)]   // several scan chunks (64 steps each for N = 16)
    [InlineData("MambaOdd", 11)]
    [InlineData("MambaOdd", 300)]      // chunks of 64 steps (N = 4), a scalar channel tail
    [InlineData("MambaSigned", 10)]
    [InlineData("MambaSigned", 150)]   // negative transitions across chunk boundaries
    [InlineData("MambaTokens", 1)]     // one step: the scan's only chunk is also its last
    [InlineData("MambaTwelve", 140)]   // N = 12: B and C sums 16 lanes across both, then 8 alone; three chunks, the last partial
    [InlineData("DeltaTokens", 7)]
    [InlineData("DeltaTokens", 40)]    // three chunks of 16 steps, the last partial
    [InlineData("S4Tokens", 7)]
    [InlineData("S4Tokens", 64)]       // the whole kernel length
    [InlineData("DeltaTokens", 100)]   // enough work that the (sequence, head) recurrences run on the worker pool
    [InlineData("Hybrid", 8)]
    [InlineData("Hybrid", 140)]
    [InlineData("RnnTokens", 13)]
    [InlineData("IdsTokens", 17)]
    [InlineData("AttentionTokens", 11)]
    [InlineData("AllKinds", 9)]
    [InlineData("AllKinds", 70)]
    public void ForwardAndBackwardMatchTheReference(string name, int length) => CompareWithReference(name, length, batch: 3, maxBatch: 3, maxLength: length);

    /// <summary>
    /// A model built for longer sequences and larger batches than the call uses (a length curriculum, a short last
    /// batch): every buffer is indexed by the call's sizes, not the maximum ones.
    /// </summary>
    [Theory]
    [InlineData("TinyRealMean", 9, 150)]
    [InlineData("VectorTokens", 70, 130)]
    [InlineData("Wide16", 6, 97)]
    [InlineData("MambaTokens", 9, 150)]
    [InlineData("MambaOdd", 70, 300)]
    [InlineData("MambaSigned", 9, 150)]
    [InlineData("DeltaTokens", 9, 40)]
    [InlineData("Hybrid", 8, 140)]
    [InlineData("RnnTokens", 5, 40)]
    [InlineData("IdsTokens", 5, 40)]
    [InlineData("AttentionTokens", 5, 40)]
    [InlineData("AllKinds", 9, 70)]
    public void SmallerCallsThanTheBuffersMatchTheReference(string name, int length, int maxLength) => CompareWithReference(name, length, batch: 2, maxBatch: 5, maxLength);

    /// <summary>
    /// The comparisons above mean something for negative eigenvalues only if the test model's transitions are negative:
    /// after Initialize(7), the signed block's transitions 2·exp(Δ·A) − 1 take both signs, its plain twin's stay positive.
    /// </summary>
    [Fact]
    public void TheSignedMambaModelRunsNegativeTransitions()
    {
        var (gen, cfg) = Make("MambaSigned", 1, 40);
        gen.Initialize(7);
        var reference = new ReferenceModel<double>(cfg);
        for (int i = 0; i < gen.Parameters.Length; i++) reference.Parameters[i] = gen.Parameters[i];
        reference.Forward(TestConfigs.RandomTokens(40, cfg.Vocab, 4), 1, 40);
        var (signed, _) = reference.MambaRecurrence(0, 0);
        var (plain, _) = reference.MambaRecurrence(1, 0);
        double negative = signed.Count(v => v < 0) / (double)signed.Length;
        output.WriteLine($"signed block: {negative:P0} of its transitions negative, range [{signed.Min():F3}, {signed.Max():F3}]; plain block [{plain.Min():F3}, {plain.Max():F3}]");
        Assert.InRange(negative, 0.2, 0.9);
        Assert.All(signed, v => Assert.InRange(v, -1 + 1e-9, 1 - 1e-9));
        Assert.All(plain, v => Assert.InRange(v, 0, 1 - 1e-9));
    }

    private void CompareWithReference(string name, int length, int batch, int maxBatch, int maxLength)
    {
        var (gen, cfg) = Make(name, maxBatch, maxLength);
        CompareWithReference(gen, cfg, length, batch, maxBatch, maxLength, output, forwardTolerance: 1e-5, gradientTolerance: 1e-4);
    }

    /// <summary>
    /// The H = 128, N = 64 classifier: a training forward and backward against the reference, then its inference forward
    /// (no dropout here) equal to the training forward bit for bit — at L = 300 the S4D forward runs as its recurrence
    /// (M = 32 ≤ 4·log₂ 1024) and inference fuses the linear with the GLU tail; at L = 50 the FFT convolution runs.
    /// </summary>
    [Theory]
    [InlineData(300)]
    [InlineData(50)]
    public void TheWideClassifierMatchesTheReferenceAndInferenceEqualsTraining(int length)
    {
        var (gen, cfg) = Make("SeqClassifier", 2, length);
        CompareWithReference(gen, cfg, length, batch: 2, maxBatch: 2, maxLength: length, output, forwardTolerance: 1e-5, gradientTolerance: 1e-4);
        var x = TestConfigs.RandomArray(2 * length, 21).Select(v => (float)v).ToArray();
        float[] training = new float[2 * cfg.Output], inference = new float[2 * cfg.Output];
        gen.Forward(x, 2, length, training, training: true);
        gen.Forward(x, 2, length, inference);
        Assert.Equal(training, inference);
    }

    /// <summary>
    /// One training forward and backward of <paramref name="gen"/> against the double reference: outputs within
    /// <paramref name="forwardTolerance"/> of the largest output, every gradient tensor within
    /// <paramref name="gradientTolerance"/> of its largest entry. A call smaller than the buffers runs after a full-size pass.
    /// </summary>
    internal static void CompareWithReference(ISsmModel gen, ModelConfig cfg, int length, int batch, int maxBatch, int maxLength,
                                              ITestOutputHelper output, double forwardTolerance, double gradientTolerance)
    {
        var reference = new ReferenceModel<double>(cfg);
        gen.Initialize(7);
        // Larger Δ than the init so the SSM's memory spans the sequence and every term matters.
        var rng = new Rng(1);
        foreach (var p in gen.ParameterTable)
            if (p.Name.EndsWith("log_dt"))
                for (int j = 0; j < p.Length; j++) gen.Parameters[p.Offset + j] = (float)rng.Uniform(-3, -1);
        for (int i = 0; i < gen.Parameters.Length; i++) reference.Parameters[i] = gen.Parameters[i];
        if (maxLength != length || maxBatch != batch)
        {
            // An earlier full-size pass leaves every buffer dirty; the smaller call must not read its leftovers.
            int fullOut = (cfg.Pooling == Pooling.None ? maxBatch * maxLength : maxBatch) * cfg.Output;
            if (cfg.TokenInput) gen.Forward(TestConfigs.RandomTokens(maxBatch * maxLength, cfg.Vocab, 9), maxBatch, maxLength, new float[fullOut], training: true);
            else gen.Forward(TestConfigs.RandomArray(maxBatch * maxLength * cfg.Input, 9).Select(v => (float)v).ToArray(), maxBatch, maxLength, new float[fullOut], training: true);
            gen.Backward(TestConfigs.RandomArray(fullOut, 10).Select(v => (float)v).ToArray());
            gen.ZeroGradients();
        }

        var input = TestConfigs.RandomArray(batch * length * cfg.Input, 3);
        var tokens = TestConfigs.RandomTokens(batch * length, Math.Max(cfg.Vocab, 1), 4);
        int outLen = (cfg.Pooling == Pooling.None ? batch * length : batch) * cfg.Output;
        var y = new float[outLen];
        gen.DropoutSeed = 99;
        gen.DropoutStep = 5;
        double[] yRef;
        if (cfg.TokenInput)
        {
            gen.Forward(tokens, batch, length, y, training: true);
            yRef = reference.Forward(tokens, batch, length, true, 99, 5);
        }
        else
        {
            gen.Forward(input.Select(v => (float)v).ToArray(), batch, length, y, training: true);
            yRef = reference.Forward(input, batch, length, true, 99, 5);
        }
        double yScale = yRef.Max(Math.Abs);
        double yErr = y.Zip(yRef, (a, b) => Math.Abs(a - b)).Max() / yScale;
        output.WriteLine($"forward: max |Δ| / max |y| = {yErr:E2}");
        Assert.True(yErr < forwardTolerance, $"forward relative error {yErr:E2}");

        var dOut = TestConfigs.RandomArray(outLen, 8);
        gen.ZeroGradients();
        gen.Backward(dOut.Select(v => (float)v).ToArray());
        reference.Backward(dOut);
        foreach (var p in gen.ParameterTable)
        {
            var g = gen.Gradients.Slice(p.Offset, p.Length).ToArray();
            var r = reference.Gradients.AsSpan(p.Offset, p.Length).ToArray();
            double scale = Math.Max(r.Max(Math.Abs), 1e-6);
            double err = g.Zip(r, (a, b) => Math.Abs(a - b)).Max() / scale;
            output.WriteLine($"{p.Name,-40} max |Δ| / max |g| = {err:E2}   (max |g| = {scale:E2})");
            Assert.True(err < gradientTolerance, $"{p.Name}: gradient relative error {err:E2}");
        }
    }
}
