namespace SsmGen.Reference;

/// <summary>
/// Walks a flat buffer of tensors stored back to back, handing out one view per call in table order; a reference's
/// <c>View</c> builds its <c>Params</c> from it so that the sizes come from the kind's tensor table only.
/// </summary>
internal ref struct TensorCursor<T>
{
    private Span<T> _rest;
    private readonly int[] _lengths;
    private int _next;

    public TensorCursor(Span<T> flat, int[] lengths)
    {
        _rest = flat;
        _lengths = lengths;
    }

    /// <summary>The next tensor's view.</summary>
    public Span<T> Next()
    {
        var view = _rest.Slice(0, _lengths[_next]);
        _rest = _rest.Slice(_lengths[_next++]);
        return view;
    }
}
