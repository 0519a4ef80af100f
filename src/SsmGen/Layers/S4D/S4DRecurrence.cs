using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SsmGen.Numerics;

namespace SsmGen.Layers;

/// <summary>
/// S4D's SSM over whole (B, L, H) sequences in its recurrent view: per channel and mode x_t = Ā·x_{t−1} + u_t from
/// x_{−1} = 0, y_t = 2·Re Σ_m W·x_t + D·u_t — the same function as the causal convolution with the kernel
/// K[l] = 2·Re Σ_m W·Ā^l, without building K or transforming anything. Sixteen channels ride the lanes of one vector and
/// four modes at a time stay in registers, so the work is arithmetic on registers rather than passes over memory; for
/// the state sizes and batches where that beats the FFT (<see cref="Faster"/>) the generated forward takes this path, and GELU of
/// the output rides in the last pass. Needs H a multiple of 16, M a multiple of 4 and AVX-512 (<see cref="Supports"/>).
/// Rounding: Ā is applied as stored, in float, step after step, so a slowly decaying mode carries its rounding as the
/// one-token step does (the FFT path's kernel re-anchors every 32 steps from Ā³² in double); against the double
/// reference the generated forward stays within 7·10⁻⁶ of the largest output at L = 4,096 and 16,384 (RecurrentModeTests).
/// </summary>
public sealed unsafe class S4DRecurrence
{
    private const int Lanes = 16, ModesPerPass = 4;

    /// <summary>Floating-point operations per mode, time step and channel: Ā·x + u (7) and 2·Re(W·x) summed (4).</summary>
    public const int FlopsPerModeStep = 11;

    private readonly int _channels, _maxModes;
    private readonly float[] _tables; // [Re Ā | Im Ā | Re 2W | Im 2W], each (M, H): sixteen channels of one mode side by side
    private readonly Job _job = new();

    public S4DRecurrence(int channels, int maxModes)
    {
        if (!Supports(channels, ModesPerPass) || maxModes < 1) throw new ArgumentException($"The recurrent path needs H a multiple of {Lanes}, at least one mode and AVX-512; H = {channels}, M = {maxModes}.");
        (_channels, _maxModes) = (channels, maxModes);
        _tables = new float[4 * maxModes * channels];
        _job.Owner = this;
    }

    /// <summary>Whether this CPU and these sizes can take the recurrent path.</summary>
    public static bool Supports(int channels, int modes) =>
        channels > 0 && channels % Lanes == 0 && modes > 0 && modes % ModesPerPass == 0 && Vector512.IsHardwareAccelerated && Avx512F.IsSupported;

    /// <summary>
    /// Whether the recurrence is expected to beat the FFT path for M modes, length L and batch B, by a cost model in units
    /// of one mode's update for one row and step: the recurrence costs B·M, the FFT path <see cref="FftCost"/>·⌈B/2⌉·log₂ m
    /// (one packed transform per two rows, of size m ≥ 2L, GELU written by its last stage). The constant is fitted to the
    /// benchmark program's <c>--s4d-paths</c> (B 1 and 16, L 64 to 4,096, M 8 to 128; docs/benchmarks.md), whose faster
    /// path the rule takes wherever the two differ by more than 15% and by more than 0.02 ms. The FFT path's kernel is
    /// left out: a training step's backward builds it either way, and at sMNIST's size (B 16, L 784, M 32) the whole
    /// inference forward with the kernel built is faster on the FFT path too.
    /// </summary>
    public static bool Faster(int modes, int length, int batch) =>
        (double)batch * modes <= FftCost * ((batch + 1) / 2) * Math.Log2(Fft.NextPowerOfTwo(2 * length));

    private const double FftCost = 4.0;

    /// <summary>
    /// y (B, L, H) = the SSM of u plus d ⊙ u (overwrites); g, when not empty, = GELU(y). <paramref name="modes"/> is the
    /// generated layer's mode table [Re Ā | Im Ā | Re W | Im W | …], each (H, M). With <paramref name="slope"/> (and g),
    /// slope = GELU'(y) as well (<see cref="BlockKernels.GeluForward"/>); slope may be y itself, which then holds GELU'(y)
    /// in place of y.
    /// </summary>
    public void Forward(ReadOnlySpan<float> modes, int modeCount, ReadOnlySpan<float> d, ReadOnlySpan<float> u, Span<float> y, Span<float> g, int batch, int length, Span<float> slope = default)
    {
        int h = _channels, hm = h * modeCount;
        if (modeCount < 1 || modeCount > _maxModes || modeCount % ModesPerPass != 0) throw new ArgumentOutOfRangeException(nameof(modeCount), modeCount, $"Mode count must be a multiple of {ModesPerPass} in [{ModesPerPass}, {_maxModes}].");
        if (batch < 1 || length < 1) throw new ArgumentOutOfRangeException(nameof(batch), $"Batch ({batch}) and length ({length}) must be positive.");
        long n = (long)batch * length * h;
        if (modes.Length < 4 * hm) throw new ArgumentException($"The mode table holds {modes.Length} values; 4·H·M = {4 * hm} are needed.", nameof(modes));
        if (d.Length < h) throw new ArgumentException($"The skip term holds {d.Length} values; H = {h} are needed.", nameof(d));
        if (u.Length < n || y.Length < n || (!g.IsEmpty && g.Length < n)) throw new ArgumentException($"Sequences must hold (B, L, H) = {n} values; u has {u.Length}, y {y.Length}, g {g.Length}.");
        if (!slope.IsEmpty && (g.IsEmpty || slope.Length < n)) throw new ArgumentException($"GELU's slope needs GELU's output and (B, L, H) = {n} values; it has {slope.Length}.", nameof(slope));
        using var pass = PassProfile.Enter(Pass.Convolution, (double)FlopsPerModeStep * modeCount * n, 4.0 * n * (g.IsEmpty ? 2 : 3));
        for (int table = 0; table < 4; table++)
            for (int c = 0; c < h; c++)
                for (int m = 0; m < modeCount; m++)
                    _tables[table * hm + m * h + c] = (table < 2 ? 1 : 2) * modes[table * hm + c * modeCount + m]; // W doubled: y = 2·Re Σ W·x
        fixed (float* pt = _tables, pd = d, pu = u, py = y, pg = g, ps = slope)
        {
            var j = _job;
            j.Tables = pt; j.D = pd; j.U = pu; j.Y = py; j.G = g.IsEmpty ? null : pg; j.Slope = slope.IsEmpty ? null : ps;
            j.Modes = modeCount; j.Batch = batch; j.Length = length;
            WorkerPool.Shared.Run(j, batch * (h / Lanes));
        }
    }

    private sealed class Job : ParallelWork
    {
        public S4DRecurrence Owner = null!;
        public float* Tables, D, U, Y, G, Slope;
        public int Modes, Batch, Length;

        public override void Execute(int part, int parts)
        {
            int h = Owner._channels, groups = h / Lanes;
            var (s, e) = WorkerPool.Share(Batch * groups, part, parts);
            for (int task = s; task < e; task++)
            {
                int b = task / groups, h0 = task % groups * Lanes;
                long o = (long)b * Length * h + h0;
                for (int m0 = 0; m0 < Modes; m0 += ModesPerPass)
                    FourModes(Tables + m0 * h + h0, h * Modes, h, U + o, Y + o, m0 == 0, Length);
                SkipAndGelu(D + h0, U + o, Y + o, G is null ? null : G + o, Slope is null ? null : Slope + o, h, Length);
            }
        }
    }

    /// <summary>Four modes of sixteen channels over the whole sequence: y = Re Σ W·x (2 is in the tables' W), or y += it.</summary>
    private static void FourModes(float* t, int table, int h, float* u, float* y, bool first, int length)
    {
        var zr0 = Vector512.Load(t); var zr1 = Vector512.Load(t + h); var zr2 = Vector512.Load(t + 2 * h); var zr3 = Vector512.Load(t + 3 * h);
        t += table;
        var zi0 = Vector512.Load(t); var zi1 = Vector512.Load(t + h); var zi2 = Vector512.Load(t + 2 * h); var zi3 = Vector512.Load(t + 3 * h);
        t += table;
        var wr0 = Vector512.Load(t); var wr1 = Vector512.Load(t + h); var wr2 = Vector512.Load(t + 2 * h); var wr3 = Vector512.Load(t + 3 * h);
        t += table;
        var wi0 = Vector512.Load(t); var wi1 = Vector512.Load(t + h); var wi2 = Vector512.Load(t + 2 * h); var wi3 = Vector512.Load(t + 3 * h);
        Vector512<float> sr0 = default, sr1 = default, sr2 = default, sr3 = default, si0 = default, si1 = default, si2 = default, si3 = default;
        for (int step = 0; step < length; step++)
        {
            long at = (long)step * h;
            var ut = Vector512.Load(u + at);
            // x ← Ā·x + u, mode by mode; the four chains are independent, so their latencies overlap
            var n0 = Fma(zr0, sr0, Fnma(zi0, si0, ut)); si0 = Fma(zr0, si0, zi0 * sr0); sr0 = n0;
            var n1 = Fma(zr1, sr1, Fnma(zi1, si1, ut)); si1 = Fma(zr1, si1, zi1 * sr1); sr1 = n1;
            var n2 = Fma(zr2, sr2, Fnma(zi2, si2, ut)); si2 = Fma(zr2, si2, zi2 * sr2); sr2 = n2;
            var n3 = Fma(zr3, sr3, Fnma(zi3, si3, ut)); si3 = Fma(zr3, si3, zi3 * sr3); sr3 = n3;
            // Re Σ W·x in two chains
            var a = Fnma(wi1, si1, Fma(wr0, sr0, Fnma(wi0, si0, wr1 * sr1)));
            var c = Fnma(wi3, si3, Fma(wr2, sr2, Fnma(wi2, si2, wr3 * sr3)));
            (first ? a + c : a + c + Vector512.Load(y + at)).Store(y + at);
        }
    }

    private static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Avx512F.FusedMultiplyAdd(a, b, c);
    private static Vector512<float> Fnma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Avx512F.FusedMultiplyAddNegated(a, b, c); // c − a·b

    /// <summary>y += d ⊙ u over sixteen channels, g = GELU(y) when g is given, and slope = GELU'(y) when slope is (y's place if they are one).</summary>
    private static void SkipAndGelu(float* d, float* u, float* y, float* g, float* slope, int h, int length)
    {
        var vd = Vector512.Load(d);
        for (int step = 0; step < length; step++)
        {
            long at = (long)step * h;
            var v = Vector512.FusedMultiplyAdd(vd, Vector512.Load(u + at), Vector512.Load(y + at));
            if (slope != y) v.Store(y + at);
            if (g is null) continue;
            var t = BlockKernels.GeluTanh(v);
            BlockKernels.Gelu(v, t).Store(g + at);
            if (slope is not null) BlockKernels.GeluSlope(v, t).Store(slope + at);
        }
    }
}
