using System.Numerics.Tensors;

namespace SsmGen.Numerics;

/// <summary>
/// The float core of a delta-rule block over (B, L, ·) rows, between its input projections and its output norm (see
/// <see cref="Reference.DeltaReference{T}"/> for the map): the short convolutions, SiLU and L2 norms of q, k and v
/// (their projections side by side in one row of C = h·d + 2·n·h·d values, the convolution weights likewise), β and
/// α, and the recurrence of each head's d × d state. The forward keeps the state at every chunk's start; the backward
/// recomputes a chunk's states from there. One instance per block, allocated once: no call allocates.
/// The (sequence, head) recurrences run in parallel on the <see cref="WorkerPool"/>, each part with its own scratch;
/// within one, token by token (the chunked WY form is to come).
/// </summary>
public sealed class DeltaRule : ParallelWork
{
    /// <summary>Tokens between saved states.</summary>
    public const int ChunkLength = 16;

    /// <summary>ε of the L2 norms of q and k: x / √(Σx² + ε), as the reference's.</summary>
    private const float NormEpsilon = 1e-6f;

    private readonly int _heads, _d, _n, _w, _hd, _kd, _c, _maxBatch, _maxLength, _chunks;
    private readonly bool _gate;
    private readonly float _betaScale, _scale;
    // Kept by the last Forward (B·L rows each): conv output (pre-SiLU), SiLU output, the normalized q|k and v, β, α.
    private readonly float[] _conv, _act, _qkv, _beta, _alpha, _starts;
    // Backward scratch: one chunk's states (ChunkLength, n + 1, d²), dL/dS, and the gradient of the normalized q|k|v.
    private readonly float[] _dQkv, _dBeta, _dAlpha;
    // Per worker part: one chunk's states (ChunkLength, n + 1, d²), the running state, dL/dS, and two d-rows.
    private readonly float[][] _chunk, _work, _g, _gk, _pk;
    // The call the parts run: its output or upstream gradient, and which pass.
    private float[] _o = [], _dO = [];
    private bool _backward;
    // Step's own rows, so that a step between a Forward and its Backward changes nothing the Backward reads.
    private readonly float[] _stepConv, _stepAct, _stepQkv, _stepBeta, _stepAlpha;
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
        _chunk = PerPart(ChunkLength * (_n + 1) * headSize * headSize);
        (_work, _g, _gk, _pk) = (PerPart(headSize * headSize), PerPart(headSize * headSize), PerPart(headSize), PerPart(headSize));
        _dQkv = new float[rows * _c]; _dBeta = new float[rows * _n * heads]; _dAlpha = new float[rows * heads];
        (_stepConv, _stepAct, _stepQkv, _stepBeta, _stepAlpha) = (new float[_c], new float[_c], new float[_c], new float[_n * heads], new float[heads]);
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
        var s = _g[part].AsSpan(0, dd); // the running state (the backward's dL/dS buffer, free during the forward)
        s.Clear();
        for (int t = 0; t < _length; t++)
        {
            int row = b * _length + t;
            if (t % ChunkLength == 0) s.CopyTo(_starts.AsSpan(StartAt(b, t / ChunkLength, hd), dd));
            Update(s, row, hd, default, _pk[part], _qkv, _beta, _alpha);
            var q = _qkv.AsSpan(row * _c + hd * _d, _d);
            var ot = _o.AsSpan(row * _hd + hd * _d, _d);
            ot.Clear();
            for (int ik = 0; ik < _d; ik++) TensorPrimitives.MultiplyAdd(s.Slice(ik * _d, _d), _scale * q[ik], ot, ot);
        }
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

    /// <summary>One token's update of head hd's state s: the gate, then each Householder step; each stage into <paramref name="stages"/> when given.</summary>
    /// <param name="scratch">d floats.</param>
    private void Update(Span<float> s, int row, int hd, Span<float> stages, float[] scratch, float[] qkv, float[] betas, float[] alphas)
    {
        int dd = _d * _d;
        TensorPrimitives.Multiply(s, alphas[row * _heads + hd], s);
        if (!stages.IsEmpty) s.CopyTo(stages.Slice(0, dd));
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
            if (!stages.IsEmpty) s.CopyTo(stages.Slice((j + 1) * dd, dd));
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
        Array.Clear(_dAlpha, 0, rows * _heads);
        (_dO, _backward) = (dO, true);
        RunRecurrences();
        AfterRecurrence(raw, convWeight, aPre, aLog, dtBias, dRaw, dConvWeight, dBPre, dAPre, dALog, dDtBias);
    }

    /// <summary>
    /// The recurrence of sequence b, head hd, backwards with g = dL/dS: into _dQkv (q, k, v of this head), _dBeta
    /// and _dAlpha, which no other (sequence, head) touches.
    /// </summary>
    private void BackwardRecurrence(int b, int hd, int part)
    {
        int length = _length, dd = _d * _d, stage = (_n + 1) * dd;
        var g = _g[part].AsSpan(0, dd);
        var gk = _gk[part].AsSpan(0, _d);
        var pk = _pk[part].AsSpan(0, _d);
        var chunkStates = _chunk[part];
        var dO = _dO.AsSpan();
        g.Clear();
        for (int chunk = (length - 1) / ChunkLength; chunk >= 0; chunk--)
        {
            int t0 = chunk * ChunkLength, t1 = Math.Min(length, t0 + ChunkLength);
            // the chunk's states again, every stage of every token: α·S_(t−1), then after each Householder step
            var work = _work[part].AsSpan(0, dd);
            _starts.AsSpan(StartAt(b, chunk, hd), dd).CopyTo(work);
            for (int t = t0; t < t1; t++) Update(work, b * length + t, hd, chunkStates.AsSpan((t - t0) * stage, stage), _pk[part], _qkv, _beta, _alpha);
            for (int t = t1 - 1; t >= t0; t--)
            {
                int row = b * length + t, qo = row * _c + hd * _d, oo = row * _hd + hd * _d;
                var stages = chunkStates.AsSpan((t - t0) * stage, stage);
                var sFinal = stages.Slice(_n * dd, dd);
                // o = d^(−½)·Sᵀq: dq = d^(−½)·S·do, dS += d^(−½)·q·doᵀ
                var dOt = dO.Slice(oo, _d);
                for (int ik = 0; ik < _d; ik++)
                {
                    _dQkv[qo + ik] += _scale * TensorPrimitives.Dot(sFinal.Slice(ik * _d, _d), dOt);
                    TensorPrimitives.MultiplyAdd(dOt, _scale * _qkv[qo + ik], g.Slice(ik * _d, _d), g.Slice(ik * _d, _d));
                }
                for (int j = _n - 1; j >= 0; j--)
                {
                    var prev = stages.Slice(j * dd, dd);
                    int ko = row * _c + _hd + (j * _heads + hd) * _d, vo = ko + _kd, bi = (row * _n + j) * _heads + hd;
                    var k = _qkv.AsSpan(ko, _d);
                    var v = _qkv.AsSpan(vo, _d);
                    float beta = _beta[bi];
                    gk.Clear(); pk.Clear();
                    for (int ik = 0; ik < _d; ik++)
                    {
                        TensorPrimitives.MultiplyAdd(g.Slice(ik * _d, _d), k[ik], gk, gk);      // kᵀG
                        TensorPrimitives.MultiplyAdd(prev.Slice(ik * _d, _d), k[ik], pk, pk);   // Pᵀk
                    }
                    TensorPrimitives.Subtract(v, pk, pk);                                     // v − Pᵀk
                    _dBeta[bi] += TensorPrimitives.Dot(gk, pk);
                    TensorPrimitives.MultiplyAdd(gk, beta, _dQkv.AsSpan(vo, _d), _dQkv.AsSpan(vo, _d));
                    // dk = β·(G·(v − Pᵀk) − P·(Gᵀk))
                    for (int ik = 0; ik < _d; ik++)
                        _dQkv[ko + ik] += beta * (TensorPrimitives.Dot(g.Slice(ik * _d, _d), pk) - TensorPrimitives.Dot(prev.Slice(ik * _d, _d), gk));
                    // dP = (I − β·k·kᵀ)·G
                    for (int ik = 0; ik < _d; ik++) TensorPrimitives.MultiplyAdd(gk, -beta * k[ik], g.Slice(ik * _d, _d), g.Slice(ik * _d, _d));
                }
                // the gate: S_gated = α·S_(t−1)
                var before = t > t0 ? chunkStates.AsSpan((t - t0 - 1) * stage + _n * dd, dd) : _starts.AsSpan(StartAt(b, chunk, hd), dd);
                _dAlpha[row * _heads + hd] += TensorPrimitives.Dot(g, before);
                TensorPrimitives.Multiply(g, _alpha[row * _heads + hd], g);
            }
        }
    }

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
                    float dLogAlpha = _dAlpha[row * _heads + hd] * _alpha[row * _heads + hd];   // log α = −rate·softplus(pre)
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
            Update(s, 0, hd, default, _pk[0], _stepQkv, _stepBeta, _stepAlpha);
            var ot = o.Slice(hd * _d, _d);
            ot.Clear();
            for (int ik = 0; ik < _d; ik++) TensorPrimitives.MultiplyAdd(s.Slice(ik * _d, _d), _scale * _stepQkv[hd * _d + ik], ot, ot);
        }
    }
}
