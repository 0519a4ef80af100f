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
