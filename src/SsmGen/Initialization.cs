namespace SsmGen;

/// <summary>
/// Parameter initializations used by generated models and the reference alike. Each tensor draws from
/// its own stream (<see cref="StreamFor"/>), so adding a tensor never shifts another one's values.
/// </summary>
public static class Initialization
{
    /// <summary>The random stream of tensor number <paramref name="tensorIndex"/> for a model seed.</summary>
    public static Rng StreamFor(ulong seed, int tensorIndex) => new(seed * 0x100000001B3UL + (ulong)tensorIndex * 0x9E3779B97F4A7C15UL + 1);

    /// <summary>Uniform in [−bound, bound]: PyTorch's default for Linear weights and biases (bound = 1/√fan_in).</summary>
    public static void Uniform(Span<float> dst, double bound, ref Rng rng)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = (float)rng.Uniform(-bound, bound);
    }

    /// <summary>Normal with the given standard deviation.</summary>
    public static void Normal(Span<float> dst, double std, ref Rng rng)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = (float)(std * rng.Normal());
    }

    /// <summary>Every element set to <paramref name="value"/>.</summary>
    public static void Constant(Span<float> dst, float value) => dst.Fill(value);

    /// <summary>log Δ uniform in [log dtMin, log dtMax] (S4D paper).</summary>
    public static void LogDt(Span<float> dst, double dtMin, double dtMax, ref Rng rng)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = (float)rng.Uniform(Math.Log(dtMin), Math.Log(dtMax));
    }

    /// <summary>
    /// Mamba's A_log (E, N): log(n + 1) in every row, so A = −exp(A_log) = −(n + 1), the S4D-Real initialization.
    /// </summary>
    public static void MambaALog(Span<float> dst, int n)
    {
        if (n <= 0 || dst.Length % n != 0) throw new ArgumentException($"A_log must have a whole number of rows of N = {n}.");
        for (int i = 0; i < dst.Length; i++) dst[i] = (float)Math.Log(i % n + 1);
    }

    /// <summary>A delta-rule block's gate rates: A_log = log A, A uniform in [1, 16] (Gated DeltaNet's start).</summary>
    public static void DeltaALog(Span<float> dst, ref Rng rng)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = (float)Math.Log(rng.Uniform(1, 16));
    }

    /// <summary>
    /// Mamba's dt_proj.bias: softplus⁻¹(Δ) for Δ log-uniform in [dtMin, dtMax] (floored at 1e-4), so that
    /// softplus(bias) starts in the declared Δ range.
    /// </summary>
    public static void MambaDtBias(Span<float> dst, double dtMin, double dtMax, ref Rng rng)
    {
        for (int i = 0; i < dst.Length; i++)
        {
            double dt = Math.Max(1e-4, Math.Exp(rng.Uniform(Math.Log(dtMin), Math.Log(dtMax))));
            dst[i] = (float)(dt + Math.Log(-double.ExpM1(-dt))); // log(e^Δ − 1), stable for small Δ
        }
    }

    /// <summary>
    /// The IDS4 transition of "The Illusion of State in State-Space Models", A_t = reshape(A.weight·x_t + A.bias, (N, N)):
    /// bias = vec(I_N) exactly and weight (N·N, H) entries N(0, 1/(N²H)), so that for a unit-variance input
    /// A_t = I + G/√N with G a Gaussian matrix of entries std 1/√N (identity plus noise normalized by √N).
    /// </summary>
    public static void IdsTransition(Span<float> weight, Span<float> bias, int n, int h, ref Rng rng)
    {
        if (n <= 0 || h <= 0) throw new ArgumentOutOfRangeException(nameof(n), "n and h must be positive.");
        if (weight.Length != n * n * h || bias.Length != n * n)
            throw new ArgumentException($"A.weight must have N·N·H = {n * n * h} elements and A.bias N·N = {n * n}.");
        Normal(weight, 1.0 / (n * Math.Sqrt(h)), ref rng);
        bias.Clear();
        for (int i = 0; i < n; i++) bias[i * n + i] = 1;
    }

    /// <summary>Complex C, stored as (…, 2) real/imaginary pairs, each part N(0, 1/2).</summary>
    public static void ComplexNormal(Span<float> dst, ref Rng rng) => Normal(dst, Math.Sqrt(0.5), ref rng);

    /// <summary>Complex 1 + 0i, stored as (…, 2) pairs.</summary>
    public static void ComplexOne(Span<float> dst)
    {
        for (int i = 0; i < dst.Length; i += 2) { dst[i] = 1; dst[i + 1] = 0; }
    }

    /// <summary>
    /// Fills log(−Re A) and Im A, shapes (H, N/2), with the named S4D initialization; every channel
    /// gets the same A (the paper's choice), except <see cref="S4DInit.Random"/>, which draws per channel.
    /// </summary>
    public static void S4DA(Span<float> logAReal, Span<float> aImag, int h, int n, S4DInit init, ref Rng rng)
    {
        int half = n / 2;
        if (logAReal.Length != h * half || aImag.Length != h * half)
            throw new ArgumentException($"A tensors must have H·N/2 = {h * half} elements.");
        double[]? legs = init == S4DInit.LegS ? LegSFrequencies(n) : null;
        for (int c = 0; c < h; c++)
        {
            for (int k = 0; k < half; k++)
            {
                (double re, double im) = init switch
                {
                    S4DInit.Lin => (-0.5, Math.PI * k),
                    S4DInit.Inv => (-0.5, n / Math.PI * (n / (2.0 * k + 1) - 1)),
                    S4DInit.Real => (-(k + 1.0), 0.0),
                    S4DInit.LegS => (-0.5, legs![k]),
                    S4DInit.Random => (-0.5, rng.Uniform(0, Math.PI * half)),
                    _ => throw new ArgumentOutOfRangeException(nameof(init), init, "Unknown S4D initialization."),
                };
                logAReal[c * half + k] = (float)Math.Log(-re);
                aImag[c * half + k] = (float)im;
            }
        }
    }

    /// <summary>S4's Λ for every channel: log(−Re λ) = log ½ and Im λ = ω, the normal part of HiPPO-LegS (shapes (H, N/2)).</summary>
    public static void HippoA(Span<float> logAReal, Span<float> aImag, int h, int n)
    {
        int half = n / 2;
        if (logAReal.Length != h * half || aImag.Length != h * half) throw new ArgumentException($"A tensors must have H·N/2 = {h * half} elements.");
        var w = HippoLegS.Frequencies(n);
        for (int c = 0; c < h; c++)
            for (int k = 0; k < half; k++) (logAReal[c * half + k], aImag[c * half + k]) = ((float)Math.Log(0.5), (float)w[k]);
    }

    /// <summary>S4's P and B for every channel: HiPPO-LegS's p̃ = V*·P and b̃ = V*·B (shapes (H, N/2, 2)).</summary>
    public static void HippoPB(Span<float> p, Span<float> b, int h, int n)
    {
        int half = n / 2;
        if (p.Length != 2 * h * half || b.Length != 2 * h * half) throw new ArgumentException($"P and B must have 2·H·N/2 = {2 * h * half} elements.");
        var nplr = HippoLegS.Diagonalize(n);
        for (int c = 0; c < h; c++)
            for (int k = 0; k < half; k++)
            {
                int i = 2 * (c * half + k);
                (p[i], p[i + 1]) = ((float)nplr.P[k].Real, (float)nplr.P[k].Imaginary);
                (b[i], b[i + 1]) = ((float)nplr.B[k].Real, (float)nplr.B[k].Imaginary);
            }
    }

    /// <summary>The N/2 positive frequencies ω of the normal part of HiPPO-LegS, ascending (see <see cref="HippoLegS"/>).</summary>
    public static double[] LegSFrequencies(int n) => HippoLegS.Frequencies(n);
}
