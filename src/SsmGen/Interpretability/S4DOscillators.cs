using System.Numerics;
using SsmGen.Reference;

namespace SsmGen.Interpretability;

/// <summary>
/// One mode of one S4D channel read as a damped oscillator ("An explicit operator explains end-to-end computation in
/// the modern neural networks used for sequence and language modeling"): the continuous pole A = −γ + iω, its
/// discrete step Ā = r·e^{iθ} and its weight W = C·B̄ = |W|·e^{iφ}. Its share of the channel's convolution kernel is
/// the damped sinusoid 2|W|·rˡ·cos(θl + φ).
/// </summary>
public sealed record Oscillator(int Block, int Channel, int Mode, Complex A, double Dt, Complex Transition, Complex Weight)
{
    /// <summary>Angular frequency ω = Im A, per unit of continuous time.</summary>
    public double Frequency => A.Imaginary;

    /// <summary>Phase advance per step before aliasing, Δ·Im A.</summary>
    public double PhaseAdvance => Dt * A.Imaginary;

    /// <summary>θ = arg Ā, the phase the discrete mode turns per step (Δ·Im A wrapped to (−π, π] for ZOH).</summary>
    public double StepAngle => Transition.Phase;

    /// <summary>Damping γ = −Re A.</summary>
    public double Damping => -A.Real;

    /// <summary>r = |Ā|, the factor the mode's amplitude keeps per step.</summary>
    public double Radius => Transition.Magnitude;

    /// <summary>Steps for the amplitude to fall by e: −1/ln r (1/(Δγ) for ZOH).</summary>
    public double DecaySteps => -1 / Math.Log(Radius);

    /// <summary>Quality factor ω/(2γ): radians turned per e-fold of energy lost, halved.</summary>
    public double Quality => Math.Abs(Frequency) / (2 * Damping);

    /// <summary>Amplitude of the kernel's sinusoid, 2|W|.</summary>
    public double Amplitude => 2 * Weight.Magnitude;

    /// <summary>Phase φ = arg W of the kernel's sinusoid.</summary>
    public double Phase => Weight.Phase;

    /// <summary>This oscillator's kernel term at lag l: 2|W|·rˡ·cos(θl + φ).</summary>
    public double KernelTerm(int lag) => Amplitude * Math.Pow(Radius, lag) * Math.Cos(StepAngle * lag + Phase);
}

/// <summary>One S4D block's oscillators: channel h, mode n at <c>[h * Modes + n]</c>, and the skip D per channel.</summary>
public sealed class S4DBlockOscillators
{
    public S4DBlockOscillators(int block, int channels, int modes, Discretization discretization, double[] skip, Oscillator[] oscillators)
    {
        (Block, Channels, Modes, Discretization, Skip, Oscillators) = (block, channels, modes, discretization, skip, oscillators);
    }

    /// <summary>Index of the block in the model's stack.</summary>
    public int Block { get; }
    public int Channels { get; }

    /// <summary>Modes per channel, N/2 (the conjugate half is implied by the real part).</summary>
    public int Modes { get; }
    public Discretization Discretization { get; }

    /// <summary>D per channel: the kernel's δ at lag 0.</summary>
    public double[] Skip { get; }
    public Oscillator[] Oscillators { get; }

    /// <summary>The oscillators of one channel, by mode.</summary>
    public ReadOnlySpan<Oscillator> Channel(int h) => Oscillators.AsSpan(h * Modes, Modes);

    /// <summary>
    /// The channel's convolution kernel as its sum of damped sinusoids, D·δ_l + Σ_n 2|W_n|·r_nˡ·cos(θ_n·l + φ_n), for
    /// l &lt; <paramref name="length"/>; the skip D is included at lag 0 when <paramref name="includeSkip"/>.
    /// </summary>
    public double[] Kernel(int h, int length, bool includeSkip = true)
    {
        CheckChannel(h);
        var k = new double[length];
        foreach (var o in Channel(h))
            for (int l = 0; l < length; l++) k[l] += o.KernelTerm(l);
        if (includeSkip && length > 0) k[0] += Skip[h];
        return k;
    }

    /// <summary>
    /// The modal states x_n(t) = Ā_n·x_n(t−1) + u(t), x_n(−1) = 0, of channel h driven by <paramref name="u"/> (that
    /// channel's S4D input over time): (L, Modes) row-major. The channel's output is y(t) = D·u(t) + Σ_n 2·Re(W_n·x_n(t)).
    /// </summary>
    public Complex[] ModalStates(int h, ReadOnlySpan<double> u)
    {
        CheckChannel(h);
        var modes = Channel(h);
        var x = new Complex[u.Length * Modes];
        for (int n = 0; n < Modes; n++)
        {
            Complex s = 0, z = modes[n].Transition;
            for (int t = 0; t < u.Length; t++) x[t * Modes + n] = s = z * s + u[t];
        }
        return x;
    }

    /// <summary>
    /// The ring picture: the modal states of channel h mapped onto a ring of M = <see cref="Modes"/> nodes by the
    /// inverse DFT across the mode index, z_j(t) = Σ_n x_n(t)·e^{2πi·n·j/M}; returns |z_j(t)| as (L, M) row-major.
    /// </summary>
    public double[] RingActivity(int h, ReadOnlySpan<double> u)
    {
        var x = ModalStates(h, u);
        int m = Modes, length = u.Length;
        var twiddle = new Complex[m];
        for (int k = 0; k < m; k++) twiddle[k] = Complex.FromPolarCoordinates(1, 2 * Math.PI * k / m);
        var ring = new double[length * m];
        for (int t = 0; t < length; t++)
            for (int j = 0; j < m; j++)
            {
                Complex z = 0;
                for (int n = 0; n < m; n++) z += x[t * m + n] * twiddle[n * j % m];
                ring[t * m + j] = z.Magnitude;
            }
        return ring;
    }

    /// <summary>
    /// Nodes per step a bump on channel h's ring travels when its modes' phase advances Δ·Im A_n are evenly spaced by
    /// δθ: the phases line up at the node j with n·δθ·t + 2π·n·j/M ≡ 0, so j moves by −M·δθ/(2π) per step.
    /// Null when the spacing is uneven by more than <paramref name="tolerance"/> of δθ (a trained channel, Inv init).
    /// </summary>
    public double? RingSpeed(int h, double tolerance = 1e-6)
    {
        var modes = Channel(h);
        if (Modes < 2) return null;
        double spacing = (modes[Modes - 1].PhaseAdvance - modes[0].PhaseAdvance) / (Modes - 1);
        for (int n = 1; n < Modes; n++)
            if (Math.Abs(modes[n].PhaseAdvance - modes[n - 1].PhaseAdvance - spacing) > tolerance * Math.Abs(spacing)) return null;
        return -Modes * spacing / (2 * Math.PI);
    }

    private void CheckChannel(int h)
    {
        if ((uint)h >= (uint)Channels) throw new ArgumentOutOfRangeException(nameof(h), $"Channel {h} is outside 0..{Channels - 1} of block {Block}.");
    }
}

/// <summary>
/// Every S4D block of a model read as oscillators, from its parameters (PyTorch-style names) alone: from a live
/// model, or from a checkpoint. In double precision, discretized with the reference's formulas.
/// </summary>
public sealed class OscillatorView
{
    private OscillatorView(IReadOnlyList<S4DBlockOscillators> blocks) => Blocks = blocks;

    /// <summary>The S4D blocks in stack order (other kinds of block are skipped).</summary>
    public IReadOnlyList<S4DBlockOscillators> Blocks { get; }

    /// <summary>The view of a model's current parameters.</summary>
    public static OscillatorView FromModel(ISsmModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return FromParameters(model.Config, model.Parameters);
    }

    /// <summary>The view of <paramref name="parameters"/> laid out as <see cref="ParameterLayout.Build"/> lays out <paramref name="config"/>.</summary>
    public static OscillatorView FromParameters(ModelConfig config, ReadOnlySpan<float> parameters)
    {
        ArgumentNullException.ThrowIfNull(config);
        var table = ParameterLayout.Build(config);
        int count = ParameterLayout.Count(table);
        if (parameters.Length != count)
            throw new ArgumentException($"The model's parameter table holds {count} values; got {parameters.Length}.", nameof(parameters));
        var names = ParameterLayout.For(config);
        var byName = table.ToDictionary(p => p.Name);
        var p = parameters.ToArray();
        double[] Tensor(string name)
        {
            var info = byName[name];
            var v = new double[info.Length];
            for (int i = 0; i < v.Length; i++) v[i] = p[info.Offset + i];
            return v;
        }
        double[]? Optional(string name) => byName.ContainsKey(name) ? Tensor(name) : null;

        var blocks = new List<S4DBlockOscillators>();
        for (int i = 0; i < config.Layers.Count; i++)
        {
            if (config.Layers[i] is not S4DLayerConfig s) continue;
            string m = $"{names.Layers}{i}.mixer.";
            blocks.Add(Block(i, config.DModel, s.N / 2, s.Discretization, Tensor(m + "log_dt"), Tensor(m + "log_A_real"), Tensor(m + "A_imag"),
                Optional(m + "B"), Tensor(m + "C"), Tensor(m + "D")));
        }
        if (blocks.Count == 0)
            throw new ArgumentException($"The model has no S4D block (its blocks: {string.Join(", ", config.Layers.Select(l => l.Kind))}); the oscillator view reads S4D blocks only.", nameof(config));
        return new OscillatorView(blocks);
    }

    private static S4DBlockOscillators Block(int index, int h, int modes, Discretization disc, double[] logDt, double[] logAReal, double[] aImag, double[]? b, double[] c, double[] d)
    {
        var reference = new S4DReference<double>(h, 2 * modes, disc);
        var p = new S4DReference<double>.Params(logDt, logAReal, aImag, b ?? Span<double>.Empty, c, d);
        var oscillators = new Oscillator[h * modes];
        for (int ch = 0; ch < h; ch++)
            for (int n = 0; n < modes; n++)
            {
                int i = ch * modes + n;
                var (z, w) = reference.Discretize(p, ch, n);
                oscillators[i] = new Oscillator(index, ch, n, new Complex(-Math.Exp(logAReal[i]), aImag[i]), Math.Exp(logDt[ch]),
                    new Complex(z.Re, z.Im), new Complex(w.Re, w.Im));
            }
        return new S4DBlockOscillators(index, h, modes, disc, d, oscillators);
    }
}
