using SsmGen.Cuda;
using SsmGen;

namespace SsmGen.Examples.WordProblems;

// One model per layer kind and depth (1–4), all with the same width: d_model 64, token input and per-token
// output over up to 120 group elements (S5 has 120; smaller groups leave the extra classes unused).

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[S4DLayer(N = 32, Repeat = 1)]
public partial class S4DDepth1 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[S4DLayer(N = 32, Repeat = 2)]
public partial class S4DDepth2 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[S4DLayer(N = 32, Repeat = 3)]
public partial class S4DDepth3 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[S4DLayer(N = 32, Repeat = 4)]
public partial class S4DDepth4 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[MambaLayer(N = 16, Expand = 2, Repeat = 1)]
public partial class MambaDepth1 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[MambaLayer(N = 16, Expand = 2, Repeat = 2)]
public partial class MambaDepth2 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[MambaLayer(N = 16, Expand = 2, Repeat = 3)]
public partial class MambaDepth3 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[MambaLayer(N = 16, Expand = 2, Repeat = 4)]
public partial class MambaDepth4 { }

// Mamba with negative eigenvalues: the same blocks with transitions 2·exp(Δ·A) − 1 in (−1, 1).

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[MambaLayer(N = 16, Expand = 2, Eigenvalues = MambaEigenvalues.PositiveAndNegative, Repeat = 1)]
public partial class MambaNegDepth1 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[MambaLayer(N = 16, Expand = 2, Eigenvalues = MambaEigenvalues.PositiveAndNegative, Repeat = 2)]
public partial class MambaNegDepth2 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[MambaLayer(N = 16, Expand = 2, Eigenvalues = MambaEigenvalues.PositiveAndNegative, Repeat = 3)]
public partial class MambaNegDepth3 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[MambaLayer(N = 16, Expand = 2, Eigenvalues = MambaEigenvalues.PositiveAndNegative, Repeat = 4)]
public partial class MambaNegDepth4 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[RnnLayer(Hidden = 64, Repeat = 1)]
public partial class RnnDepth1 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[RnnLayer(Hidden = 64, Repeat = 2)]
public partial class RnnDepth2 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[RnnLayer(Hidden = 64, Repeat = 3)]
public partial class RnnDepth3 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[RnnLayer(Hidden = 64, Repeat = 4)]
public partial class RnnDepth4 { }

// Wider one-layer RNNs, for what the RNN needs to track A5 (the paper's RNN has hidden 2,048).

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[RnnLayer(Hidden = 256)]
public partial class Rnn256Depth1 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[RnnLayer(Hidden = 1024)]
public partial class Rnn1024Depth1 { }

// Delta-rule models, 4 heads of 16, β ∈ (0, 2), one and two layers: gated DeltaNet and DeltaProduct with 2 and 3
// Householder steps per token.

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[DeltaLayer(Heads = 4, HouseholderSteps = 1)]
public partial class DeltaNetDepth1 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[DeltaLayer(Heads = 4, HouseholderSteps = 2)]
public partial class DeltaProduct2Depth1 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[DeltaLayer(Heads = 4, HouseholderSteps = 3)]
public partial class DeltaProduct3Depth1 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[DeltaLayer(Heads = 4, HouseholderSteps = 1, Repeat = 2)]
public partial class DeltaNetDepth2 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[DeltaLayer(Heads = 4, HouseholderSteps = 2, Repeat = 2)]
public partial class DeltaProduct2Depth2 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[DeltaLayer(Heads = 4, HouseholderSteps = 3, Repeat = 2)]
public partial class DeltaProduct3Depth2 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[IdsLayer(N = 16, Repeat = 1)]
public partial class IdsDepth1 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[IdsLayer(N = 16, Repeat = 2)]
public partial class IdsDepth2 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[IdsLayer(N = 16, Repeat = 3)]
public partial class IdsDepth3 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[IdsLayer(N = 16, Repeat = 4)]
public partial class IdsDepth4 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[AttentionLayer(Heads = 4, MlpRatio = 2, Repeat = 1)]
public partial class AttentionDepth1 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[AttentionLayer(Heads = 4, MlpRatio = 2, Repeat = 2)]
public partial class AttentionDepth2 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[AttentionLayer(Heads = 4, MlpRatio = 2, Repeat = 3)]
public partial class AttentionDepth3 { }

[SsmModel(Vocab = Zoo.MaxOrder, DModel = 64, Output = Zoo.MaxOrder, Pooling = Pooling.None)]
[AttentionLayer(Heads = 4, MlpRatio = 2, Repeat = 4)]
public partial class AttentionDepth4 { }

/// <summary>The models by kind and depth.</summary>
public static class Zoo
{
    /// <summary>Largest group order the models take (S5).</summary>
    public const int MaxOrder = 120;
    public const int MaxDepth = 4;

    /// <summary>The deepest model of a kind: the wide RNNs come in depth 1 only, the delta-rule models in 1 and 2.</summary>
    public static int MaxDepthOf(string kind) => kind switch
    {
        "Rnn256" or "Rnn1024" => 1,
        "DeltaNet" or "DeltaProduct2" or "DeltaProduct3" => 2,
        _ => MaxDepth,
    };
    public static readonly string[] Kinds = ["S4D", "Mamba", "MambaNeg", "Rnn", "Rnn256", "Rnn1024", "Ids", "Attention", "DeltaNet", "DeltaProduct2", "DeltaProduct3"];
    /// <summary>
    /// The kinds of "The Illusion of State" experiments: what a sweep runs unless told otherwise. The RNN is the
    /// hidden-256 one, which solves A5 in one layer with its own budget (<see cref="Steps"/>); hidden 64 does not.
    /// </summary>
    public static readonly string[] PaperKinds = ["S4D", "Mamba", "Rnn256", "Ids", "Attention"];

    /// <summary>
    /// Default peak learning rate per kind (AdamW, cosine schedule, batch 128): Mamba and attention stacks of depth
    /// 2 and more diverge at 0.02 (accuracy falls to chance within a few hundred steps) and learn at 0.005.
    /// </summary>
    public static float LearningRate(string kind) => kind switch
    {
        "Mamba" or "MambaNeg" or "Attention" or "DeltaNet" or "DeltaProduct2" or "DeltaProduct3" => 5e-3f,
        "Rnn256" or "Rnn1024" => 2e-3f,
        _ => 2e-2f,
    };

    /// <summary>
    /// Default step budget per kind (batch 128): 8,000, and 30,000 for the wide RNNs, which at their smaller learning
    /// rate need about three times as many steps (A5's curriculum done after 18,900).
    /// </summary>
    public static int Steps(string kind) => kind is "Rnn256" or "Rnn1024" ? 30000 : 8000;

    /// <summary>The model of a kind and depth; on the CPU, or on <paramref name="device"/> when one is given.</summary>
    public static ISsmModel Create(string kind, int depth, int maxBatch, int maxLength, ComputeDevice? device = null) => (kind, depth) switch
    {
        ("S4D", 1) => new S4DDepth1(maxBatch, maxLength, ModelUse.Training, device),
        ("S4D", 2) => new S4DDepth2(maxBatch, maxLength, ModelUse.Training, device),
        ("S4D", 3) => new S4DDepth3(maxBatch, maxLength, ModelUse.Training, device),
        ("S4D", 4) => new S4DDepth4(maxBatch, maxLength, ModelUse.Training, device),
        ("Mamba", 1) => new MambaDepth1(maxBatch, maxLength, ModelUse.Training, device),
        ("Mamba", 2) => new MambaDepth2(maxBatch, maxLength, ModelUse.Training, device),
        ("Mamba", 3) => new MambaDepth3(maxBatch, maxLength, ModelUse.Training, device),
        ("Mamba", 4) => new MambaDepth4(maxBatch, maxLength, ModelUse.Training, device),
        ("MambaNeg", 1) => new MambaNegDepth1(maxBatch, maxLength, ModelUse.Training, device),
        ("MambaNeg", 2) => new MambaNegDepth2(maxBatch, maxLength, ModelUse.Training, device),
        ("MambaNeg", 3) => new MambaNegDepth3(maxBatch, maxLength, ModelUse.Training, device),
        ("MambaNeg", 4) => new MambaNegDepth4(maxBatch, maxLength, ModelUse.Training, device),
        ("Rnn", 1) => new RnnDepth1(maxBatch, maxLength, ModelUse.Training, device),
        ("Rnn", 2) => new RnnDepth2(maxBatch, maxLength, ModelUse.Training, device),
        ("Rnn", 3) => new RnnDepth3(maxBatch, maxLength, ModelUse.Training, device),
        ("Rnn", 4) => new RnnDepth4(maxBatch, maxLength, ModelUse.Training, device),
        ("Rnn256", 1) => new Rnn256Depth1(maxBatch, maxLength, ModelUse.Training, device),
        ("Rnn1024", 1) => new Rnn1024Depth1(maxBatch, maxLength, ModelUse.Training, device),
        ("DeltaNet", 1) => new DeltaNetDepth1(maxBatch, maxLength, ModelUse.Training, device),
        ("DeltaProduct2", 1) => new DeltaProduct2Depth1(maxBatch, maxLength, ModelUse.Training, device),
        ("DeltaProduct3", 1) => new DeltaProduct3Depth1(maxBatch, maxLength, ModelUse.Training, device),
        ("DeltaNet", 2) => new DeltaNetDepth2(maxBatch, maxLength, ModelUse.Training, device),
        ("DeltaProduct2", 2) => new DeltaProduct2Depth2(maxBatch, maxLength, ModelUse.Training, device),
        ("DeltaProduct3", 2) => new DeltaProduct3Depth2(maxBatch, maxLength, ModelUse.Training, device),
        ("Ids", 1) => new IdsDepth1(maxBatch, maxLength, ModelUse.Training, device),
        ("Ids", 2) => new IdsDepth2(maxBatch, maxLength, ModelUse.Training, device),
        ("Ids", 3) => new IdsDepth3(maxBatch, maxLength, ModelUse.Training, device),
        ("Ids", 4) => new IdsDepth4(maxBatch, maxLength, ModelUse.Training, device),
        ("Attention", 1) => new AttentionDepth1(maxBatch, maxLength, ModelUse.Training, device),
        ("Attention", 2) => new AttentionDepth2(maxBatch, maxLength, ModelUse.Training, device),
        ("Attention", 3) => new AttentionDepth3(maxBatch, maxLength, ModelUse.Training, device),
        ("Attention", 4) => new AttentionDepth4(maxBatch, maxLength, ModelUse.Training, device),
        _ => throw new ArgumentException($"No model for kind '{kind}' at depth {depth}: kinds are {string.Join(", ", Kinds)}, depths 1–{MaxDepth}."),
    };
}
