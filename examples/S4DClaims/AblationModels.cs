using SsmGen;

namespace SsmGen.Examples.S4DClaims;

// The ablation grid on psMNIST: the quick sMNIST stack (2 S4D blocks, H = 64, N = 64, mean pooling) with each
// initialization × discretization × B trained or fixed at 1. One class per cell: the generator specializes each.

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Lin, Discretization = Discretization.Zoh, TrainB = false, Repeat = 2)]
public partial class AblationLinZohFixedB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Lin, Discretization = Discretization.Zoh, TrainB = true, Repeat = 2)]
public partial class AblationLinZohTrainB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Lin, Discretization = Discretization.Bilinear, TrainB = false, Repeat = 2)]
public partial class AblationLinBilinearFixedB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Lin, Discretization = Discretization.Bilinear, TrainB = true, Repeat = 2)]
public partial class AblationLinBilinearTrainB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Inv, Discretization = Discretization.Zoh, TrainB = false, Repeat = 2)]
public partial class AblationInvZohFixedB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Inv, Discretization = Discretization.Zoh, TrainB = true, Repeat = 2)]
public partial class AblationInvZohTrainB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Inv, Discretization = Discretization.Bilinear, TrainB = false, Repeat = 2)]
public partial class AblationInvBilinearFixedB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Inv, Discretization = Discretization.Bilinear, TrainB = true, Repeat = 2)]
public partial class AblationInvBilinearTrainB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.LegS, Discretization = Discretization.Zoh, TrainB = false, Repeat = 2)]
public partial class AblationLegSZohFixedB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.LegS, Discretization = Discretization.Zoh, TrainB = true, Repeat = 2)]
public partial class AblationLegSZohTrainB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.LegS, Discretization = Discretization.Bilinear, TrainB = false, Repeat = 2)]
public partial class AblationLegSBilinearFixedB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.LegS, Discretization = Discretization.Bilinear, TrainB = true, Repeat = 2)]
public partial class AblationLegSBilinearTrainB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Real, Discretization = Discretization.Zoh, TrainB = false, Repeat = 2)]
public partial class AblationRealZohFixedB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Real, Discretization = Discretization.Zoh, TrainB = true, Repeat = 2)]
public partial class AblationRealZohTrainB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Real, Discretization = Discretization.Bilinear, TrainB = false, Repeat = 2)]
public partial class AblationRealBilinearFixedB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Real, Discretization = Discretization.Bilinear, TrainB = true, Repeat = 2)]
public partial class AblationRealBilinearTrainB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Random, Discretization = Discretization.Zoh, TrainB = false, Repeat = 2)]
public partial class AblationRandomZohFixedB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Random, Discretization = Discretization.Zoh, TrainB = true, Repeat = 2)]
public partial class AblationRandomZohTrainB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Random, Discretization = Discretization.Bilinear, TrainB = false, Repeat = 2)]
public partial class AblationRandomBilinearFixedB { }

[SsmModel(Input = 1, DModel = 64, Output = 10, Pooling = Pooling.Mean)]
[S4DLayer(N = 64, Init = S4DInit.Random, Discretization = Discretization.Bilinear, TrainB = true, Repeat = 2)]
public partial class AblationRandomBilinearTrainB { }

/// <summary>The grid's cells by name.</summary>
public static class AblationModels
{
    public static readonly S4DInit[] Inits = [S4DInit.Lin, S4DInit.Inv, S4DInit.LegS, S4DInit.Real, S4DInit.Random];
    public static readonly Discretization[] Discretizations = [Discretization.Zoh, Discretization.Bilinear];

    public static ISsmModel Create(S4DInit init, Discretization discretization, bool trainB, int maxBatch, int maxLength) => (init, discretization, trainB) switch
    {
        (S4DInit.Lin, Discretization.Zoh, false) => new AblationLinZohFixedB(maxBatch, maxLength),
        (S4DInit.Lin, Discretization.Zoh, true) => new AblationLinZohTrainB(maxBatch, maxLength),
        (S4DInit.Lin, Discretization.Bilinear, false) => new AblationLinBilinearFixedB(maxBatch, maxLength),
        (S4DInit.Lin, Discretization.Bilinear, true) => new AblationLinBilinearTrainB(maxBatch, maxLength),
        (S4DInit.Inv, Discretization.Zoh, false) => new AblationInvZohFixedB(maxBatch, maxLength),
        (S4DInit.Inv, Discretization.Zoh, true) => new AblationInvZohTrainB(maxBatch, maxLength),
        (S4DInit.Inv, Discretization.Bilinear, false) => new AblationInvBilinearFixedB(maxBatch, maxLength),
        (S4DInit.Inv, Discretization.Bilinear, true) => new AblationInvBilinearTrainB(maxBatch, maxLength),
        (S4DInit.LegS, Discretization.Zoh, false) => new AblationLegSZohFixedB(maxBatch, maxLength),
        (S4DInit.LegS, Discretization.Zoh, true) => new AblationLegSZohTrainB(maxBatch, maxLength),
        (S4DInit.LegS, Discretization.Bilinear, false) => new AblationLegSBilinearFixedB(maxBatch, maxLength),
        (S4DInit.LegS, Discretization.Bilinear, true) => new AblationLegSBilinearTrainB(maxBatch, maxLength),
        (S4DInit.Real, Discretization.Zoh, false) => new AblationRealZohFixedB(maxBatch, maxLength),
        (S4DInit.Real, Discretization.Zoh, true) => new AblationRealZohTrainB(maxBatch, maxLength),
        (S4DInit.Real, Discretization.Bilinear, false) => new AblationRealBilinearFixedB(maxBatch, maxLength),
        (S4DInit.Real, Discretization.Bilinear, true) => new AblationRealBilinearTrainB(maxBatch, maxLength),
        (S4DInit.Random, Discretization.Zoh, false) => new AblationRandomZohFixedB(maxBatch, maxLength),
        (S4DInit.Random, Discretization.Zoh, true) => new AblationRandomZohTrainB(maxBatch, maxLength),
        (S4DInit.Random, Discretization.Bilinear, false) => new AblationRandomBilinearFixedB(maxBatch, maxLength),
        (S4DInit.Random, Discretization.Bilinear, true) => new AblationRandomBilinearTrainB(maxBatch, maxLength),
        _ => throw new ArgumentOutOfRangeException(nameof(init), $"No ablation model for {init}, {discretization}, B {(trainB ? "trained" : "fixed")}."),
    };
}

// The ListOps ablation: the same quick stack reading tokens (vocabulary 16) and classifying from the last step;
// every init with ZOH and trained B, and Lin with the other discretization and with B fixed.

[SsmModel(Vocab = 16, DModel = 64, Output = 10, Pooling = Pooling.Last)]
[S4DLayer(N = 64, Init = S4DInit.Lin, Discretization = Discretization.Zoh, TrainB = true, Repeat = 2)]
public partial class ListOpsLinZohTrainB { }

[SsmModel(Vocab = 16, DModel = 64, Output = 10, Pooling = Pooling.Last)]
[S4DLayer(N = 64, Init = S4DInit.Inv, Discretization = Discretization.Zoh, TrainB = true, Repeat = 2)]
public partial class ListOpsInvZohTrainB { }

[SsmModel(Vocab = 16, DModel = 64, Output = 10, Pooling = Pooling.Last)]
[S4DLayer(N = 64, Init = S4DInit.LegS, Discretization = Discretization.Zoh, TrainB = true, Repeat = 2)]
public partial class ListOpsLegSZohTrainB { }

[SsmModel(Vocab = 16, DModel = 64, Output = 10, Pooling = Pooling.Last)]
[S4DLayer(N = 64, Init = S4DInit.Real, Discretization = Discretization.Zoh, TrainB = true, Repeat = 2)]
public partial class ListOpsRealZohTrainB { }

[SsmModel(Vocab = 16, DModel = 64, Output = 10, Pooling = Pooling.Last)]
[S4DLayer(N = 64, Init = S4DInit.Random, Discretization = Discretization.Zoh, TrainB = true, Repeat = 2)]
public partial class ListOpsRandomZohTrainB { }

[SsmModel(Vocab = 16, DModel = 64, Output = 10, Pooling = Pooling.Last)]
[S4DLayer(N = 64, Init = S4DInit.Lin, Discretization = Discretization.Bilinear, TrainB = true, Repeat = 2)]
public partial class ListOpsLinBilinearTrainB { }

[SsmModel(Vocab = 16, DModel = 64, Output = 10, Pooling = Pooling.Last)]
[S4DLayer(N = 64, Init = S4DInit.Lin, Discretization = Discretization.Zoh, TrainB = false, Repeat = 2)]
public partial class ListOpsLinZohFixedB { }

public static class ListOpsAblationModels
{
    /// <summary>The cells the ListOps ablation runs.</summary>
    public static readonly (S4DInit Init, Discretization Discretization, bool TrainB)[] Cells =
    [
        (S4DInit.Lin, Discretization.Zoh, true), (S4DInit.Inv, Discretization.Zoh, true), (S4DInit.LegS, Discretization.Zoh, true),
        (S4DInit.Real, Discretization.Zoh, true), (S4DInit.Random, Discretization.Zoh, true),
        (S4DInit.Lin, Discretization.Bilinear, true), (S4DInit.Lin, Discretization.Zoh, false),
    ];

    public static ISsmModel Create(S4DInit init, Discretization discretization, bool trainB, int maxBatch, int maxLength) => (init, discretization, trainB) switch
    {
        (S4DInit.Lin, Discretization.Zoh, true) => new ListOpsLinZohTrainB(maxBatch, maxLength),
        (S4DInit.Inv, Discretization.Zoh, true) => new ListOpsInvZohTrainB(maxBatch, maxLength),
        (S4DInit.LegS, Discretization.Zoh, true) => new ListOpsLegSZohTrainB(maxBatch, maxLength),
        (S4DInit.Real, Discretization.Zoh, true) => new ListOpsRealZohTrainB(maxBatch, maxLength),
        (S4DInit.Random, Discretization.Zoh, true) => new ListOpsRandomZohTrainB(maxBatch, maxLength),
        (S4DInit.Lin, Discretization.Bilinear, true) => new ListOpsLinBilinearTrainB(maxBatch, maxLength),
        (S4DInit.Lin, Discretization.Zoh, false) => new ListOpsLinZohFixedB(maxBatch, maxLength),
        _ => throw new ArgumentOutOfRangeException(nameof(init), $"No ListOps ablation model for {init}, {discretization}, B {(trainB ? "trained" : "fixed")}."),
    };
}
