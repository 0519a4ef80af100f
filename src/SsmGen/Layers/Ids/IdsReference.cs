using System.Numerics;
using SsmGen.Layers;

namespace SsmGen.Reference;

/// <summary>
/// The input-dependent transition SSM (IDS4) of "The Illusion of State in State-Space Models": a
/// linear recurrence whose dense N×N transition matrix is an affine function of the current token, so
/// that products of input-chosen matrices (permutations, for state tracking) can be expressed. With
/// H = dModel, over sequences (B, L, width) row-major:
/// <code>
///   A_t = reshape(A.weight · x_t + A.bias, (N, N))    row-major: A_t[i,j] = (A.weight x_t + A.bias)[i·N + j]
///   h_t = A_t h_{t−1} + B.weight x_t                  (N),   h_{−1} = 0
///   y_t = C.weight h_t + C.bias                       (H)
/// </code>
/// so that h_t = Σ_{s≤t} (A_t A_{t−1} ⋯ A_{s+1}) B x_s. The backward goes exactly through the product
/// of matrices, backwards in time:
/// <code>
///   g_t = Cᵀ dy_t + A_{t+1}ᵀ g_{t+1}   (= dL/dh_t; g_L's carry is 0)
///   dA_t = g_t h_{t−1}ᵀ,   dA.weight += vec(dA_t) x_tᵀ,   dA.bias += vec(dA_t)
///   dB.weight += g_t x_tᵀ,  dx_t += A.weightᵀ vec(dA_t) + B.weightᵀ g_t
/// </code>
/// Written for clarity: plain loops, every transition and state kept for the backward. Backward
/// passes accumulate (+=) into parameter gradients and into the input gradient.
/// </summary>
public sealed class IdsReference<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>
    /// Views of one mixer's parameters (or of their gradients): the mixer's tensors of
    /// <see cref="SsmGen.Layers.IdsTable"/>, whose names and shapes they follow, in its order.
    /// </summary>
    public readonly ref struct Params
    {
        public readonly Span<T> AWeight, ABias, BWeight, CWeight, CBias;
        public Params(Span<T> aWeight, Span<T> aBias, Span<T> bWeight, Span<T> cWeight, Span<T> cBias)
        { AWeight = aWeight; ABias = aBias; BWeight = bWeight; CWeight = cWeight; CBias = cBias; }
    }

    private readonly int _h, _n;

    // Kept by the last Forward for the backward.
    private int _batch, _length;
    private T[] _x = [], _a = [], _states = [];

    public IdsReference(int dModel, int n)
    {
        if (dModel <= 0 || n <= 0) throw new ArgumentOutOfRangeException(nameof(n), "dModel and n must be positive.");
        _h = dModel; _n = n;
    }

    /// <summary>dModel (H).</summary>
    public int DModel => _h;
    /// <summary>State size N.</summary>
    public int N => _n;
    /// <summary>Number of elements of each tensor in <see cref="Params"/> order.</summary>
    public int[] ParameterSizes => IdsTable.Of(_h, _n).MixerLengths();
    /// <summary>Total number of parameters.</summary>
    public int ParameterCount => ParameterSizes.Sum();
    /// <summary>Elements of the recurrent state of one sequence: h (N).</summary>
    public int StateSize => _n;

    /// <summary>Views of a flat buffer of <see cref="ParameterCount"/> elements, the tensors back to back in <see cref="Params"/> order.</summary>
    public Params View(Span<T> flat)
    {
        var t = new TensorCursor<T>(flat, ParameterSizes);
        return new Params(t.Next(), t.Next(), t.Next(), t.Next(), t.Next());
    }

    /// <summary>a (N·N) = A.weight · x + A.bias; then h (N) = a·prev + B.weight · x (h may not alias prev).</summary>
    private void Transition(Params p, ReadOnlySpan<T> x, ReadOnlySpan<T> prev, Span<T> a, Span<T> h)
    {
        BlockReference<T>.LinearForward(x, p.AWeight, p.ABias, a, 1, _h, _n * _n);
        for (int i = 0; i < _n; i++)
        {
            T v = T.Zero;
            for (int j = 0; j < _n; j++) v += a[i * _n + j] * prev[j];
            for (int k = 0; k < _h; k++) v += p.BWeight[i * _h + k] * x[k];
            h[i] = v;
        }
    }

    /// <summary>y (B,L,H) = the mixer applied to x (B,L,H); overwrites y and keeps what the backward needs.</summary>
    public void Forward(Params p, ReadOnlySpan<T> x, Span<T> y, int batch, int length)
    {
        int rows = batch * length, nn = _n * _n;
        _batch = batch; _length = length;
        _x = x[..(rows * _h)].ToArray();
        _a = new T[rows * nn];
        _states = new T[rows * _n];
        var zero = new T[_n];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
            {
                int row = b * length + t;
                ReadOnlySpan<T> prev = t == 0 ? zero : _states.AsSpan((row - 1) * _n, _n);
                Transition(p, x.Slice(row * _h, _h), prev, _a.AsSpan(row * nn, nn), _states.AsSpan(row * _n, _n));
            }
        BlockReference<T>.LinearForward(_states, p.CWeight, p.CBias, y, rows, _n, _h);
    }

    /// <summary>
    /// Exact gradient of the last <see cref="Forward"/> for upstream dy (B,L,H): accumulates (+=) into
    /// every tensor of <paramref name="grads"/> and into dx (B,L,H).
    /// </summary>
    public void Backward(Params p, Params grads, ReadOnlySpan<T> dy, Span<T> dx)
    {
        int batch = _batch, length = _length, rows = batch * length, nn = _n * _n;

        // y = h · Cᵀ + c: dh starts as dy · C.
        var dh = new T[rows * _n];
        BlockReference<T>.LinearBackward(_states, p.CWeight, dy, dh, grads.CWeight, grads.CBias, rows, _n, _h);

        var g = new T[_n];
        var carry = new T[_n]; // A_{t+1}ᵀ g_{t+1}
        var da = new T[nn];
        for (int b = 0; b < batch; b++)
        {
            Array.Clear(carry);
            for (int t = length - 1; t >= 0; t--)
            {
                int row = b * length + t;
                var xt = _x.AsSpan(row * _h, _h);
                var dxt = dx.Slice(row * _h, _h);
                for (int i = 0; i < _n; i++) g[i] = dh[row * _n + i] + carry[i];

                // h_t = A_t h_{t−1} + B x_t.
                BlockReference<T>.LinearBackward(xt, p.BWeight, g, dxt, grads.BWeight, default, 1, _h, _n);
                Array.Clear(carry);
                if (t == 0) continue; // h_{−1} = 0: no gradient reaches A_0
                for (int i = 0; i < _n; i++)
                    for (int j = 0; j < _n; j++)
                    {
                        da[i * _n + j] = g[i] * _states[(row - 1) * _n + j];
                        carry[j] += _a[row * nn + i * _n + j] * g[i];
                    }

                // a_t = A.weight · x_t + A.bias.
                BlockReference<T>.LinearBackward(xt, p.AWeight, da, dxt, grads.AWeight, grads.ABias, 1, _h, nn);
            }
        }
    }

    /// <summary>
    /// One token of the same map: y (H) from x (H), updating the state h (N) in place. A zero state
    /// starts a sequence.
    /// </summary>
    public void Step(Params p, Span<T> state, ReadOnlySpan<T> x, Span<T> y)
    {
        var prev = state[.._n].ToArray();
        var a = new T[_n * _n];
        Transition(p, x, prev, a, state);
        BlockReference<T>.LinearForward(state, p.CWeight, p.CBias, y, 1, _n, _h);
    }
}
