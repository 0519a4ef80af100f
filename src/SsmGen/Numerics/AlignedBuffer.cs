namespace SsmGen.Numerics;

/// <summary>
/// A float buffer whose first element sits on a cache line (<see cref="CacheLines"/>: a different line of the page for
/// each buffer made after another): a pinned array and the offset into it where a line starts.
/// .NET aligns arrays to 8 bytes only, so on a plain array most 64-byte vector loads and stores straddle two lines,
/// each costing twice; the generated models keep their activations, and the kernels their scratch, in these.
/// Reads as a <see cref="Span{T}"/> of exactly <see cref="Length"/> elements; pinned for its lifetime (on the pinned
/// object heap, which is never compacted: a process that keeps making and dropping large models may fragment it), so
/// <c>fixed</c> costs nothing.
/// </summary>
public sealed class AlignedBuffer
{
    private readonly float[] _array;
    private readonly int _first;

    /// <summary>A buffer of no elements (the training-only buffers of an inference model).</summary>
    public static AlignedBuffer Empty { get; } = new(0);

    public AlignedBuffer(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        // the array holds a page and a line more than the buffer, to start it on a chosen line (CacheLines)
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, MaxLength);
        Length = length;
        (_array, _first) = length == 0 ? ([], 0) : CacheLines.PinnedArray<float>(length);
    }

    public int Length { get; }

    /// <summary>The longest buffer: the largest array less what its start may skip.</summary>
    public static int MaxLength => Array.MaxLength - CacheLines.Slack / sizeof(float);

    public Span<float> Span => _array.AsSpan(_first, Length);

    public Span<float> AsSpan() => Span;
    public Span<float> AsSpan(int start) => Span.Slice(start);
    public Span<float> AsSpan(int start, int length) => Span.Slice(start, length);

    public ref float this[int index] => ref Span[index];

    /// <summary>The first element, for <c>fixed</c> (null reference when empty, as for an empty array).</summary>
    public ref float GetPinnableReference() => ref Span.GetPinnableReference();

    public static implicit operator Span<float>(AlignedBuffer buffer) => buffer.Span;
    public static implicit operator ReadOnlySpan<float>(AlignedBuffer buffer) => buffer.Span;
}
