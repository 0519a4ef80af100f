using System.Numerics;

namespace SsmGen.Reference;

/// <summary>The input-dependent transition (IDS) block of the reference model: x + IDS(LayerNorm(x)).</summary>
internal sealed class IdsBlock<T>(int dModel, IdsLayerConfig config) : ResidualBlock<T>(dModel) where T : IFloatingPointIeee754<T>
{
    private readonly IdsReference<T> _ids = new(dModel, config.N);

    private static IdsReference<T>.Params View(BlockView<T> p) =>
        new(p["mixer.A.weight"], p["mixer.A.bias"], p["mixer.B.weight"], p["mixer.C.weight"], p["mixer.C.bias"]);

    protected override void MixerForward(BlockView<T> p, T[] u, T[] y, int batch, int length, DropoutDraw dropout) => _ids.Forward(View(p), u, y, batch, length);

    protected override void MixerBackward(BlockView<T> p, BlockView<T> g, T[] dy, T[] du) => _ids.Backward(View(p), View(g), dy, du);

    protected override void MixerRecurrent(BlockView<T> p, T[] u, T[] y, int length)
    {
        var stepper = new IdsReference<T>(H, config.N); // a fresh one: the last Forward's intermediates stay for Backward
        var state = new T[stepper.StateSize];
        for (int t = 0; t < length; t++) stepper.Step(View(p), state, u.AsSpan(t * H, H), y.AsSpan(t * H, H));
    }
}
