using System.Numerics;

namespace SsmGen.Reference;

/// <summary>
/// The transformer block of the reference model: x₁ = x + attention(LayerNorm(x)), then x₁ + fc2(GELU(fc1(LayerNorm(x₁)))).
/// </summary>
internal sealed class AttentionBlock<T>(int dModel, AttentionLayerConfig config) : ResidualBlock<T>(dModel) where T : IFloatingPointIeee754<T>
{
    private readonly AttentionReference<T> _attention = new(dModel, config.Heads);
    private readonly int _width = config.MlpRatio * dModel;
    private MlpPass _mlp = new();

    /// <summary>The MLP half's input and intermediates (B·L rows).</summary>
    private sealed class MlpPass
    {
        public int Rows;
        public T[] X1 = [], Mean2 = [], Rstd2 = [], U2 = [], F1 = [], Act = [];
    }

    private static AttentionReference<T>.Params View(BlockView<T> p) =>
        new(p["mixer.in_proj.weight"], p["mixer.in_proj.bias"], p["mixer.out_proj.weight"], p["mixer.out_proj.bias"]);

    public override T[] Forward(BlockView<T> p, T[] x, int batch, int length, DropoutDraw dropout) =>
        Mlp(p, base.Forward(p, x, batch, length, dropout), batch * length, _mlp = new MlpPass());

    public override void Backward(BlockView<T> p, BlockView<T> g, T[] dx)
    {
        var (m, rows) = (_mlp, _mlp.Rows);
        var dAct = new T[rows * _width];
        BlockReference<T>.LinearBackward(m.Act, p["mlp.fc2.weight"], dx, dAct, g["mlp.fc2.weight"], g["mlp.fc2.bias"], rows, _width, H);
        for (int j = 0; j < dAct.Length; j++) dAct[j] *= BlockReference<T>.GeluDerivative(m.F1[j]);
        var dU2 = new T[rows * H];
        BlockReference<T>.LinearBackward(m.U2, p["mlp.fc1.weight"], dAct, dU2, g["mlp.fc1.weight"], g["mlp.fc1.bias"], rows, H, _width);
        BlockReference<T>.LayerNormBackward(m.X1, p["norm2.weight"], m.Mean2, m.Rstd2, dU2, dx, g["norm2.weight"], g["norm2.bias"], rows, H);
        base.Backward(p, g, dx);
    }

    public override T[] Recurrent(BlockView<T> p, T[] x, int length) => Mlp(p, base.Recurrent(p, x, length), length, new MlpPass());

    protected override void MixerForward(BlockView<T> p, T[] u, T[] y, int batch, int length, DropoutDraw dropout) => _attention.Forward(View(p), u, y, batch, length);

    protected override void MixerBackward(BlockView<T> p, BlockView<T> g, T[] dy, T[] du) => _attention.Backward(View(p), View(g), dy, du);

    protected override void MixerRecurrent(BlockView<T> p, T[] u, T[] y, int length)
    {
        var (attention, cache) = (new AttentionReference<T>(H, config.Heads), new T[AttentionReference<T>.CacheSize(length, H)]);
        for (int t = 0; t < length; t++) attention.Step(View(p), cache, t, u.AsSpan(t * H, H), y.AsSpan(t * H, H));
    }

    /// <summary>The second half, x₁ + fc2(GELU(fc1(LayerNorm(x₁)))), its intermediates kept in m.</summary>
    private T[] Mlp(BlockView<T> p, T[] x1, int rows, MlpPass m)
    {
        m.Rows = rows;
        m.X1 = x1; m.Mean2 = new T[rows]; m.Rstd2 = new T[rows]; m.U2 = new T[rows * H]; m.F1 = new T[rows * _width]; m.Act = new T[rows * _width];
        BlockReference<T>.LayerNormForward(x1, p["norm2.weight"], p["norm2.bias"], m.U2, m.Mean2, m.Rstd2, rows, H);
        BlockReference<T>.LinearForward(m.U2, p["mlp.fc1.weight"], p["mlp.fc1.bias"], m.F1, rows, H, _width);
        for (int j = 0; j < m.F1.Length; j++) m.Act[j] = BlockReference<T>.Gelu(m.F1[j]);
        var f2 = new T[rows * H];
        BlockReference<T>.LinearForward(m.Act, p["mlp.fc2.weight"], p["mlp.fc2.bias"], f2, rows, _width, H);
        var next = new T[rows * H];
        for (int j = 0; j < next.Length; j++) next[j] = x1[j] + f2[j];
        return next;
    }
}
