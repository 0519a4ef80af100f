using System.Numerics;

namespace SsmGen.Reference;

/// <summary>The S4 block of the reference model: the long-convolution block with S4's DPLR SSM.</summary>
internal sealed class S4Block<T>(int dModel, S4LayerConfig config) : ConvolutionBlock<T>(dModel, config.Dropout) where T : IFloatingPointIeee754<T>
{
    private readonly S4Reference<T> _s4 = new(dModel, config.N, config.KernelLength);

    private static S4Reference<T>.Params Params(BlockView<T> p) =>
        new(p["mixer.log_dt"], p["mixer.log_A_real"], p["mixer.A_imag"], p["mixer.P"], p["mixer.B"], p["mixer.C"], p["mixer.D"]);

    protected override void Ssm(BlockView<T> p, T[] u, T[] y, int batch, int length) => _s4.Forward(Params(p), u, y, batch, length);

    protected override void SsmBackward(BlockView<T> p, BlockView<T> g, T[] u, T[] dy, T[] du, int batch, int length) =>
        _s4.Backward(Params(p), Params(g), u, dy, du, batch, length);

    protected override void SsmRecurrent(BlockView<T> p, T[] u, T[] y, int length) => _s4.Recurrent(Params(p), u, y, 1, length);
}
