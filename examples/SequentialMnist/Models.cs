using SsmGen;

namespace SsmGen.Examples.Mnist;

/// <summary>The S4D paper's sMNIST-style stack: 4 blocks, H = 128, N = 64, Lin init, mean pooling.</summary>
[SsmModel(Input = 1, DModel = 128, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Lin, Dropout = 0.1, Repeat = 4)]
public partial class SmnistModel { }

/// <summary>A smaller stack for the quick mode: 2 blocks, H = 64.</summary>
[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Lin, Repeat = 2)]
public partial class QuickSmnistModel { }

/// <summary>The same stack with S4 blocks (DPLR, HiPPO-LegS, kernel length 1024 ≥ 784): the S4D paper's S4 baseline.</summary>
[SsmModel(Input = 1, DModel = 128, Output = 10, Pooling = Pooling.Mean)]
[S4Layer(N = 64, KernelLength = 1024, Dropout = 0.1, Repeat = 4)]
public partial class SmnistS4Model { }

/// <summary>The quick stack with S4 blocks: 2 blocks, H = 64.</summary>
[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4Layer(N = 64, KernelLength = 1024, Repeat = 2)]
public partial class QuickSmnistS4Model { }
