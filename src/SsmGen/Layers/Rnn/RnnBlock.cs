using System.Numerics;

namespace SsmGen.Reference;

/// <summary>The simple RNN block of the reference model: x + RNN(LayerNorm(x)).</summary>
internal sealed class RnnBlock<T>(int dModel, RnnLayerConfig config) : ResidualBlock<T>(dModel) where T : IFloatingPointIeee754<T>
{
    private readonly RnnReference<T> _rnn = new(dModel, config.HiddenSize(dModel), config.Nonlinearity);

    private static RnnReference<T>.Params View(BlockView<T> p) =>
        new(p["mixer.weight_ih"], p["mixer.weight_hh"], p["mixer.bias_ih"], p["mixer.bias_hh"], p["mixer.out_proj.weight"], p["mixer.out_proj.bias"]);

    protected override void MixerForward(BlockView<T> p, T[] u, T[] y, int batch, int length, DropoutDraw dropout) => _rnn.Forward(View(p), u, y, batch, length);

    protected override void MixerBackward(BlockView<T> p, BlockView<T> g, T[] dy, T[] du) => _rnn.Backward(View(p), View(g), dy, du);

    protected override void MixerRecurrent(BlockView<T> p, T[] u, T[] y, int length)
    {
        var stepper = new RnnReference<T>(H, config.HiddenSize(H), config.Nonlinearity); // a fresh one: the last Forward's intermediates stay for Backward
        var state = new T[stepper.StateSize];
        for (int t = 0; t < length; t++) stepper.Step(View(p), state, u.AsSpan(t * H, H), y.AsSpan(t * H, H));
    }
}
