using SsmGen;

namespace SsmGen.Examples.Memory;

// The state-size sweep: two blocks of each kind at each state size N, every model near 40,000 parameters. N fixes the
// state; the width d_model is the even number that brings the whole model (embedding, blocks, norm, decoder) closest
// to the budget, so a small state buys a wide model and a large one a narrow model. Sweep.Models lists them with
// their kind and N, and the sweep checks every count against the budget before it trains. Vocabulary and classes are
// selective copying's.

[SsmModel(Vocab = Gate.InputVocab, DModel = 94, Output = Gate.Symbols, Pooling = Pooling.None)]
[S4DLayer(N = 2, Repeat = 2)]
public partial class SweepS4DN2 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 92, Output = Gate.Symbols, Pooling = Pooling.None)]
[S4DLayer(N = 4, Repeat = 2)]
public partial class SweepS4DN4 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 90, Output = Gate.Symbols, Pooling = Pooling.None)]
[S4DLayer(N = 8, Repeat = 2)]
public partial class SweepS4DN8 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 86, Output = Gate.Symbols, Pooling = Pooling.None)]
[S4DLayer(N = 16, Repeat = 2)]
public partial class SweepS4DN16 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 80, Output = Gate.Symbols, Pooling = Pooling.None)]
[S4DLayer(N = 32, Repeat = 2)]
public partial class SweepS4DN32 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 68, Output = Gate.Symbols, Pooling = Pooling.None)]
[S4DLayer(N = 64, Repeat = 2)]
public partial class SweepS4DN64 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 52, Output = Gate.Symbols, Pooling = Pooling.None)]
[MambaLayer(N = 2, Expand = 2, Repeat = 2)]
public partial class SweepMambaN2 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 52, Output = Gate.Symbols, Pooling = Pooling.None)]
[MambaLayer(N = 4, Expand = 2, Repeat = 2)]
public partial class SweepMambaN4 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 50, Output = Gate.Symbols, Pooling = Pooling.None)]
[MambaLayer(N = 8, Expand = 2, Repeat = 2)]
public partial class SweepMambaN8 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 48, Output = Gate.Symbols, Pooling = Pooling.None)]
[MambaLayer(N = 16, Expand = 2, Repeat = 2)]
public partial class SweepMambaN16 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 42, Output = Gate.Symbols, Pooling = Pooling.None)]
[MambaLayer(N = 32, Expand = 2, Repeat = 2)]
public partial class SweepMambaN32 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 32, Output = Gate.Symbols, Pooling = Pooling.None)]
[MambaLayer(N = 64, Expand = 2, Repeat = 2)]
public partial class SweepMambaN64 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 784, Output = Gate.Symbols, Pooling = Pooling.None)]
[RnnLayer(Hidden = 2, Repeat = 2)]
public partial class SweepRnnN2 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 676, Output = Gate.Symbols, Pooling = Pooling.None)]
[RnnLayer(Hidden = 4, Repeat = 2)]
public partial class SweepRnnN4 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 530, Output = Gate.Symbols, Pooling = Pooling.None)]
[RnnLayer(Hidden = 8, Repeat = 2)]
public partial class SweepRnnN8 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 368, Output = Gate.Symbols, Pooling = Pooling.None)]
[RnnLayer(Hidden = 16, Repeat = 2)]
public partial class SweepRnnN16 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 222, Output = Gate.Symbols, Pooling = Pooling.None)]
[RnnLayer(Hidden = 32, Repeat = 2)]
public partial class SweepRnnN32 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 106, Output = Gate.Symbols, Pooling = Pooling.None)]
[RnnLayer(Hidden = 64, Repeat = 2)]
public partial class SweepRnnN64 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 678, Output = Gate.Symbols, Pooling = Pooling.None)]
[IdsLayer(N = 2, Repeat = 2)]
public partial class SweepIdsN2 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 440, Output = Gate.Symbols, Pooling = Pooling.None)]
[IdsLayer(N = 4, Repeat = 2)]
public partial class SweepIdsN4 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 196, Output = Gate.Symbols, Pooling = Pooling.None)]
[IdsLayer(N = 8, Repeat = 2)]
public partial class SweepIdsN8 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 64, Output = Gate.Symbols, Pooling = Pooling.None)]
[IdsLayer(N = 16, Repeat = 2)]
public partial class SweepIdsN16 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 18, Output = Gate.Symbols, Pooling = Pooling.None)]
[IdsLayer(N = 32, Repeat = 2)]
public partial class SweepIdsN32 { }

[SsmModel(Vocab = Gate.InputVocab, DModel = 4, Output = Gate.Symbols, Pooling = Pooling.None)]
[IdsLayer(N = 64, Repeat = 2)]
public partial class SweepIdsN64 { }
