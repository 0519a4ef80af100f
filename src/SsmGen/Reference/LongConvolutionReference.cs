using System.Numerics;

namespace SsmGen.Reference;

/// <summary>
/// An SSM used as a long convolution (S4D, S4): y = K ∗ u + D·u over (B, L, H), with a kind's kernel K (H, L) and its
/// backward; the convolution and its backward are written once here.
/// </summary>
/// <typeparam name="TParams">The kind's view of its parameters (or their gradients).</typeparam>
public abstract class LongConvolutionReference<T, TParams>(int channels) where T : IFloatingPointIeee754<T> where TParams : allows ref struct
{
    /// <summary>Channels H.</summary>
    protected int Channels { get; } = channels;

    /// <summary>The convolution kernel K (H, L).</summary>
    public abstract T[] Kernel(TParams p, int length);

    /// <summary>From dL/dK (H, L) to the kind's parameter gradients in <paramref name="g"/> (accumulated).</summary>
    public abstract void KernelBackward(TParams p, TParams g, ReadOnlySpan<T> dk, int length);

    /// <summary>D (H), the skip term, of a parameter view.</summary>
    protected abstract Span<T> Skip(TParams p);

    /// <summary>Convolution mode: y = K ∗ u + D·u over (B, L, H).</summary>
    public void Forward(TParams p, ReadOnlySpan<T> u, Span<T> y, int batch, int length) =>
        BlockReference<T>.CausalConvolution(Kernel(p, length), Skip(p), u, y, Channels, batch, length);

    /// <summary>Accumulates du and every parameter gradient from dy.</summary>
    public void Backward(TParams p, TParams g, ReadOnlySpan<T> u, ReadOnlySpan<T> dy, Span<T> du, int batch, int length)
    {
        var dk = new T[Channels * length];
        BlockReference<T>.CausalConvolutionBackward(Kernel(p, length), Skip(p), u, dy, du, dk, Skip(g), Channels, batch, length);
        KernelBackward(p, g, dk, length);
    }
}
