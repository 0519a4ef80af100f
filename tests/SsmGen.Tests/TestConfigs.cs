using SsmGen;

namespace SsmGen.Tests;

/// <summary>Small model configurations shared by the reference tests.</summary>
internal static class TestConfigs
{
    public static ModelConfig RealMean => new(Input: 2, Vocab: 0, DModel: 4, Output: 3, Pooling.Mean,
        [new S4DLayerConfig(4, S4DInit.Lin, Discretization.Zoh, TrainB: true),
         new S4DLayerConfig(6, S4DInit.Inv, Discretization.Bilinear, Dropout: 0.3)]);

    public static ModelConfig TokensPerToken => new(Input: 0, Vocab: 5, DModel: 4, Output: 5, Pooling.None,
        [new S4DLayerConfig(4, S4DInit.LegS, Discretization.Bilinear, TrainB: true),
         new S4DLayerConfig(2, S4DInit.Real, Discretization.Zoh)]);

    /// <summary>Two delta-rule blocks: gated DeltaNet with β ∈ (0, 2), and an ungated DeltaProduct of two steps.</summary>
    public static ModelConfig DeltaTokens => new(Input: 0, Vocab: 5, DModel: 4, Output: 5, Pooling.None,
        [new DeltaLayerConfig(2, 2), new DeltaLayerConfig(1, 3, HouseholderSteps: 2, Gate: false, NegativeEigenvalues: false, ConvWidth: 3)]);

    public static ModelConfig RealLast => new(Input: 3, Vocab: 0, DModel: 6, Output: 2, Pooling.Last,
        [new S4DLayerConfig(8, S4DInit.Random, Discretization.Zoh)]);

    public static double[] RandomArray(int n, ulong seed, double scale = 1)
    {
        var rng = new Rng(seed);
        var a = new double[n];
        for (int i = 0; i < n; i++) a[i] = scale * rng.Normal();
        return a;
    }

    public static int[] RandomTokens(int n, int vocab, ulong seed)
    {
        var rng = new Rng(seed);
        var a = new int[n];
        for (int i = 0; i < n; i++) a[i] = rng.NextInt(vocab);
        return a;
    }
}

internal static class GeneratedConfigs
{
    /// <summary>Hand-written twin of <see cref="VectorTokens"/>.</summary>
    public static ModelConfig VectorTokens => new(Input: 0, Vocab: 7, DModel: 8, Output: 7, Pooling.None,
        [new S4DLayerConfig(32, S4DInit.LegS, Discretization.Bilinear, TrainB: true),
         new S4DLayerConfig(16, S4DInit.Real, Discretization.Zoh, Dropout: 0.2)]);

    /// <summary>Hand-written twin of <see cref="VectorLast"/>.</summary>
    public static ModelConfig VectorLast => new(Input: 3, Vocab: 0, DModel: 8, Output: 2, Pooling.Last,
        [new S4DLayerConfig(64), new S4DLayerConfig(64)]);

    /// <summary>Hand-written twin of <see cref="Wide16"/>.</summary>
    public static ModelConfig Wide16 => new(Input: 2, Vocab: 0, DModel: 16, Output: 3, Pooling.Mean,
        [new S4DLayerConfig(16, S4DInit.Lin, Discretization.Zoh),
         new S4DLayerConfig(8, S4DInit.Inv, Discretization.Bilinear, TrainB: true, Dropout: 0.25)]);

    /// <summary>Hand-written twin of <see cref="SeqClassifier"/>.</summary>
    public static ModelConfig SeqClassifier => new(Input: 1, Vocab: 0, DModel: 128, Output: 10, Pooling.Mean,
        [new S4DLayerConfig(64), new S4DLayerConfig(64), new S4DLayerConfig(64), new S4DLayerConfig(64)]);

    /// <summary>Hand-written twin of <see cref="MambaTokens"/>.</summary>
    public static ModelConfig MambaTokens => new(Input: 0, Vocab: 7, DModel: 16, Output: 7, Pooling.None,
        [new MambaLayerConfig(N: 16, Expand: 2, ConvWidth: 4, DtRank: 1), new MambaLayerConfig(16, 2, 4, 1)]);

    /// <summary>Hand-written twin of <see cref="MambaOdd"/>.</summary>
    public static ModelConfig MambaOdd => new(Input: 3, Vocab: 0, DModel: 6, Output: 2, Pooling.Mean,
        [new MambaLayerConfig(N: 4, Expand: 3, ConvWidth: 3, DtRank: 3, Norm: NormKind.LayerNorm)]);

    /// <summary>Hand-written twin of <see cref="MambaSigned"/>.</summary>
    public static ModelConfig MambaSigned => new(Input: 0, Vocab: 5, DModel: 9, Output: 5, Pooling.None,
        [new MambaLayerConfig(N: 16, Expand: 2, ConvWidth: 4, DtRank: 1, DtMin: 0.05, DtMax: 0.5, Eigenvalues: MambaEigenvalues.PositiveAndNegative),
         new MambaLayerConfig(N: 16, Expand: 2, ConvWidth: 4, DtRank: 1)]);

    /// <summary>Hand-written twin of <see cref="MambaTwelve"/>.</summary>
    public static ModelConfig MambaTwelve => new(Input: 0, Vocab: 6, DModel: 16, Output: 6, Pooling.None,
        [new MambaLayerConfig(N: 12, Expand: 2, ConvWidth: 4, DtRank: 1)]);

    /// <summary>Hand-written twin of <see cref="DeltaTokens"/>.</summary>
    public static ModelConfig DeltaTokens => new(Input: 0, Vocab: 5, DModel: 8, Output: 5, Pooling.None,
        [new DeltaLayerConfig(2, 4, HouseholderSteps: 2), new DeltaLayerConfig(1, 3, Gate: false, NegativeEigenvalues: false, ConvWidth: 3)]);

    /// <summary>Hand-written twin of <see cref="S4Tokens"/>.</summary>
    public static ModelConfig S4Tokens => new(Input: 0, Vocab: 5, DModel: 6, Output: 5, Pooling.None,
        [new S4LayerConfig(8, 64, Dropout: 0.1), new S4DLayerConfig(8), new S4LayerConfig(4, 64)]);

    /// <summary>Hand-written twin of <see cref="S4Long"/>.</summary>
    public static ModelConfig S4Long => new(Input: 1, Vocab: 0, DModel: 2, Output: 1, Pooling.None, [new S4LayerConfig(4, 4096)]);

    /// <summary>Hand-written twin of <see cref="Hybrid"/>.</summary>
    public static ModelConfig Hybrid => new(Input: 2, Vocab: 0, DModel: 16, Output: 3, Pooling.Last,
        [new S4DLayerConfig(16, Dropout: 0.1), new MambaLayerConfig(N: 8, Expand: 1, ConvWidth: 2, DtRank: 1),
         new S4DLayerConfig(8, Discretization: Discretization.Bilinear)]);

    public static ModelConfig RnnTokens => new(Input: 0, Vocab: 5, DModel: 8, Output: 5, Pooling.None,
        [new RnnLayerConfig(12), new RnnLayerConfig(6, Nonlinearity.Relu)]);

    public static ModelConfig IdsTokens => new(Input: 0, Vocab: 6, DModel: 8, Output: 6, Pooling.None,
        [new IdsLayerConfig(4), new IdsLayerConfig(5)]);

    public static ModelConfig AttentionTokens => new(Input: 0, Vocab: 7, DModel: 8, Output: 7, Pooling.None,
        [new AttentionLayerConfig(2), new AttentionLayerConfig(4, MlpRatio: 2)]);

    public static ModelConfig AllKinds => new(Input: 2, Vocab: 0, DModel: 16, Output: 3, Pooling.Mean,
        [new AttentionLayerConfig(2), new S4DLayerConfig(8), new RnnLayerConfig(8), new MambaLayerConfig(N: 4, Expand: 1, DtRank: 1), new IdsLayerConfig(3)]);
}
