namespace SsmGen.Interpretability;

/// <summary>
/// A stand-in for S4D blocks' decoders x ← x + GLU(W·GELU(y) + b) in <see cref="S4DOperator.Forward"/>, to ask how
/// much of the decoder's nonlinearity — how many products of waves — the model needs. Replaces every block's decoder,
/// or only <see cref="Block"/>'s with the others exact.
/// </summary>
public abstract class DecoderApproximation
{
    private protected DecoderApproximation(int? block)
    {
        if (block < 0) throw new ArgumentOutOfRangeException(nameof(block), $"The block must be 0 or more; got {block}.");
        Block = block;
    }

    /// <summary>The one block whose decoder is replaced; null when every block's is.</summary>
    public int? Block { get; }

    internal bool Replaces(int block) => Block is null || Block == block;

    /// <summary>Throws unless the approximation was made for this operator's shape.</summary>
    internal virtual void Check(S4DOperator op)
    {
        if (Block >= op.Config.Layers.Count) throw new ArgumentException($"Block {Block} is outside 0..{op.Config.Layers.Count - 1}.");
    }

    /// <summary>x += the approximated decoder of block <paramref name="block"/> at every step; y and x are (L, H).</summary>
    internal abstract void Add(int block, ReadOnlySpan<double> y, ReadOnlySpan<double> w, ReadOnlySpan<double> bias, Span<double> x, int length, int h);
}
