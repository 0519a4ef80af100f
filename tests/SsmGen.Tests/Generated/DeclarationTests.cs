namespace SsmGen.Tests.Generated;

public class DeclarationTests
{
    [Fact]
    public void GeneratorDefaultsAreTheAttributeDefaults()
    {
        var a = new S4DLayerAttribute();
        var m = new SsmModelAttribute();
        var l = Assert.Single(DefaultsModel.Declaration.Layers);
        Assert.Equal(new S4DLayerConfig(a.N, a.Init, a.Discretization, a.TrainB, a.Dropout, a.DtMin, a.DtMax), l);
        Assert.Equal(1, a.Repeat);
        Assert.Equal(m.Pooling, DefaultsModel.Declaration.Pooling);
    }

    [Fact]
    public void NewerLayerKindsUseTheirAttributeDefaults()
    {
        var mamba = new MambaLayerAttribute();
        var rnn = new RnnLayerAttribute();
        var ids = new IdsLayerAttribute();
        var att = new AttentionLayerAttribute();
        Assert.Equal(
            new LayerConfig[]
            {
                new MambaLayerConfig(mamba.N, mamba.Expand, mamba.ConvWidth, (16 + 15) / 16, mamba.Norm, mamba.DtMin, mamba.DtMax),
                new RnnLayerConfig(16, rnn.Nonlinearity), // Hidden 0 means DModel
                new IdsLayerConfig(ids.N),
                new AttentionLayerConfig(att.Heads, att.MlpRatio),
            },
            NewKindDefaults.Declaration.Layers);
        Assert.Equal((0, 1, 1, 1), (rnn.Hidden, mamba.Repeat, rnn.Repeat, att.Repeat));
        Assert.Equal(1, ids.Repeat);
    }

    [Fact]
    public void ANamedSizeOverridesThePositionalOne()
    {
        Assert.Equal(32, new RnnLayerAttribute(64) { Hidden = 32 }.Hidden);
        Assert.Equal(new RnnLayerConfig(32), Assert.Single(NamedSizeWins.Declaration.Layers));
    }

    [Fact]
    public void TheScanRejectsSizesBeyondItsBuffersBeforeRunning()
    {
        var scan = new MambaTokens.Mamba_N16_Scan(32, 1 + 32, 1, maxBatch: 2, maxLength: 8);
        var big = new float[3 * 8 * 33];
        Assert.Throws<ArgumentOutOfRangeException>(() => scan.Forward(big, big, big, new float[32 * 16], new float[32], big, 3, 8));
        var e = Assert.Throws<ArgumentException>(() => scan.Forward(new float[10], big, big, new float[32 * 16], new float[32], big, 2, 8));
        Assert.Contains("u holds 10 values", e.Message);
        Assert.Throws<InvalidOperationException>(() => scan.Backward(big, big, big, big, new float[32 * 16], new float[32]));
    }

    [Fact]
    public void RepeatStacksCopies()
    {
        Assert.Equal(4, SeqClassifier.LayerCount);
        Assert.Equal(GeneratedConfigs.SeqClassifier.Layers, SeqClassifier.Declaration.Layers);
    }

    [Fact]
    public void BadShapesThrowBeforeAnythingChanges()
    {
        var m = new TinyRealMean(2, 8);
        m.Initialize(1);
        var y = new float[6];
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Forward(new float[2 * 9 * 2], 2, 9, y));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Forward(new float[3 * 8 * 2], 3, 8, y));
        Assert.Throws<ArgumentException>(() => m.Forward(new float[5], 2, 8, y));
        Assert.Throws<ArgumentException>(() => m.Forward(new float[2 * 8 * 2], 2, 8, new float[5]));
        Assert.Throws<InvalidOperationException>(() => m.Forward(new int[16], 2, 8, y));
        Assert.Throws<InvalidOperationException>(() => m.Backward(new float[6]));
        Assert.Equal(0UL, m.DropoutStep);
        Assert.All(y, v => Assert.Equal(0f, v));
        m.Forward(new float[2 * 8 * 2], 2, 8, y, training: true);
        Assert.Throws<ArgumentException>(() => m.Backward(new float[5]));
        var tokens = new VectorTokens(1, 4);
        Assert.Throws<ArgumentOutOfRangeException>(() => tokens.Forward([0, 1, 7, 2], 1, 4, new float[28]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TinyRealMean(0, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SeqClassifier(32768, 1024));   // buffers past the largest array
        Assert.Throws<ArgumentOutOfRangeException>(() => new TinyRealMean(1, (1 << 29) + 1));
    }
}
