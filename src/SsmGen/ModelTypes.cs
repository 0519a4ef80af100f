namespace SsmGen;

/// <summary>Which optimizer settings a parameter trains with.</summary>
public enum OptimizerGroup
{
    /// <summary>Weight matrices, embeddings and C: base learning rate, weight decay.</summary>
    Default = 0,
    /// <summary>Biases, norm gains and the D skip: base learning rate, no weight decay.</summary>
    NoDecay = 1,
    /// <summary>SSM dynamics (log Δ, A, B): their own learning rate, no weight decay (S4D paper).</summary>
    Ssm = 2,
}

/// <summary>One named tensor inside a model's contiguous parameter buffer.</summary>
/// <param name="Name">PyTorch-style name, e.g. <c>layers.0.mixer.log_dt</c>.</param>
/// <param name="Shape">Row-major shape.</param>
/// <param name="Offset">First element in the parameter (and gradient) buffer.</param>
/// <param name="Group">Optimizer group.</param>
public sealed record ParameterInfo(string Name, int[] Shape, int Offset, OptimizerGroup Group)
{
    /// <summary>Number of elements (product of the shape).</summary>
    public int Length => checked((int)Shapes.ElementCount(Shape));

    /// <summary>Shape written as <c>(a, b)</c>.</summary>
    public string ShapeText => "(" + string.Join(", ", Shape) + ")";
}

/// <summary>Shape arithmetic shared by parameter tables and checkpoint entries.</summary>
public static class Shapes
{
    /// <summary>Product of the dimensions (1 for a scalar's empty shape).</summary>
    public static long ElementCount(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        return n;
    }
}

/// <summary>Runtime description of one S4D block (the same facts the attributes declare).</summary>
public sealed record S4DLayerConfig(
    int N,
    S4DInit Init = S4DInit.Lin,
    Discretization Discretization = Discretization.Zoh,
    bool TrainB = false,
    double Dropout = 0,
    double DtMin = 1e-3,
    double DtMax = 1e-1);

/// <summary>Runtime description of a whole model; the reference implementation is built from it.</summary>
public sealed record ModelConfig(int Input, int Vocab, int DModel, int Output, Pooling Pooling, IReadOnlyList<S4DLayerConfig> Layers)
{
    /// <summary>True when the model reads token ids through an embedding.</summary>
    public bool TokenInput => Vocab > 0;

    /// <summary>Values per time step in a <c>Forward</c> input row: Input, or 1 for token ids.</summary>
    public int InputWidth => TokenInput ? 1 : Input;

    /// <summary>Checks the facts the generator also checks at compile time.</summary>
    public void Validate()
    {
        if ((Input > 0) == (Vocab > 0)) throw new ArgumentException("Set exactly one of Input (real features) and Vocab (token ids).");
        if (Input < 0 || Vocab < 0) throw new ArgumentException("Input and Vocab must not be negative.");
        if (DModel <= 0) throw new ArgumentException($"DModel must be positive, got {DModel}.");
        if (Output <= 0) throw new ArgumentException($"Output must be positive, got {Output}.");
        if (Layers.Count == 0) throw new ArgumentException("A model needs at least one layer.");
        foreach (var l in Layers)
        {
            if (l.N <= 0 || l.N % 2 != 0) throw new ArgumentException($"S4D state size N must be positive and even, got {l.N}.");
            if (!(l.Dropout >= 0 && l.Dropout < 1)) throw new ArgumentException($"Dropout must be in [0, 1), got {l.Dropout}.");
            if (!(l.DtMin > 0 && l.DtMin <= l.DtMax)) throw new ArgumentException($"Need 0 < DtMin <= DtMax, got {l.DtMin} and {l.DtMax}.");
        }
    }
}
