using SsmGen;

namespace SsmGen.Examples.Sonnets;

// The sonnet model, in a file of its own so that a program loading the checkpoint can compile the same
// declaration (<Compile Include="…/SonnetModel.cs" />). Token ids are CharVocabulary's (ASCII codes, 128 of them);
// the output is one row of next-character logits per input token.

/// <summary>A character-level next-token model: two Mamba blocks, d_model 128, state size 16, inner width 256.</summary>
[SsmModel(Vocab = 128, DModel = 128, Output = 128, Pooling = Pooling.None)]
[MambaLayer(N = 16, Expand = 2, Repeat = 2)]
public partial class SonnetModel { }
