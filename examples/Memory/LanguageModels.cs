using SsmGen;
using SsmGen.Examples.Sonnets;

namespace SsmGen.Examples.Memory;

// The language comparison: the sonnet character model (two Mamba blocks, d_model 128, N 16; examples/Sonnets) beside
// a tanh RNN and a transformer of about its size (266,000 parameters; widths chosen for the budget, within 1%).

/// <summary>Two tanh RNN blocks, d_model and hidden 190.</summary>
[SsmModel(Vocab = CharVocabulary.Size, DModel = 190, Output = CharVocabulary.Size, Pooling = Pooling.None)]
[RnnLayer(Hidden = 190, Repeat = 2)]
public partial class SonnetRnn { }

/// <summary>Two transformer blocks, d_model 100, 5 heads of 20, MLP ratio 4.</summary>
[SsmModel(Vocab = CharVocabulary.Size, DModel = 100, Output = CharVocabulary.Size, Pooling = Pooling.None)]
[AttentionLayer(Heads = 5, MlpRatio = 4, Repeat = 2)]
public partial class SonnetAttention { }
