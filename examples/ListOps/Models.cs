using SsmGen;

namespace SsmGen.Examples.ListOps;

// The S4D paper's ListOps stack at the size this machine trains in minutes: 4 blocks, H = 128, N = 64, the expression
// read token by token (left-padded, so the last step has read it all) and classified from the last step.

/// <summary>S4D blocks (Lin init).</summary>
[SsmModel(Vocab = 16, DModel = 128, Output = 10, Pooling = Pooling.Last)]
[S4DLayer(N = 64, Init = S4DInit.Lin, Dropout = 0.1, Repeat = 4)]
public partial class ListOpsS4D { }

/// <summary>S4 blocks (DPLR, HiPPO-LegS) at the same sizes; kernel length 1024 bounds --max-length.</summary>
[SsmModel(Vocab = 16, DModel = 128, Output = 10, Pooling = Pooling.Last)]
[S4Layer(N = 64, KernelLength = 1024, Dropout = 0.1, Repeat = 4)]
public partial class ListOpsS4 { }

/// <summary>The quick stack: 2 S4D blocks, H = 64.</summary>
[SsmModel(Vocab = 16, DModel = 64, Output = 10, Pooling = Pooling.Last)]
[S4DLayer(N = 64, Init = S4DInit.Lin, Repeat = 2)]
public partial class QuickListOpsS4D { }

/// <summary>The quick stack with S4 blocks.</summary>
[SsmModel(Vocab = 16, DModel = 64, Output = 10, Pooling = Pooling.Last)]
[S4Layer(N = 64, KernelLength = 1024, Repeat = 2)]
public partial class QuickListOpsS4 { }
