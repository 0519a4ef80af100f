using SsmGen;

namespace SsmGen.Benchmarks;

/// <summary>The sMNIST model of the example: 4 blocks, H = 128, N = 64.</summary>
[SsmModel(Input = 1, DModel = 128, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Lin, Repeat = 4)]
public partial class SmnistBench { }
