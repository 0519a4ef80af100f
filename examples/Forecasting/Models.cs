using SsmGen;

namespace SsmGen.Examples.Forecasting;

// Three forecasters of one size: each reads a window of one real value per step and emits the next 24 values at
// its last position. Widths are chosen so that every model has 29,000–31,000 parameters.

/// <summary>Two S4D blocks, d_model 56, N 64.</summary>
[SsmModel(Input = 1, DModel = 56, Output = Series.Horizon, Pooling = Pooling.Last)]
[S4DLayer(N = 64, Repeat = 2)]
public partial class S4DForecaster { }

/// <summary>Two Mamba blocks, d_model 40, N 16.</summary>
[SsmModel(Input = 1, DModel = 40, Output = Series.Horizon, Pooling = Pooling.Last)]
[MambaLayer(N = 16, Expand = 2, Repeat = 2)]
public partial class MambaForecaster { }

/// <summary>Two tanh RNN blocks, d_model and hidden 68.</summary>
[SsmModel(Input = 1, DModel = 68, Output = Series.Horizon, Pooling = Pooling.Last)]
[RnnLayer(Hidden = 68, Repeat = 2)]
public partial class RnnForecaster { }
