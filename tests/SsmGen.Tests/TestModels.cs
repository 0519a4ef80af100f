using SsmGen;

namespace SsmGen.Tests;

// Models the generator compiles for the tests. Each mirrors a hand-written ModelConfig in the tests,
// so the generated code is checked against the reference built from an independent description.

/// <summary>Same architecture as <see cref="TestConfigs.RealMean"/>: scalar mode loops (2 and 3 modes).</summary>
[SsmModel(Input = 2, DModel = 4, Output = 3, Pooling = Pooling.Mean)]
[S4DLayer(N = 4, Init = S4DInit.Lin, Discretization = Discretization.Zoh, TrainB = true)]
[S4DLayer(N = 6, Init = S4DInit.Inv, Discretization = Discretization.Bilinear, Dropout = 0.3)]
public partial class TinyRealMean { }

/// <summary>Token input, per-token output; 16 modes (one Vector512) and 8 modes (one Vector256).</summary>
[SsmModel(Vocab = 7, DModel = 8, Output = 7, Pooling = Pooling.None)]
[S4DLayer(N = 32, Init = S4DInit.LegS, Discretization = Discretization.Bilinear, TrainB = true)]
[S4DLayer(N = 16, Init = S4DInit.Real, Discretization = Discretization.Zoh, Dropout = 0.2)]
public partial class VectorTokens { }

/// <summary>Last pooling, 32 modes (two Vector512 registers), a repeated block.</summary>
[SsmModel(Input = 3, DModel = 8, Output = 2, Pooling = Pooling.Last)]
[S4DLayer(N = 64, Init = S4DInit.Lin, Repeat = 2)]
public partial class VectorLast { }

/// <summary>The example classifier: 4 blocks, H = 128, N = 64.</summary>
[SsmModel(Input = 1, DModel = 128, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Lin, Repeat = 4)]
public partial class SeqClassifier { }

/// <summary>A small classifier for the training smoke test.</summary>
[SsmModel(Input = 1, DModel = 16, Output = 4, Pooling = Pooling.Mean)]
[S4DLayer(N = 16, Repeat = 2)]
public partial class SmokeModel { }

/// <summary>Every layer option left at its default.</summary>
[SsmModel(Input = 1, DModel = 2, Output = 1)]
[S4DLayer]
public partial class DefaultsModel { }

/// <summary>H = 16: the convolution runs sixteen channels per vector lane set (<see cref="TestConfigs"/> twin in GeneratedConfigs.Wide16).</summary>
[SsmModel(Input = 2, DModel = 16, Output = 3, Pooling = Pooling.Mean)]
[S4DLayer(N = 16, Init = S4DInit.Lin, Discretization = Discretization.Zoh)]
[S4DLayer(N = 8, Init = S4DInit.Inv, Discretization = Discretization.Bilinear, TrainB = true, Dropout = 0.25)]
public partial class Wide16 { }

/// <summary>
/// All Mamba (Hugging Face names): token input, per-token output; E = 32 runs two 16-channel register kernels.
/// Twin: <see cref="GeneratedConfigs.MambaTokens"/>.
/// </summary>
[SsmModel(Vocab = 7, DModel = 16, Output = 7, Pooling = Pooling.None)]
[MambaLayer(N = 16, Expand = 2, ConvWidth = 4, Repeat = 2)]
public partial class MambaTokens { }

/// <summary>
/// Mamba with E = 18 (one 16-channel kernel plus a scalar tail), N = 4, LayerNorm, Δ rank 3, conv width 3.
/// Twin: <see cref="GeneratedConfigs.MambaOdd"/>.
/// </summary>
[SsmModel(Input = 3, DModel = 6, Output = 2, Pooling = Pooling.Mean)]
[MambaLayer(N = 4, Expand = 3, ConvWidth = 3, DtRank = 3, Norm = NormKind.LayerNorm)]
public partial class MambaOdd { }

/// <summary>
/// Mamba with negative eigenvalues (transitions 2·exp(Δ·A) − 1) beside a plain Mamba block of the same N, so both scan
/// variants live in one model; E = 18 (a 16-channel kernel and a scalar tail), N = 16 (the step's vector path). Δ
/// starts in [0.05, 0.5], so that with A = −1…−16 the transitions spread over (−1, 1) from the first step (larger Δ
/// pins most of them near −1, where float rounding is never forgotten). Twin: <see cref="GeneratedConfigs.MambaSigned"/>.
/// </summary>
[SsmModel(Vocab = 5, DModel = 9, Output = 5, Pooling = Pooling.None)]
[MambaLayer(N = 16, Expand = 2, Eigenvalues = MambaEigenvalues.PositiveAndNegative, DtMin = 0.05, DtMax = 0.5)]
[MambaLayer(N = 16, Expand = 2)]
public partial class MambaSigned { }

/// <summary>
/// Mamba with N = 12: the scan backward reduces its B and C gradient sums 16 lanes at a time (one vector spans B's
/// and C's columns), then 8 one by one; E = 32 (two channel groups). Twin: <see cref="GeneratedConfigs.MambaTwelve"/>.
/// </summary>
[SsmModel(Vocab = 6, DModel = 16, Output = 6, Pooling = Pooling.None)]
[MambaLayer(N = 12, Expand = 2)]
public partial class MambaTwelve { }

/// <summary>
/// Delta-rule blocks: a gated DeltaProduct (two Householder steps, β ∈ (0, 2), 2 heads of 4) and an ungated DeltaNet
/// head of 3 with β ∈ (0, 1) and conv width 3. Twin: <see cref="GeneratedConfigs.DeltaTokens"/>.
/// </summary>
[SsmModel(Vocab = 5, DModel = 8, Output = 5, Pooling = Pooling.None)]
[DeltaLayer(Heads = 2, HouseholderSteps = 2)]
[DeltaLayer(Heads = 1, HeadSize = 3, Gate = false, NegativeEigenvalues = false, ConvWidth = 3)]
public partial class DeltaTokens { }

/// <summary>
/// S4 blocks (HiPPO-LegS DPLR, kernel length 64; N = 8 with dropout, N = 4) around an S4D block of the same width,
/// so both convolution kinds share a model. Twin: <see cref="GeneratedConfigs.S4Tokens"/>.
/// </summary>
[SsmModel(Vocab = 5, DModel = 6, Output = 5, Pooling = Pooling.None)]
[S4Layer(N = 8, KernelLength = 64, Dropout = 0.1)]
[S4DLayer(N = 8)]
[S4Layer(N = 4, KernelLength = 64)]
public partial class S4Tokens { }

/// <summary>One S4 block with a kernel of 4,096 steps: its convolution against its step over the whole length. Twin: <see cref="GeneratedConfigs.S4Long"/>.</summary>
[SsmModel(Input = 1, DModel = 2, Output = 1, Pooling = Pooling.None)]
[S4Layer(N = 4, KernelLength = 4096)]
public partial class S4Long { }

/// <summary>A hybrid: S4D, Mamba, S4D (generic names, LayerNorm at the end). Twin: <see cref="GeneratedConfigs.Hybrid"/>.</summary>
[SsmModel(Input = 2, DModel = 16, Output = 3, Pooling = Pooling.Last)]
[S4DLayer(N = 16, Dropout = 0.1)]
[MambaLayer(N = 8, Expand = 1, ConvWidth = 2)]
[S4DLayer(N = 8, Discretization = Discretization.Bilinear)]
public partial class Hybrid { }

/// <summary>RNN blocks (tanh, then ReLU with its own hidden size). Twin: <see cref="GeneratedConfigs.RnnTokens"/>.</summary>
[SsmModel(Vocab = 5, DModel = 8, Output = 5, Pooling = Pooling.None)]
[RnnLayer(12)]
[RnnLayer(Hidden = 6, Nonlinearity = Nonlinearity.Relu)]
public partial class RnnTokens { }

/// <summary>IDS blocks (N = 4 and N = 5). Twin: <see cref="GeneratedConfigs.IdsTokens"/>.</summary>
[SsmModel(Vocab = 6, DModel = 8, Output = 6, Pooling = Pooling.None)]
[IdsLayer(4)]
[IdsLayer(N = 5)]
public partial class IdsTokens { }

/// <summary>Transformer blocks: 2 heads of 4, then 4 heads of 2 with MLP ratio 2. Twin: <see cref="GeneratedConfigs.AttentionTokens"/>.</summary>
[SsmModel(Vocab = 7, DModel = 8, Output = 7, Pooling = Pooling.None)]
[AttentionLayer(2)]
[AttentionLayer(Heads = 4, MlpRatio = 2)]
public partial class AttentionTokens { }

/// <summary>Every layer kind in one stack, real input, mean pooling. Twin: <see cref="GeneratedConfigs.AllKinds"/>.</summary>
[SsmModel(Input = 2, DModel = 16, Output = 3, Pooling = Pooling.Mean)]
[AttentionLayer(Heads = 2)]
[S4DLayer(N = 8)]
[RnnLayer(Hidden = 8)]
[MambaLayer(N = 4, Expand = 1)]
[IdsLayer(N = 3)]
public partial class AllKinds { }

/// <summary>Every option of the newer layer attributes left at its default.</summary>
[SsmModel(Input = 1, DModel = 16, Output = 1)]
[MambaLayer]
[RnnLayer]
[IdsLayer]
[AttentionLayer]
public partial class NewKindDefaults { }

/// <summary>A small Mamba language model in the Hugging Face layout (RMSNorm, no decoder bias).</summary>
[SsmModel(Vocab = 11, DModel = 16, Output = 11, Pooling = Pooling.None)]
[MambaLayer(N = 4, Expand = 2, ConvWidth = 4, Repeat = 2)]
public partial class TinyMambaLm { }

/// <summary>A size given both positionally and by name: the named property wins, as when the attribute is constructed.</summary>
[SsmModel(Input = 1, DModel = 8, Output = 1)]
[RnnLayer(64, Hidden = 32)]
public partial class NamedSizeWins { }

/// <summary>An RNN wider than the GPU path runs (hidden 6,145 &gt; 6,144): it refuses a GPU device, runs on the CPU.</summary>
[SsmModel(Input = 1, DModel = 4, Output = 2)]
[RnnLayer(Hidden = 6145)]
public partial class WideRnn { }

/// <summary>A delta-rule head of 65, above the GPU path's 64, after one of 64: it refuses a GPU device, runs on the CPU.</summary>
[SsmModel(Input = 1, DModel = 4, Output = 2)]
[DeltaLayer(Heads = 1, HeadSize = 64)]
[DeltaLayer(Heads = 1, HeadSize = 65)]
public partial class WideDeltaHead { }

/// <summary>One real-input model per recurrent layer kind without one above (for the non-finite input tests).</summary>
[SsmModel(Input = 2, DModel = 8, Output = 3, Pooling = Pooling.Mean)]
[RnnLayer(Hidden = 8)]
public partial class RealRnn { }

/// <summary>See <see cref="RealRnn"/>.</summary>
[SsmModel(Input = 2, DModel = 8, Output = 3, Pooling = Pooling.None)]
[IdsLayer(N = 3)]
public partial class RealIds { }

/// <summary>See <see cref="RealRnn"/>.</summary>
[SsmModel(Input = 2, DModel = 8, Output = 3, Pooling = Pooling.Last)]
[AttentionLayer(Heads = 2)]
public partial class RealAttention { }

/// <summary>Sequence parallelism's model (and the overlapped all-reduce's): both kinds that pass state, both discretizations, both eigenvalue ranges, and a trained B; one output per token.</summary>
[SsmModel(Input = 2, DModel = 16, Output = 3, Pooling = Pooling.None)]
[S4DLayer(N = 8, TrainB = true)]
[MambaLayer(N = 4)]
[S4DLayer(N = 6, Discretization = Discretization.Bilinear)]
[MambaLayer(N = 8, Eigenvalues = MambaEigenvalues.PositiveAndNegative)]
public partial class PieceModel { }

/// <summary>Sequence parallelism refuses it: one output per sequence.</summary>
[SsmModel(Input = 2, DModel = 16, Output = 3, Pooling = Pooling.Mean)]
[MambaLayer(N = 4)]
public partial class PooledPieceModel { }

/// <summary>Sequence parallelism refuses it: an attention block has no state it can pass.</summary>
[SsmModel(Input = 2, DModel = 16, Output = 3, Pooling = Pooling.None)]
[MambaLayer(N = 4)]
[AttentionLayer(Heads = 2)]
public partial class AttentionPieceModel { }
