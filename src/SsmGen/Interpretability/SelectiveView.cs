using SsmGen.Reference;

namespace SsmGen.Interpretability;

/// <summary>
/// The oscillator view carried to Mamba's selective SSM, per token: h_t = exp(Δ_t·A)·h_{t−1} + Δ_t·B_t·x_t with A real
/// and negative (A = −exp(A_log)), so each state is a leaky integrator whose decay per step, exp(Δ_t·A_n), the input
/// chooses token by token. There are no frequencies (Im A = 0): no sinusoids, no ring, no travelling waves; what
/// carries over is the modal reading — one damping rate Δ_t·|A_n| per state and channel, and its decay time
/// 1/(Δ_t·|A_n|) steps — now a function of time.
/// </summary>
public sealed class SelectiveView
{
    private SelectiveView(int block, int length, int inner, int states, double[] delta, double[] a) =>
        (Block, Length, Inner, States, Delta, A) = (block, length, inner, states, delta, a);

    public int Block { get; }
    public int Length { get; }

    /// <summary>Inner channels E.</summary>
    public int Inner { get; }

    /// <summary>States per channel N.</summary>
    public int States { get; }

    /// <summary>Δ_t per token and inner channel, (L, E).</summary>
    public double[] Delta { get; }

    /// <summary>A per inner channel and state, (E, N), all negative.</summary>
    public double[] A { get; }

    /// <summary>Damping per step Δ_t·|A_n| of channel e: (L, N).</summary>
    public double[] DampingPerStep(int e)
    {
        if ((uint)e >= (uint)Inner) throw new ArgumentOutOfRangeException(nameof(e), $"Channel {e} is outside 0..{Inner - 1}.");
        var d = new double[Length * States];
        for (int t = 0; t < Length; t++)
            for (int n = 0; n < States; n++) d[t * States + n] = Delta[t * Inner + e] * -A[e * States + n];
        return d;
    }

    /// <summary>
    /// The view of every Mamba block of a model for one token sequence, from its current parameters (run through the
    /// float64 reference, which keeps each block's Δ).
    /// </summary>
    public static IReadOnlyList<SelectiveView> ForTokens(ISsmModel model, ReadOnlySpan<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(model);
        var config = model.Config;
        if (!config.Layers.Any(l => l is MambaLayerConfig))
            throw new ArgumentException($"The model has no Mamba block (its blocks: {string.Join(", ", config.Layers.Select(l => l.Kind))}).", nameof(model));
        if (!config.TokenInput) throw new ArgumentException("The selective view reads token models; this one reads real features.", nameof(model));
        if (tokens.IsEmpty) throw new ArgumentException("Give at least one token.", nameof(tokens));
        int signed = config.Layers.ToList().FindIndex(l => l is MambaLayerConfig { Eigenvalues: MambaEigenvalues.PositiveAndNegative });
        if (signed >= 0)
            throw new ArgumentException($"Block {signed} has transitions 2·exp(Δ·A) − 1, which can be negative; the selective view reads each step as the decay exp(Δ·A).", nameof(model));
        var reference = new ReferenceModel<double>(config);
        var p = model.Parameters;
        for (int i = 0; i < p.Length; i++) reference.Parameters[i] = p[i];
        reference.Forward(tokens, 1, tokens.Length);
        var names = ParameterLayout.For(config);
        var table = reference.Table.ToDictionary(t => t.Name);
        var views = new List<SelectiveView>();
        for (int i = 0; i < config.Layers.Count; i++)
        {
            if (config.Layers[i] is not MambaLayerConfig m) continue;
            var aLog = table[$"{names.Layers}{i}.mixer.A_log"];
            var a = new double[aLog.Length];
            for (int j = 0; j < a.Length; j++) a[j] = -Math.Exp(reference.Parameters[aLog.Offset + j]);
            views.Add(new SelectiveView(i, tokens.Length, m.Inner(config.DModel), m.N, reference.MambaDelta(i).ToArray(), a));
        }
        return views;
    }
}
