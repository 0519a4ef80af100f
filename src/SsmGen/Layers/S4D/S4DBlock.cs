using System.Numerics;

namespace SsmGen.Reference;

/// <summary>The S4D block of the reference model: x + dropout(GLU(Linear(GELU(S4D(LayerNorm(x)))))).</summary>
internal sealed class S4DBlock<T>(int dModel, S4DLayerConfig config) : ResidualBlock<T>(dModel) where T : IFloatingPointIeee754<T>
{
    private readonly S4DReference<T> _s4d = new(dModel, config.N, config.Discretization);
    private T[] _u = [], _y = [], _g = [], _o = [];
    private int _batch, _length;
    private DropoutDraw _dropout;

    private static S4DReference<T>.Params Ssm(BlockView<T> p) =>
        new(p["mixer.log_dt"], p["mixer.log_A_real"], p["mixer.A_imag"], p.Optional("mixer.B"), p["mixer.C"], p["mixer.D"]);

    protected override void MixerForward(BlockView<T> p, T[] u, T[] y, int batch, int length, DropoutDraw dropout)
    {
        (_u, _batch, _length, _dropout) = (u, batch, length, dropout);
        int rows = batch * length;
        _y = new T[rows * H]; _g = new T[rows * H]; _o = new T[rows * 2 * H];
        _s4d.Forward(Ssm(p), u, _y, batch, length);
        Tail(p, _y, _g, _o, y, rows);
        for (int j = 0; j < y.Length; j++) y[j] *= dropout.Scale<T>(config.Dropout, j);
    }

    protected override void MixerBackward(BlockView<T> p, BlockView<T> g, T[] dy, T[] du)
    {
        int rows = _batch * _length;
        var dGlu = new T[rows * H];
        for (int j = 0; j < dGlu.Length; j++) dGlu[j] = dy[j] * _dropout.Scale<T>(config.Dropout, j);
        var dO = new T[rows * 2 * H];
        BlockReference<T>.GluBackward(_o, dGlu, dO, rows, H);
        var dG = new T[rows * H];
        BlockReference<T>.LinearBackward(_g, p["mixer.output_linear.weight"], dO, dG, g["mixer.output_linear.weight"], g["mixer.output_linear.bias"], rows, H, 2 * H);
        var dY = new T[rows * H];
        for (int j = 0; j < dY.Length; j++) dY[j] = dG[j] * BlockReference<T>.GeluDerivative(_y[j]);
        _s4d.Backward(Ssm(p), Ssm(g), _u, dY, du, _batch, _length);
    }

    protected override void MixerRecurrent(BlockView<T> p, T[] u, T[] y, int length)
    {
        var s = new T[length * H];
        _s4d.Recurrent(Ssm(p), u, s, 1, length);
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
