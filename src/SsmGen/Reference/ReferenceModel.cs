using System.Numerics;
using SsmGen.Layers;

namespace SsmGen.Reference;

/// <summary>
/// The oracle: a whole model (encoder, blocks of any kind, final norm, pooling, decoder) in plain runtime-sized
/// code over float or double, with the same parameter layout as the generated model. Slow on purpose.
/// </summary>
public sealed class ReferenceModel<T> where T : IFloatingPointIeee754<T>
{
    public ModelConfig Config { get; }
    public ParameterInfo[] Table { get; }
    public T[] Parameters { get; }
    public T[] Gradients { get; }

    private readonly Dictionary<string, ParameterInfo> _byName;
    private readonly ReferenceBlock<T>[] _blocks;
    private readonly ParameterLayout.Names _names;
    private T[] _xf = [], _meanF = [], _rstdF = [], _nf = [], _pooled = [];
    private int[]? _tokens;
    private T[]? _input;
    private int _batch, _length;

    public ReferenceModel(ModelConfig config)
    {
        config.Validate();
        Config = config;
        Table = ParameterLayout.Build(config);
        _byName = Table.ToDictionary(p => p.Name);
        Parameters = new T[ParameterLayout.Count(Table)];
        Gradients = new T[Parameters.Length];
        _names = ParameterLayout.For(config);
        _blocks = config.Layers.Select(l => l.ReferenceBlock<T>(config.DModel)).ToArray();
    }

    private Span<T> P(T[] buf, string name) { var p = _byName[name]; return buf.AsSpan(p.Offset, p.Length); }
    private Span<T> POpt(T[] buf, string name) => _byName.ContainsKey(name) ? P(buf, name) : Span<T>.Empty;

    /// <summary>Block i's tensors in a parameter or gradient buffer.</summary>
    private BlockView<T> Block(T[] buf, int i) => new(buf, _byName, $"{_names.Layers}{i}.");

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
            var next = t + 1 < Table.Length ? f.AsSpan(Table[t + 1].Offset, Table[t + 1].Length) : Span<float>.Empty;
            var layer = block >= 0 ? Config.Layers[block] : null;
            if (layer is not null && layer.Initialize(tensor.Init, dst, next, h, ref rng)) continue; // the kind's own starts
            switch (tensor.Init)
            {
                case TensorInit.Uniform: Initialization.Uniform(dst, tensor.InitArg, ref rng); break;
                case TensorInit.Normal: Initialization.Normal(dst, tensor.InitArg, ref rng); break;
                case TensorInit.One: Initialization.Constant(dst, 1); break;
                case TensorInit.Zero: Initialization.Constant(dst, 0); break;
                case TensorInit.ComplexOne: Initialization.ComplexOne(dst); break;
                case TensorInit.ComplexNormal: Initialization.ComplexNormal(dst, ref rng); break;
                case TensorInit.FilledWithPrevious: break; // written with the tensor before
                default: throw new InvalidOperationException($"No initialization {tensor.Init} for {tensor.Name} in a {layer?.Kind ?? "model"}.");
            }
        }
        for (int i = 0; i < f.Length; i++) Parameters[i] = T.CreateChecked(f[i]);
    }

    /// <summary>Δ (B·L, E) of Mamba block <paramref name="layer"/> in the last Forward: the selective step sizes.</summary>
    public ReadOnlySpan<T> MambaDelta(int layer) => RanMamba(layer).Mixer.Delta;

    /// <summary>Mamba block <paramref name="layer"/>'s scan in the last Forward, sequence b, as Ā_t and b_t (L, E·N) each.</summary>
    public (T[] Transitions, T[] Drive) MambaRecurrence(int layer, int b) => RanMamba(layer).Mixer.Recurrence(MambaBlock<T>.View(Block(Parameters, layer)), b);

    private MambaBlock<T> RanMamba(int layer) =>
        (uint)layer < (uint)_blocks.Length && _blocks[layer] is MambaBlock<T> { HasRun: true } m ? m
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
        (_batch, _length) = (batch, length);
        int h = Config.DModel, rows = batch * length;
        var x = new T[rows * h];
        if (_tokens is not null)
        {
            var e = P(Parameters, _names.Encoder + ".weight");
            for (int r = 0; r < rows; r++) e.Slice(_tokens[r] * h, h).CopyTo(x.AsSpan(r * h));
        }
        else BlockReference<T>.LinearForward(_input, P(Parameters, _names.Encoder + ".weight"), P(Parameters, _names.Encoder + ".bias"), x, rows, Config.Input, h);

        for (int i = 0; i < _blocks.Length; i++) x = _blocks[i].Forward(Block(Parameters, i), x, batch, length, new DropoutDraw(training, seed, step, i));
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
        for (int i = _blocks.Length - 1; i >= 0; i--) _blocks[i].Backward(Block(Parameters, i), Block(Gradients, i), dx);
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
        for (int i = 0; i < _blocks.Length; i++) x = _blocks[i].Recurrent(Block(Parameters, i), x, length);
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
