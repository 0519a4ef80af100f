namespace SsmGen;

// Linked into the generator with the tensor tables (Layers/*.Table.cs), which name each tensor's group.

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
