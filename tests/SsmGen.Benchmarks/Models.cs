using SsmGen;

namespace SsmGen.Benchmarks;

/// <summary>The sMNIST model of the example: 4 blocks, H = 128, N = 64, dropout 0.1.</summary>
[SsmModel(Input = 1, DModel = 128, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Lin, Dropout = 0.1, Repeat = 4)]
public partial class SmnistBench { }

/// <summary>One S4D block at the same shape as the other kinds: d_model 256, N 64 (32 complex modes), ZOH, Lin init.</summary>
[SsmModel(Vocab = 16, DModel = 256, Output = 16, Pooling = Pooling.None)]
[S4DLayer(N = 64)]
public partial class S4DBench { }

/// <summary>One S4 block at the same shape: d_model 256, N 64, HiPPO-LegS, kernel length 256 (the benchmark's L).</summary>
[SsmModel(Vocab = 16, DModel = 256, Output = 16, Pooling = Pooling.None)]
[S4Layer(N = 64, KernelLength = 256)]
public partial class S4Bench { }

// One block of each newer kind at d_model 256 (the Mamba shape), token input, per-token output.

/// <summary>One Mamba block: d_model 256, N 16, expand 2 (E = 512), conv 4, Δ rank 16.</summary>
[SsmModel(Vocab = 16, DModel = 256, Output = 16, Pooling = Pooling.None)]
[MambaLayer(N = 16)]
public partial class MambaBench { }

/// <summary>One RNN block: hidden 256, tanh.</summary>
[SsmModel(Vocab = 16, DModel = 256, Output = 16, Pooling = Pooling.None)]
[RnnLayer(256)]
public partial class RnnBench { }

/// <summary>One IDS block: N 16.</summary>
[SsmModel(Vocab = 16, DModel = 256, Output = 16, Pooling = Pooling.None)]
[IdsLayer(16)]
public partial class IdsBench { }

/// <summary>One transformer block: 4 heads of 64, MLP 1024.</summary>
[SsmModel(Vocab = 16, DModel = 256, Output = 16, Pooling = Pooling.None)]
[AttentionLayer(4)]
public partial class AttentionBench { }

/// <summary>One gated DeltaNet block: 4 heads of 64, one Householder step, β ∈ (0, 2), conv 4.</summary>
[SsmModel(Vocab = 16, DModel = 256, Output = 16, Pooling = Pooling.None)]
[DeltaLayer(Heads = 4)]
public partial class DeltaBench { }

/// <summary>The deployment target's Mamba stack: 4 blocks, d_model 256, N 16, expand 2, token input.</summary>
[SsmModel(Vocab = 256, DModel = 256, Output = 256, Pooling = Pooling.None)]
[MambaLayer(N = 16, Repeat = 4)]
public partial class MambaStackBench { }
