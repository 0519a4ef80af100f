using System.Numerics;

namespace SsmGen.Reference;

/// <summary>The S4D block of the reference model: the long-convolution block with S4D's diagonal SSM.</summary>
internal sealed class S4DBlock<T>(int dModel, S4DLayerConfig config) : ConvolutionBlock<T>(dModel, config.Dropout) where T : IFloatingPointIeee754<T>
{
    private readonly S4DReference<T> _s4d = new(dModel, config.N, config.Discretization);

    private static S4DReference<T>.Params Params(BlockView<T> p) =>
        new(p["mixer.log_dt"], p["mixer.log_A_real"], p["mixer.A_imag"], p.Optional("mixer.B"), p["mixer.C"], p["mixer.D"]);

    protected override void Ssm(BlockView<T> p, T[] u, T[] y, int batch, int length) => _s4d.Forward(Params(p), u, y, batch, length);

    protected override void SsmBackward(BlockView<T> p, BlockView<T> g, T[] u, T[] dy, T[] du, int batch, int length) =>
        _s4d.Backward(Params(p), Params(g), u, dy, du, batch, length);

    protected override void SsmRecurrent(BlockView<T> p, T[] u, T[] y, int length) => _s4d.Recurrent(Params(p), u, y, 1, length);
}
