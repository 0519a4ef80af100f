using System.Numerics;

namespace SsmGen.Reference;

/// <summary>One block's tensors in a parameter (or gradient) buffer, reached by their names in the kind's table.</summary>
internal readonly struct BlockView<T>
{
    private readonly T[] _buffer;
    private readonly Dictionary<string, ParameterInfo> _byName;
    private readonly string _prefix;

    public BlockView(T[] buffer, Dictionary<string, ParameterInfo> byName, string prefix) => (_buffer, _byName, _prefix) = (buffer, byName, prefix);

    /// <summary>The tensor named <paramref name="name"/> within the block (<c>mixer.D</c>).</summary>
    public Span<T> this[string name] { get { var p = _byName[_prefix + name]; return _buffer.AsSpan(p.Offset, p.Length); } }

    /// <summary>The tensor, or empty when the block's table has none by that name (an untrained B, an RMSNorm's bias).</summary>
    public Span<T> Optional(string name) => _byName.ContainsKey(_prefix + name) ? this[name] : Span<T>.Empty;
}

/// <summary>Which dropout mask a training forward draws for one block (the generated code draws the same bits).</summary>
internal readonly record struct DropoutDraw(bool Training, ulong Seed, ulong Step, int Layer)
{
    public T Scale<T>(double p, long index) where T : IFloatingPointIeee754<T> =>
        Training && p > 0 ? BlockReference<T>.DropoutScale(p, Seed, Step, Layer, index) : T.One;
}

/// <summary>
/// One block of the reference model as its kind runs it. Each kind's reference block lives in its folder
/// (Layers/&lt;Kind&gt;/) and is made by its LayerConfig; <see cref="ReferenceModel{T}"/> only iterates them.
/// </summary>
internal abstract class ReferenceBlock<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>The block over a batch of sequences: x (B·L, H) → the block's output, keeping what Backward needs.</summary>
    public abstract T[] Forward(BlockView<T> p, T[] x, int batch, int length, DropoutDraw dropout);

    /// <summary>dx holds dL/d(the block's output of the last Forward) and becomes dL/d(its input); gradients accumulate in g.</summary>
    public abstract void Backward(BlockView<T> p, BlockView<T> g, T[] dx);

    /// <summary>The block run token by token with its recurrence over one sequence x (L, H).</summary>
    public abstract T[] Recurrent(BlockView<T> p, T[] x, int length);
}

/// <summary>
/// The block shape every kind shares: x + mixer(norm(x)), the norm a LayerNorm (or an RMSNorm when the kind says so).
/// A kind supplies its mixer's sequence pass, its backward and its token-by-token run.
/// </summary>
internal abstract class ResidualBlock<T> : ReferenceBlock<T> where T : IFloatingPointIeee754<T>
{
    private readonly int _h;
    private readonly bool _rms;
    private T[] _x = [], _mean = [], _rstd = [];
    private int _rows;

    protected ResidualBlock(int dModel, bool rmsNorm = false) => (_h, _rms) = (dModel, rmsNorm);

    protected int H => _h;

    /// <summary>u (rows·H, the norm's output) → y (rows·H), keeping what <see cref="MixerBackward"/> needs.</summary>
    protected abstract void MixerForward(BlockView<T> p, T[] u, T[] y, int batch, int length, DropoutDraw dropout);

    /// <summary>dy → du through the mixer of the last forward; parameter gradients into g.</summary>
    protected abstract void MixerBackward(BlockView<T> p, BlockView<T> g, T[] dy, T[] du);

    /// <summary>The mixer token by token over one sequence u (L·H) → y.</summary>
    protected abstract void MixerRecurrent(BlockView<T> p, T[] u, T[] y, int length);

    public override T[] Forward(BlockView<T> p, T[] x, int batch, int length, DropoutDraw dropout)
    {
        _rows = batch * length;
        (_x, _mean, _rstd) = (x, new T[_rows], new T[_rows]);
        var u = new T[_rows * _h];
        Norm(p, x, u, _mean, _rstd, _rows);
        var y = new T[_rows * _h];
        MixerForward(p, u, y, batch, length, dropout);
        for (int j = 0; j < y.Length; j++) y[j] += x[j];
        return y;
    }

    public override void Backward(BlockView<T> p, BlockView<T> g, T[] dx)
    {
        // the residual passes dx on unchanged; the path through the block adds to it
        var du = new T[_rows * _h];
        MixerBackward(p, g, dx, du);
        if (_rms) BlockReference<T>.RmsNormBackward(_x, p["norm.weight"], _rstd, du, dx, g["norm.weight"], _rows, _h);
        else BlockReference<T>.LayerNormBackward(_x, p["norm.weight"], _mean, _rstd, du, dx, g["norm.weight"], g["norm.bias"], _rows, _h);
    }

    public override T[] Recurrent(BlockView<T> p, T[] x, int length)
    {
        var u = new T[length * _h];
        Norm(p, x, u, new T[length], new T[length], length);
        var y = new T[length * _h];
        MixerRecurrent(p, u, y, length);
        for (int j = 0; j < y.Length; j++) y[j] += x[j];
        return y;
    }

    private void Norm(BlockView<T> p, ReadOnlySpan<T> x, Span<T> u, Span<T> mean, Span<T> rstd, int rows)
    {
        if (_rms) BlockReference<T>.RmsNormForward(x, p["norm.weight"], u, rstd, rows, _h);
        else BlockReference<T>.LayerNormForward(x, p["norm.weight"], p["norm.bias"], u, mean, rstd, rows, _h);
    }
}
