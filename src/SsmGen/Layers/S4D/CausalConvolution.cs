using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SsmGen.Numerics;

/// <summary>
/// Per-channel causal convolution y[b,t,h] = Σ_{s≤t} k[h,s]·u[b,t−s,h] of (B, L, H) sequences with a (H, L)
/// kernel, and its backward. Through the FFT, zero-padded to a power of two ≥ 2L so nothing wraps, and two
/// batch rows packed into one complex transform (Re and Im stay apart because the kernel is real).
/// When H is a multiple of 16 and the CPU has AVX-512, sixteen channels ride the lanes of one
/// <see cref="LaneFft"/>, read and written straight from the (B, L, H) layout, with channel blocks shared
/// over the <see cref="WorkerPool"/>. Otherwise each channel is transposed out and transformed alone
/// (direct sum for L ≤ 64). Buffers are sized once; calls allocate nothing.
/// </summary>
public sealed unsafe class CausalConvolution
{
    /// <summary>Per-channel path: lengths up to this use the direct O(L²) sum.</summary>
    public const int DirectMaxLength = 64;
    private const int Lanes = LaneFft.Lanes;

    private readonly int _channels, _maxBatch, _maxLength, _m;
    private readonly bool _lanes;
    private readonly LaneFft? _laneFft;
    private readonly LaneScratch[] _scratch = [];
    private readonly LaneJob _job = new();
    // per-channel path
    private readonly Fft? _fft;
    private readonly float[] _kRe = [], _kIm = [], _aRe = [], _aIm = [], _bRe = [], _bIm = [], _dkRe = [], _dkIm = [];
    private readonly float[] _ut = [], _yt = [], _dyt = [];

    public CausalConvolution(int channels, int maxBatch, int maxLength)
    {
        (_channels, _maxBatch, _maxLength) = (channels, maxBatch, maxLength);
        _m = Fft.NextPowerOfTwo(2 * maxLength);
        _lanes = channels % Lanes == 0 && Vector512.IsHardwareAccelerated;
        if (_lanes)
        {
            _laneFft = new LaneFft(_m);
            _scratch = new LaneScratch[WorkerPool.Shared.Concurrency]; // one per thread (WorkerPool.ThreadIndex)
            for (int i = 0; i < _scratch.Length; i++) _scratch[i] = new LaneScratch(_m * Lanes);
            _job.Owner = this;
        }
        else
        {
            _fft = new Fft(_m);
            _kRe = new float[_m]; _kIm = new float[_m]; _aRe = new float[_m]; _aIm = new float[_m];
            _bRe = new float[_m]; _bIm = new float[_m]; _dkRe = new float[_m]; _dkIm = new float[_m];
            int n = maxBatch * maxLength * channels;
            _ut = new float[n]; _yt = new float[n]; _dyt = new float[n];
        }
    }

    private void Check(int batch, int length, int u, int k)
    {
        if (length < 1 || length > _maxLength) throw new ArgumentOutOfRangeException(nameof(length), length, $"Length must be in [1, {_maxLength}].");
        if (batch < 1 || batch > _maxBatch) throw new ArgumentOutOfRangeException(nameof(batch), batch, $"Batch must be in [1, {_maxBatch}].");
        if (u < batch * length * _channels) throw new ArgumentException($"Sequences hold {u} values; (B, L, H) needs {batch * length * _channels}.");
        if (k < _channels * length) throw new ArgumentException($"Kernel holds {k} values; (H, L) needs {_channels * length}.");
    }

    /// <summary>y (B, L, H) = k ∗ u per batch row and channel (overwrites y).</summary>
    public void Forward(ReadOnlySpan<float> k, ReadOnlySpan<float> u, Span<float> y, int batch, int length) =>
        Forward(k, u, ReadOnlySpan<float>.Empty, y, batch, length);

    /// <summary>y (B, L, H) = k ∗ u + d ⊙ u per batch row and channel (overwrites y); the skip term d (H) may be empty.</summary>
    public void Forward(ReadOnlySpan<float> k, ReadOnlySpan<float> u, ReadOnlySpan<float> d, Span<float> y, int batch, int length) =>
        Forward(k, u, d, y, Span<float>.Empty, batch, length);

    /// <summary>
    /// y (B, L, H) = k ∗ u + d ⊙ u (overwrites; d may be empty) and, when <paramref name="g"/> is given, g = GELU(y); with
    /// <paramref name="slope"/> (and g), slope = GELU'(y) as well — slope may be y itself, which then holds GELU'(y) in
    /// y's place, as <see cref="SsmGen.Layers.S4DRecurrence.Forward"/> leaves it. On the lanes path the transforms' last
    /// stage writes them as it makes y, so no pass of GELU's own reads y back; the values are
    /// <see cref="BlockKernels.GeluForward"/>'s.
    /// </summary>
    public void Forward(ReadOnlySpan<float> k, ReadOnlySpan<float> u, ReadOnlySpan<float> d, Span<float> y, Span<float> g, int batch, int length, Span<float> slope = default)
    {
        Check(batch, length, Math.Min(u.Length, y.Length), k.Length);
        if (!d.IsEmpty && d.Length < _channels) throw new ArgumentException($"The skip term holds {d.Length} values; H needs {_channels}.", nameof(d));
        int n = batch * length * _channels;
        if (!g.IsEmpty && g.Length < n) throw new ArgumentException($"GELU's output holds {g.Length} values; (B, L, H) needs {n}.", nameof(g));
        if (!slope.IsEmpty && (g.IsEmpty || slope.Length < n)) throw new ArgumentException($"GELU's slope needs GELU's output and (B, L, H) = {n} values; it has {slope.Length}.", nameof(slope));
        // the transforms write g and the slope while other rows of u are still to be read
        if (!g.IsEmpty && (g.Slice(0, n).Overlaps(u.Slice(0, n)) || g.Slice(0, n).Overlaps(y.Slice(0, n)))) throw new ArgumentException("GELU's output must not overlap u or y.", nameof(g));
        if (!slope.IsEmpty && !Unsafe.AreSame(ref MemoryMarshal.GetReference(slope), ref MemoryMarshal.GetReference(y))
            && (slope.Slice(0, n).Overlaps(u.Slice(0, n)) || slope.Slice(0, n).Overlaps(y.Slice(0, n)) || slope.Slice(0, n).Overlaps(g.Slice(0, n))))
            throw new ArgumentException("GELU's slope must be y itself or overlap none of u, y and g.", nameof(slope));
        int streams = 2 + (g.IsEmpty ? 0 : 1) + (slope.IsEmpty || slope.Overlaps(y) ? 0 : 1); // a slope in y's place writes no stream of its own
        using var pass = PassProfile.Enter(Pass.Convolution, Flops(batch, length, forwardsPerPair: 1, kernelInverses: 0), 4.0 * (streams * (double)batch * length + length) * _channels);
        if (_lanes)
        {
            fixed (float* pk = k, pu = u, pd = d, py = y, pg = g, ps = slope)
            {
                _job.Gelu = g.IsEmpty ? default : new LaneFft.GeluOut(true, pg - py, !slope.IsEmpty, slope.IsEmpty ? 0 : ps - py);
                RunLanes(pk, pu, py, null, null, d.IsEmpty ? null : pd, null, batch, length);
            }
            return;
        }
        BlockKernels.ToChannelMajor(u, _ut, batch, length, _channels);
        PerChannelForward(k, _ut, _yt, batch, length);
        BlockKernels.ToTimeMajor(_yt, y, batch, length, _channels);
        if (!d.IsEmpty)
            for (int r = 0; r < batch * length; r++)
                for (int c = 0; c < _channels; c++) y[r * _channels + c] += d[c] * u[r * _channels + c];
        if (!g.IsEmpty) BlockKernels.GeluForward(y.Slice(0, n), g, slope: slope);
    }

    /// <summary>du (B, L, H) = Σ_{s≥t} dy[s]·k[s−t] (overwrites); dk (H, L) = Σ_b Σ_t dy[t]·u[t−l] (overwrites).</summary>
    public void Backward(ReadOnlySpan<float> k, ReadOnlySpan<float> u, ReadOnlySpan<float> dy, Span<float> du, Span<float> dk, int batch, int length) =>
        Backward(k, u, ReadOnlySpan<float>.Empty, dy, du, dk, Span<float>.Empty, batch, length);

    /// <summary>
    /// The backward of <see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int)"/>:
    /// du = Σ_{s≥t} dy[s]·k[s−t] + d ⊙ dy (overwrites), dk as without the skip term (overwrites), gD (H) += Σ_b Σ_t dy ⊙ u
    /// (on the lanes path read off dk's lag 0: the same quantity, with the transforms' rounding instead of a direct sum's).
    /// d and gD are both given or both empty.
    /// </summary>
    public void Backward(ReadOnlySpan<float> k, ReadOnlySpan<float> u, ReadOnlySpan<float> d, ReadOnlySpan<float> dy, Span<float> du, Span<float> dk, Span<float> gD, int batch, int length)
    {
        CheckBackward(k, u, d, dy, du, dk, gD, batch, length);
        using var pass = PassProfile.Enter(Pass.Convolution, Flops(batch, length, forwardsPerPair: 2, kernelInverses: 1), 4.0 * (3.0 * batch * length + 2.0 * length) * _channels);
        BackwardChecked(k, u, d, dy, ReadOnlySpan<float>.Empty, du, dk, gD, batch, length);
    }

    /// <summary>
    /// <see cref="Backward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, Span{float}, int, int)"/>
    /// for the gradient dy ⊙ <paramref name="dyScale"/> (dy itself is left as it is): an element-wise function's slope
    /// between the convolution and dy (GELU's, kept by the forward: <see cref="BlockKernels.GeluForward"/>), applied where
    /// the transforms read dy anyway instead of in a pass of its own.
    /// </summary>
    public void BackwardScaled(ReadOnlySpan<float> k, ReadOnlySpan<float> u, ReadOnlySpan<float> d, ReadOnlySpan<float> dyScale, ReadOnlySpan<float> dy, Span<float> du, Span<float> dk, Span<float> gD, int batch, int length)
    {
        CheckBackward(k, u, d, dy, du, dk, gD, batch, length);
        int n = batch * length * _channels;
        if (dyScale.Length < n) throw new ArgumentException($"The scale of dy holds {dyScale.Length} values; (B, L, H) needs {n}.", nameof(dyScale));
        using var pass = PassProfile.Enter(Pass.Convolution, Flops(batch, length, forwardsPerPair: 2, kernelInverses: 1), 4.0 * (4.0 * batch * length + 2.0 * length) * _channels);
        BackwardChecked(k, u, d, dy, dyScale, du, dk, gD, batch, length);
    }

    private void CheckBackward(ReadOnlySpan<float> k, ReadOnlySpan<float> u, ReadOnlySpan<float> d, ReadOnlySpan<float> dy, Span<float> du, Span<float> dk, Span<float> gD, int batch, int length)
    {
        Check(batch, length, Math.Min(Math.Min(u.Length, dy.Length), du.Length), Math.Min(k.Length, dk.Length));
        if (d.IsEmpty != gD.IsEmpty) throw new ArgumentException("The skip term and its gradient are both given or both empty.", nameof(gD));
        if (!d.IsEmpty && Math.Min(d.Length, gD.Length) < _channels) throw new ArgumentException($"The skip term and its gradient must hold H = {_channels} values.", nameof(d));
    }

    /// <param name="dyScale">What dy is multiplied by as it is read, or empty.</param>
    private void BackwardChecked(ReadOnlySpan<float> k, ReadOnlySpan<float> u, ReadOnlySpan<float> d, ReadOnlySpan<float> dy, ReadOnlySpan<float> dyScale, Span<float> du, Span<float> dk, Span<float> gD, int batch, int length)
    {
        if (_lanes)
        {
            fixed (float* pk = k, pu = u, pdy = dy, pdu = du, pdk = dk, pd = d, pgd = gD, ps = dyScale)
            {
                _job.DyScale = dyScale.IsEmpty ? null : ps;
                RunLanes(pk, pu, pdu, pdy, pdk, d.IsEmpty ? null : pd, d.IsEmpty ? null : pgd, batch, length);
            }
            return;
        }
        int n = batch * length * _channels;
        BlockKernels.ToChannelMajor(u, _ut, batch, length, _channels);
        BlockKernels.ToChannelMajor(dy, _dyt, batch, length, _channels);
        if (!dyScale.IsEmpty)
        {
            BlockKernels.ToChannelMajor(dyScale, _yt, batch, length, _channels);
            System.Numerics.Tensors.TensorPrimitives.Multiply(_dyt.AsSpan(0, n), _yt.AsSpan(0, n), _dyt);
        }
        PerChannelBackward(k, _ut, _dyt, _yt, dk, batch, length);
        BlockKernels.ToTimeMajor(_yt, du, batch, length, _channels);
        if (!d.IsEmpty)
            for (int r = 0; r < batch * length; r++)
                for (int c = 0; c < _channels; c++)
                {
                    int at = r * _channels + c;
                    float g = dyScale.IsEmpty ? dy[at] : dy[at] * dyScale[at];
                    du[at] += d[c] * g;
                    gD[c] += g * u[at];
                }
    }

    /// <summary>
    /// Floating-point operations of a pass through the FFT, as the transforms execute them (<see cref="LaneFft.Flops"/>
    /// on the lanes path; 5·m per radix-2 stage of the per-channel <see cref="Fft"/>): one transform of the kernel (and
    /// an inverse of dK) per channel, <paramref name="forwardsPerPair"/> forward and one inverse transform per pair of
    /// batch rows, and a complex product (6 flops) per frequency and pair for each product of spectra.
    /// </summary>
    private double Flops(int batch, int length, int forwardsPerPair, int kernelInverses)
    {
        int m = FftSize(length), pairs = (batch + 1) / 2;
        double forward = _lanes ? LaneFft.Flops(m, inverse: false) : 5.0 * m * Math.Log2(m);
        double inverse = _lanes ? LaneFft.Flops(m, inverse: true) : forward;
        return _channels * (forward + kernelInverses * inverse + pairs * (forwardsPerPair * forward + inverse + 6.0 * m * forwardsPerPair));
    }

    // ---- lanes path: sixteen channels per transform ----

    private sealed class LaneScratch(int n)
    {
        public readonly AlignedBuffer KRe = new(n), KIm = new(n), ARe = new(n), AIm = new(n);
        public readonly AlignedBuffer GRe = new(n), GIm = new(n), DkRe = new(n), DkIm = new(n);
    }

    private sealed class LaneJob : ParallelWork
    {
        public CausalConvolution Owner = null!;
        public float* K, U, Out, Dy, Dk, D, GD, DyScale;
        public LaneFft.GeluOut Gelu; // what the forward's inverse writes beside y
        public int Batch, Length;
        public override void Execute(int part, int parts)
        {
            var (s, e) = WorkerPool.Share(Owner._channels / Lanes, part, parts);
            var scratch = Owner._scratch[WorkerPool.Shared.ThreadIndex];
            for (int block = s; block < e; block++)
            {
                if (Dy is null) Owner.LaneForward(scratch, block * Lanes, K, U, D, Out, Gelu, Batch, Length);
                else Owner.LaneBackward(scratch, block * Lanes, K, U, Dy, DyScale, D, Out, Dk, GD, Batch, Length);
            }
        }
    }

    private void RunLanes(float* k, float* u, float* output, float* dy, float* dk, float* d, float* gD, int batch, int length)
    {
        var j = _job;
        j.K = k; j.U = u; j.Out = output; j.Dy = dy; j.Dk = dk; j.D = d; j.GD = gD; j.Batch = batch; j.Length = length;
        WorkerPool.Shared.Run(j, WorkerPool.Shared.PartsFor(_channels / Lanes));
        j.DyScale = null; j.Gelu = default;
    }

    private static int FftSize(int length) => Fft.NextPowerOfTwo(2 * length);

    /// <summary>Kernel rows [h0, h0+16) into lanes, times 1/m (the inverse transforms' scale, folded in here), transformed.</summary>
    private void KernelSpectrum(LaneScratch s, int h0, float* k, float* d, int length, int m)
    {
        var re = s.KRe.Span;
        for (int l = 0; l < length; l++)
            for (int c = 0; c < Lanes; c++) re[l * Lanes + c] = k[(long)(h0 + c) * length + l] * (1f / m);
        // the skip term d ⊙ u is the kernel's lag 0 grown by d: in both directions it rides in the transforms instead of
        // in passes over u and dy of its own
        if (d is not null)
            for (int c = 0; c < Lanes; c++) re[c] = (k[(long)(h0 + c) * length] + d[h0 + c]) * (1f / m);
        s.KRe.AsSpan(length * Lanes, (m / 2 - length) * Lanes).Clear(); // the transform reads rows [0, m/2) only
        s.KIm.AsSpan(0, m / 2 * Lanes).Clear();
        _laneFft!.Forward(s.KRe, s.KIm, m);
    }

    /// <summary>Where row <paramref name="row"/> of channels [h0, h0+16) starts in a (B, L, H) sequence, or null past the batch.</summary>
    private float* Row(float* x, int row, int h0, int batch, int length) => row < batch ? x + (long)row * length * _channels + h0 : null;

    /// <summary>
    /// Rows b (real part) and b+1 (imaginary part, zero past the batch) of channels [h0, h0+16), transformed, read
    /// straight from x by the transform's first stage; with <paramref name="scale"/>, of x ⊙ scale.
    /// </summary>
    private void PackedSpectrum(AlignedBuffer re, AlignedBuffer im, float* x, int b, int h0, int batch, int length, int m, float* scale = null) =>
        _laneFft!.Forward(re, im, m, Row(x, b, h0, batch, length), Row(x, b + 1, h0, batch, length),
            scale is null ? null : Row(scale, b, h0, batch, length), scale is null ? null : Row(scale, b + 1, h0, batch, length), _channels, length);

    /// <summary>Rows b and b+1 of channels [h0, h0+16) of the inverse transform, written by its last stage straight into y.</summary>
    private void InverseInto(AlignedBuffer re, AlignedBuffer im, float* y, int b, int h0, int batch, int length, int m) =>
        _laneFft!.UnscaledInverse(re, im, m, Row(y, b, h0, batch, length), Row(y, b + 1, h0, batch, length), _channels, length); // 1/m is in the kernel's spectrum

    private void LaneForward(LaneScratch s, int h0, float* k, float* u, float* d, float* y, LaneFft.GeluOut gelu, int batch, int length)
    {
        int m = FftSize(length);
        KernelSpectrum(s, h0, k, d, length, m);
        fixed (float* kr = s.KRe, ki = s.KIm)
            for (int b = 0; b < batch; b += 2) // rows b and b+1 of u in, of y out; 1/m is in the kernel's spectrum
                _laneFft!.Convolve(s.ARe, s.AIm, m, Row(u, b, h0, batch, length), Row(u, b + 1, h0, batch, length), _channels, length,
                    kr, ki, Row(y, b, h0, batch, length), Row(y, b + 1, h0, batch, length), gelu);
    }

    private void LaneBackward(LaneScratch s, int h0, float* k, float* u, float* dy, float* dyScale, float* d, float* du, float* dk, float* gD, int batch, int length)
    {
        int m = FftSize(length);
        KernelSpectrum(s, h0, k, d, length, m);
        s.DkRe.AsSpan(0, m * Lanes).Clear();
        s.DkIm.AsSpan(0, m * Lanes).Clear();
        for (int b = 0; b < batch; b += 2)
        {
            PackedSpectrum(s.ARe, s.AIm, u, b, h0, batch, length, m);
            PackedSpectrum(s.GRe, s.GIm, dy, b, h0, batch, length, m, dyScale);
            // Rows hold the spectra in bit-reversed order, X[−j] at the partner row (LaneFft.Partner): rows 0 and 1 are
            // their own partners, each later octave pairs up mirrored. dK's spectrum is the transform of a real sequence,
            // so only one row of each pair is summed (its partner is its conjugate, filled in once at the end).
            fixed (float* ar = s.ARe, ai = s.AIm, gr = s.GRe, gi = s.GIm, dr = s.DkRe, di = s.DkIm, kr = s.KRe, ki = s.KIm)
            {
                var spectra = new SpectraRows(ar, ai, gr, gi, dr, di, kr, ki);
                spectra.Pair(0, 0);
                if (m > 1) spectra.Pair(Lanes, Lanes);
                for (int lo = 2; lo < m; lo <<= 1)
                    for (int j = lo, p = 3 * lo - 1 - j; j < lo + lo / 2; j++, p--) spectra.Pair(j * Lanes, p * Lanes);
            }
            InverseInto(s.GRe, s.GIm, du, b, h0, batch, length, m);
        }
        fixed (float* dr = s.DkRe, di = s.DkIm)
            for (int lo = 2; lo < m; lo <<= 1)
                for (int j = lo, p = 3 * lo - 1 - j; j < lo + lo / 2; j++, p--)
                {
                    Vector512.Load(dr + j * Lanes).Store(dr + p * Lanes);
                    (-Vector512.Load(di + j * Lanes)).Store(di + p * Lanes);
                }
        _laneFft!.UnscaledInverse(s.DkRe, s.DkIm, m);
        float scale = 0.25f / m; // the inverse's 1/m and the separation's ½·½ (SpectraRows)
        var dkRe = s.DkRe.Span;
        for (int l = 0; l < length; l++)
            for (int c = 0; c < Lanes; c++) dk[(long)(h0 + c) * length + l] = dkRe[l * Lanes + c] * scale;
        if (gD is not null)
            for (int c = 0; c < Lanes; c++) gD[h0 + c] += dk[(long)(h0 + c) * length]; // Σ_b Σ_t dy·u is dK's lag 0
    }

    /// <summary>
    /// The backward's spectral products for one pair of rows, j and its partner p (X[−j]): the packed spectra Z of two
    /// batch rows of u (A) and of dy (G) are separated, X1 = Z[j] + conj Z[p], X2 = −i·(Z[j] − conj Z[p]) (twice the
    /// rows' spectra: the ½·½ is in dK's final scale), and dK[j] += G1·conj(U1) + G2·conj(U2); then G ← G·conj(K) at
    /// both rows, dU's spectrum (K[p] = conj K[j]: K is real). One pass where there were two, and half of dK and K read.
    /// </summary>
    private readonly ref struct SpectraRows(float* ar, float* ai, float* gr, float* gi, float* dr, float* di, float* kr, float* ki)
    {
        private readonly float* _ar = ar, _ai = ai, _gr = gr, _gi = gi, _dr = dr, _di = di, _kr = kr, _ki = ki;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Pair(int o, int no)
        {
            var zr = Vector512.Load(_ar + o); var zi = Vector512.Load(_ai + o);
            var nr = Vector512.Load(_ar + no); var ni = Vector512.Load(_ai + no);
            var u1r = zr + nr; var u1i = zi - ni; var u2r = zi + ni; var u2i = nr - zr;
            var xr = Vector512.Load(_gr + o); var xi = Vector512.Load(_gi + o);
            var yr = Vector512.Load(_gr + no); var yi = Vector512.Load(_gi + no);
            var g1r = xr + yr; var g1i = xi - yi; var g2r = xi + yi; var g2i = yr - xr;
            (Vector512.Load(_dr + o) + g1r * u1r + g1i * u1i + g2r * u2r + g2i * u2i).Store(_dr + o);
            (Vector512.Load(_di + o) + g1i * u1r - g1r * u1i + g2i * u2r - g2r * u2i).Store(_di + o);
            var wr = Vector512.Load(_kr + o); var wi = Vector512.Load(_ki + o);
            (xr * wr + xi * wi).Store(_gr + o);
            (xi * wr - xr * wi).Store(_gi + o);
            if (no == o) return;
            (yr * wr - yi * wi).Store(_gr + no); // G[p]·conj(K[p]) = G[p]·K[j]
            (yr * wi + yi * wr).Store(_gi + no);
        }
    }

    // ---- per-channel path: (B, H, L) sequences, one transform per channel ----

    private void KernelSpectrum(ReadOnlySpan<float> k, int m, int length)
    {
        k.Slice(0, length).CopyTo(_kRe);
        _kRe.AsSpan(length, m - length).Clear();
        _kIm.AsSpan(0, m).Clear();
        _fft!.Forward(_kRe, _kIm, m);
    }

    private void PackedSpectrum(ReadOnlySpan<float> x, float[] re, float[] im, int b, int c, int batch, int length, int m)
    {
        x.Slice((b * _channels + c) * length, length).CopyTo(re);
        re.AsSpan(length, m - length).Clear();
        if (b + 1 < batch) x.Slice(((b + 1) * _channels + c) * length, length).CopyTo(im);
        else im.AsSpan(0, length).Clear();
        im.AsSpan(length, m - length).Clear();
        _fft!.Forward(re, im, m);
    }

    private void UnpackTo(Span<float> y, float[] re, float[] im, int b, int c, int batch, int length)
    {
        re.AsSpan(0, length).CopyTo(y.Slice((b * _channels + c) * length, length));
        if (b + 1 < batch) im.AsSpan(0, length).CopyTo(y.Slice(((b + 1) * _channels + c) * length, length));
    }

    private void PerChannelForward(ReadOnlySpan<float> k, ReadOnlySpan<float> u, Span<float> y, int batch, int length)
    {
        if (length <= DirectMaxLength)
        {
            for (int b = 0; b < batch; b++)
                for (int c = 0; c < _channels; c++)
                {
                    var kc = k.Slice(c * length, length);
                    var ur = u.Slice((b * _channels + c) * length, length);
                    var yr = y.Slice((b * _channels + c) * length, length);
                    for (int t = 0; t < length; t++)
                    {
                        float s = 0;
                        for (int j = 0; j <= t; j++) s += kc[j] * ur[t - j];
                        yr[t] = s;
                    }
                }
            return;
        }
        int m = FftSize(length);
        for (int c = 0; c < _channels; c++)
        {
            KernelSpectrum(k.Slice(c * length, length), m, length);
            for (int b = 0; b < batch; b += 2)
            {
                PackedSpectrum(u, _aRe, _aIm, b, c, batch, length, m);
                for (int j = 0; j < m; j++)
                {
                    float r = _aRe[j] * _kRe[j] - _aIm[j] * _kIm[j];
                    _aIm[j] = _aRe[j] * _kIm[j] + _aIm[j] * _kRe[j];
                    _aRe[j] = r;
                }
                _fft!.Inverse(_aRe, _aIm, m);
                UnpackTo(y, _aRe, _aIm, b, c, batch, length);
            }
        }
    }

    private void PerChannelBackward(ReadOnlySpan<float> k, ReadOnlySpan<float> u, ReadOnlySpan<float> dy, Span<float> du, Span<float> dk, int batch, int length)
    {
        if (length <= DirectMaxLength)
        {
            du.Slice(0, batch * _channels * length).Clear();
            dk.Slice(0, _channels * length).Clear();
            for (int b = 0; b < batch; b++)
                for (int c = 0; c < _channels; c++)
                {
                    var kc = k.Slice(c * length, length);
                    var dkc = dk.Slice(c * length, length);
                    int o = (b * _channels + c) * length;
                    for (int t = 0; t < length; t++)
                    {
                        float g = dy[o + t];
                        for (int j = 0; j <= t; j++)
                        {
                            dkc[j] += g * u[o + t - j];
                            du[o + t - j] += g * kc[j];
                        }
                    }
                }
            return;
        }
        int m = FftSize(length);
        for (int c = 0; c < _channels; c++)
        {
            KernelSpectrum(k.Slice(c * length, length), m, length);
            Array.Clear(_dkRe); Array.Clear(_dkIm);
            for (int b = 0; b < batch; b += 2)
            {
                PackedSpectrum(u, _aRe, _aIm, b, c, batch, length, m);
                PackedSpectrum(dy, _bRe, _bIm, b, c, batch, length, m);
                for (int j = 0; j < m; j++)
                {
                    int nj = (m - j) & (m - 1);
                    float u1r = 0.5f * (_aRe[j] + _aRe[nj]), u1i = 0.5f * (_aIm[j] - _aIm[nj]);
                    float u2r = 0.5f * (_aIm[j] + _aIm[nj]), u2i = -0.5f * (_aRe[j] - _aRe[nj]);
                    float g1r = 0.5f * (_bRe[j] + _bRe[nj]), g1i = 0.5f * (_bIm[j] - _bIm[nj]);
                    float g2r = 0.5f * (_bIm[j] + _bIm[nj]), g2i = -0.5f * (_bRe[j] - _bRe[nj]);
                    _dkRe[j] += g1r * u1r + g1i * u1i + g2r * u2r + g2i * u2i;
                    _dkIm[j] += g1i * u1r - g1r * u1i + g2i * u2r - g2r * u2i;
                }
                for (int j = 0; j < m; j++)
                {
                    float r = _bRe[j] * _kRe[j] + _bIm[j] * _kIm[j];
                    _bIm[j] = _bIm[j] * _kRe[j] - _bRe[j] * _kIm[j];
                    _bRe[j] = r;
                }
                _fft!.Inverse(_bRe, _bIm, m);
                UnpackTo(du, _bRe, _bIm, b, c, batch, length);
            }
            _fft!.Inverse(_dkRe, _dkIm, m);
            _dkRe.AsSpan(0, length).CopyTo(dk.Slice(c * length, length));
        }
    }
}
