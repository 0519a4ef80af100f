using System.Numerics;
using SsmGen.Distributed;

namespace SsmGen.Layers;

/// <summary>
/// One S4D block's part of sequence parallelism (see <see cref="SequenceParallel"/>), called by generated code after the
/// block's convolution and before its kernel's chain rule when the model runs a piece of each sequence. Per mode
/// (Ā = Z, W = C·B̄; x[t] = Z·x[t−1] + u[t], y[t] = 2·Re Σ W·x[t]) a piece of length L run from zero ends in
/// e = Σ_s Z^(L−1−s)·u[s], and the state entering it adds 2·Re(W·Z^(τ+1)·h_in) to its output τ. The pieces' e and Z^L
/// are gathered and composed in rank order in fp32, h_in(r+1) = Z^(L_r)·h_in(r) + e(r). The backward gathers each
/// piece's dL/dh_in, c = 2·Σ_τ dy[τ]·conj(W·Z^(τ+1)), composes G(r) = c(r) + conj(Z^(L_r))·G(r+1) from the last piece
/// down, and adds what the entering state and the end state owe u, W and Z. Gradients are written ∂L/∂Re + i·∂L/∂Im,
/// as in the chain rule they feed.
/// </summary>
/// <param name="block">The block's index (ranks check they exchange the same block's states).</param>
/// <param name="h">Channels.</param>
/// <param name="m">Modes per channel (N/2).</param>
public sealed class S4DStatePassing(int block, int h, int m)
{
    private readonly int _hm = h * m;
    private float[] _send = [], _pieces = [], _enter = [], _gz = [];
    private double[] _x = [], _dx = [], _de = [];
    private int _batch, _length;

    private double[] _z = [];

    // modes rows (each H·M): Re Z, Im Z, Re W, Im W, Re Z^32, Im Z^32
    private Complex Z(int i) => new(_z[2 * i], _z[2 * i + 1]);
    private Complex W(ReadOnlySpan<float> modes, int i) => new(modes[2 * _hm + i], modes[3 * _hm + i]);

    /// <summary>
    /// Z in double: the float Z refined by Newton's method on z^32 = Z^32, whose float value the discretization computed
    /// in double. Powers up to the piece's length then drift like the kernel's anchored chain, not like powers of a
    /// float-rounded Z (≈ 6·10⁻⁸ relative per factor).
    /// </summary>
    private void RefineModes(ReadOnlySpan<float> modes)
    {
        Grow(ref _z, 2 * _hm);
        for (int i = 0; i < _hm; i++)
        {
            var z = new Complex(modes[i], modes[_hm + i]);
            var anchor = new Complex(modes[4 * _hm + i], modes[5 * _hm + i]);
            if (Complex.Abs(anchor) > 1e-20)
                for (int k = 0; k < 2; k++)
                {
                    var z31 = Complex.Pow(z, 31);
                    z -= (z31 * z - anchor) / (32 * z31);
                }
            _z[2 * i] = z.Real; _z[2 * i + 1] = z.Imaginary;
        }
    }

    /// <summary>After the convolution of this rank's piece u (B, L, H) into y: adds what the state entering the piece contributes.</summary>
    public void Forward(SequenceParallel seq, ReadOnlySpan<float> modes, ReadOnlySpan<float> u, Span<float> y, int batch, int length)
    {
        (_batch, _length) = (batch, length);
        if (seq.Size == 1) return;
        int bhm = batch * _hm, size = 2 * bhm + 2 * _hm;
        Grow(ref _x, 2 * bhm); Grow(ref _dx, 2 * bhm); Grow(ref _de, 2 * bhm);
        RefineModes(modes);
        // e and de/dZ of every (b, mode): x ← Z·x + u[t], x' ← Z·x' + x (before the update), in double
        var x = _x.AsSpan(0, 2 * bhm); var dx = _dx.AsSpan(0, 2 * bhm);
        x.Clear(); dx.Clear();
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++) Advance(u.Slice((b * length + t) * h, h), x, dx, b);
        dx.CopyTo(_de.AsSpan()); // de/dZ, for the backward
        Grow(ref _send, size);
        for (int j = 0; j < bhm; j++) { _send[j] = (float)x[2 * j]; _send[bhm + j] = (float)x[2 * j + 1]; }
        for (int i = 0; i < _hm; i++)
        {
            var p = Complex.Pow(Z(i), length);
            _send[2 * bhm + i] = (float)p.Real; _send[2 * bhm + _hm + i] = (float)p.Imaginary;
        }
        var all = seq.Gather(block, SequenceParallel.Steps.ForwardStates, batch, _send.AsSpan(0, size));
        Grow(ref _pieces, all.Length);
        all.CopyTo(_pieces);
        // h_in of this piece, composed in fp32 in rank order
        Grow(ref _enter, 2 * bhm);
        var hin = _enter.AsSpan(0, 2 * bhm);
        hin.Clear();
        for (int r = 0; r < seq.Rank; r++)
        {
            var piece = _pieces.AsSpan(r * size, size);
            for (int b = 0; b < batch; b++)
                for (int i = 0; i < _hm; i++)
                {
                    int j = b * _hm + i;
                    float pr = piece[2 * bhm + i], pi = piece[2 * bhm + _hm + i], hr = hin[2 * j], hi = hin[2 * j + 1];
                    hin[2 * j] = pr * hr - pi * hi + piece[j];
                    hin[2 * j + 1] = pr * hi + pi * hr + piece[bhm + j];
                }
        }
        if (seq.Rank == 0) return;
        // y[τ] += 2·Re Σ_m W·Z^(τ+1)·h_in
        for (int b = 0; b < batch; b++)
        {
            for (int i = 0; i < _hm; i++)
            {
                int j = b * _hm + i;
                var v = W(modes, i) * Z(i) * new Complex(hin[2 * j], hin[2 * j + 1]);
                x[2 * j] = v.Real; x[2 * j + 1] = v.Imaginary;
            }
            for (int t = 0; t < length; t++)
            {
                var yt = y.Slice((b * length + t) * h, h);
                for (int c = 0; c < h; c++)
                {
                    double s = 0;
                    for (int i = c * m; i < c * m + m; i++)
                    {
                        int k = 2 * (b * _hm + i);
                        double zr = _z[2 * i], zi = _z[2 * i + 1], vr = x[k], vi = x[k + 1];
                        s += vr;
                        x[k] = zr * vr - zi * vi; x[k + 1] = zr * vi + zi * vr;
                    }
                    yt[c] += (float)(2 * s);
                }
            }
        }
    }

    /// <summary>
    /// After the convolution's backward of this rank's piece, given dy = dL/d(the SSM's output) (B, L, H): adds into du
    /// what the piece's end state owes u, adds into the Horner sums [Re p | Im p | Re p' | Im p'] what the entering state's
    /// contribution owes W and Z, and returns the gradient the end state and the decay Z^L owe Z, (2, H·M), for the
    /// chain rule (empty on a job of one rank).
    /// </summary>
    public ReadOnlySpan<float> Backward(SequenceParallel seq, ReadOnlySpan<float> modes, ReadOnlySpan<float> dy, Span<float> du, Span<float> sums, int batch, int length)
    {
        if (seq.Size == 1) return ReadOnlySpan<float>.Empty;
        if (batch != _batch || length != _length) throw new InvalidOperationException("The S4D block's backward needs the sequence-parallel forward of the same batch first.");
        int bhm = batch * _hm, fsize = 2 * bhm + 2 * _hm;
        // Q = Σ_τ dy[τ]·Z^τ and Q' per (b, mode), by Horner's rule from the last token; S = Z·Q, S' = Q + Z·Q'
        var q = _x.AsSpan(0, 2 * bhm); var dq = _dx.AsSpan(0, 2 * bhm);
        q.Clear(); dq.Clear();
        for (int b = 0; b < batch; b++)
            for (int t = length - 1; t >= 0; t--) Advance(dy.Slice((b * length + t) * h, h), q, dq, b);
        // c = 2·conj(W·S), this piece's dL/dh_in
        Grow(ref _send, 2 * bhm);
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < _hm; i++)
            {
                int j = b * _hm + i;
                var s = Z(i) * new Complex(q[2 * j], q[2 * j + 1]);
                var c = 2 * Complex.Conjugate(W(modes, i) * s);
                _send[2 * j] = (float)c.Real; _send[2 * j + 1] = (float)c.Imaginary;
            }
        var all = seq.Gather(block, SequenceParallel.Steps.BackwardAdjoints, batch, _send.AsSpan(0, 2 * bhm));
        Grow(ref _gz, 2 * _hm);
        var gz = _gz.AsSpan(0, 2 * _hm);
        gz.Clear();
        bool entered = seq.Rank > 0, followed = seq.Rank < seq.Size - 1;
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < _hm; i++)
            {
                int j = b * _hm + i;
                var z = Z(i);
                var hin = new Complex(_enter[2 * j], _enter[2 * j + 1]);
                if (entered)
                {
                    // p += h_in·S, p' += h_in·S'
                    var qq = new Complex(q[2 * j], q[2 * j + 1]);
                    var s = z * qq;
                    var ds = qq + z * new Complex(dq[2 * j], dq[2 * j + 1]);
                    var ps = hin * s; var pds = hin * ds;
                    sums[i] += (float)ps.Real; sums[_hm + i] += (float)ps.Imaginary;
                    sums[2 * _hm + i] += (float)pds.Real; sums[3 * _hm + i] += (float)pds.Imaginary;
                }
                if (!followed) continue;
                // G: the adjoint of this piece's end state, composed from the last piece down (fp32)
                float gr = 0, gi = 0;
                for (int r = seq.Size - 1; r > seq.Rank; r--)
                {
                    var piece = _pieces.AsSpan(r * fsize, fsize);
                    float pr = piece[2 * bhm + i], pi = -piece[2 * bhm + _hm + i]; // conj(Z^L)
                    float cr = all[r * 2 * bhm + 2 * j], ci = all[r * 2 * bhm + 2 * j + 1];
                    (gr, gi) = (pr * gr - pi * gi + cr, pr * gi + pi * gr + ci);
                }
                var g = new Complex(gr, gi);
                // the end state e = Σ_s Z^(L−1−s)·u[s] and the decay term Z^L·h_in owe Z: conj(de/dZ + L·Z^(L−1)·h_in)·G
                var dedz = new Complex(_de[2 * j], _de[2 * j + 1]) + length * Complex.Pow(z, length - 1) * hin;
                var gzi = Complex.Conjugate(dedz) * g;
                gz[i] += (float)gzi.Real; gz[_hm + i] += (float)gzi.Imaginary;
                // and u[s]: Re(G·conj(Z^(L−1−s)))
                var w = g;
                var zc = Complex.Conjugate(z);
                int c0 = i / m;
                for (int t = length - 1; t >= 0; t--)
                {
                    du[(b * length + t) * h + c0] += (float)w.Real;
                    w *= zc;
                }
            }
        return gz;
    }

    /// <summary>
    /// One step, for every mode of sequence b, of x ← Z·x + v[channel] and x' ← Z·x' + x (x before the step): after the
    /// tokens v[0 … n−1] x = Σ_s Z^(n−1−s)·v[s] and x' its derivative in Z. Run forwards over u it is a piece's end
    /// state; backwards over dy, Horner's rule for Σ_τ dy[τ]·Z^τ. Complex values interleaved (re, im), in double.
    /// </summary>
    private void Advance(ReadOnlySpan<float> v, Span<double> x, Span<double> dx, int b)
    {
        for (int i = 0; i < _hm; i++)
        {
            int k = 2 * (b * _hm + i);
            double zr = _z[2 * i], zi = _z[2 * i + 1], xr = x[k], xi = x[k + 1];
            double dr = zr * dx[k] - zi * dx[k + 1] + xr, di = zr * dx[k + 1] + zi * dx[k] + xi;
            dx[k] = dr; dx[k + 1] = di;
            x[k] = zr * xr - zi * xi + v[i / m]; x[k + 1] = zr * xi + zi * xr;
        }
    }

    private static void Grow<T>(ref T[] a, int n)
    {
        if (a.Length < n) a = new T[n];
    }
}
