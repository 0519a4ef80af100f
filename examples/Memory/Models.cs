using SsmGen;

namespace SsmGen.Examples.Memory;

/// <summary>Selective copying (16 symbols + noise, marker, blank): two Mamba blocks, the gate under study.</summary>
[SsmModel(Vocab = Gate.InputVocab, DModel = 64, Output = Gate.Symbols, Pooling = Pooling.None)]
[MambaLayer(N = 16, Expand = 2, Repeat = 2)]
public partial class CopyMamba { }
