using System.Numerics;

namespace SsmGen.Reference;

/// <summary>The Mamba block of the reference model: x + mixer(norm(x)), the norm RMSNorm or LayerNorm as declared.</summary>
internal sealed class MambaBlock<T>(int dModel, MambaLayerConfig config) : ResidualBlock<T>(dModel, config.Norm == NormKind.RmsNorm) where T : IFloatingPointIeee754<T>
{
    /// <summary>The mixer, with the intermediates of the last Forward (Δ, the scan's recurrence).</summary>
    public MambaReference<T> Mixer { get; } = new(dModel, config.N, config.Expand, config.ConvWidth, config.Rank(dModel), config.Eigenvalues);

    /// <summary>True once a Forward has run (its intermediates are then readable).</summary>
    public bool HasRun { get; private set; }

    public static MambaReference<T>.Params View(BlockView<T> p) =>
        new(p["mixer.in_proj.weight"], p["mixer.conv1d.weight"], p["mixer.conv1d.bias"], p["mixer.x_proj.weight"],
            p["mixer.dt_proj.weight"], p["mixer.dt_proj.bias"], p["mixer.A_log"], p["mixer.D"], p["mixer.out_proj.weight"]);

    protected override void MixerForward(BlockView<T> p, T[] u, T[] y, int batch, int length, DropoutDraw dropout)
    {
        Mixer.Forward(View(p), u, y, batch, length);
        HasRun = true;
    }

    protected override void MixerBackward(BlockView<T> p, BlockView<T> g, T[] dy, T[] du) => Mixer.Backward(View(p), View(g), dy, du);

    protected override void MixerRecurrent(BlockView<T> p, T[] u, T[] y, int length)
    {
        var step = new MambaReference<T>(H, config.N, config.Expand, config.ConvWidth, config.Rank(H), config.Eigenvalues);
        var state = new T[step.StateSize];
        for (int t = 0; t < length; t++)
            step.Step(View(p), state.AsSpan(0, step.ConvStateSize), state.AsSpan(step.ConvStateSize), u.AsSpan(t * H, H), y.AsSpan(t * H, H));
    }
}
