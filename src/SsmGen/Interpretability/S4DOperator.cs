using System.Globalization;
using System.Numerics;
using System.Text;
using SsmGen.Reference;

namespace SsmGen.Interpretability;

/// <summary>
/// The whole forward pass of an S4D stack as one closed-form expression, and an evaluator written from that
/// expression alone (its own LayerNorm, GELU and sigmoid; the linear part as per-oscillator sums; no call into the
/// generated model or the reference):
/// <code>
///   x⁰(t)  = W_enc·s(t) + b_enc                                  (or the embedding row of token s(t))
///   block i: u = LN_i(xⁱ)
///            y_h(t) = D_h·u_h(t) + Σ_n Σ_{l=0..t} 2|W_hn|·r_hnˡ·cos(θ_hn·l + φ_hn)·u_h(t−l)   the oscillators
///            x^{i+1} = xⁱ + GLU(W_i·GELU(y) + b_i),   GLU(a, g) = a ⊙ σ(g)                 the decoder
///   logits = W_dec·pool(LN_f(x)) + b_dec
/// </code>
/// Each oscillator's sum is evaluated by its recurrence x_n(t) = Ā_n·x_n(t−1) + u(t) (the same sum, exactly).
/// With a <see cref="DecoderApproximation"/>, blocks' decoders are replaced by polynomials in the waves y: their Taylor
/// series around an operating point cut at a total order (<see cref="DecoderSeries"/>), or the decoder with GELU
/// and the sigmoid replaced by Chebyshev interpolants over the range they see (<see cref="PolynomialDecoder"/>).
/// </summary>
public sealed class S4DOperator
{
    private const double NormEpsilon = 1e-5;
    private readonly double[] _p;
    private readonly Dictionary<string, ParameterInfo> _byName;
    private readonly ParameterLayout.Names _names;

    private S4DOperator(ModelConfig config, ReadOnlySpan<float> parameters)
    {
        Config = config;
        var table = ParameterLayout.Build(config);
        _byName = table.ToDictionary(p => p.Name);
        _names = ParameterLayout.For(config);
        _p = new double[parameters.Length];
        for (int i = 0; i < _p.Length; i++) _p[i] = parameters[i];
        Oscillators = OscillatorView.FromParameters(config, parameters);
    }

    public ModelConfig Config { get; }
    public OscillatorView Oscillators { get; }

    /// <summary>The operator of a model's current parameters.</summary>
    public static S4DOperator FromModel(ISsmModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return FromParameters(model.Config, model.Parameters);
    }

    /// <summary>The operator of a stack made only of S4D blocks; throws naming the first other block.</summary>
    public static S4DOperator FromParameters(ModelConfig config, ReadOnlySpan<float> parameters)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        for (int i = 0; i < config.Layers.Count; i++)
            if (config.Layers[i] is not S4DLayerConfig)
                throw new ArgumentException($"Block {i} is a {config.Layers[i].Kind}: the exact operator covers stacks of S4D blocks only.", nameof(config));
        int count = ParameterLayout.Count(ParameterLayout.Build(config));
        if (parameters.Length != count)
            throw new ArgumentException($"The model's parameter table holds {count} values; got {parameters.Length}.", nameof(parameters));
        return new S4DOperator(config, parameters);
    }

    private ReadOnlySpan<double> P(string name) { var p = _byName[name]; return _p.AsSpan(p.Offset, p.Length); }

    private string Layer(int i) => $"{_names.Layers}{i}.";

    /// <summary>Block i's decoder weights W (2H, H) and bias b (2H), as copies.</summary>
    internal (double[] W, double[] Bias) DecoderWeights(int i) =>
        (P(Layer(i) + "mixer.output_linear.weight").ToArray(), P(Layer(i) + "mixer.output_linear.bias").ToArray());

    /// <summary>
    /// Logits for a batch of real inputs (B, L, Input) or token ids given as values (B, L): (B, Output) with
    /// pooling, (B·L, Output) without. <paramref name="decoder"/> null evaluates the exact decoder.
    /// </summary>
    public double[] Forward(ReadOnlySpan<float> input, int batch, int length, DecoderApproximation? decoder = null)
    {
        int width = Config.InputWidth;
        if (batch <= 0 || length <= 0) throw new ArgumentException($"Batch and length must be positive; got {batch} and {length}.");
        if (input.Length != (long)batch * length * width)
            throw new ArgumentException($"Expected {batch}·{length}·{width} = {(long)batch * length * width} input values; got {input.Length}.", nameof(input));
        decoder?.Check(this);
        int outRows = Config.Pooling == Pooling.None ? length : 1, classes = Config.Output;
        var result = new double[batch * outRows * classes];
        var inputs = input.ToArray();
        Parallel.For(0, batch, b =>
        {
            var logits = Sequence(inputs.AsSpan(b * length * width, length * width), length, decoder, null);
            logits.CopyTo(result.AsSpan(b * outRows * classes));
        });
        return result;
    }

    /// <summary>
    /// The operating point of the decoder series: per block and channel, the mean of the oscillators' output y over
    /// the given inputs under the exact model.
    /// </summary>
    public double[][] MeanWaves(ReadOnlySpan<float> input, int batch, int length)
    {
        int width = Config.InputWidth, h = Config.DModel;
        if (input.Length != (long)batch * length * width)
            throw new ArgumentException($"Expected {batch}·{length}·{width} input values; got {input.Length}.", nameof(input));
        var sums = new double[batch][][];
        var inputs = input.ToArray();
        Parallel.For(0, batch, b =>
        {
            sums[b] = Enumerable.Range(0, Config.Layers.Count).Select(_ => new double[h]).ToArray();
            Sequence(inputs.AsSpan(b * length * width, length * width), length, null, sums[b]);
        });
        var mean = Enumerable.Range(0, Config.Layers.Count).Select(_ => new double[h]).ToArray();
        foreach (var s in sums)
            for (int i = 0; i < mean.Length; i++)
                for (int k = 0; k < h; k++) mean[i][k] += s[i][k] / ((double)batch * length);
        return mean;
    }

    /// <summary>
    /// One sequence through the exact expression, keeping each block's S4D input u and oscillator output y, both
    /// (L, H) row-major: what the ring picture and the wave plots read.
    /// </summary>
    public (double[] U, double[] Y)[] Trace(ReadOnlySpan<float> sequence, int length)
    {
        if (length <= 0 || sequence.Length != (long)length * Config.InputWidth)
            throw new ArgumentException($"Expected {length}·{Config.InputWidth} input values; got {sequence.Length}.", nameof(sequence));
        var trace = new (double[] U, double[] Y)[Config.Layers.Count];
        Sequence(sequence, length, null, null, trace);
        return trace;
    }

    /// <summary>
    /// One sequence through the expression; adds Σ_t y to <paramref name="waveSums"/> per block and keeps copies of u
    /// and y in <paramref name="trace"/> when given.
    /// </summary>
    private double[] Sequence(ReadOnlySpan<float> s, int length, DecoderApproximation? decoder, double[][]? waveSums, (double[] U, double[] Y)[]? trace = null)
    {
        int h = Config.DModel;
        var x = new double[length * h];
        if (Config.TokenInput)
        {
            var e = P(_names.Encoder + ".weight");
            for (int t = 0; t < length; t++)
            {
                int token = (int)s[t];
                if ((uint)token >= (uint)Config.Vocab) throw new ArgumentException($"Token {s[t]} at position {t} is outside 0..{Config.Vocab - 1}.");
                e.Slice(token * h, h).CopyTo(x.AsSpan(t * h, h));
            }
        }
        else
        {
            var w = P(_names.Encoder + ".weight");
            var bias = P(_names.Encoder + ".bias");
            int input = Config.Input;
            for (int t = 0; t < length; t++)
                for (int k = 0; k < h; k++)
                {
                    double v = bias[k];
                    for (int j = 0; j < input; j++) v += w[k * input + j] * s[t * input + j];
                    x[t * h + k] = v;
                }
        }

        var u = new double[length * h];
        var y = new double[length * h];
        var channel = new double[length];
        for (int i = 0; i < Config.Layers.Count; i++)
        {
            string l = Layer(i);
            LayerNorm(x, P(l + "norm.weight"), P(l + "norm.bias"), u, length, h);
            var block = Oscillators.Blocks[i];
            for (int k = 0; k < h; k++)
            {
                for (int t = 0; t < length; t++) channel[t] = u[t * h + k];
                var waves = block.Channel(k);
                double skip = block.Skip[k];
                for (int t = 0; t < length; t++) y[t * h + k] = skip * channel[t];
                foreach (var o in waves)
                {
                    // the oscillator's damped-sinusoid sum Σ_l 2|W|rˡcos(θl + φ)·u(t−l) = 2·Re(W·x(t)), x(t) = Ā·x(t−1) + u(t)
                    Complex state = 0;
                    for (int t = 0; t < length; t++)
                    {
                        state = o.Transition * state + channel[t];
                        y[t * h + k] += 2 * (o.Weight * state).Real;
                    }
                }
            }
            if (trace is not null) trace[i] = (u.ToArray(), y.ToArray());
            if (waveSums is not null)
                for (int t = 0; t < length; t++)
                    for (int k = 0; k < h; k++) waveSums[i][k] += y[t * h + k];
            var w = P(l + "mixer.output_linear.weight");
            var bias = P(l + "mixer.output_linear.bias");
            if (decoder is null || !decoder.Replaces(i)) ExactDecoder(y, w, bias, x, length, h);
            else decoder.Add(i, y, w, bias, x, length, h);
        }

        var nf = new double[length * h];
        LayerNorm(x, P(_names.FinalNorm + ".weight"), P(_names.FinalNorm + ".bias"), nf, length, h);
        int rows = Config.Pooling == Pooling.None ? length : 1;
        var pooled = new double[rows * h];
        for (int t = 0; t < length; t++)
            for (int k = 0; k < h; k++)
            {
                double v = nf[t * h + k];
                switch (Config.Pooling)
                {
                    case Pooling.Mean: pooled[k] += v / length; break;
                    case Pooling.Last: if (t == length - 1) pooled[k] = v; break;
                    default: pooled[t * h + k] = v; break;
                }
            }
        var dw = P(_names.Decoder + ".weight");
        var db = _byName.ContainsKey(_names.Decoder + ".bias") ? P(_names.Decoder + ".bias") : ReadOnlySpan<double>.Empty;
        int classes = Config.Output;
        var logits = new double[rows * classes];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < classes; c++)
            {
                double v = db.IsEmpty ? 0 : db[c];
                for (int k = 0; k < h; k++) v += dw[c * h + k] * pooled[r * h + k];
                logits[r * classes + c] = v;
            }
        return logits;
    }

    /// <summary>LayerNorm over the channels: (x − mean)/√(var + 1e-5)·w + b per time step.</summary>
    private static void LayerNorm(ReadOnlySpan<double> x, ReadOnlySpan<double> w, ReadOnlySpan<double> b, Span<double> y, int rows, int h)
    {
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * h, h);
            double mean = 0, variance = 0;
            foreach (double v in row) mean += v;
            mean /= h;
            foreach (double v in row) variance += (v - mean) * (v - mean);
            double scale = 1 / Math.Sqrt(variance / h + NormEpsilon);
            for (int k = 0; k < h; k++) y[r * h + k] = (row[k] - mean) * scale * w[k] + b[k];
        }
    }

    /// <summary>GELU in its tanh form, ½y(1 + tanh(√(2/π)(y + 0.044715y³))).</summary>
    internal static double Gelu(double y) => 0.5 * y * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (y + 0.044715 * y * y * y)));

    internal static double Sigmoid(double g) => 1 / (1 + Math.Exp(-g));

    /// <summary>x += GLU(W·GELU(y) + b) per time step.</summary>
    private static void ExactDecoder(ReadOnlySpan<double> y, ReadOnlySpan<double> w, ReadOnlySpan<double> bias, Span<double> x, int length, int h)
    {
        var g = new double[h];
        var o = new double[h];
        for (int t = 0; t < length; t++)
        {
            Decoder(y.Slice(t * h, h), w, bias, g, o);
            for (int k = 0; k < h; k++) x[t * h + k] += o[k];
        }
    }

    /// <summary>One time step's decoder, GLU(W·GELU(y) + b), into <paramref name="output"/>; <paramref name="g"/> is scratch.</summary>
    internal static void Decoder(ReadOnlySpan<double> y, ReadOnlySpan<double> w, ReadOnlySpan<double> bias, Span<double> g, Span<double> output)
    {
        int h = y.Length;
        for (int k = 0; k < h; k++) g[k] = Gelu(y[k]);
        for (int k = 0; k < h; k++)
        {
            double a = bias[k], gate = bias[h + k];
            for (int j = 0; j < h; j++) { a += w[k * h + j] * g[j]; gate += w[(h + k) * h + j] * g[j]; }
            output[k] = a * Sigmoid(gate);
        }
    }

    /// <summary>The expression with the trained numbers, as text: every oscillator of every channel.</summary>
    public string ToText()
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine("x⁰(t) = " + (Config.TokenInput ? "E[s(t)]  (embedding rows: encoder.weight)" : "W_enc·s(t) + b_enc  (encoder.weight, encoder.bias)"));
        foreach (var block in Oscillators.Blocks)
        {
            int i = block.Block;
            sb.AppendLine(inv, $"block {i}: u = LN_{i}(x) ({Layer(i)}norm.weight, .bias; eps 1e-5)");
            sb.AppendLine(inv, $"  y_h(t) = D_h·u_h(t) + Σ_n Σ_(l=0..t) a_hn·r_hnˡ·cos(θ_hn·l + φ_hn)·u_h(t−l)   ({block.Discretization} discretization)");
            for (int h = 0; h < block.Channels; h++)
            {
                sb.Append(inv, $"  y_{h}(t) = {block.Skip[h]:G6}·u_{h}(t)");
                foreach (var o in block.Channel(h))
                    sb.Append(inv, $" + Σ_l {o.Amplitude:G6}·{o.Radius:G8}^l·cos({o.StepAngle:G8}·l {(o.Phase < 0 ? "−" : "+")} {Math.Abs(o.Phase):G6})·u_{h}(t−l)");
                sb.AppendLine();
            }
            sb.AppendLine(inv, $"  x ← x + GLU(W_{i}·GELU(y) + b_{i})   ({Layer(i)}mixer.output_linear: ({2 * Config.DModel}, {Config.DModel}))");
        }
        sb.AppendLine(inv, $"logits = W_dec·{Config.Pooling.ToString().ToLowerInvariant()}-pool(LN_f(x)) + b_dec");
        return sb.ToString();
    }

    /// <summary>The same expression in LaTeX: the structure, then each channel's kernel with its numbers.</summary>
    public string ToLatex()
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine(@"\begin{align*}");
        sb.AppendLine(Config.TokenInput ? @"x^{0}(t) &= E_{s(t)} \\" : @"x^{0}(t) &= W_{\mathrm{enc}}\, s(t) + b_{\mathrm{enc}} \\");
        sb.AppendLine(@"u^{i} &= \mathrm{LN}_i(x^{i}) \\");
        sb.AppendLine(@"y^{i}_h(t) &= D^{i}_h\, u^{i}_h(t) + \sum_{n} \sum_{l=0}^{t} a^{i}_{hn}\, (r^{i}_{hn})^{l} \cos(\theta^{i}_{hn} l + \varphi^{i}_{hn})\, u^{i}_h(t-l) \\");
        sb.AppendLine(@"x^{i+1} &= x^{i} + \mathrm{GLU}\big(W_i\, \mathrm{GELU}(y^{i}) + b_i\big), \quad \mathrm{GLU}(a, g) = a \odot \sigma(g) \\");
        sb.AppendLine(inv, $@"\mathrm{{logits}} &= W_{{\mathrm{{dec}}}}\, \mathrm{{pool}}_{{\mathrm{{{Config.Pooling.ToString().ToLowerInvariant()}}}}}\big(\mathrm{{LN}}_f(x^{{{Config.Layers.Count}}})\big) + b_{{\mathrm{{dec}}}}");
        sb.AppendLine(@"\end{align*}");
        foreach (var block in Oscillators.Blocks)
            for (int h = 0; h < block.Channels; h++)
            {
                sb.Append(inv, $@"$K^{{{block.Block}}}_{{{h}}}(l) = {block.Skip[h]:G6}\,\delta_{{l}}");
                foreach (var o in block.Channel(h))
                    sb.Append(inv, $@" + {o.Amplitude:G6}\cdot {o.Radius:G8}^{{l}} \cos({o.StepAngle:G8}\, l {(o.Phase < 0 ? "-" : "+")} {Math.Abs(o.Phase):G6})");
                sb.AppendLine("$");
                sb.AppendLine();
            }
        return sb.ToString();
    }
}
