using System.Numerics;

namespace SsmGen.Reference;

/// <summary>
/// The long-convolution block S4D and S4 share in the reference model: x + dropout(GLU(Linear(GELU(SSM(LayerNorm(x)))))),
/// the SSM a causal convolution with its kernel plus D·u. A kind supplies the SSM's three passes.
/// </summary>
internal abstract class ConvolutionBlock<T>(int dModel, double dropout) : ResidualBlock<T>(dModel) where T : IFloatingPointIeee754<T>
{
    private T[] _u = [], _y = [], _g = [], _o = [];
    private int _batch, _length;
    private DropoutDraw _dropout;

    /// <summary>u (B·L, H) → y (B·L, H) through the SSM in convolution mode.</summary>
    protected abstract void Ssm(BlockView<T> p, T[] u, T[] y, int batch, int length);

    /// <summary>Its backward: du accumulates, the SSM's parameter gradients go into g.</summary>
    protected abstract void SsmBackward(BlockView<T> p, BlockView<T> g, T[] u, T[] dy, T[] du, int batch, int length);

    /// <summary>The SSM step by step over one sequence.</summary>
    protected abstract void SsmRecurrent(BlockView<T> p, T[] u, T[] y, int length);

    protected override void MixerForward(BlockView<T> p, T[] u, T[] y, int batch, int length, DropoutDraw draw)
    {
        (_u, _batch, _length, _dropout) = (u, batch, length, draw);
        int rows = batch * length;
        _y = new T[rows * H]; _g = new T[rows * H]; _o = new T[rows * 2 * H];
        Ssm(p, u, _y, batch, length);
        Tail(p, _y, _g, _o, y, rows);
        for (int j = 0; j < y.Length; j++) y[j] *= draw.Scale<T>(dropout, j);
    }

    protected override void MixerBackward(BlockView<T> p, BlockView<T> g, T[] dy, T[] du)
    {
        int rows = _batch * _length;
        var dGlu = new T[rows * H];
        for (int j = 0; j < dGlu.Length; j++) dGlu[j] = dy[j] * _dropout.Scale<T>(dropout, j);
        var dO = new T[rows * 2 * H];
        BlockReference<T>.GluBackward(_o, dGlu, dO, rows, H);
        var dG = new T[rows * H];
        BlockReference<T>.LinearBackward(_g, p["mixer.output_linear.weight"], dO, dG, g["mixer.output_linear.weight"], g["mixer.output_linear.bias"], rows, H, 2 * H);
        var dY = new T[rows * H];
        for (int j = 0; j < dY.Length; j++) dY[j] = dG[j] * BlockReference<T>.GeluDerivative(_y[j]);
        SsmBackward(p, g, _u, dY, du, _batch, _length);
    }

    protected override void MixerRecurrent(BlockView<T> p, T[] u, T[] y, int length)
    {
        var s = new T[length * H];
        SsmRecurrent(p, u, s, length);
        Tail(p, s, new T[length * H], new T[length * 2 * H], y, length);
    }

    /// <summary>GELU, the output linear H → 2H, and the GLU back to H.</summary>
    private void Tail(BlockView<T> p, T[] s, T[] g, T[] o, T[] y, int rows)
    {
        for (int j = 0; j < g.Length; j++) g[j] = BlockReference<T>.Gelu(s[j]);
        BlockReference<T>.LinearForward(g, p["mixer.output_linear.weight"], p["mixer.output_linear.bias"], o, rows, H, 2 * H);
        BlockReference<T>.GluForward(o, y, rows, H);
    }
}
