using System.Numerics;
using SsmGen.Layers;

namespace SsmGen.Reference;

/// <summary>
/// One Mamba (S6) mixer ("Mamba: Linear-Time Sequence Modeling with Selective State Spaces"; the
/// selective scan as a memory-compressing recurrence follows "Mathematical Formalism for Memory
/// Compression in Selective State Space Models"). With H = dModel, E = expand·H, R = dtRank, N the
/// state size and W the convolution width, over sequences (B, L, width) row-major:
/// <code>
///   xz = x · in_projᵀ                         (B,L,2E);  xi = xz[..., :E],  z = xz[..., E:]
///   c[t,e] = conv1d.bias[e] + Σ_{k&lt;W} conv1d.weight[e,0,k] · xi[t−(W−1)+k, e]   (causal, xi = 0 before t = 0)
///   u = SiLU(c)                               (B,L,E)
///   dbc = u · x_projᵀ                         (B,L,R+2N);  δ = dbc[:R],  Bt = dbc[R:R+N],  Ct = dbc[R+N:]
///   Δ = softplus(δ · dt_projᵀ + dt_proj.bias) (B,L,E)
///   A[e,n] = −exp(A_log[e,n])
///   Ā_t[e,n] = exp(Δ_t[e]·A[e,n])  (or 2·exp(Δ_t[e]·A[e,n]) − 1 with negative eigenvalues)
///   h_t[e,n] = Ā_t[e,n] · h_{t−1}[e,n] + Δ_t[e] · Bt_t[n] · u_t[e],   h_{−1} = 0
///   ys_t[e] = Σ_n Ct_t[n] · h_t[e,n] + D[e] · u_t[e]
///   g = ys · SiLU(z)
///   y = g · out_projᵀ                         (B,L,H)
/// </code>
/// Written for clarity: plain loops, every intermediate (states included) kept for the backward.
/// Backward passes accumulate (+=) into parameter gradients and into the input gradient.
/// </summary>
public sealed class MambaReference<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>
    /// Views of one mixer's parameters (or of their gradients), in the Hugging Face Mamba layout: the mixer's tensors of
    /// <see cref="SsmGen.Layers.MambaTable"/>, whose names and shapes they follow, in its order.
    /// </summary>
    public readonly ref struct Params
    {
        public readonly Span<T> InProj, ConvWeight, ConvBias, XProj, DtWeight, DtBias, ALog, D, OutProj;
        public Params(Span<T> inProj, Span<T> convWeight, Span<T> convBias, Span<T> xProj, Span<T> dtWeight,
            Span<T> dtBias, Span<T> aLog, Span<T> d, Span<T> outProj)
        {
            InProj = inProj; ConvWeight = convWeight; ConvBias = convBias; XProj = xProj; DtWeight = dtWeight;
            DtBias = dtBias; ALog = aLog; D = d; OutProj = outProj;
        }
    }

    private readonly int _h, _e, _n, _w, _r;
    private readonly bool _negative;

    // Kept by the last Forward for the backward.
    private int _batch, _length;
    private T[] _x = [], _xz = [], _c = [], _u = [], _dbc = [], _dtPre = [], _delta = [], _states = [], _ys = [];

    public MambaReference(int dModel, int n, int expand, int convWidth, int dtRank, MambaEigenvalues eigenvalues = MambaEigenvalues.Positive)
    {
        _h = dModel; _e = expand * dModel; _n = n; _w = convWidth; _r = dtRank;
        _negative = eigenvalues == MambaEigenvalues.PositiveAndNegative;
    }

    /// <summary>dModel (H).</summary>
    public int DModel => _h;
    /// <summary>Inner width E = expand·H.</summary>
    public int Inner => _e;
    /// <summary>Number of elements of each tensor in <see cref="Params"/> order.</summary>
    public int[] ParameterSizes => MambaTable.Of(_h, _e, _n, _r, _w, rms: true).MixerLengths();
    /// <summary>Total number of parameters.</summary>
    public int ParameterCount => ParameterSizes.Sum();

    /// <summary>Views of a flat buffer of <see cref="ParameterCount"/> elements, the tensors back to back in <see cref="Params"/> order.</summary>
    public Params View(Span<T> flat)
    {
        var t = new TensorCursor<T>(flat, ParameterSizes);
        return new Params(t.Next(), t.Next(), t.Next(), t.Next(), t.Next(), t.Next(), t.Next(), t.Next(), t.Next());
    }

    /// <summary>Elements of the convolution state (E, W−1).</summary>
    public int ConvStateSize => _e * (_w - 1);
    /// <summary>Elements of the SSM state (E, N).</summary>
    public int SsmStateSize => _e * _n;
    /// <summary>E·(W−1) + E·N: the recurrent state of one sequence.</summary>
    public int StateSize => ConvStateSize + SsmStateSize;

    private static T A(Params p, int i) => -T.Exp(p.ALog[i]);

    /// <summary>The transition Ā at Δ·A: exp(Δ·A), or 2·exp(Δ·A) − 1 with negative eigenvalues (exact, no float guards).</summary>
    private T Transition(T dtA) => _negative ? T.CreateChecked(2) * T.Exp(dtA) - T.One : T.Exp(dtA);

    /// <summary>dĀ/d(Δ·A): exp(Δ·A), or 2·exp(Δ·A).</summary>
    private T TransitionSlope(T dtA) => _negative ? T.CreateChecked(2) * T.Exp(dtA) : T.Exp(dtA);

    /// <summary>Δ of the last <see cref="Forward"/>, (B·L, E): each token's step size per inner channel.</summary>
    public ReadOnlySpan<T> Delta => _delta;

    /// <summary>
    /// The selective scan of the last <see cref="Forward"/> for sequence <paramref name="b"/> as the diagonal recurrence
    /// h_t = Ā_t ⊙ h_(t−1) + b_t it runs: transitions Ā_t,(e,n) (exp(Δ_t,e·A_e,n), or 2·exp(…) − 1) and drives Δ_t,e·B_t,n·u_t,e, (L, E·N) each.
    /// </summary>
    public (T[] Transitions, T[] Drive) Recurrence(Params p, int b)
    {
        if ((uint)b >= (uint)_batch) throw new ArgumentOutOfRangeException(nameof(b), b, $"The last Forward ran {_batch} sequences.");
        int nd = _r + 2 * _n, width = _e * _n;
        var (transitions, drive) = (new T[_length * width], new T[_length * width]);
        for (int t = 0; t < _length; t++)
        {
            int row = b * _length + t;
            for (int e = 0; e < _e; e++)
            {
                T dt = _delta[row * _e + e], ut = _u[row * _e + e];
                for (int n = 0; n < _n; n++)
                {
                    transitions[t * width + e * _n + n] = Transition(dt * A(p, e * _n + n));
                    drive[t * width + e * _n + n] = dt * _dbc[row * nd + _r + n] * ut;
                }
            }
        }
        return (transitions, drive);
    }

    /// <summary>y (B,L,H) = the mixer applied to x (B,L,H); overwrites y and keeps what the backward needs.</summary>
    public void Forward(Params p, ReadOnlySpan<T> x, Span<T> y, int batch, int length)
    {
        int rows = batch * length, e2 = 2 * _e, nd = _r + 2 * _n;
        _batch = batch; _length = length;
        _x = x[..(rows * _h)].ToArray();
        _xz = new T[rows * e2];
        _c = new T[rows * _e];
        _u = new T[rows * _e];
        _dbc = new T[rows * nd];
        _dtPre = new T[rows * _e];
        _delta = new T[rows * _e];
        _states = new T[rows * _e * _n];
        _ys = new T[rows * _e];

        BlockReference<T>.LinearForward(x, p.InProj, default, _xz, rows, _h, e2);

        // Causal depthwise convolution over xi, then SiLU.
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
                for (int e = 0; e < _e; e++)
                {
                    T s = p.ConvBias[e];
                    for (int k = 0; k < _w; k++)
                    {
                        int ts = t - (_w - 1) + k;
                        if (ts >= 0) s += p.ConvWeight[e * _w + k] * _xz[(b * length + ts) * e2 + e];
                    }
                    int i = (b * length + t) * _e + e;
                    _c[i] = s;
                    _u[i] = BlockReference<T>.Silu(s);
                }

        BlockReference<T>.LinearForward(_u, p.XProj, default, _dbc, rows, _e, nd);

        // Δ = softplus(δ · dt_projᵀ + bias); δ is the first R columns of dbc.
        for (int row = 0; row < rows; row++)
            for (int e = 0; e < _e; e++)
            {
                T s = p.DtBias[e];
                for (int k = 0; k < _r; k++) s += _dbc[row * nd + k] * p.DtWeight[e * _r + k];
                _dtPre[row * _e + e] = s;
                _delta[row * _e + e] = BlockReference<T>.Softplus(s);
            }

        // Selective scan.
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
            {
                int row = b * length + t;
                for (int e = 0; e < _e; e++)
                {
                    T dt = _delta[row * _e + e], ut = _u[row * _e + e];
                    T s = p.D[e] * ut;
                    for (int n = 0; n < _n; n++)
                    {
                        T prev = t == 0 ? T.Zero : _states[((row - 1) * _e + e) * _n + n];
                        T h = Transition(dt * A(p, e * _n + n)) * prev + dt * _dbc[row * nd + _r + n] * ut;
                        _states[(row * _e + e) * _n + n] = h;
                        s += _dbc[row * nd + _r + _n + n] * h;
                    }
                    _ys[row * _e + e] = s;
                }
            }

        // Gate and output projection.
        var g = new T[rows * _e];
        for (int row = 0; row < rows; row++)
            for (int e = 0; e < _e; e++)
                g[row * _e + e] = _ys[row * _e + e] * BlockReference<T>.Silu(_xz[row * e2 + _e + e]);
        BlockReference<T>.LinearForward(g, p.OutProj, default, y, rows, _e, _h);
    }

    /// <summary>
    /// Exact gradient of the last <see cref="Forward"/> for upstream dy (B,L,H): accumulates (+=) into
    /// every tensor of <paramref name="grads"/> and into dx (B,L,H).
    /// </summary>
    public void Backward(Params p, Params grads, ReadOnlySpan<T> dy, Span<T> dx)
    {
        int batch = _batch, length = _length, rows = batch * length, e2 = 2 * _e, nd = _r + 2 * _n;

        // y = g · out_projᵀ, g = ys · SiLU(z).
        var g = new T[rows * _e];
        for (int row = 0; row < rows; row++)
            for (int e = 0; e < _e; e++)
                g[row * _e + e] = _ys[row * _e + e] * BlockReference<T>.Silu(_xz[row * e2 + _e + e]);
        var dg = new T[rows * _e];
        BlockReference<T>.LinearBackward(g, p.OutProj, dy, dg, grads.OutProj, default, rows, _e, _h);

        var dxz = new T[rows * e2];
        var dys = new T[rows * _e];
        for (int row = 0; row < rows; row++)
            for (int e = 0; e < _e; e++)
            {
                T z = _xz[row * e2 + _e + e], gg = dg[row * _e + e];
                dys[row * _e + e] = gg * BlockReference<T>.Silu(z);
                dxz[row * e2 + _e + e] = gg * _ys[row * _e + e] * BlockReference<T>.SiluDerivative(z);
            }

        // ys_t = Σ_n Ct_t[n]·h_t + D·u_t and the scan, backwards in time.
        var du = new T[rows * _e];
        var ddbc = new T[rows * nd];
        var dDelta = new T[rows * _e];
        var dA = new T[_e * _n];
        var dh = new T[_e * _n]; // dL/dh_t, carried from t+1 as Ā_{t+1}·dL/dh_{t+1}
        for (int b = 0; b < batch; b++)
        {
            Array.Clear(dh);
            for (int t = length - 1; t >= 0; t--)
            {
                int row = b * length + t;
                for (int e = 0; e < _e; e++)
                {
                    T gys = dys[row * _e + e], ut = _u[row * _e + e], dt = _delta[row * _e + e];
                    grads.D[e] += gys * ut;
                    du[row * _e + e] += gys * p.D[e];
                    for (int n = 0; n < _n; n++)
                    {
                        int en = e * _n + n;
                        T h = _states[(row * _e + e) * _n + n];
                        T prev = t == 0 ? T.Zero : _states[((row - 1) * _e + e) * _n + n];
                        T ct = _dbc[row * nd + _r + _n + n], bt = _dbc[row * nd + _r + n];
                        T a = A(p, en), transition = Transition(dt * a), slope = TransitionSlope(dt * a);
                        ddbc[row * nd + _r + _n + n] += gys * h;
                        T gh = dh[en] + ct * gys;
                        // h_t = Ā(Δ·A)·h_{t−1} + Δ·Bt·u
                        dDelta[row * _e + e] += gh * (a * slope * prev + bt * ut);
                        dA[en] += gh * dt * slope * prev;
                        ddbc[row * nd + _r + n] += gh * dt * ut;
                        du[row * _e + e] += gh * dt * bt;
                        dh[en] = gh * transition;
                    }
                }
            }
        }
        for (int i = 0; i < _e * _n; i++) grads.ALog[i] += dA[i] * A(p, i);

        // Δ = softplus(δ · dt_projᵀ + bias).
        for (int row = 0; row < rows; row++)
            for (int e = 0; e < _e; e++)
            {
                T gp = dDelta[row * _e + e] * BlockReference<T>.Sigmoid(_dtPre[row * _e + e]);
                grads.DtBias[e] += gp;
                for (int k = 0; k < _r; k++)
                {
                    grads.DtWeight[e * _r + k] += gp * _dbc[row * nd + k];
                    ddbc[row * nd + k] += gp * p.DtWeight[e * _r + k];
                }
            }

        // dbc = u · x_projᵀ.
        BlockReference<T>.LinearBackward(_u, p.XProj, ddbc, du, grads.XProj, default, rows, _e, nd);

        // u = SiLU(c), c = causal depthwise convolution of xi.
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
                for (int e = 0; e < _e; e++)
                {
                    int i = (b * length + t) * _e + e;
                    T gc = du[i] * BlockReference<T>.SiluDerivative(_c[i]);
                    grads.ConvBias[e] += gc;
                    for (int k = 0; k < _w; k++)
                    {
                        int ts = t - (_w - 1) + k;
                        if (ts < 0) continue;
                        int j = (b * length + ts) * e2 + e;
                        grads.ConvWeight[e * _w + k] += gc * _xz[j];
                        dxz[j] += gc * p.ConvWeight[e * _w + k];
                    }
                }

        // xz = x · in_projᵀ.
        BlockReference<T>.LinearBackward(_x, p.InProj, dxz, dx, grads.InProj, default, rows, _h, e2);
    }

    /// <summary>
    /// One token of the same map: y (H) from x (H), updating in place convState (E, W−1: the last W−1
    /// values of xi, oldest first) and ssmState (E, N). Zero states start a sequence.
    /// </summary>
    public void Step(Params p, Span<T> convState, Span<T> ssmState, ReadOnlySpan<T> x, Span<T> y)
    {
        int e2 = 2 * _e, nd = _r + 2 * _n, wm = _w - 1;
        var xz = new T[e2];
        BlockReference<T>.LinearForward(x, p.InProj, default, xz, 1, _h, e2);

        var u = new T[_e];
        for (int e = 0; e < _e; e++)
        {
            T xi = xz[e], s = p.ConvBias[e] + p.ConvWeight[e * _w + wm] * xi;
            for (int k = 0; k < wm; k++) s += p.ConvWeight[e * _w + k] * convState[e * wm + k];
            for (int k = 0; k + 1 < wm; k++) convState[e * wm + k] = convState[e * wm + k + 1];
            if (wm > 0) convState[e * wm + wm - 1] = xi;
            u[e] = BlockReference<T>.Silu(s);
        }

        var dbc = new T[nd];
        BlockReference<T>.LinearForward(u, p.XProj, default, dbc, 1, _e, nd);

        var g = new T[_e];
        for (int e = 0; e < _e; e++)
        {
            T pre = p.DtBias[e];
            for (int k = 0; k < _r; k++) pre += dbc[k] * p.DtWeight[e * _r + k];
            T dt = BlockReference<T>.Softplus(pre);
            T s = p.D[e] * u[e];
            for (int n = 0; n < _n; n++)
            {
                int en = e * _n + n;
                T h = Transition(dt * A(p, en)) * ssmState[en] + dt * dbc[_r + n] * u[e];
                ssmState[en] = h;
                s += dbc[_r + _n + n] * h;
            }
            g[e] = s * BlockReference<T>.Silu(xz[_e + e]);
        }
        BlockReference<T>.LinearForward(g, p.OutProj, default, y, 1, _e, _h);
    }
}
