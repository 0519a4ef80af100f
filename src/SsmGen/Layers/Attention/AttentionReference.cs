using System.Numerics;
using SsmGen.Layers;

namespace SsmGen.Reference;

/// <summary>
/// Causal multi-head self-attention with rotary positions: the transformer baseline of "The Illusion of
/// State in State-Space Models". With H = dModel, h heads of size d = H / h (d even) and t, u 0-based
/// positions, over sequences (B, L, H) row-major:
/// <code>
///   [q | k | v] = x_t · in_projᵀ + in_proj.bias      (3H);  head j is the slice [j·d, (j+1)·d) of q, k and v
///   RoPE on q and k of every head at position t, pairs (2i, 2i+1), i &lt; d/2:
///     θ_i = t · 10000^(−2i/d);   (a, b) → (a cos θ_i − b sin θ_i,  a sin θ_i + b cos θ_i)
///   per head:  s_{t,u} = q_t · k_u / √d  for u ≤ t;   p_{t,·} = softmax_u(s_{t,·});   o_t = Σ_{u≤t} p_{t,u} v_u
///   y_t = concat_heads(o_t) · out_projᵀ + out_proj.bias   (H)
/// </code>
/// Written for clarity: plain loops, the rotated q and k, v, the attention weights and the head outputs
/// kept for the backward. Backward passes accumulate (+=) into parameter gradients and into the input
/// gradient. The angles θ_i and their cos/sin are computed in double and then converted to T.
/// </summary>
public sealed class AttentionReference<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>
    /// Views of one mixer's parameters (or of their gradients), in the PyTorch nn.MultiheadAttention layout: the mixer's tensors of
    /// <see cref="SsmGen.Layers.AttentionTable"/>, whose names and shapes they follow, in its order.
    /// </summary>
    public readonly ref struct Params
    {
        public readonly Span<T> InWeight, InBias, OutWeight, OutBias;
        public Params(Span<T> inWeight, Span<T> inBias, Span<T> outWeight, Span<T> outBias)
        { InWeight = inWeight; InBias = inBias; OutWeight = outWeight; OutBias = outBias; }
    }

    private readonly int _h, _heads, _d;

    // Kept by the last Forward for the backward.
    private int _batch, _length;
    private T[] _x = [], _qkv = [], _p = [], _o = [];

    /// <summary>Attention over dModel = H with <paramref name="heads"/> heads of size H / heads.</summary>
    /// <exception cref="ArgumentException">heads does not divide dModel, or the head size is odd.</exception>
    public AttentionReference(int dModel, int heads)
    {
        if (dModel <= 0) throw new ArgumentException($"dModel must be positive, got {dModel}.", nameof(dModel));
        if (heads <= 0) throw new ArgumentException($"heads must be positive, got {heads}.", nameof(heads));
        if (dModel % heads != 0)
            throw new ArgumentException($"heads ({heads}) must divide dModel ({dModel}).", nameof(heads));
        int d = dModel / heads;
        if (d % 2 != 0)
            throw new ArgumentException(
                $"head size dModel / heads = {dModel} / {heads} = {d} must be even for rotary positions.", nameof(heads));
        _h = dModel; _heads = heads; _d = d;
    }

    /// <summary>dModel (H).</summary>
    public int DModel => _h;
    /// <summary>Number of heads.</summary>
    public int Heads => _heads;
    /// <summary>Head size d = H / heads.</summary>
    public int HeadSize => _d;
    /// <summary>Number of elements of each tensor in <see cref="Params"/> order.</summary>
    public int[] ParameterSizes => AttentionTable.Of(_h, _h).MixerLengths(); // (the MLP's width does not touch the mixer's tensors)
    /// <summary>Total number of parameters.</summary>
    public int ParameterCount => ParameterSizes.Sum();

    /// <summary>Views of a flat buffer of <see cref="ParameterCount"/> elements, the tensors back to back in <see cref="Params"/> order.</summary>
    public Params View(Span<T> flat)
    {
        var t = new TensorCursor<T>(flat, ParameterSizes);
        return new Params(t.Next(), t.Next(), t.Next(), t.Next());
    }

    /// <summary>Elements of the key/value cache of <see cref="Step"/>: (2, maxLength, H), keys then values.</summary>
    public static int CacheSize(int maxLength, int dModel) => 2 * maxLength * dModel;

    /// <summary>
    /// Rotary positions in place: <paramref name="vec"/> is one head-slice (length = headSize) or several
    /// consecutive head-slices (a whole H vector: length a multiple of headSize), each rotated the same way,
    /// pairs (2i, 2i+1) of a slice by θ_i = position · 10000^(−2i/headSize):
    /// (a, b) → (a cos θ_i − b sin θ_i, a sin θ_i + b cos θ_i). A negative position rotates backwards:
    /// Rotate(v, −t, d) undoes Rotate(v, t, d).
    /// </summary>
    public static void Rotate(Span<T> vec, int position, int headSize)
    {
        if (headSize <= 0 || headSize % 2 != 0)
            throw new ArgumentException($"headSize must be positive and even, got {headSize}.", nameof(headSize));
        if (vec.Length % headSize != 0)
            throw new ArgumentException($"length {vec.Length} is not a multiple of headSize {headSize}.", nameof(vec));
        for (int i = 0; i < headSize / 2; i++)
        {
            double theta = position * Math.Pow(10000.0, -2.0 * i / headSize);
            T c = T.CreateChecked(Math.Cos(theta)), s = T.CreateChecked(Math.Sin(theta));
            for (int o = 0; o < vec.Length; o += headSize)
            {
                T a = vec[o + 2 * i], b = vec[o + 2 * i + 1];
                vec[o + 2 * i] = a * c - b * s;
                vec[o + 2 * i + 1] = a * s + b * c;
            }
        }
    }

    /// <summary>y (B,L,H) = the mixer applied to x (B,L,H); overwrites y and keeps what the backward needs.</summary>
    public void Forward(Params p, ReadOnlySpan<T> x, Span<T> y, int batch, int length)
    {
        int rows = batch * length, h3 = 3 * _h;
        _batch = batch; _length = length;
        _x = x[..(rows * _h)].ToArray();
        _qkv = new T[rows * h3];
        _p = new T[batch * _heads * length * length];
        _o = new T[rows * _h];

        BlockReference<T>.LinearForward(x, p.InWeight, p.InBias, _qkv, rows, _h, h3);
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
            {
                int row = b * length + t;
                Rotate(_qkv.AsSpan(row * h3, _h), t, _d);
                Rotate(_qkv.AsSpan(row * h3 + _h, _h), t, _d);
            }

        T scale = T.One / T.Sqrt(T.CreateChecked(_d));
        var s = new T[length];
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < _heads; j++)
                for (int t = 0; t < length; t++)
                {
                    int qo = (b * length + t) * h3 + j * _d;
                    T max = T.NegativeInfinity;
                    for (int u = 0; u <= t; u++)
                    {
                        int ko = (b * length + u) * h3 + _h + j * _d;
                        T dot = T.Zero;
                        for (int i = 0; i < _d; i++) dot += _qkv[qo + i] * _qkv[ko + i];
                        s[u] = dot * scale;
                        if (s[u] > max) max = s[u];
                    }
                    T sum = T.Zero;
                    for (int u = 0; u <= t; u++) { s[u] = T.Exp(s[u] - max); sum += s[u]; }
                    int po = ((b * _heads + j) * length + t) * length;
                    int oo = (b * length + t) * _h + j * _d;
                    for (int u = 0; u <= t; u++)
                    {
                        T w = s[u] / sum;
                        _p[po + u] = w;
                        int vo = (b * length + u) * h3 + 2 * _h + j * _d;
                        for (int i = 0; i < _d; i++) _o[oo + i] += w * _qkv[vo + i];
                    }
                }

        BlockReference<T>.LinearForward(_o, p.OutWeight, p.OutBias, y, rows, _h, _h);
    }

    /// <summary>
    /// Exact gradient of the last <see cref="Forward"/> for upstream dy (B,L,H): accumulates (+=) into
    /// every tensor of <paramref name="grads"/> and into dx (B,L,H).
    /// </summary>
    public void Backward(Params p, Params grads, ReadOnlySpan<T> dy, Span<T> dx)
    {
        int batch = _batch, length = _length, rows = batch * length, h3 = 3 * _h;
        T scale = T.One / T.Sqrt(T.CreateChecked(_d));

        // y = o · out_projᵀ + out_bias.
        var dO = new T[rows * _h];
        BlockReference<T>.LinearBackward(_o, p.OutWeight, dy, dO, grads.OutWeight, grads.OutBias, rows, _h, _h);

        // Attention per head; dqkv holds gradients of the rotated q and k and of v.
        var dqkv = new T[rows * h3];
        var dp = new T[length];
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < _heads; j++)
                for (int t = 0; t < length; t++)
                {
                    int po = ((b * _heads + j) * length + t) * length;
                    int oo = (b * length + t) * _h + j * _d;
                    int qo = (b * length + t) * h3 + j * _d;
                    // o_t = Σ_u p_{t,u} v_u:  dv_u += p_{t,u}·do_t,  dp_{t,u} = do_t·v_u.
                    T dot = T.Zero; // Σ_u p_{t,u} dp_{t,u}
                    for (int u = 0; u <= t; u++)
                    {
                        int vo = (b * length + u) * h3 + 2 * _h + j * _d;
                        T w = _p[po + u], g = T.Zero;
                        for (int i = 0; i < _d; i++)
                        {
                            dqkv[vo + i] += w * dO[oo + i];
                            g += dO[oo + i] * _qkv[vo + i];
                        }
                        dp[u] = g;
                        dot += w * g;
                    }
                    // Softmax: ds_{t,u} = p_{t,u}(dp_{t,u} − Σ_u' p_{t,u'} dp_{t,u'});  s = q·k/√d.
                    for (int u = 0; u <= t; u++)
                    {
                        T ds = _p[po + u] * (dp[u] - dot) * scale;
                        int ko = (b * length + u) * h3 + _h + j * _d;
                        for (int i = 0; i < _d; i++)
                        {
                            dqkv[qo + i] += ds * _qkv[ko + i];
                            dqkv[ko + i] += ds * _qkv[qo + i];
                        }
                    }
                }

        // RoPE is orthogonal: its backward is the inverse rotation.
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
            {
                int row = b * length + t;
                Rotate(dqkv.AsSpan(row * h3, _h), -t, _d);
                Rotate(dqkv.AsSpan(row * h3 + _h, _h), -t, _d);
            }

        // qkv = x · in_projᵀ + in_bias.
        BlockReference<T>.LinearBackward(_x, p.InWeight, dqkv, dx, grads.InWeight, grads.InBias, rows, _h, h3);
    }

    /// <summary>
    /// One token of the same map: y (H) for x (H) at 0-based <paramref name="position"/>. The cache,
    /// (2, maxLength, H) = keys then values with maxLength = cache.Length / (2H), holds the rotated keys and
    /// the values of positions &lt; position; Step writes this position's rotated key and value into it,
    /// then attends over positions 0..position.
    /// </summary>
    public void Step(Params p, Span<T> cache, int position, ReadOnlySpan<T> x, Span<T> y)
    {
        int maxLength = cache.Length / (2 * _h), h3 = 3 * _h;
        if (position < 0 || position >= maxLength)
            throw new ArgumentOutOfRangeException(nameof(position), position, $"position must be in [0, {maxLength}) for this cache.");
        var keys = cache[..(maxLength * _h)];
        var values = cache.Slice(maxLength * _h, maxLength * _h);

        var qkv = new T[h3];
        BlockReference<T>.LinearForward(x, p.InWeight, p.InBias, qkv, 1, _h, h3);
        Rotate(qkv.AsSpan(0, _h), position, _d);
        Rotate(qkv.AsSpan(_h, _h), position, _d);
        qkv.AsSpan(_h, _h).CopyTo(keys.Slice(position * _h, _h));
        qkv.AsSpan(2 * _h, _h).CopyTo(values.Slice(position * _h, _h));

        T scale = T.One / T.Sqrt(T.CreateChecked(_d));
        var s = new T[position + 1];
        var o = new T[_h];
        for (int j = 0; j < _heads; j++)
        {
            T max = T.NegativeInfinity;
            for (int u = 0; u <= position; u++)
            {
                T dot = T.Zero;
                for (int i = 0; i < _d; i++) dot += qkv[j * _d + i] * keys[u * _h + j * _d + i];
                s[u] = dot * scale;
                if (s[u] > max) max = s[u];
            }
            T sum = T.Zero;
            for (int u = 0; u <= position; u++) { s[u] = T.Exp(s[u] - max); sum += s[u]; }
            for (int u = 0; u <= position; u++)
            {
                T w = s[u] / sum;
                for (int i = 0; i < _d; i++) o[j * _d + i] += w * values[u * _h + j * _d + i];
            }
        }
        BlockReference<T>.LinearForward(o, p.OutWeight, p.OutBias, y, 1, _h, _h);
    }
}
