using System.Numerics;
using SsmGen.Layers;

namespace SsmGen.Reference;

/// <summary>
/// The oracle: a whole model (encoder, blocks of any kind, final norm, pooling, decoder) in plain runtime-sized
/// code over float or double, with the same parameter layout as the generated model. Slow on purpose.
/// </summary>
public sealed class ReferenceModel<T> where T : IFloatingPointIeee754<T>
{
    private sealed class LayerCache
    {
        public T[] X = [], Mean = [], Rstd = [], U = [], Y = [], G = [], O = [], Glu = [];
        public MambaReference<T>? Mamba; // a Mamba block keeps its own intermediates
        public RnnReference<T>? Rnn;
        public IdsReference<T>? Ids;
        public AttentionReference<T>? Attention;
        public T[] X1 = [], Mean2 = [], Rstd2 = [], U2 = [], F1 = [], Act = []; // transformer block: after attention, MLP
    }

    public ModelConfig Config { get; }
    public ParameterInfo[] Table { get; }
    public T[] Parameters { get; }
    public T[] Gradients { get; }

    private readonly Dictionary<string, ParameterInfo> _byName;
    private readonly S4DReference<T>?[] _mixers;
    private readonly ParameterLayout.Names _names;
    private LayerCache[] _cache = [];
    private T[] _xf = [], _meanF = [], _rstdF = [], _nf = [], _pooled = [];
    private int[]? _tokens;
    private T[]? _input;
    private int _batch, _length;
    private bool _training;
    private ulong _dropSeed, _dropStep;

    public ReferenceModel(ModelConfig config)
    {
        config.Validate();
        Config = config;
        Table = ParameterLayout.Build(config);
        _byName = Table.ToDictionary(p => p.Name);
        Parameters = new T[ParameterLayout.Count(Table)];
        Gradients = new T[Parameters.Length];
        _names = ParameterLayout.For(config);
        _mixers = config.Layers.Select(l => l is S4DLayerConfig s ? new S4DReference<T>(config.DModel, s.N, s.Discretization) : null).ToArray();
    }

    private Span<T> P(T[] buf, string name) { var p = _byName[name]; return buf.AsSpan(p.Offset, p.Length); }
    private Span<T> POpt(T[] buf, string name) => _byName.ContainsKey(name) ? P(buf, name) : Span<T>.Empty;

    private S4DReference<T>.Params Mixer(T[] buf, int i)
    {
        string m = $"{_names.Layers}{i}.mixer.";
        return new(P(buf, m + "log_dt"), P(buf, m + "log_A_real"), P(buf, m + "A_imag"), POpt(buf, m + "B"), P(buf, m + "C"), P(buf, m + "D"));
    }

    private MambaReference<T>.Params MambaMixer(T[] buf, int i)
    {
        string m = $"{_names.Layers}{i}.mixer.";
        return new(P(buf, m + "in_proj.weight"), P(buf, m + "conv1d.weight"), P(buf, m + "conv1d.bias"), P(buf, m + "x_proj.weight"),
            P(buf, m + "dt_proj.weight"), P(buf, m + "dt_proj.bias"), P(buf, m + "A_log"), P(buf, m + "D"), P(buf, m + "out_proj.weight"));
    }

    private RnnReference<T>.Params RnnMixer(T[] buf, int i)
    {
        string m = $"{_names.Layers}{i}.mixer.";
        return new(P(buf, m + "weight_ih"), P(buf, m + "weight_hh"), P(buf, m + "bias_ih"), P(buf, m + "bias_hh"), P(buf, m + "out_proj.weight"), P(buf, m + "out_proj.bias"));
    }

    private IdsReference<T>.Params IdsMixer(T[] buf, int i)
    {
        string m = $"{_names.Layers}{i}.mixer.";
        return new(P(buf, m + "A.weight"), P(buf, m + "A.bias"), P(buf, m + "B.weight"), P(buf, m + "C.weight"), P(buf, m + "C.bias"));
    }

    private AttentionReference<T>.Params AttentionMixer(T[] buf, int i)
    {
        string m = $"{_names.Layers}{i}.mixer.";
        return new(P(buf, m + "in_proj.weight"), P(buf, m + "in_proj.bias"), P(buf, m + "out_proj.weight"), P(buf, m + "out_proj.bias"));
    }

    /// <summary>The transformer block's second half: x + fc2(GELU(fc1(LayerNorm(x)))), intermediates kept in c.</summary>
    private T[] MlpForward(int i, LayerCache c, T[] x1, int rows, int ratio)
    {
        int h = Config.DModel, w = ratio * h;
        string l = $"{_names.Layers}{i}.";
        c.X1 = x1; c.Mean2 = new T[rows]; c.Rstd2 = new T[rows]; c.U2 = new T[rows * h]; c.F1 = new T[rows * w]; c.Act = new T[rows * w];
        BlockReference<T>.LayerNormForward(x1, P(Parameters, l + "norm2.weight"), P(Parameters, l + "norm2.bias"), c.U2, c.Mean2, c.Rstd2, rows, h);
        BlockReference<T>.LinearForward(c.U2, P(Parameters, l + "mlp.fc1.weight"), P(Parameters, l + "mlp.fc1.bias"), c.F1, rows, h, w);
        for (int j = 0; j < c.F1.Length; j++) c.Act[j] = BlockReference<T>.Gelu(c.F1[j]);
        var f2 = new T[rows * h];
        BlockReference<T>.LinearForward(c.Act, P(Parameters, l + "mlp.fc2.weight"), P(Parameters, l + "mlp.fc2.bias"), f2, rows, w, h);
        var next = new T[rows * h];
        for (int j = 0; j < next.Length; j++) next[j] = x1[j] + f2[j];
        return next;
    }

    /// <summary>Backward of <see cref="MlpForward"/>: dx holds dL/d(block output) and gains the path through the MLP.</summary>
    private void MlpBackward(int i, LayerCache c, T[] dx, int rows, int ratio)
    {
        int h = Config.DModel, w = ratio * h;
        string l = $"{_names.Layers}{i}.";
        var dAct = new T[rows * w];
        BlockReference<T>.LinearBackward(c.Act, P(Parameters, l + "mlp.fc2.weight"), dx, dAct, P(Gradients, l + "mlp.fc2.weight"), P(Gradients, l + "mlp.fc2.bias"), rows, w, h);
        for (int j = 0; j < dAct.Length; j++) dAct[j] *= BlockReference<T>.GeluDerivative(c.F1[j]);
        var dU2 = new T[rows * h];
        BlockReference<T>.LinearBackward(c.U2, P(Parameters, l + "mlp.fc1.weight"), dAct, dU2, P(Gradients, l + "mlp.fc1.weight"), P(Gradients, l + "mlp.fc1.bias"), rows, h, w);
        BlockReference<T>.LayerNormBackward(c.X1, P(Parameters, l + "norm2.weight"), c.Mean2, c.Rstd2, dU2, dx, P(Gradients, l + "norm2.weight"), P(Gradients, l + "norm2.bias"), rows, h);
    }

    private MambaReference<T> NewMamba(MambaLayerConfig m) => new(Config.DModel, m.N, m.Expand, m.ConvWidth, m.Rank(Config.DModel));

    /// <summary>The pre-norm of block i: RMSNorm for a Mamba block that declares it, LayerNorm otherwise.</summary>
    private NormKind BlockNorm(int i) => Config.Layers[i] is MambaLayerConfig { Norm: NormKind.RmsNorm } ? NormKind.RmsNorm : NormKind.LayerNorm;

    private void NormForward(NormKind kind, string prefix, ReadOnlySpan<T> x, Span<T> y, Span<T> mean, Span<T> rstd, int rows)
    {
        int h = Config.DModel;
        if (kind == NormKind.RmsNorm) BlockReference<T>.RmsNormForward(x, P(Parameters, prefix + ".weight"), y, rstd, rows, h);
        else BlockReference<T>.LayerNormForward(x, P(Parameters, prefix + ".weight"), P(Parameters, prefix + ".bias"), y, mean, rstd, rows, h);
    }

    private void NormBackward(NormKind kind, string prefix, ReadOnlySpan<T> x, ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd, ReadOnlySpan<T> dy, Span<T> dx, int rows)
    {
        int h = Config.DModel;
        if (kind == NormKind.RmsNorm) BlockReference<T>.RmsNormBackward(x, P(Parameters, prefix + ".weight"), rstd, dy, dx, P(Gradients, prefix + ".weight"), rows, h);
        else BlockReference<T>.LayerNormBackward(x, P(Parameters, prefix + ".weight"), mean, rstd, dy, dx, P(Gradients, prefix + ".weight"), P(Gradients, prefix + ".bias"), rows, h);
    }

    /// <summary>Initializes every tensor as the kinds' tables say (the same helpers the generated code calls).</summary>
    public void Initialize(ulong seed)
    {
        var f = new float[Parameters.Length];
        int h = Config.DModel;
        var entries = ParameterLayout.Entries(Config);
        for (int t = 0; t < Table.Length; t++)
        {
            var (tensor, block) = entries[t];
            var rng = Initialization.StreamFor(seed, t);
            var dst = f.AsSpan(Table[t].Offset, Table[t].Length);
            Span<float> Next() => f.AsSpan(Table[t + 1].Offset, Table[t + 1].Length);
            var layer = block >= 0 ? Config.Layers[block] : null;
            switch (tensor.Init)
            {
                case TensorInit.Uniform: Initialization.Uniform(dst, tensor.InitArg, ref rng); break;
                case TensorInit.Normal: Initialization.Normal(dst, tensor.InitArg, ref rng); break;
                case TensorInit.One: Initialization.Constant(dst, 1); break;
                case TensorInit.Zero: Initialization.Constant(dst, 0); break;
                case TensorInit.ComplexOne: Initialization.ComplexOne(dst); break;
                case TensorInit.ComplexNormal: Initialization.ComplexNormal(dst, ref rng); break;
                case TensorInit.LogDt when layer is S4DLayerConfig s4d: Initialization.LogDt(dst, s4d.DtMin, s4d.DtMax, ref rng); break;
                case TensorInit.S4DA when layer is S4DLayerConfig s4d: Initialization.S4DA(dst, Next(), h, s4d.N, s4d.Init, ref rng); break;
                case TensorInit.MambaALog when layer is MambaLayerConfig m: Initialization.MambaALog(dst, m.N); break;
                case TensorInit.MambaDtBias when layer is MambaLayerConfig m: Initialization.MambaDtBias(dst, m.DtMin, m.DtMax, ref rng); break;
                case TensorInit.IdsTransition when layer is IdsLayerConfig ids: Initialization.IdsTransition(dst, Next(), ids.N, h, ref rng); break;
                case TensorInit.FilledWithPrevious: break; // written with the tensor before
                default: throw new InvalidOperationException($"No initialization {tensor.Init} for {tensor.Name} in a {layer?.Kind ?? "model"}.");
            }
        }
        for (int i = 0; i < f.Length; i++) Parameters[i] = T.CreateChecked(f[i]);
    }

    /// <summary>Δ (B·L, E) of Mamba block <paramref name="layer"/> in the last Forward: the selective step sizes.</summary>
    public ReadOnlySpan<T> MambaDelta(int layer) =>
        (uint)layer < (uint)_cache.Length && _cache[layer].Mamba is { } m ? m.Delta
            : throw new InvalidOperationException($"Block {layer} is not a Mamba block of the last Forward.");

    /// <summary>Mamba block <paramref name="layer"/>'s scan in the last Forward, sequence b, as Ā_t and b_t (L, E·N) each.</summary>
    public (T[] Transitions, T[] Drive) MambaRecurrence(int layer, int b) =>
        (uint)layer < (uint)_cache.Length && _cache[layer].Mamba is { } m ? m.Recurrence(MambaMixer(Parameters, layer), b)
            : throw new InvalidOperationException($"Block {layer} is not a Mamba block of the last Forward.");


    /// <summary>Forward over real inputs (B, L, Input).</summary>
    public T[] Forward(ReadOnlySpan<T> input, int batch, int length, bool training = false, ulong dropoutSeed = 0, ulong dropoutStep = 0)
    {
        if (Config.TokenInput) throw new InvalidOperationException("This model reads token ids.");
        _input = input.ToArray(); _tokens = null;
        return Run(batch, length, training, dropoutSeed, dropoutStep);
    }

    /// <summary>Forward over token ids (B, L).</summary>
    public T[] Forward(ReadOnlySpan<int> tokens, int batch, int length, bool training = false, ulong dropoutSeed = 0, ulong dropoutStep = 0)
    {
        if (!Config.TokenInput) throw new InvalidOperationException("This model reads real features.");
        _tokens = tokens.ToArray(); _input = null;
        return Run(batch, length, training, dropoutSeed, dropoutStep);
    }

    private T[] Run(int batch, int length, bool training, ulong seed, ulong step)
    {
        (_batch, _length, _training, _dropSeed, _dropStep) = (batch, length, training, seed, step);
        int h = Config.DModel, rows = batch * length;
        var x = new T[rows * h];
        if (_tokens is not null)
        {
            var e = P(Parameters, _names.Encoder + ".weight");
            for (int r = 0; r < rows; r++) e.Slice(_tokens[r] * h, h).CopyTo(x.AsSpan(r * h));
        }
        else BlockReference<T>.LinearForward(_input, P(Parameters, _names.Encoder + ".weight"), P(Parameters, _names.Encoder + ".bias"), x, rows, Config.Input, h);

        _cache = new LayerCache[Config.Layers.Count];
        for (int i = 0; i < Config.Layers.Count; i++)
        {
            var c = _cache[i] = new LayerCache
            {
                X = x, Mean = new T[rows], Rstd = new T[rows], U = new T[rows * h], Y = new T[rows * h],
                G = new T[rows * h], O = new T[rows * 2 * h], Glu = new T[rows * h],
            };
            string l = $"{_names.Layers}{i}.";
            if (Config.Layers[i] is not S4DLayerConfig)
            {
                // pre-norm, mixer, residual (then the MLP half for a transformer block)
                NormForward(BlockNorm(i), l + "norm", x, c.U, c.Mean, c.Rstd, rows);
                switch (Config.Layers[i])
                {
                    case MambaLayerConfig mc: (c.Mamba = NewMamba(mc)).Forward(MambaMixer(Parameters, i), c.U, c.Y, batch, length); break;
                    case RnnLayerConfig rc: (c.Rnn = new RnnReference<T>(h, rc.HiddenSize(h), rc.Nonlinearity)).Forward(RnnMixer(Parameters, i), c.U, c.Y, batch, length); break;
                    case IdsLayerConfig ic: (c.Ids = new IdsReference<T>(h, ic.N)).Forward(IdsMixer(Parameters, i), c.U, c.Y, batch, length); break;
                    case AttentionLayerConfig ac: (c.Attention = new AttentionReference<T>(h, ac.Heads)).Forward(AttentionMixer(Parameters, i), c.U, c.Y, batch, length); break;
                }
                var after = new T[rows * h];
                for (int j = 0; j < after.Length; j++) after[j] = x[j] + c.Y[j];
                x = Config.Layers[i] is AttentionLayerConfig a ? MlpForward(i, c, after, rows, a.MlpRatio) : after;
                continue;
            }
            BlockReference<T>.LayerNormForward(x, P(Parameters, l + "norm.weight"), P(Parameters, l + "norm.bias"), c.U, c.Mean, c.Rstd, rows, h);
            _mixers[i]!.Forward(Mixer(Parameters, i), c.U, c.Y, batch, length);
            for (int j = 0; j < c.G.Length; j++) c.G[j] = BlockReference<T>.Gelu(c.Y[j]);
            BlockReference<T>.LinearForward(c.G, P(Parameters, l + "mixer.output_linear.weight"), P(Parameters, l + "mixer.output_linear.bias"), c.O, rows, h, 2 * h);
            BlockReference<T>.GluForward(c.O, c.Glu, rows, h);
            var next = new T[rows * h];
            for (int j = 0; j < next.Length; j++) next[j] = x[j] + c.Glu[j] * DropScale(i, j);
            x = next;
        }
        _xf = x; _meanF = new T[rows]; _rstdF = new T[rows]; _nf = new T[rows * h];
        NormForward(Config.FinalNorm, _names.FinalNorm, x, _nf, _meanF, _rstdF, rows);
        int outRows = Config.Pooling == Pooling.None ? rows : batch;
        _pooled = new T[outRows * h];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
                for (int k = 0; k < h; k++)
                {
                    T v = _nf[(b * length + t) * h + k];
                    switch (Config.Pooling)
                    {
                        case Pooling.Mean: _pooled[b * h + k] += v / T.CreateChecked(length); break;
                        case Pooling.Last: if (t == length - 1) _pooled[b * h + k] = v; break;
                        default: _pooled[(b * length + t) * h + k] = v; break;
                    }
                }
        var y = new T[outRows * Config.Output];
        BlockReference<T>.LinearForward(_pooled, P(Parameters, _names.Decoder + ".weight"), POpt(Parameters, _names.Decoder + ".bias"), y, outRows, h, Config.Output);
        return y;
    }

    private T DropScale(int layer, int index)
    {
        double p = Config.Layers[layer] is S4DLayerConfig s ? s.Dropout : 0;
        return _training && p > 0 ? BlockReference<T>.DropoutScale(p, _dropSeed, _dropStep, layer, index) : T.One;
    }

    /// <summary>Accumulates dL/dθ into <see cref="Gradients"/> from dL/d(output) of the last Forward.</summary>
    public void Backward(ReadOnlySpan<T> dOut)
    {
        int h = Config.DModel, rows = _batch * _length, outRows = Config.Pooling == Pooling.None ? rows : _batch;
        var dPooled = new T[outRows * h];
        BlockReference<T>.LinearBackward(_pooled, P(Parameters, _names.Decoder + ".weight"), dOut, dPooled, P(Gradients, _names.Decoder + ".weight"), POpt(Gradients, _names.Decoder + ".bias"), outRows, h, Config.Output);
        var dNf = new T[rows * h];
        for (int b = 0; b < _batch; b++)
            for (int t = 0; t < _length; t++)
                for (int k = 0; k < h; k++)
                    dNf[(b * _length + t) * h + k] = Config.Pooling switch
                    {
                        Pooling.Mean => dPooled[b * h + k] / T.CreateChecked(_length),
                        Pooling.Last => t == _length - 1 ? dPooled[b * h + k] : T.Zero,
                        _ => dPooled[(b * _length + t) * h + k],
                    };
        var dx = new T[rows * h];
        NormBackward(Config.FinalNorm, _names.FinalNorm, _xf, _meanF, _rstdF, dNf, dx, rows);
        for (int i = Config.Layers.Count - 1; i >= 0; i--)
        {
            var c = _cache[i];
            string l = $"{_names.Layers}{i}.";
            if (Config.Layers[i] is not S4DLayerConfig)
            {
                if (Config.Layers[i] is AttentionLayerConfig a) MlpBackward(i, c, dx, rows, a.MlpRatio);
                var dNorm = new T[rows * h];
                if (c.Mamba is not null) c.Mamba.Backward(MambaMixer(Parameters, i), MambaMixer(Gradients, i), dx, dNorm);
                if (c.Rnn is not null) c.Rnn.Backward(RnnMixer(Parameters, i), RnnMixer(Gradients, i), dx, dNorm);
                if (c.Ids is not null) c.Ids.Backward(IdsMixer(Parameters, i), IdsMixer(Gradients, i), dx, dNorm);
                if (c.Attention is not null) c.Attention.Backward(AttentionMixer(Parameters, i), AttentionMixer(Gradients, i), dx, dNorm);
                NormBackward(BlockNorm(i), l + "norm", c.X, c.Mean, c.Rstd, dNorm, dx, rows);
                continue;
            }
            // residual: dx flows through unchanged and into the block
            var dGlu = new T[rows * h];
            for (int j = 0; j < dGlu.Length; j++) dGlu[j] = dx[j] * DropScale(i, j);
            var dO = new T[rows * 2 * h];
            BlockReference<T>.GluBackward(c.O, dGlu, dO, rows, h);
            var dG = new T[rows * h];
            BlockReference<T>.LinearBackward(c.G, P(Parameters, l + "mixer.output_linear.weight"), dO, dG, P(Gradients, l + "mixer.output_linear.weight"), P(Gradients, l + "mixer.output_linear.bias"), rows, h, 2 * h);
            var dY = new T[rows * h];
            for (int j = 0; j < dY.Length; j++) dY[j] = dG[j] * BlockReference<T>.GeluDerivative(c.Y[j]);
            var dU = new T[rows * h];
            _mixers[i]!.Backward(Mixer(Parameters, i), Mixer(Gradients, i), c.U, dY, dU, _batch, _length);
            BlockReference<T>.LayerNormBackward(c.X, P(Parameters, l + "norm.weight"), c.Mean, c.Rstd, dU, dx, P(Gradients, l + "norm.weight"), P(Gradients, l + "norm.bias"), rows, h);
        }
        if (_tokens is not null)
        {
            var ge = P(Gradients, _names.Encoder + ".weight");
            for (int r = 0; r < rows; r++)
                for (int k = 0; k < h; k++) ge[_tokens[r] * h + k] += dx[r * h + k];
        }
        else BlockReference<T>.LinearBackward(_input, P(Parameters, _names.Encoder + ".weight"), dx, Span<T>.Empty, P(Gradients, _names.Encoder + ".weight"), P(Gradients, _names.Encoder + ".bias"), rows, Config.Input, h);
    }

    /// <summary>
    /// The whole model run token by token with each block's recurrence (S4D's instead of its convolution, Mamba's
    /// step with its conv window and state) instead of the sequence passes: row t of
    /// the result is the model's output for the prefix of length t+1 (for Pooling.None, token t's output).
    /// </summary>
    public T[] ForwardRecurrent(ReadOnlySpan<T> input, ReadOnlySpan<int> tokens, int length)
    {
        int h = Config.DModel;
        var x = new T[length * h];
        if (Config.TokenInput)
        {
            var e = P(Parameters, _names.Encoder + ".weight");
            for (int t = 0; t < length; t++) e.Slice(tokens[t] * h, h).CopyTo(x.AsSpan(t * h));
        }
        else BlockReference<T>.LinearForward(input, P(Parameters, _names.Encoder + ".weight"), P(Parameters, _names.Encoder + ".bias"), x, length, Config.Input, h);
        for (int i = 0; i < Config.Layers.Count; i++)
        {
            string l = $"{_names.Layers}{i}.";
            if (Config.Layers[i] is not S4DLayerConfig)
            {
                var un = new T[length * h];
                NormForward(BlockNorm(i), l + "norm", x, un, new T[length], new T[length], length);
                var yt = new T[h];
                var mamba = Config.Layers[i] is MambaLayerConfig mc ? NewMamba(mc) : null;
                var rnn = Config.Layers[i] is RnnLayerConfig rc ? new RnnReference<T>(h, rc.HiddenSize(h), rc.Nonlinearity) : null;
                var ids = Config.Layers[i] is IdsLayerConfig ic ? new IdsReference<T>(h, ic.N) : null;
                var att = Config.Layers[i] is AttentionLayerConfig ac ? new AttentionReference<T>(h, ac.Heads) : null;
                var state = new T[mamba?.StateSize ?? rnn?.StateSize ?? ids?.StateSize ?? AttentionReference<T>.CacheSize(length, h)];
                for (int t = 0; t < length; t++)
                {
                    var ut = un.AsSpan(t * h, h);
                    if (mamba is not null) mamba.Step(MambaMixer(Parameters, i), state.AsSpan(0, mamba.ConvStateSize), state.AsSpan(mamba.ConvStateSize), ut, yt);
                    if (rnn is not null) rnn.Step(RnnMixer(Parameters, i), state, ut, yt);
                    if (ids is not null) ids.Step(IdsMixer(Parameters, i), state, ut, yt);
                    if (att is not null) att.Step(AttentionMixer(Parameters, i), state, t, ut, yt);
                    for (int k = 0; k < h; k++) x[t * h + k] += yt[k];
                }
                if (Config.Layers[i] is AttentionLayerConfig a) x = MlpForward(i, new LayerCache(), x, length, a.MlpRatio);
                continue;
            }
            var u = new T[length * h]; var y = new T[length * h]; var o = new T[length * 2 * h];
            var g = new T[length * h]; var glu = new T[length * h];
            BlockReference<T>.LayerNormForward(x, P(Parameters, l + "norm.weight"), P(Parameters, l + "norm.bias"), u, new T[length], new T[length], length, h);
            _mixers[i]!.Recurrent(Mixer(Parameters, i), u, y, 1, length);
            for (int j = 0; j < g.Length; j++) g[j] = BlockReference<T>.Gelu(y[j]);
            BlockReference<T>.LinearForward(g, P(Parameters, l + "mixer.output_linear.weight"), P(Parameters, l + "mixer.output_linear.bias"), o, length, h, 2 * h);
            BlockReference<T>.GluForward(o, glu, length, h);
            for (int j = 0; j < x.Length; j++) x[j] += glu[j];
        }
        var nf = new T[length * h];
        NormForward(Config.FinalNorm, _names.FinalNorm, x, nf, new T[length], new T[length], length);
        var pooled = new T[length * h];
        var sum = new T[h];
        for (int t = 0; t < length; t++)
            for (int k = 0; k < h; k++)
            {
                sum[k] += nf[t * h + k];
                pooled[t * h + k] = Config.Pooling == Pooling.Mean ? sum[k] / T.CreateChecked(t + 1) : nf[t * h + k];
            }
        var outp = new T[length * Config.Output];
        BlockReference<T>.LinearForward(pooled, P(Parameters, _names.Decoder + ".weight"), POpt(Parameters, _names.Decoder + ".bias"), outp, length, h, Config.Output);
        return outp;
    }
}
