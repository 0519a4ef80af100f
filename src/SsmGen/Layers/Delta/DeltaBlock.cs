using System.Numerics;

namespace SsmGen.Reference;

/// <summary>The delta-rule block of the reference model: x + DeltaRule(RMSNorm(x)).</summary>
internal sealed class DeltaBlock<T>(int dModel, DeltaLayerConfig config) : ResidualBlock<T>(dModel, rmsNorm: true) where T : IFloatingPointIeee754<T>
{
    private readonly DeltaReference<T> _delta = Create(dModel, config);

    private static DeltaReference<T> Create(int dModel, DeltaLayerConfig c) =>
        new(dModel, c.Heads, c.HeadSize, c.HouseholderSteps, c.ConvWidth, c.Gate, c.NegativeEigenvalues);

    private DeltaReference<T>.Params View(BlockView<T> p) => config.Gate
        ? new(p["mixer.q_proj.weight"], p["mixer.k_proj.weight"], p["mixer.v_proj.weight"], p["mixer.b_proj.weight"], p["mixer.a_proj.weight"],
            p["mixer.A_log"], p["mixer.dt_bias"], p["mixer.q_conv1d.weight"], p["mixer.k_conv1d.weight"], p["mixer.v_conv1d.weight"],
            p["mixer.g_proj.weight"], p["mixer.o_norm.weight"], p["mixer.o_proj.weight"])
        : new(p["mixer.q_proj.weight"], p["mixer.k_proj.weight"], p["mixer.v_proj.weight"], p["mixer.b_proj.weight"], default, default, default,
            p["mixer.q_conv1d.weight"], p["mixer.k_conv1d.weight"], p["mixer.v_conv1d.weight"], p["mixer.g_proj.weight"], p["mixer.o_norm.weight"],
            p["mixer.o_proj.weight"]);

    protected override void MixerForward(BlockView<T> p, T[] u, T[] y, int batch, int length, DropoutDraw dropout) => _delta.Forward(View(p), u, y, batch, length);

    protected override void MixerBackward(BlockView<T> p, BlockView<T> g, T[] dy, T[] du) => _delta.Backward(View(p), View(g), dy, du);

    protected override void MixerRecurrent(BlockView<T> p, T[] u, T[] y, int length)
    {
        var stepper = Create(H, config); // a fresh one: the last Forward's intermediates stay for Backward
        var state = new T[stepper.StateSize];
        for (int t = 0; t < length; t++) stepper.Step(View(p), state, u.AsSpan(t * H, H), y.AsSpan(t * H, H));
    }
}
