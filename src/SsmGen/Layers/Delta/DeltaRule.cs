using System.Numerics.Tensors;

namespace SsmGen.Numerics;

/// <summary>
/// The float core of a delta-rule block over (B, L, ·) rows, between its input projections and its output norm (see
/// <see cref="Reference.DeltaReference{T}"/> for the map): the short convolutions, SiLU and L2 norms of q, k and v
/// (their projections side by side in one row of C = h·d + 2·n·h·d values, the convolution weights likewise), β and
/// α, and the recurrence of each head's d × d state. The forward keeps the state at every chunk's start; the backward
/// recomputes a chunk's quantities from there. One instance per block, allocated once: no call allocates.
/// The (sequence, head) recurrences run in parallel on the <see cref="WorkerPool"/>, each part with its own scratch;
/// within one, chunk by chunk in the WY form (<see cref="ChunkForward"/>): a chunk's Householder products become a
/// triangular solve and matrix products; <see cref="Step"/> applies them token by token.
/// </summary>
public sealed class DeltaRule : ParallelWork
{
    /// <summary>Tokens per chunk, between saved states.</summary>
    public const int ChunkLength = 16;

    /// <summary>ε of the L2 norms of q and k: x / √(Σx² + ε), as the reference's.</summary>
    private const float NormEpsilon = 1e-6f;

    private readonly int _heads, _d, _n, _w, _hd, _kd, _c, _maxBatch, _maxLength, _chunks;
    private readonly bool _gate;
    private readonly float _betaScale, _scale;
    // Kept by the last Forward (B·L rows each): conv output (pre-SiLU), SiLU output, the normalized q|k and v, β, α.
    private readonly float[] _conv, _act, _qkv, _beta, _alpha, _starts;
    // The backward's gradients (B·L rows each): of the normalized q|k|v, of β and of log α.
    private readonly float[] _dQkv, _dBeta, _dLogAlpha;
    // Per worker part, one chunk of m = ChunkLength·n rows: D and the system's lower part (m × m); the row gates, P and
    // dG (m); W, U, dU and dR (m × d); dL/dS (the forward's running state) and dL/dS₀ (d × d); a d-row.
    private readonly float[][] _decay, _lower, _rowGate, _p, _dg, _s0k, _u, _du, _dr, _ds, _ds0, _vec;
    // The call the parts run: its output or upstream gradient, and which pass.
    private float[] _o = [], _dO = [];
    private bool _backward;
    // Step's own rows, so that a step between a Forward and its Backward changes nothing the Backward reads.
    private readonly float[] _stepConv, _stepAct, _stepQkv, _stepBeta, _stepAlpha, _stepScratch;
    private int _batch, _length;

    public DeltaRule(int heads, int headSize, int householderSteps, int convWidth, bool gate, bool negativeEigenvalues, int maxBatch, int maxLength)
    {
        if (heads < 1 || headSize < 1 || householderSteps < 1 || convWidth < 1 || maxBatch < 1 || maxLength < 1)
            throw new ArgumentOutOfRangeException(nameof(heads), "Delta-rule sizes must be positive.");
        (_heads, _d, _n, _w, _gate, _maxBatch, _maxLength) = (heads, headSize, householderSteps, convWidth, gate, maxBatch, maxLength);
        _hd = heads * headSize; _kd = householderSteps * _hd; _c = _hd + 2 * _kd;
        _betaScale = negativeEigenvalues ? 2 : 1;
        _scale = 1 / MathF.Sqrt(headSize);
        _chunks = (maxLength + ChunkLength - 1) / ChunkLength;
        long rows = (long)maxBatch * maxLength;
        _conv = new float[checked(rows * _c)]; _act = new float[rows * _c]; _qkv = new float[rows * _c];
        _beta = new float[checked(rows * _n * heads)]; _alpha = new float[checked(rows * heads)];
        _starts = new float[checked((long)maxBatch * _chunks * heads * headSize * headSize)];
        int parts = WorkerPool.Shared.Concurrency;
        float[][] PerPart(int floats) => Enumerable.Range(0, parts).Select(_ => new float[floats]).ToArray();
        int m = ChunkLength * _n;
        (_decay, _lower) = (PerPart(m * m), PerPart(m * m));
        (_rowGate, _p, _dg) = (PerPart(m), PerPart(m), PerPart(m));
        (_s0k, _u, _du, _dr) = (PerPart(m * headSize), PerPart(m * headSize), PerPart(m * headSize), PerPart(m * headSize));
        (_ds, _ds0, _vec) = (PerPart(headSize * headSize), PerPart(headSize * headSize), PerPart(headSize));
        _dQkv = new float[rows * _c]; _dBeta = new float[rows * _n * heads]; _dLogAlpha = new float[rows * heads];
        (_stepConv, _stepAct, _stepQkv, _stepBeta, _stepAlpha, _stepScratch) = (new float[_c], new float[_c], new float[_c], new float[_n * heads], new float[heads], new float[headSize]);
    }

    /// <summary>Values of one row of the q|k|v projections (and of the convolution's channels): h·d + 2·n·h·d.</summary>
    public int Channels => _c;

    /// <summary>Floats of one stream's state: the last W−1 raw q|k|v rows, oldest first, then each head's d × d state.</summary>
    public int StateSize => (_w - 1) * _c + _heads * _d * _d;

    private void CheckSizes(int batch, int length)
    {
        if (batch < 1 || length < 1 || batch > _maxBatch || length > _maxLength)
            throw new ArgumentOutOfRangeException(nameof(batch), $"batch {batch} and length {length} must be in [1, {_maxBatch}] and [1, {_maxLength}].");
    }

    /// <summary>
    /// o (B·L, h·d) = d^(−½)·Sᵀq per head from the raw projections: <paramref name="raw"/> (B·L, C) q|k|v,
    /// <paramref name="bPre"/> (B·L, n·h), <paramref name="aPre"/> (B·L, h; empty without the gate).
    /// </summary>
    public void Forward(ReadOnlySpan<float> raw, ReadOnlySpan<float> convWeight, ReadOnlySpan<float> bPre, ReadOnlySpan<float> aPre,
        ReadOnlySpan<float> aLog, ReadOnlySpan<float> dtBias, float[] o, int batch, int length)
    {
        CheckSizes(batch, length);
        int rows = batch * length;
        if (o.Length < rows * _hd) throw new ArgumentException($"o holds {o.Length} values; {rows * _hd} are needed.", nameof(o));
        (_batch, _length) = (batch, length);
        Conv(raw, convWeight, batch, length);
        BlockKernels.SiluForward(_conv.AsSpan(0, rows * _c), _act);
        Normalize(_act, _qkv, rows);
        Gates(bPre, aPre, aLog, dtBias, _beta, _alpha, rows);
        (_o, _backward) = (o, false);
        RunRecurrences();
    }

    private void RunRecurrences()
    {
        var pool = WorkerPool.Shared;
        int items = _batch * _heads, parts = Math.Min(items, pool.Concurrency);
        if (parts <= 1 || (long)items * _length * _n * _d * _d < 1 << 14) Execute(0, 1);
        else pool.Run(this, parts);
    }

    /// <summary>Part <paramref name="part"/> of the (sequence, head) recurrences of the current call.</summary>
    public override void Execute(int part, int parts)
    {
        var (start, end) = WorkerPool.Share(_batch * _heads, part, parts);
        for (int item = start; item < end; item++)
            if (_backward) BackwardRecurrence(item / _heads, item % _heads, part);
            else ForwardRecurrence(item / _heads, item % _heads, part);
    }

    private void ForwardRecurrence(int b, int hd, int part)
    {
        int dd = _d * _d;
        var s = _ds[part].AsSpan(0, dd); // the running state (the backward's dL/dS buffer, free during the forward)
        s.Clear();
        for (int chunk = 0, t0 = 0; t0 < _length; chunk++, t0 += ChunkLength)
        {
            s.CopyTo(_starts.AsSpan(StartAt(b, chunk, hd), dd));
            ChunkForward(b, hd, part, t0, Math.Min(_length, t0 + ChunkLength), s);
        }
    }

    /// <summary>
    /// One chunk of tokens [t0, t1) of sequence b, head hd, in the WY form over its R = (t1 − t0)·n Householder rows
    /// (row r = token·n + step; the token's gate α on its first row, 1 on the others). With D[r, s] = ∏ α over rows
    /// s+1…r, P_r = ∏ α over rows 0…r and W_r = S₀ᵀk_r, the pseudo-values U solve the unit lower-triangular system
    /// U_r + β_r·Σ_(s&lt;r) D[r, s]·(k_r·k_s)·U_s = β_r·(v_r − P_r·W_r), and then
    /// o_t = d^(−½)·(P_r·S₀ᵀq_t + Σ_(s≤r) D[r, s]·(k_s·q_t)·U_s) at the token's last row r, and
    /// S_end = P_(R−1)·S₀ + Σ_s D[R−1, s]·k_s·U_sᵀ. Leaves D, P, W, U and the system's lower part in the part's scratch
    /// for <see cref="ChunkBackward"/>; with <paramref name="state"/> non-empty writes o and advances it to S_end.
    /// </summary>
    private void ChunkForward(int b, int hd, int part, int t0, int t1, Span<float> state)
    {
        int d = _d, n = _n, rows = (t1 - t0) * n, m = ChunkLength * n;
        var (decay, lower, gate, p, w, u) = (_decay[part], _lower[part], _rowGate[part], _p[part], _s0k[part], _u[part]);
        var s0 = _starts.AsSpan(StartAt(b, t0 / ChunkLength, hd), d * d);
        for (int r = 0; r < rows; r++)
        {
            int row = b * _length + t0 + r / n;
            gate[r] = r % n == 0 ? _alpha[row * _heads + hd] : 1;
            p[r] = (r == 0 ? 1 : p[r - 1]) * gate[r];
            decay[r * m + r] = 1;
            for (int c = r - 1; c >= 0; c--) decay[r * m + c] = decay[r * m + c + 1] * gate[c + 1];
            var k = Key(row, r % n, hd);
            var wr = w.AsSpan(r * d, d);
            TransposeTimes(s0, k, wr);
            // U_r = β_r·(v_r − P_r·W_r) − β_r·Σ_(s<r) D[r, s]·(k_r·k_s)·U_s
            float beta = Beta(row, r % n, hd);
            var ur = u.AsSpan(r * d, d);
            TensorPrimitives.Multiply(wr, -p[r], ur);
            TensorPrimitives.Add(ur, Value(row, r % n, hd), ur);
            TensorPrimitives.Multiply(ur, beta, ur);
            for (int c = 0; c < r; c++)
            {
                float l = beta * decay[r * m + c] * TensorPrimitives.Dot(k, Key(b * _length + t0 + c / n, c % n, hd));
                lower[r * m + c] = l;
                TensorPrimitives.MultiplyAdd(u.AsSpan(c * d, d), -l, ur, ur);
            }
        }
        if (state.IsEmpty) return;
        for (int t = t0; t < t1; t++)
        {
            int row = b * _length + t, r = (t - t0) * n + n - 1;
            var q = _qkv.AsSpan(row * _c + hd * d, d);
            var o = _o.AsSpan(row * _hd + hd * d, d);
            TransposeTimes(s0, q, o);
            TensorPrimitives.Multiply(o, p[r], o);
            for (int c = 0; c <= r; c++)
                TensorPrimitives.MultiplyAdd(u.AsSpan(c * d, d), decay[r * m + c] * TensorPrimitives.Dot(Key(b * _length + t0 + c / n, c % n, hd), q), o, o);
            TensorPrimitives.Multiply(o, _scale, o);
        }
        int last = rows - 1;
        TensorPrimitives.Multiply(state, p[last], state);
        for (int c = 0; c < rows; c++)
        {
            var k = Key(b * _length + t0 + c / n, c % n, hd);
            var uc = u.AsSpan(c * d, d);
            for (int ik = 0; ik < d; ik++) TensorPrimitives.MultiplyAdd(uc, decay[last * m + c] * k[ik], state.Slice(ik * d, d), state.Slice(ik * d, d));
        }
    }

    private ReadOnlySpan<float> Key(int row, int step, int hd) => _qkv.AsSpan(row * _c + _hd + (step * _heads + hd) * _d, _d);

    private ReadOnlySpan<float> Value(int row, int step, int hd) => _qkv.AsSpan(row * _c + _hd + _kd + (step * _heads + hd) * _d, _d);

    private float Beta(int row, int step, int hd) => _beta[(row * _n + step) * _heads + hd];

    /// <summary>y = Sᵀx for a d × d state S (rows by key index).</summary>
    private void TransposeTimes(ReadOnlySpan<float> s, ReadOnlySpan<float> x, Span<float> y)
    {
        y.Clear();
        for (int ik = 0; ik < _d; ik++) TensorPrimitives.MultiplyAdd(s.Slice(ik * _d, _d), x[ik], y, y);
    }

    /// <summary>y = S·x for a d × d state S.</summary>
    private void Times(ReadOnlySpan<float> s, ReadOnlySpan<float> x, Span<float> y)
    {
        for (int ik = 0; ik < _d; ik++) y[ik] = TensorPrimitives.Dot(s.Slice(ik * _d, _d), x);
    }

    private int StartAt(int b, int chunk, int hd) => ((b * _chunks + chunk) * _heads + hd) * _d * _d;

    /// <summary>The causal depthwise convolution of the raw rows into _conv (no bias).</summary>
    private void Conv(ReadOnlySpan<float> raw, ReadOnlySpan<float> w, int batch, int length)
    {
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
            {
                var y = _conv.AsSpan((b * length + t) * _c, _c);
                for (int c = 0; c < _c; c++)
                {
                    float acc = 0;
                    for (int k = Math.Max(0, _w - 1 - t); k < _w; k++) acc += w[c * _w + k] * raw[(b * length + t - (_w - 1) + k) * _c + c];
                    y[c] = acc;
                }
            }
    }

    /// <summary>q and each k divided by √(Σ² + 10⁻⁶), v as it is, from act into qkv.</summary>
    private void Normalize(float[] act, float[] qkv, int rows)
    {
        for (int row = 0; row < rows; row++)
        {
            var a = act.AsSpan(row * _c, _c);
            var y = qkv.AsSpan(row * _c, _c);
            for (int s = 0; s < _hd + _kd; s += _d)
            {
                float r = 1 / MathF.Sqrt(TensorPrimitives.SumOfSquares(a.Slice(s, _d)) + NormEpsilon);
                TensorPrimitives.Multiply(a.Slice(s, _d), r, y.Slice(s, _d));
            }
            a.Slice(_hd + _kd, _kd).CopyTo(y.Slice(_hd + _kd, _kd));
        }
    }

    private void Gates(ReadOnlySpan<float> bPre, ReadOnlySpan<float> aPre, ReadOnlySpan<float> aLog, ReadOnlySpan<float> dtBias, float[] beta, float[] alpha, int rows)
    {
        for (int i = 0; i < rows * _n * _heads; i++) beta[i] = _betaScale / (1 + MathF.Exp(-bPre[i]));
        for (int row = 0; row < rows; row++)
            for (int hd = 0; hd < _heads; hd++)
                alpha[row * _heads + hd] = _gate ? MathF.Exp(-MathF.Exp(aLog[hd]) * Softplus(aPre[row * _heads + hd] + dtBias[hd])) : 1;
    }

    private static float Softplus(float v) => v > 20 ? v : MathF.Log(1 + MathF.Exp(v));

    /// <summary>One token's update of head hd's state s: the gate, then each Householder step.</summary>
    /// <param name="scratch">d floats.</param>
    private void Update(Span<float> s, int row, int hd, float[] scratch, float[] qkv, float[] betas, float[] alphas)
    {
        int dd = _d * _d;
        TensorPrimitives.Multiply(s, alphas[row * _heads + hd], s);
        var sk = scratch.AsSpan(0, _d);
        for (int j = 0; j < _n; j++)
        {
            var k = qkv.AsSpan(row * _c + _hd + (j * _heads + hd) * _d, _d);
            var v = qkv.AsSpan(row * _c + _hd + _kd + (j * _heads + hd) * _d, _d);
            float beta = betas[(row * _n + j) * _heads + hd];
            // S ← S + β·k·(v − Sᵀk)ᵀ
            sk.Clear();
            for (int ik = 0; ik < _d; ik++) TensorPrimitives.MultiplyAdd(s.Slice(ik * _d, _d), k[ik], sk, sk);
            TensorPrimitives.Subtract(v, sk, sk);
            TensorPrimitives.Multiply(sk, beta, sk);
            for (int ik = 0; ik < _d; ik++) TensorPrimitives.MultiplyAdd(sk, k[ik], s.Slice(ik * _d, _d), s.Slice(ik * _d, _d));
        }
    }

    /// <summary>
    /// Gradients of the last Forward from dL/do (B·L, h·d): dRaw (B·L, C) and the convolution weight's gradient +=,
    /// dBPre (B·L, n·h) and dAPre (B·L, h) overwritten, dALog and dDtBias +=.
    /// </summary>
    public void Backward(ReadOnlySpan<float> raw, ReadOnlySpan<float> convWeight, ReadOnlySpan<float> aPre, ReadOnlySpan<float> aLog, ReadOnlySpan<float> dtBias,
        float[] dO, Span<float> dRaw, Span<float> dConvWeight, Span<float> dBPre, Span<float> dAPre, Span<float> dALog, Span<float> dDtBias)
    {
        if (_length == 0) throw new InvalidOperationException("Backward needs a Forward first.");
        int batch = _batch, length = _length, rows = batch * length;
        if (dO.Length < rows * _hd) throw new ArgumentException($"dO holds {dO.Length} values; {rows * _hd} are needed.", nameof(dO));
        Array.Clear(_dQkv, 0, rows * _c);
        Array.Clear(_dBeta, 0, rows * _n * _heads);
        Array.Clear(_dLogAlpha, 0, rows * _heads);
        (_dO, _backward) = (dO, true);
        RunRecurrences();
        AfterRecurrence(raw, convWeight, aPre, aLog, dtBias, dRaw, dConvWeight, dBPre, dAPre, dALog, dDtBias);
    }

    /// <summary>
    /// The recurrence of sequence b, head hd, backwards chunk by chunk with dS = dL/dS_end: each chunk's forward
    /// quantities again from its saved start, then the gradients of <see cref="ChunkForward"/>'s three formulas, into
    /// _dQkv (q, k, v of this head), _dBeta and _dLogAlpha, which no other (sequence, head) touches. A gradient with
    /// respect to a product of gates is first gathered per row as dG (the row's end of the product counts +, its start
    /// −), then summed from the end: d log α of a row is the sum of dG over that row and the rows after it.
    /// </summary>
    private void BackwardRecurrence(int b, int hd, int part)
    {
        int d = _d, n = _n, dd = d * d, m = ChunkLength * n;
        var (decay, lower, p, w, u) = (_decay[part], _lower[part], _p[part], _s0k[part], _u[part]);
        var (du, dr, dg) = (_du[part], _dr[part], _dg[part]);
        var ds = _ds[part].AsSpan(0, dd);
        var ds0 = _ds0[part].AsSpan(0, dd);
        var x = _vec[part].AsSpan(0, d);
        ds.Clear();
        for (int t0 = (_length - 1) / ChunkLength * ChunkLength; t0 >= 0; t0 -= ChunkLength)
        {
            int t1 = Math.Min(_length, t0 + ChunkLength), rows = (t1 - t0) * n, last = rows - 1, first = b * _length + t0;
            ChunkForward(b, hd, part, t0, t1, default);
            var s0 = _starts.AsSpan(StartAt(b, t0 / ChunkLength, hd), dd);
            Array.Clear(du, 0, rows * d);
            Array.Clear(dg, 0, rows);
            // S_end = P·S₀ + Σ_s D[last, s]·k_s·U_sᵀ
            TensorPrimitives.Multiply(ds, p[last], ds0);
            dg[last] += p[last] * TensorPrimitives.Dot(s0, ds);
            for (int c = 0; c < rows; c++)
            {
                int row = first + c / n;
                float dec = decay[last * m + c];
                var k = Key(row, c % n, hd);
                Times(ds, u.AsSpan(c * d, d), x);                                   // dS·U_s
                TensorPrimitives.MultiplyAdd(x, dec, DKey(row, c % n, hd), DKey(row, c % n, hd));
                float y = dec * TensorPrimitives.Dot(k, x);
                dg[last] += y; dg[c] -= y;
                for (int ik = 0; ik < d; ik++) TensorPrimitives.MultiplyAdd(ds.Slice(ik * d, d), dec * k[ik], du.AsSpan(c * d, d), du.AsSpan(c * d, d));
            }
            // o_t = d^(−½)·(P_r·S₀ᵀq + Σ_(s≤r) D[r, s]·(k_s·q)·U_s)
            for (int t = t0; t < t1; t++)
            {
                int row = b * _length + t, r = (t - t0) * n + n - 1;
                var q = _qkv.AsSpan(row * _c + hd * d, d);
                var dq = _dQkv.AsSpan(row * _c + hd * d, d);
                var dOt = _dO.AsSpan(row * _hd + hd * d, d);
                Times(s0, dOt, x);                                                  // S₀·do
                TensorPrimitives.MultiplyAdd(x, _scale * p[r], dq, dq);
                dg[r] += _scale * p[r] * TensorPrimitives.Dot(q, x);
                for (int ik = 0; ik < d; ik++) TensorPrimitives.MultiplyAdd(dOt, _scale * p[r] * q[ik], ds0.Slice(ik * d, d), ds0.Slice(ik * d, d));
                for (int c = 0; c <= r; c++)
                {
                    int rowC = first + c / n;
                    var k = Key(rowC, c % n, hd);
                    float dec = _scale * decay[r * m + c], kq = TensorPrimitives.Dot(k, q), pu = TensorPrimitives.Dot(dOt, u.AsSpan(c * d, d));
                    TensorPrimitives.MultiplyAdd(dOt, dec * kq, du.AsSpan(c * d, d), du.AsSpan(c * d, d));
                    TensorPrimitives.MultiplyAdd(k, dec * pu, dq, dq);
                    TensorPrimitives.MultiplyAdd(q, dec * pu, DKey(rowC, c % n, hd), DKey(rowC, c % n, hd));
                    dg[r] += dec * kq * pu; dg[c] -= dec * kq * pu;
                }
            }
            // The unit lower-triangular system A·U = R: dR = A⁻ᵀ·dU, dA[r, s] = −dR_r·U_s below the diagonal
            for (int r = last; r >= 0; r--)
            {
                var drr = dr.AsSpan(r * d, d);
                du.AsSpan(r * d, d).CopyTo(drr);
                for (int c = r + 1; c < rows; c++) TensorPrimitives.MultiplyAdd(dr.AsSpan(c * d, d), -lower[c * m + r], drr, drr);
            }
            for (int r = 0; r < rows; r++)
            {
                int row = first + r / n;
                var kr = Key(row, r % n, hd);
                var dkr = DKey(row, r % n, hd);
                var drr = dr.AsSpan(r * d, d);
                float beta = Beta(row, r % n, hd), dBeta = 0;
                // A[r, s] = β_r·D[r, s]·(k_r·k_s)
                for (int c = 0; c < r; c++)
                {
                    int rowC = first + c / n;
                    var kc = Key(rowC, c % n, hd);
                    float da = -TensorPrimitives.Dot(drr, u.AsSpan(c * d, d)), kk = TensorPrimitives.Dot(kr, kc), dec = decay[r * m + c];
                    dBeta += da * dec * kk;
                    TensorPrimitives.MultiplyAdd(kc, da * beta * dec, dkr, dkr);
                    TensorPrimitives.MultiplyAdd(kr, da * beta * dec, DKey(rowC, c % n, hd), DKey(rowC, c % n, hd));
                    dg[r] += da * beta * dec * kk; dg[c] -= da * beta * dec * kk;
                }
                // R_r = β_r·(v_r − P_r·W_r), W_r = S₀ᵀk_r
                var wr = w.AsSpan(r * d, d);
                TensorPrimitives.Multiply(wr, -p[r], x);
                TensorPrimitives.Add(x, Value(row, r % n, hd), x);
                dBeta += TensorPrimitives.Dot(drr, x);
                TensorPrimitives.MultiplyAdd(drr, beta, DValue(row, r % n, hd), DValue(row, r % n, hd));
                float bp = beta * p[r];
                dg[r] -= bp * TensorPrimitives.Dot(drr, wr);
                for (int ik = 0; ik < d; ik++)
                {
                    dkr[ik] -= bp * TensorPrimitives.Dot(s0.Slice(ik * d, d), drr);
                    TensorPrimitives.MultiplyAdd(drr, -bp * kr[ik], ds0.Slice(ik * d, d), ds0.Slice(ik * d, d));
                }
                _dBeta[(row * n + r % n) * _heads + hd] += dBeta;
            }
            // the gates: d log α of a token's first row is the sum of dG from that row to the chunk's end
            float tail = 0;
            for (int r = last; r >= 0; r--)
            {
                tail += dg[r];
                if (r % n == 0) _dLogAlpha[(first + r / n) * _heads + hd] += tail;
            }
            ds0.CopyTo(ds);
        }
    }

    private Span<float> DKey(int row, int step, int hd) => _dQkv.AsSpan(row * _c + _hd + (step * _heads + hd) * _d, _d);

    private Span<float> DValue(int row, int step, int hd) => _dQkv.AsSpan(row * _c + _hd + _kd + (step * _heads + hd) * _d, _d);

    private void AfterRecurrence(ReadOnlySpan<float> raw, ReadOnlySpan<float> convWeight, ReadOnlySpan<float> aPre, ReadOnlySpan<float> aLog, ReadOnlySpan<float> dtBias,
        Span<float> dRaw, Span<float> dConvWeight, Span<float> dBPre, Span<float> dAPre, Span<float> dALog, Span<float> dDtBias)
    {
        int batch = _batch, length = _length, rows = batch * length;
        // α and β back to their pre-activations
        for (int i = 0; i < rows * _n * _heads; i++)
        {
            float sg = _beta[i] / _betaScale;
            dBPre[i] = _dBeta[i] * _betaScale * sg * (1 - sg);
        }
        if (_gate)
            for (int row = 0; row < rows; row++)
                for (int hd = 0; hd < _heads; hd++)
                {
                    float pre = aPre[row * _heads + hd] + dtBias[hd], rate = MathF.Exp(aLog[hd]);
                    float dLogAlpha = _dLogAlpha[row * _heads + hd];   // log α = −rate·softplus(pre)
                    dALog[hd] += dLogAlpha * -rate * Softplus(pre);
                    float dPre = dLogAlpha * -rate / (1 + MathF.Exp(-pre));
                    dDtBias[hd] += dPre;
                    dAPre[row * _heads + hd] = dPre;
                }

        // L2 norms (q and each k), SiLU, then the convolution back to the raw rows
        for (int row = 0; row < rows; row++)
        {
            var a = _act.AsSpan(row * _c, _c);
            var y = _qkv.AsSpan(row * _c, _c);
            var dy = _dQkv.AsSpan(row * _c, _c);
            for (int s = 0; s < _hd + _kd; s += _d)
            {
                float r = 1 / MathF.Sqrt(TensorPrimitives.SumOfSquares(a.Slice(s, _d)) + NormEpsilon), yd = TensorPrimitives.Dot(y.Slice(s, _d), dy.Slice(s, _d));
                // dx = r·(dy − y·(y·dy)), in place
                TensorPrimitives.MultiplyAdd(y.Slice(s, _d), -yd, dy.Slice(s, _d), dy.Slice(s, _d));
                TensorPrimitives.Multiply(dy.Slice(s, _d), r, dy.Slice(s, _d));
            }
        }
        BlockKernels.SiluBackward(_conv.AsSpan(0, rows * _c), _dQkv.AsSpan(0, rows * _c), _dQkv);
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
            {
                var gc = _dQkv.AsSpan((b * length + t) * _c, _c);
                for (int k = Math.Max(0, _w - 1 - t); k < _w; k++)
                {
                    int src = (b * length + t - (_w - 1) + k) * _c;
                    for (int c = 0; c < _c; c++)
                    {
                        dConvWeight[c * _w + k] += gc[c] * raw[src + c];
                        dRaw[src + c] += gc[c] * convWeight[c * _w + k];
                    }
                }
            }
    }

    /// <summary>
    /// One token: o (h·d) from this token's raw q|k|v row (C), bPre (n·h) and aPre (h), updating <paramref name="state"/>
    /// (<see cref="StateSize"/>) in place.
    /// </summary>
    public void Step(Span<float> state, ReadOnlySpan<float> raw, ReadOnlySpan<float> convWeight, ReadOnlySpan<float> bPre, ReadOnlySpan<float> aPre,
        ReadOnlySpan<float> aLog, ReadOnlySpan<float> dtBias, Span<float> o)
    {
        int wm = _w - 1, dd = _d * _d;
        var window = state.Slice(0, wm * _c);
        var heads = state.Slice(wm * _c, _heads * dd);
        var conv = _stepConv.AsSpan();
        for (int c = 0; c < _c; c++)
        {
            float acc = convWeight[c * _w + wm] * raw[c];
            for (int k = 0; k < wm; k++) acc += convWeight[c * _w + k] * window[k * _c + c];
            conv[c] = acc;
        }
        if (wm > 0)
        {
            window.Slice(_c).CopyTo(window);
            raw.Slice(0, _c).CopyTo(window.Slice((wm - 1) * _c));
        }
        BlockKernels.SiluForward(conv, _stepAct);
        Normalize(_stepAct, _stepQkv, 1);
        Gates(bPre, aPre, aLog, dtBias, _stepBeta, _stepAlpha, 1);
        for (int hd = 0; hd < _heads; hd++)
        {
            var s = heads.Slice(hd * dd, dd);
            Update(s, 0, hd, _stepScratch, _stepQkv, _stepBeta, _stepAlpha);
            var ot = o.Slice(hd * _d, _d);
            ot.Clear();
            for (int ik = 0; ik < _d; ik++) TensorPrimitives.MultiplyAdd(s.Slice(ik * _d, _d), _scale * _stepQkv[hd * _d + ik], ot, ot);
        }
    }
}
