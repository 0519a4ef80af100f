namespace SsmGen.Numerics;

/// <summary>
/// Per-channel causal convolution y[t] = Σ_{s≤t} k[s]·u[t−s] of (B, H, L) sequences with a (H, L) kernel,
/// and its backward. Long sequences go through the FFT (zero-padded to ≥ 2L−1, so nothing wraps), two
/// batch rows packed into one complex transform (the kernel is real, so Re and Im stay separate); short
/// ones use the direct sum. Buffers are sized once; calls allocate nothing.
/// </summary>
public sealed class CausalConvolution
{
    /// <summary>Lengths up to this use the direct O(L²) sum.</summary>
    public const int DirectMaxLength = 64;

    private readonly Fft _fft;
    private readonly int _channels, _maxLength;
    private readonly float[] _kRe, _kIm, _aRe, _aIm, _bRe, _bIm, _dkRe, _dkIm;

    public CausalConvolution(int channels, int maxLength)
    {
        _channels = channels;
        _maxLength = maxLength;
        int m = Fft.NextPowerOfTwo(2 * maxLength);
        _fft = new Fft(m);
        _kRe = new float[m]; _kIm = new float[m]; _aRe = new float[m]; _aIm = new float[m];
        _bRe = new float[m]; _bIm = new float[m]; _dkRe = new float[m]; _dkIm = new float[m];
    }

    private void Check(int batch, int length)
    {
        if (length < 1 || length > _maxLength) throw new ArgumentOutOfRangeException(nameof(length), length, $"Length must be in [1, {_maxLength}].");
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "Batch must be positive.");
    }

    private void KernelSpectrum(ReadOnlySpan<float> k, int m, int length)
    {
        k.Slice(0, length).CopyTo(_kRe);
        _kRe.AsSpan(length, m - length).Clear();
        _kIm.AsSpan(0, m).Clear();
        _fft.Forward(_kRe, _kIm, m);
    }

    /// <summary>Loads rows b and b+1 (zero when past the batch) of channel c as one complex sequence, transformed.</summary>
    private void PackedSpectrum(ReadOnlySpan<float> x, float[] re, float[] im, int b, int c, int batch, int length, int m)
    {
        x.Slice((b * _channels + c) * length, length).CopyTo(re);
        re.AsSpan(length, m - length).Clear();
        if (b + 1 < batch) x.Slice(((b + 1) * _channels + c) * length, length).CopyTo(im);
        else im.AsSpan(0, length).Clear();
        im.AsSpan(length, m - length).Clear();
        _fft.Forward(re, im, m);
    }

    private void UnpackTo(Span<float> y, float[] re, float[] im, int b, int c, int batch, int length)
    {
        re.AsSpan(0, length).CopyTo(y.Slice((b * _channels + c) * length, length));
        if (b + 1 < batch) im.AsSpan(0, length).CopyTo(y.Slice(((b + 1) * _channels + c) * length, length));
    }

    /// <summary>y (B, H, L) = k ∗ u per row (overwrites y).</summary>
    public void Forward(ReadOnlySpan<float> k, ReadOnlySpan<float> u, Span<float> y, int batch, int length)
    {
        Check(batch, length);
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
        int m = Fft.NextPowerOfTwo(2 * length);
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
                _fft.Inverse(_aRe, _aIm, m);
                UnpackTo(y, _aRe, _aIm, b, c, batch, length);
            }
        }
    }

    /// <summary>
    /// du (B, H, L) = Σ_{s≥t} dy[s]·k[s−t] (overwrites); dk (H, L) = Σ_b Σ_t dy[t]·u[t−l] (overwrites).
    /// </summary>
    public void Backward(ReadOnlySpan<float> k, ReadOnlySpan<float> u, ReadOnlySpan<float> dy, Span<float> du, Span<float> dk, int batch, int length)
    {
        Check(batch, length);
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
        int m = Fft.NextPowerOfTwo(2 * length);
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
                    // Separate the two packed real rows: X1 = (Z[j] + conj Z[−j])/2, X2 = (Z[j] − conj Z[−j])/(2i).
                    int nj = (m - j) & (m - 1);
                    float u1r = 0.5f * (_aRe[j] + _aRe[nj]), u1i = 0.5f * (_aIm[j] - _aIm[nj]);
                    float u2r = 0.5f * (_aIm[j] + _aIm[nj]), u2i = -0.5f * (_aRe[j] - _aRe[nj]);
                    float g1r = 0.5f * (_bRe[j] + _bRe[nj]), g1i = 0.5f * (_bIm[j] - _bIm[nj]);
                    float g2r = 0.5f * (_bIm[j] + _bIm[nj]), g2i = -0.5f * (_bRe[j] - _bRe[nj]);
                    // dK += G·conj(U) for both rows
                    _dkRe[j] += g1r * u1r + g1i * u1i + g2r * u2r + g2i * u2i;
                    _dkIm[j] += g1i * u1r - g1r * u1i + g2i * u2r - g2r * u2i;
                }
                // dU = G·conj(K), both rows at once since K is real
                for (int j = 0; j < m; j++)
                {
                    float r = _bRe[j] * _kRe[j] + _bIm[j] * _kIm[j];
                    _bIm[j] = _bIm[j] * _kRe[j] - _bRe[j] * _kIm[j];
                    _bRe[j] = r;
                }
                _fft.Inverse(_bRe, _bIm, m);
                UnpackTo(du, _bRe, _bIm, b, c, batch, length);
            }
            _fft.Inverse(_dkRe, _dkIm, m);
            _dkRe.AsSpan(0, length).CopyTo(dk.Slice(c * length, length));
        }
    }
}
