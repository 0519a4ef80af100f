using SsmGen;

namespace SsmGen.Examples.GpuCheck;

// One model per layer kind for the GPU-vs-CPU equivalence check: real sizes (several warps, several scan chunks),
// small enough for the CPU side to keep up.

/// <summary>S4D, real input, mean pooling, dropout (its masks agree bit for bit between the devices).</summary>
[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Lin, Dropout = 0.1, Repeat = 2)]
public partial class CheckS4D { }

/// <summary>Mamba, tokens in, one prediction per token.</summary>
[SsmModel(Vocab = 16, DModel = 64, Output = 16, Pooling = Pooling.None)]
[MambaLayer(N = 16, Expand = 2, ConvWidth = 4, Repeat = 2)]
public partial class CheckMamba { }

[SsmModel(Vocab = 16, DModel = 64, Output = 16, Pooling = Pooling.None)]
[RnnLayer(Hidden = 64, Repeat = 2)]
public partial class CheckRnn { }

[SsmModel(Vocab = 16, DModel = 64, Output = 16, Pooling = Pooling.None)]
[IdsLayer(N = 8, Repeat = 2)]
public partial class CheckIds { }

[SsmModel(Vocab = 16, DModel = 64, Output = 16, Pooling = Pooling.None)]
[AttentionLayer(Heads = 4, Repeat = 2)]
public partial class CheckAttention { }

[SsmModel(Vocab = 16, DModel = 64, Output = 16, Pooling = Pooling.None)]
[DeltaLayer(Heads = 4, HouseholderSteps = 2)]
[DeltaLayer(Heads = 2, Gate = false)]
public partial class CheckDelta { }

/// <summary>S4 (DPLR, HiPPO-LegS), real input, mean pooling, dropout; a kernel of 256 steps (129 roots).</summary>
[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4Layer(N = 64, KernelLength = 256, Dropout = 0.1, Repeat = 2)]
public partial class CheckS4 { }

/// <summary>The Mamba training benchmark: d_model 256, N 16, expand 2, conv 4, two blocks; batch 16 of length 1024.</summary>
[SsmModel(Vocab = 16, DModel = 256, Output = 16, Pooling = Pooling.None)]
[MambaLayer(N = 16, Expand = 2, ConvWidth = 4, Repeat = 2)]
public partial class MambaBench { }
