using System.Numerics;
using SsmGen.Layers;

namespace SsmGen.Reference;

/// <summary>
/// The simple nonlinear RNN mixer, the baseline of "The Illusion of State in State-Space Models" (an
/// Elman network, "Finding Structure in Time"), in PyTorch nn.RNN's naming followed by an output
/// projection. With H = dModel and D = Hidden, over sequences (B, L, width) row-major:
/// <code>
///   s_t = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh    (D),   h_{−1} = 0
///   h_t = f(s_t)                                   f = tanh or relu
///   y_t = W_out h_t + b_out                        (H)
/// </code>
/// The backward is exact backpropagation through time:
/// <code>
///   g_t = W_outᵀ dy_t + W_hhᵀ σ_{t+1},   σ_t = g_t ⊙ f′(s_t),   σ_L = 0
///   dW_ih += Σ_t σ_t x_tᵀ,  dW_hh += Σ_t σ_t h_{t−1}ᵀ,  db_ih = db_hh += Σ_t σ_t,  dx_t += W_ihᵀ σ_t
/// </code>
/// with f′(s) = 1 − tanh²(s) or [s &gt; 0]. Written for clarity: plain loops, every pre-activation and
/// hidden state kept for the backward. Backward passes accumulate (+=) into parameter gradients and
/// into the input gradient.
/// </summary>
public sealed class RnnReference<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>
    /// Views of one mixer's parameters (or of their gradients), in PyTorch nn.RNN naming: the mixer's tensors of
    /// <see cref="SsmGen.Layers.RnnTable"/>, whose names and shapes they follow, in its order.
    /// </summary>
    public readonly ref struct Params
    {
        public readonly Span<T> WeightIh, WeightHh, BiasIh, BiasHh, OutWeight, OutBias;
        public Params(Span<T> weightIh, Span<T> weightHh, Span<T> biasIh, Span<T> biasHh, Span<T> outWeight, Span<T> outBias)
        { WeightIh = weightIh; WeightHh = weightHh; BiasIh = biasIh; BiasHh = biasHh; OutWeight = outWeight; OutBias = outBias; }
    }

    private readonly int _h, _d;
    private readonly Nonlinearity _f;

    // Kept by the last Forward for the backward.
    private int _batch, _length;
    private T[] _x = [], _s = [], _hs = [];

    public RnnReference(int dModel, int hidden, Nonlinearity nonlinearity)
    {
        if (dModel <= 0 || hidden <= 0) throw new ArgumentOutOfRangeException(nameof(hidden), "dModel and hidden must be positive.");
        if (nonlinearity is not (Nonlinearity.Tanh or Nonlinearity.Relu))
            throw new ArgumentOutOfRangeException(nameof(nonlinearity), nonlinearity, "Unknown nonlinearity.");
        _h = dModel; _d = hidden; _f = nonlinearity;
    }

    /// <summary>dModel (H).</summary>
    public int DModel => _h;
    /// <summary>Hidden width D.</summary>
    public int Hidden => _d;
    /// <summary>The nonlinearity f.</summary>
    public Nonlinearity Nonlinearity => _f;
    /// <summary>Number of elements of each tensor in <see cref="Params"/> order.</summary>
    public int[] ParameterSizes => RnnTable.Of(_h, _d).MixerLengths();
    /// <summary>Total number of parameters.</summary>
    public int ParameterCount => ParameterSizes.Sum();
    /// <summary>Elements of the recurrent state of one sequence: h (Hidden).</summary>
    public int StateSize => _d;

    /// <summary>Views of a flat buffer of <see cref="ParameterCount"/> elements, the tensors back to back in <see cref="Params"/> order.</summary>
    public Params View(Span<T> flat)
    {
        var t = new TensorCursor<T>(flat, ParameterSizes);
        return new Params(t.Next(), t.Next(), t.Next(), t.Next(), t.Next(), t.Next());
    }

    private T F(T s) => _f == Nonlinearity.Tanh ? T.Tanh(s) : (s > T.Zero ? s : T.Zero);

    /// <summary>f′(s_t), from the pre-activation s and the activation h = f(s).</summary>
    private T FPrime(T s, T h) => _f == Nonlinearity.Tanh ? T.One - h * h : (s > T.Zero ? T.One : T.Zero);

    /// <summary>h (D) = f(W_ih x + b_ih + W_hh prev + b_hh); the pre-activation goes to s (D).</summary>
    private void Cell(Params p, ReadOnlySpan<T> x, ReadOnlySpan<T> prev, Span<T> s, Span<T> h)
    {
        for (int d = 0; d < _d; d++)
        {
            T v = p.BiasIh[d] + p.BiasHh[d];
            for (int i = 0; i < _h; i++) v += p.WeightIh[d * _h + i] * x[i];
            for (int k = 0; k < _d; k++) v += p.WeightHh[d * _d + k] * prev[k];
            s[d] = v;
        }
        for (int d = 0; d < _d; d++) h[d] = F(s[d]);
    }

    /// <summary>y (B,L,H) = the mixer applied to x (B,L,H); overwrites y and keeps what the backward needs.</summary>
    public void Forward(Params p, ReadOnlySpan<T> x, Span<T> y, int batch, int length)
    {
        int rows = batch * length;
        _batch = batch; _length = length;
        _x = x[..(rows * _h)].ToArray();
        _s = new T[rows * _d];
        _hs = new T[rows * _d];
        var zero = new T[_d];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
            {
                int row = b * length + t;
                ReadOnlySpan<T> prev = t == 0 ? zero : _hs.AsSpan((row - 1) * _d, _d);
                Cell(p, x.Slice(row * _h, _h), prev, _s.AsSpan(row * _d, _d), _hs.AsSpan(row * _d, _d));
            }
        BlockReference<T>.LinearForward(_hs, p.OutWeight, p.OutBias, y, rows, _d, _h);
    }

    /// <summary>
    /// Exact gradient (backpropagation through time) of the last <see cref="Forward"/> for upstream dy
    /// (B,L,H): accumulates (+=) into every tensor of <paramref name="grads"/> and into dx (B,L,H).
    /// </summary>
    public void Backward(Params p, Params grads, ReadOnlySpan<T> dy, Span<T> dx)
    {
        int batch = _batch, length = _length, rows = batch * length;

        // y = h · W_outᵀ + b_out: dh starts as dy · W_out.
        var dh = new T[rows * _d];
        BlockReference<T>.LinearBackward(_hs, p.OutWeight, dy, dh, grads.OutWeight, grads.OutBias, rows, _d, _h);

        var sigma = new T[_d];
        var carry = new T[_d]; // W_hhᵀ σ_{t+1}
        for (int b = 0; b < batch; b++)
        {
            Array.Clear(carry);
            for (int t = length - 1; t >= 0; t--)
            {
                int row = b * length + t;
                for (int d = 0; d < _d; d++)
                {
                    int i = row * _d + d;
                    sigma[d] = (dh[i] + carry[d]) * FPrime(_s[i], _hs[i]);
                }
                Array.Clear(carry);
                for (int d = 0; d < _d; d++)
                {
                    T g = sigma[d];
                    grads.BiasIh[d] += g;
                    grads.BiasHh[d] += g;
                    for (int i = 0; i < _h; i++)
                    {
                        grads.WeightIh[d * _h + i] += g * _x[row * _h + i];
                        dx[row * _h + i] += g * p.WeightIh[d * _h + i];
                    }
                    if (t == 0) continue; // h_{−1} = 0
                    for (int k = 0; k < _d; k++)
                    {
                        grads.WeightHh[d * _d + k] += g * _hs[(row - 1) * _d + k];
                        carry[k] += g * p.WeightHh[d * _d + k];
                    }
                }
            }
        }
    }

    /// <summary>
    /// One token of the same map: y (H) from x (H), updating the hidden state h (Hidden) in place.
    /// A zero state starts a sequence.
    /// </summary>
    public void Step(Params p, Span<T> state, ReadOnlySpan<T> x, Span<T> y)
    {
        var prev = state[.._d].ToArray();
        var s = new T[_d];
        Cell(p, x, prev, s, state);
        BlockReference<T>.LinearForward(state, p.OutWeight, p.OutBias, y, 1, _d, _h);
    }
}
