using System.Numerics;

namespace SsmGen.Reference;

/// <summary>
/// The gated delta rule with n Householder steps per token (Gated DeltaNet for n = 1, DeltaProduct for n ≥ 2), one
/// mixer. With H = dModel, h heads of size d, W the short convolutions' width and j &lt; n the Householder steps, per
/// position t and head:
/// <code>
///   q = L2norm(SiLU(conv(x·q_projᵀ)))            (d)       conv: causal depthwise, W taps, no bias
///   k_j = L2norm(SiLU(conv(x·k_projᵀ))_j)        (d)       v_j = SiLU(conv(x·v_projᵀ))_j   (d)
///   β_j = c·σ(x·b_projᵀ)_j                       c = 2 with negative eigenvalues (β ∈ (0, 2)), else 1
///   α = exp(−exp(A_log)·softplus(x·a_projᵀ + dt_bias))     (1 without the gate)
///   S ← α·S;  for j = 0 … n−1:  S ← (I − β_j k_j k_jᵀ)·S + β_j k_j v_jᵀ        S (d × d), zero at t = −1
///   o = d^(−½)·Sᵀ q;   ō = RMSNorm(o)·o_norm.weight ⊙ SiLU(x·g_projᵀ)  (per head)
///   y = concat_heads(ō)·o_projᵀ                   (H)
/// </code>
/// Column orders: q, g (head, i); k, v (j, head, i); β (j, head); α (head). I − β k kᵀ has eigenvalue 1 − β along k
/// and 1 across it, so β ∈ (0, 2) puts the token's transition α·Π_j(I − β_j k_j k_jᵀ) in [−1, 1]. Written for
/// clarity: plain loops, every state kept for the backward. Backward passes accumulate (+=) into parameter gradients
/// and into the input gradient.
/// </summary>
public sealed class DeltaReference<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>
    /// Views of one mixer's parameters (or of their gradients): the mixer's tensors of
    /// <see cref="SsmGen.Layers.DeltaTable"/>, whose names and shapes they follow, in its order. Without the gate,
    /// ALog, DtBias and AProj are empty.
    /// </summary>
    public readonly ref struct Params
    {
        public readonly Span<T> QProj, KProj, VProj, BProj, AProj, ALog, DtBias, QConv, KConv, VConv, GProj, ONorm, OProj;
        public Params(Span<T> qProj, Span<T> kProj, Span<T> vProj, Span<T> bProj, Span<T> aProj, Span<T> aLog, Span<T> dtBias,
            Span<T> qConv, Span<T> kConv, Span<T> vConv, Span<T> gProj, Span<T> oNorm, Span<T> oProj)
        {
            QProj = qProj; KProj = kProj; VProj = vProj; BProj = bProj; AProj = aProj; ALog = aLog; DtBias = dtBias;
            QConv = qConv; KConv = kConv; VConv = vConv; GProj = gProj; ONorm = oNorm; OProj = oProj;
        }
    }

    private static T C(double v) => T.CreateChecked(v);
    private static readonly T NormEpsilon = C(1e-6);

    private readonly int _h, _heads, _d, _n, _w;
    private readonly bool _gate, _negative;
    private readonly T _scale;

    // Kept by the last Forward for the backward.
    private int _batch, _length;
    private T[] _x = [], _qPre = [], _kPre = [], _vPre = [], _qAct = [], _kAct = [], _q = [], _k = [], _v = [], _b = [], _beta = [],
        _aPre = [], _alpha = [], _gPre = [], _o = [], _oRstd = [], _normed = [], _states = [];

    public DeltaReference(int dModel, int heads, int headSize, int householderSteps = 1, int convWidth = 4, bool gate = true, bool negativeEigenvalues = true)
    {
        if (dModel <= 0 || heads <= 0 || headSize <= 0 || householderSteps <= 0 || convWidth <= 0)
            throw new ArgumentOutOfRangeException(nameof(heads), "dModel, heads, headSize, householderSteps and convWidth must be positive.");
        (_h, _heads, _d, _n, _w, _gate, _negative) = (dModel, heads, headSize, householderSteps, convWidth, gate, negativeEigenvalues);
        _scale = T.One / T.Sqrt(C(headSize));
    }

    /// <summary>Number of elements of each tensor in <see cref="Params"/> order.</summary>
    public int[] ParameterSizes => SsmGen.Layers.DeltaTable.Of(_h, _heads, _d, _n, _w, _gate).MixerLengths();
    /// <summary>Total number of parameters.</summary>
    public int ParameterCount => ParameterSizes.Sum();
    /// <summary>Elements of the recurrent state of one sequence: the conv windows (W−1 rows of q, k and v), then S per head.</summary>
    public int StateSize => (_w - 1) * Conv + _heads * _d * _d;

    private int Hd => _heads * _d;
    private int Kd => _n * _heads * _d;
    /// <summary>Channels of the three short convolutions together: q, then k, then v.</summary>
    private int Conv => Hd + 2 * Kd;

    /// <summary>
    /// The last Forward's recurrence inputs and outputs, row-major over (B·L) rows: q (h·d), k and v ((n, h, d)),
    /// β ((n, h)), α (h) and o (h·d, before the output norm).
    /// </summary>
    internal (T[] Q, T[] K, T[] V, T[] Beta, T[] Alpha, T[] O) LastRecurrence => (_q, _k, _v, _beta, _alpha, _o);

    /// <summary>Views of a flat buffer of <see cref="ParameterCount"/> elements, the tensors back to back in <see cref="Params"/> order.</summary>
    public Params View(Span<T> flat)
    {
        var t = new TensorCursor<T>(flat, ParameterSizes);
        Span<T> q = t.Next(), k = t.Next(), v = t.Next(), b = t.Next();
        Span<T> a = _gate ? t.Next() : default, aLog = _gate ? t.Next() : default, dtBias = _gate ? t.Next() : default;
        return new Params(q, k, v, b, a, aLog, dtBias, t.Next(), t.Next(), t.Next(), t.Next(), t.Next(), t.Next());
    }

    /// <summary>y (B,L,H) = the mixer applied to x (B,L,H); overwrites y and keeps what the backward needs.</summary>
    public void Forward(Params p, ReadOnlySpan<T> x, Span<T> y, int batch, int length)
    {
        int rows = batch * length, dd = _d * _d;
        _batch = batch; _length = length;
        _x = x[..(rows * _h)].ToArray();
        (_qPre, _qAct, _q) = (new T[rows * Hd], new T[rows * Hd], new T[rows * Hd]);
        (_kPre, _kAct, _k) = (new T[rows * Kd], new T[rows * Kd], new T[rows * Kd]);
        (_vPre, _v) = (new T[rows * Kd], new T[rows * Kd]);
        (_b, _beta) = (new T[rows * _n * _heads], new T[rows * _n * _heads]);
        (_aPre, _alpha) = (new T[rows * _heads], new T[rows * _heads]);
        (_gPre, _o, _oRstd, _normed) = (new T[rows * Hd], new T[rows * Hd], new T[rows * _heads], new T[rows * Hd]);
        _states = new T[rows * (_n + 1) * _heads * dd]; // per token: S after the gate, then after each Householder step

        var qRaw = new T[rows * Hd]; var kRaw = new T[rows * Kd]; var vRaw = new T[rows * Kd];
        BlockReference<T>.LinearForward(x, p.QProj, default, qRaw, rows, _h, Hd);
        BlockReference<T>.LinearForward(x, p.KProj, default, kRaw, rows, _h, Kd);
        BlockReference<T>.LinearForward(x, p.VProj, default, vRaw, rows, _h, Kd);
        BlockReference<T>.LinearForward(x, p.BProj, default, _b, rows, _h, _n * _heads);
        BlockReference<T>.LinearForward(x, p.GProj, default, _gPre, rows, _h, Hd);
        if (_gate) BlockReference<T>.LinearForward(x, p.AProj, default, _aPre, rows, _h, _heads);
        ConvForward(qRaw, p.QConv, _qPre, Hd, batch, length);
        ConvForward(kRaw, p.KConv, _kPre, Kd, batch, length);
        ConvForward(vRaw, p.VConv, _vPre, Kd, batch, length);
        for (int i = 0; i < _qPre.Length; i++) _qAct[i] = BlockReference<T>.Silu(_qPre[i]);
        for (int i = 0; i < _kPre.Length; i++) _kAct[i] = BlockReference<T>.Silu(_kPre[i]);
        for (int i = 0; i < _vPre.Length; i++) _v[i] = BlockReference<T>.Silu(_vPre[i]);
        L2Normalize(_qAct, _q);
        L2Normalize(_kAct, _k);
        T c = _negative ? C(2) : T.One;
        for (int i = 0; i < _b.Length; i++) _beta[i] = c * BlockReference<T>.Sigmoid(_b[i]);
        for (int row = 0; row < rows; row++)
            for (int hd = 0; hd < _heads; hd++) _alpha[row * _heads + hd] = Alpha(p, row, hd);

        var s = new T[dd];
        for (int b = 0; b < batch; b++)
            for (int hd = 0; hd < _heads; hd++)
            {
                Array.Clear(s);
                for (int t = 0; t < length; t++)
                {
                    int row = b * length + t;
                    TokenUpdate(s, row, hd);
                    // o = d^(−½)·Sᵀ q
                    for (int jv = 0; jv < _d; jv++)
                    {
                        T acc = T.Zero;
                        for (int ik = 0; ik < _d; ik++) acc += s[ik * _d + jv] * _q[row * Hd + hd * _d + ik];
                        _o[row * Hd + hd * _d + jv] = _scale * acc;
                    }
                }
            }

        // per-head RMSNorm with a shared weight, the output gate, o_proj
        BlockReference<T>.RmsNormForward(_o, p.ONorm, _normed, _oRstd, rows * _heads, _d);
        var gated = new T[rows * Hd];
        for (int i = 0; i < gated.Length; i++) gated[i] = _normed[i] * BlockReference<T>.Silu(_gPre[i]);
        BlockReference<T>.LinearForward(gated, p.OProj, default, y, rows, Hd, _h);
    }

    /// <summary>α of (row, head): exp(−exp(A_log)·softplus(a + dt_bias)), or 1 without the gate.</summary>
    private T Alpha(Params p, int row, int hd) =>
        _gate ? T.Exp(-T.Exp(p.ALog[hd]) * BlockReference<T>.Softplus(_aPre[row * _heads + hd] + p.DtBias[hd])) : T.One;

    /// <summary>One token's update of head hd's S in place: the gate, then each Householder step, each stage kept for the backward.</summary>
    private void TokenUpdate(T[] s, int row, int hd)
    {
        int dd = _d * _d;
        T alpha = _alpha[row * _heads + hd];
        for (int i = 0; i < dd; i++) s[i] *= alpha;
        s.CopyTo(_states, StateAt(row, 0, hd));
        for (int j = 0; j < _n; j++)
        {
            int kv = row * Kd + (j * _heads + hd) * _d;
            T beta = _beta[(row * _n + j) * _heads + hd];
            // S ← S + β·k·(v − Sᵀk)ᵀ
            for (int jv = 0; jv < _d; jv++)
            {
                T sk = T.Zero;
                for (int ik = 0; ik < _d; ik++) sk += s[ik * _d + jv] * _k[kv + ik];
                T delta = beta * (_v[kv + jv] - sk);
                for (int ik = 0; ik < _d; ik++) s[ik * _d + jv] += _k[kv + ik] * delta;
            }
            s.CopyTo(_states, StateAt(row, j + 1, hd));
        }
    }

    private int StateAt(int row, int stage, int hd) => ((row * (_n + 1) + stage) * _heads + hd) * _d * _d;

    /// <summary>
    /// Exact gradient of the last <see cref="Forward"/> for upstream dy (B,L,H): accumulates (+=) into every tensor of
    /// <paramref name="grads"/> and into dx (B,L,H).
    /// </summary>
    public void Backward(Params p, Params grads, ReadOnlySpan<T> dy, Span<T> dx)
    {
        int batch = _batch, length = _length, rows = batch * length, dd = _d * _d;

        var gated = new T[rows * Hd];
        for (int i = 0; i < gated.Length; i++) gated[i] = _normed[i] * BlockReference<T>.Silu(_gPre[i]);
        var dGated = new T[rows * Hd];
        BlockReference<T>.LinearBackward(gated, p.OProj, dy, dGated, grads.OProj, default, rows, Hd, _h);
        var dNormed = new T[rows * Hd]; var dGPre = new T[rows * Hd];
        for (int i = 0; i < gated.Length; i++)
        {
            dNormed[i] = dGated[i] * BlockReference<T>.Silu(_gPre[i]);
            dGPre[i] = dGated[i] * _normed[i] * BlockReference<T>.SiluDerivative(_gPre[i]);
        }
        var dO = new T[rows * Hd];
        BlockReference<T>.RmsNormBackward(_o, p.ONorm, _oRstd, dNormed, dO, grads.ONorm, rows * _heads, _d);

        // the recurrence, backwards in time per (sequence, head): g = dL/dS
        var dQ = new T[rows * Hd]; var dK = new T[rows * Kd]; var dV = new T[rows * Kd];
        var dBeta = new T[rows * _n * _heads]; var dAlpha = new T[rows * _heads];
        var g = new T[dd]; var gk = new T[_d]; var pk = new T[_d];
        for (int b = 0; b < batch; b++)
            for (int hd = 0; hd < _heads; hd++)
            {
                Array.Clear(g);
                for (int t = length - 1; t >= 0; t--)
                {
                    int row = b * length + t, qo = row * Hd + hd * _d;
                    var sFinal = _states.AsSpan(StateAt(row, _n, hd), dd);
                    // o = d^(−½)·Sᵀ q: dq = d^(−½)·S·do, dS += d^(−½)·q·doᵀ
                    for (int ik = 0; ik < _d; ik++)
                    {
                        T acc = T.Zero;
                        for (int jv = 0; jv < _d; jv++)
                        {
                            acc += sFinal[ik * _d + jv] * dO[qo + jv];
                            g[ik * _d + jv] += _scale * _q[qo + ik] * dO[qo + jv];
                        }
                        dQ[qo + ik] += _scale * acc;
                    }
                    for (int j = _n - 1; j >= 0; j--)
                    {
                        // S' = P + β·k·(v − Pᵀk)ᵀ with P the state before step j
                        var prev = _states.AsSpan(StateAt(row, j, hd), dd);
                        int kv = row * Kd + (j * _heads + hd) * _d, bi = (row * _n + j) * _heads + hd;
                        T beta = _beta[bi];
                        for (int jv = 0; jv < _d; jv++)
                        {
                            T a = T.Zero, c = T.Zero;
                            for (int ik = 0; ik < _d; ik++) { a += _k[kv + ik] * g[ik * _d + jv]; c += prev[ik * _d + jv] * _k[kv + ik]; }
                            gk[jv] = a;   // (kᵀG)_jv
                            pk[jv] = c;   // (Pᵀk)_jv
                        }
                        T dB = T.Zero;
                        for (int jv = 0; jv < _d; jv++)
                        {
                            dB += gk[jv] * (_v[kv + jv] - pk[jv]);
                            dV[kv + jv] += beta * gk[jv];
                        }
                        dBeta[bi] += dB;
                        // dk = β·G·(v − Pᵀk) − β·P·(Gᵀk)
                        for (int ik = 0; ik < _d; ik++)
                        {
                            T acc = T.Zero;
                            for (int jv = 0; jv < _d; jv++) acc += g[ik * _d + jv] * (_v[kv + jv] - pk[jv]) - prev[ik * _d + jv] * gk[jv];
                            dK[kv + ik] += beta * acc;
                        }
                        // dP = (I − β·k·kᵀ)·G
                        for (int ik = 0; ik < _d; ik++)
                            for (int jv = 0; jv < _d; jv++) g[ik * _d + jv] -= beta * _k[kv + ik] * gk[jv];
                    }
                    // the gate: S_gated = α·S_{t−1}
                    T alpha = _alpha[row * _heads + hd], dA = T.Zero;
                    if (t > 0)
                    {
                        var before = _states.AsSpan(StateAt(row - 1, _n, hd), dd);
                        for (int i = 0; i < dd; i++) dA += g[i] * before[i];
                    }
                    dAlpha[row * _heads + hd] += dA;
                    for (int i = 0; i < dd; i++) g[i] *= alpha;
                }
            }

        // α = exp(−exp(A_log)·softplus(a + dt_bias)), β = c·σ(b)
        var dAPre = new T[rows * _heads];
        if (_gate)
            for (int row = 0; row < rows; row++)
                for (int hd = 0; hd < _heads; hd++)
                {
                    T pre = _aPre[row * _heads + hd] + p.DtBias[hd], rate = T.Exp(p.ALog[hd]), sp = BlockReference<T>.Softplus(pre);
                    T dLogAlpha = dAlpha[row * _heads + hd] * _alpha[row * _heads + hd];   // d(log α) = −rate·sp
                    grads.ALog[hd] += dLogAlpha * -rate * sp;
                    T dPre = dLogAlpha * -rate * BlockReference<T>.Sigmoid(pre);
                    grads.DtBias[hd] += dPre;
                    dAPre[row * _heads + hd] = dPre;
                }
        T cb = _negative ? C(2) : T.One;
        var dBPre = new T[dBeta.Length];
        for (int i = 0; i < dBeta.Length; i++) { T sg = BlockReference<T>.Sigmoid(_b[i]); dBPre[i] = dBeta[i] * cb * sg * (T.One - sg); }

        // L2 norms, SiLUs, convolutions
        var dQAct = new T[rows * Hd]; var dKAct = new T[rows * Kd];
        L2NormalizeBackward(_qAct, _q, dQ, dQAct);
        L2NormalizeBackward(_kAct, _k, dK, dKAct);
        for (int i = 0; i < dQAct.Length; i++) dQAct[i] *= BlockReference<T>.SiluDerivative(_qPre[i]);
        for (int i = 0; i < dKAct.Length; i++) dKAct[i] *= BlockReference<T>.SiluDerivative(_kPre[i]);
        for (int i = 0; i < dV.Length; i++) dV[i] *= BlockReference<T>.SiluDerivative(_vPre[i]);
        var qRaw = new T[rows * Hd]; var kRaw = new T[rows * Kd]; var vRaw = new T[rows * Kd];
        BlockReference<T>.LinearForward(_x, p.QProj, default, qRaw, rows, _h, Hd);
        BlockReference<T>.LinearForward(_x, p.KProj, default, kRaw, rows, _h, Kd);
        BlockReference<T>.LinearForward(_x, p.VProj, default, vRaw, rows, _h, Kd);
        var dQRaw = new T[rows * Hd]; var dKRaw = new T[rows * Kd]; var dVRaw = new T[rows * Kd];
        ConvBackward(qRaw, p.QConv, dQAct, dQRaw, grads.QConv, Hd, batch, length);
        ConvBackward(kRaw, p.KConv, dKAct, dKRaw, grads.KConv, Kd, batch, length);
        ConvBackward(vRaw, p.VConv, dV, dVRaw, grads.VConv, Kd, batch, length);

        // the input projections
        BlockReference<T>.LinearBackward(_x, p.QProj, dQRaw, dx, grads.QProj, default, rows, _h, Hd);
        BlockReference<T>.LinearBackward(_x, p.KProj, dKRaw, dx, grads.KProj, default, rows, _h, Kd);
        BlockReference<T>.LinearBackward(_x, p.VProj, dVRaw, dx, grads.VProj, default, rows, _h, Kd);
        BlockReference<T>.LinearBackward(_x, p.BProj, dBPre, dx, grads.BProj, default, rows, _h, _n * _heads);
        BlockReference<T>.LinearBackward(_x, p.GProj, dGPre, dx, grads.GProj, default, rows, _h, Hd);
        if (_gate) BlockReference<T>.LinearBackward(_x, p.AProj, dAPre, dx, grads.AProj, default, rows, _h, _heads);
    }

    /// <summary>Causal depthwise convolution along time, no bias: y[t, c] = Σ_k w[c, k]·x[t − (W−1) + k, c].</summary>
    private void ConvForward(ReadOnlySpan<T> x, ReadOnlySpan<T> w, Span<T> y, int channels, int batch, int length)
    {
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
                for (int c = 0; c < channels; c++)
                {
                    T s = T.Zero;
                    for (int k = 0; k < _w; k++)
                    {
                        int ts = t - (_w - 1) + k;
                        if (ts >= 0) s += w[c * _w + k] * x[(b * length + ts) * channels + c];
                    }
                    y[(b * length + t) * channels + c] = s;
                }
    }

    private void ConvBackward(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> dy, Span<T> dx, Span<T> dw, int channels, int batch, int length)
    {
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
                for (int c = 0; c < channels; c++)
                {
                    T g = dy[(b * length + t) * channels + c];
                    for (int k = 0; k < _w; k++)
                    {
                        int ts = t - (_w - 1) + k;
                        if (ts < 0) continue;
                        dw[c * _w + k] += g * x[(b * length + ts) * channels + c];
                        dx[(b * length + ts) * channels + c] += g * w[c * _w + k];
                    }
                }
    }

    /// <summary>y = x / √(Σx² + ε) over every run of d values (one head's q or one step's k).</summary>
    private void L2Normalize(ReadOnlySpan<T> x, Span<T> y)
    {
        for (int s = 0; s < x.Length; s += _d)
        {
            T ss = NormEpsilon;
            for (int i = 0; i < _d; i++) ss += x[s + i] * x[s + i];
            T r = T.One / T.Sqrt(ss);
            for (int i = 0; i < _d; i++) y[s + i] = x[s + i] * r;
        }
    }

    /// <summary>dx = r·(dy − y·(y·dy)) per run of d values, r = 1/√(Σx² + ε); dx is overwritten.</summary>
    private void L2NormalizeBackward(ReadOnlySpan<T> x, ReadOnlySpan<T> y, ReadOnlySpan<T> dy, Span<T> dx)
    {
        for (int s = 0; s < x.Length; s += _d)
        {
            T ss = NormEpsilon, yd = T.Zero;
            for (int i = 0; i < _d; i++) { ss += x[s + i] * x[s + i]; yd += y[s + i] * dy[s + i]; }
            T r = T.One / T.Sqrt(ss);
            for (int i = 0; i < _d; i++) dx[s + i] = r * (dy[s + i] - y[s + i] * yd);
        }
    }

    /// <summary>
    /// One token of the same map: y (H) from x (H), updating <paramref name="state"/> (<see cref="StateSize"/>: the
    /// last W−1 raw q, k and v rows, oldest first, then S per head) in place. A zero state starts a sequence.
    /// </summary>
    public void Step(Params p, Span<T> state, ReadOnlySpan<T> x, Span<T> y)
    {
        // Written apart from Forward (which keeps every state for the backward), so that step against forward
        // compares two codings of the same map.
        int wm = _w - 1, dd = _d * _d;
        var window = state[..(wm * Conv)];
        var s = state.Slice(wm * Conv, _heads * dd);
        var raw = new T[Conv];
        BlockReference<T>.LinearForward(x, p.QProj, default, raw.AsSpan(0, Hd), 1, _h, Hd);
        BlockReference<T>.LinearForward(x, p.KProj, default, raw.AsSpan(Hd, Kd), 1, _h, Kd);
        BlockReference<T>.LinearForward(x, p.VProj, default, raw.AsSpan(Hd + Kd, Kd), 1, _h, Kd);
        var conv = new T[Conv];
        for (int c = 0; c < Conv; c++)
        {
            Span<T> w = c < Hd ? p.QConv : c < Hd + Kd ? p.KConv : p.VConv;
            int cc = c < Hd ? c : c < Hd + Kd ? c - Hd : c - Hd - Kd;
            T acc = w[cc * _w + wm] * raw[c];
            for (int k = 0; k < wm; k++) acc += w[cc * _w + k] * window[k * Conv + c];
            conv[c] = BlockReference<T>.Silu(acc);
        }
        if (wm > 0)
        {
            window[Conv..].CopyTo(window);
            raw.CopyTo(window[((wm - 1) * Conv)..]);
        }
        var q = new T[Hd]; var k2 = new T[Kd];
        L2Normalize(conv.AsSpan(0, Hd), q);
        L2Normalize(conv.AsSpan(Hd, Kd), k2);
        var v = conv.AsSpan(Hd + Kd, Kd);
        var bPre = new T[_n * _heads]; var aPre = new T[_heads]; var gPre = new T[Hd];
        BlockReference<T>.LinearForward(x, p.BProj, default, bPre, 1, _h, _n * _heads);
        BlockReference<T>.LinearForward(x, p.GProj, default, gPre, 1, _h, Hd);
        if (_gate) BlockReference<T>.LinearForward(x, p.AProj, default, aPre, 1, _h, _heads);
        T cb = _negative ? C(2) : T.One;
        var o = new T[Hd];
        for (int hd = 0; hd < _heads; hd++)
        {
            var sh = s.Slice(hd * dd, dd);
            T alpha = _gate ? T.Exp(-T.Exp(p.ALog[hd]) * BlockReference<T>.Softplus(aPre[hd] + p.DtBias[hd])) : T.One;
            for (int i = 0; i < dd; i++) sh[i] *= alpha;
            for (int j = 0; j < _n; j++)
            {
                int kv = (j * _heads + hd) * _d;
                T beta = cb * BlockReference<T>.Sigmoid(bPre[j * _heads + hd]);
                for (int jv = 0; jv < _d; jv++)
                {
                    T sk = T.Zero;
                    for (int ik = 0; ik < _d; ik++) sk += sh[ik * _d + jv] * k2[kv + ik];
                    T delta = beta * (v[kv + jv] - sk);
                    for (int ik = 0; ik < _d; ik++) sh[ik * _d + jv] += k2[kv + ik] * delta;
                }
            }
            for (int jv = 0; jv < _d; jv++)
            {
                T acc = T.Zero;
                for (int ik = 0; ik < _d; ik++) acc += sh[ik * _d + jv] * q[hd * _d + ik];
                o[hd * _d + jv] = _scale * acc;
            }
        }
        var normed = new T[Hd]; var rstd = new T[_heads];
        BlockReference<T>.RmsNormForward(o, p.ONorm, normed, rstd, _heads, _d);
        for (int i = 0; i < Hd; i++) normed[i] *= BlockReference<T>.Silu(gPre[i]);
        BlockReference<T>.LinearForward(normed, p.OProj, default, y, 1, Hd, _h);
    }
}
