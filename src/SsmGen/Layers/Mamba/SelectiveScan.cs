using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SsmGen.Numerics;

/// <summary>
/// The selective scan of a Mamba block over (B, L, E) rows:
/// h_t[e,n] = Ā_t[e,n]·h_{t−1}[e,n] + Δ_t[e]·B_t[n]·u_t[e],  y_t[e] = Σ_n C_t[n]·h_t[e,n] + D[e]·u_t[e], where the
/// transition Ā is the decay exp(Δ_t[e]·A[e,n]) or, with negative eigenvalues, 2·exp(Δ_t[e]·A[e,n]) − 1 (see
/// <see cref="Stability.NegativeTransition(float)"/>),
/// with B_t and C_t read from the x_proj output rows (width <see cref="DbcWidth"/>, B at <see cref="BOffset"/>,
/// C right after it). Generated models derive one class per state size N that supplies 16-channel kernels
/// holding the state in vector registers (<see cref="ForwardGroup"/>, <see cref="BackwardChunk"/>); this class
/// owns the buffers, shares the work out on the <see cref="WorkerPool"/>, and runs a portable scalar path for
/// channels outside whole 16-lane groups and on CPUs without AVX-512.
/// The forward keeps the state only at chunk boundaries (every <see cref="ChunkLength"/> steps); the backward
/// recomputes each chunk's states from its boundary instead of storing (B, L, E, N).
/// </summary>
public abstract partial class SelectiveScan : ParallelWork
{
    /// <summary>Channels per vector kernel call.</summary>
    public const int Lanes = 16;

    protected readonly int N, E, DbcWidth, BOffset, ChunkLength, Chunks;
    /// <summary>Transitions 2·exp(Δ·A) − 1 in (−1, 1) instead of exp(Δ·A).</summary>
    protected readonly bool Negative;
    /// <summary>State at the end of every chunk but the last: (B, Chunks, N, E).</summary>
    protected readonly float[] States;
    /// <summary>
    /// A = −exp(A_log) by channel group, (⌈E/16⌉, N, 16) at <see cref="RateIndex"/>: 16 channels of one n contiguous,
    /// and one group's N·16 values on consecutive cache lines (rows of E apart would share two L1 sets with the
    /// (B, L, E) streams and be evicted every step).
    /// </summary>
    protected readonly float[] AT;
    /// <summary>A·log₂e, same layout: the decay exp(Δ·A) is computed as 2^(Δ·A·log₂e) (<see cref="FastMath.Exp2Decay"/>).</summary>
    protected readonly float[] AT2;

    /// <summary>Index of channel e's rate for state n in <see cref="AT"/> and <see cref="AT2"/>; a group's 16 start at e0·N + 16·n.</summary>
    protected int RateIndex(int n, int e) => (e / Lanes * N + n) * Lanes + e % Lanes;
    /// <summary>D (E), copied at the forward.</summary>
    protected readonly float[] Dv;
    /// <summary>Per-batch partial gradients dL/dA (B, N, E) and dL/dD (B, E), summed after the backward (no races).</summary>
    private readonly float[] _gradA, _gradD;

    // Buffers of the current call (B·L rows).
    protected float[] U = [], Delta = [], Dbc = [], Ys = [];
    protected float[] DYs = [], DU = [], DDelta = [], DDbc = [];
    protected int Batch, Length;
    private bool _backward;

    private readonly int _maxBatch, _maxLength;

    private static void Need(float[] a, long n, string name)
    {
        if (a.Length < n) throw new ArgumentException($"{name} holds {a.Length} values; {n} are needed.", name);
    }

    protected SelectiveScan(int n, int e, int dbcWidth, int bOffset, int maxBatch, int maxLength, MambaEigenvalues eigenvalues = MambaEigenvalues.Positive)
    {
        if (n < 1 || e < 1 || maxBatch < 1 || maxLength < 1 || bOffset < 0 || dbcWidth < bOffset + 2 * n)
            throw new ArgumentOutOfRangeException(nameof(n), "Scan sizes must be positive, and the x_proj rows must hold B and C after their offset.");
        N = n; E = e; DbcWidth = dbcWidth; BOffset = bOffset;
        Negative = eigenvalues == MambaEigenvalues.PositiveAndNegative;
        _maxBatch = maxBatch; _maxLength = maxLength;
        ChunkLength = Math.Clamp(1024 / n, 8, 64);
        Chunks = (maxLength + ChunkLength - 1) / ChunkLength;
        States = new float[checked(maxBatch * Chunks * n * e)];
        AT = new float[n * ((e + Lanes - 1) / Lanes * Lanes)];
        AT2 = new float[AT.Length];
        Dv = new float[e];
        _gradA = new float[checked(maxBatch * n * e)];
        _gradD = new float[checked(maxBatch * e)];
        EndStates = new float[checked(maxBatch * n * e)];
        // the backward's scratch for each thread it can run on (one batch row per part), made here so no call allocates
        if (Vector512.IsHardwareAccelerated && e >= Lanes)
        {
            _scratchParts = Math.Min(maxBatch, WorkerPool.Shared.Concurrency);
            (_scratch, _scratchFirst) = CacheLines.PinnedArray<float>(checked(_scratchParts * BackwardScratch * Lanes));
        }
    }

    /// <summary>Runs the scan: <paramref name="ys"/> (B, L, E) from u, Δ (B, L, E) and the x_proj rows; keeps what the backward needs.</summary>
    public void Forward(float[] u, float[] delta, float[] dbc, ReadOnlySpan<float> aLog, ReadOnlySpan<float> d, float[] ys, int batch, int length) =>
        ForwardFrom(null, u, delta, dbc, aLog, d, ys, batch, length);

    /// <summary><see cref="Forward"/> with each batch row's state entering at t = 0 read from <paramref name="entering"/> (B, N, E), or zero when null.</summary>
    internal void ForwardFrom(float[]? entering, float[] u, float[] delta, float[] dbc, ReadOnlySpan<float> aLog, ReadOnlySpan<float> d, float[] ys, int batch, int length)
    {
        if (aLog.Length != N * E || d.Length != E) throw new ArgumentException($"A_log must hold E·N = {E * N} values and D E = {E}.");
        // the kernels read and write unchecked: every size is checked here, before anything runs
        if (batch < 1 || length < 1 || batch > _maxBatch || length > _maxLength)
            throw new ArgumentOutOfRangeException(nameof(batch), $"batch {batch} and length {length} must be in [1, {_maxBatch}] and [1, {_maxLength}].");
        long rows = (long)batch * length;
        Need(u, rows * E, nameof(u)); Need(delta, rows * E, nameof(delta)); Need(dbc, rows * DbcWidth, nameof(dbc)); Need(ys, rows * E, nameof(ys));
        if (entering is not null) Need(entering, (long)batch * N * E, nameof(entering));
        using var pass = PassProfile.Enter(Pass.Scan, ForwardFlops(batch, length), 4.0 * rows * (3.0 * E + DbcWidth));
        for (int e = 0; e < E; e++)
            for (int n = 0; n < N; n++)
            {
                AT[RateIndex(n, e)] = -MathF.Exp(MathF.Min(aLog[e * N + n], (float)Stability.MaxLog));
                AT2[RateIndex(n, e)] = AT[RateIndex(n, e)] * 1.44269504f;
            }
        d.CopyTo(Dv);
        (U, Delta, Dbc, Ys, Batch, Length, _backward) = (u, delta, dbc, ys, batch, length, false);
        Entering = entering; // kept for the backward, which recomputes the first chunk's states from it
        Run(batch * Groups, length);
    }

    /// <summary>
    /// Gradients of the last forward from dL/dy: du += (overwrites nothing else), dΔ = (overwritten), the B and C
    /// columns of dDbc +=, gALog += and gD +=.
    /// </summary>
    public void Backward(float[] dys, float[] du, float[] dDelta, float[] dDbc, Span<float> gALog, Span<float> gD) =>
        BackwardWith(null, dys, du, dDelta, dDbc, gALog, gD);

    /// <summary><see cref="Backward"/> with dL/d(each batch row's state after the last step) from beyond the sequence read from <paramref name="terminal"/> (B, N, E), or zero when null.</summary>
    internal void BackwardWith(float[]? terminal, float[] dys, float[] du, float[] dDelta, float[] dDbc, Span<float> gALog, Span<float> gD)
    {
        if (Length == 0) throw new InvalidOperationException("Backward needs a Forward first.");
        long rows = (long)Batch * Length;
        Need(dys, rows * E, nameof(dys)); Need(du, rows * E, nameof(du)); Need(dDelta, rows * E, nameof(dDelta)); Need(dDbc, rows * DbcWidth, nameof(dDbc));
        if (gALog.Length < N * E || gD.Length < E) throw new ArgumentException($"gALog must hold E·N = {E * N} values and gD E = {E}.");
        if (terminal is not null) Need(terminal, (long)Batch * N * E, nameof(terminal));
        using var pass = PassProfile.Enter(Pass.Scan, BackwardFlops(Batch, Length), 4.0 * rows * (7.0 * E + 2.0 * DbcWidth));
        (DYs, DU, DDelta, DDbc, _backward, Terminal) = (dys, du, dDelta, dDbc, true, terminal);
        try { Run(Batch, Length); }
        finally { Terminal = null; }
        for (int b = 0; b < Batch; b++)
        {
            for (int e = 0; e < E; e++)
            {
                gD[e] += _gradD[b * E + e];
                for (int n = 0; n < N; n++) gALog[e * N + n] += _gradA[(b * N + n) * E + e] * AT[RateIndex(n, e)]; // dA/dA_log = A
            }
        }
    }

    private int Groups => (E + Lanes - 1) / Lanes;

    /// <summary>The forward's floating-point operations as the kernels execute them: 20 per state element and step.</summary>
    public double ForwardFlops(int batch, int length) => 20.0 * batch * length * E * N;

    /// <summary>
    /// The backward's, as the kernels execute them: 33 per state element and step — the recomputation (the forward's 20
    /// but y's FMA) and the reverse pass (6 FMAs — g, the dB, dC, dA, dΔ and Σg·B terms — and 3 products: g·h_{t−1}, its
    /// slope, g's decay).
    /// </summary>
    public double BackwardFlops(int batch, int length) => 33.0 * batch * length * E * N;

    /// <summary>Most threads a call uses (default: the whole pool); 1 measures the kernels on one core.</summary>
    public int MaxParallelism { get; set; } = int.MaxValue;

    private void Run(int items, int length)
    {
        var pool = WorkerPool.Shared;
        int parts = Math.Min(Math.Min(items, pool.Concurrency), MaxParallelism);
        if (parts <= 1 || (long)items * length * N * Lanes < 1 << 15) Execute(0, 1);
        else pool.Run(this, parts);
    }

    public override void Execute(int part, int parts)
    {
        int groups = Groups;
        if (!_backward)
        {
            var (s, end) = WorkerPool.Share(Batch * groups, part, parts);
            for (int item = s; item < end; item++)
            {
                int b = item / groups, e0 = item % groups * Lanes;
                if (Vector512.IsHardwareAccelerated && e0 + Lanes <= E) ForwardGroup(b, e0);
                else ForwardScalar(b, e0, Math.Min(E, e0 + Lanes));
            }
        }
        else
        {
            // One batch row per item: its B and C gradients are sums over all channels, so one thread owns them.
            // Chunk by chunk, every channel group within a chunk: a chunk's rows (a page holds one or two) stay in
            // the caches and the TLB for all its groups, where group by group over the whole sequence every step
            // touched new pages.
            var (s, end) = WorkerPool.Share(Batch, part, parts);
            int vectorGroups = Vector512.IsHardwareAccelerated ? E / Lanes : 0;
            var scratch = vectorGroups > 0 ? Scratch(part) : default;
            for (int b = s; b < end; b++)
            {
                for (int k = (Length - 1) / ChunkLength; k >= 0 && vectorGroups > 0; k--)
                {
                    var sums = scratch.Slice(SumsAt, ChunkLength * 2 * N);
                    sums.Clear();
                    for (int group = 0; group < vectorGroups; group++) BackwardChunk(b, group * Lanes, k, scratch);
                    AddBcGradients(b, k, sums);
                }
                for (int e0 = vectorGroups * Lanes; e0 < E; e0 += Lanes) BackwardScalar(b, e0, Math.Min(E, e0 + Lanes));
            }
        }
    }

    /// <summary>Channels [e0, e0 + 16) of batch row b, state in registers (generated per N).</summary>
    protected abstract void ForwardGroup(int b, int e0);

    /// <summary>
    /// Backward of chunk k for channels [e0, e0 + 16) of batch row b (generated per N), chunks called from last to
    /// first, every group of a chunk before the next. Works in <paramref name="scratch"/>: <see cref="BackwardScratch"/>
    /// vectors on cache lines, laid out as the chunk's states ((ChunkLength + 1)·N), its decays (ChunkLength·N), the
    /// chunk's dB and dC terms summed over groups lane by lane (2N per step, cleared before the chunk's first group
    /// and reduced over the lanes after its last, <see cref="AddBcGradients"/>), then per group what one chunk hands
    /// the one before it: dL/dh (N), the dA sums (N) and the dD sum (1).
    /// </summary>
    protected abstract void BackwardChunk(int b, int e0, int k, Span<Vector512<float>> scratch);

    /// <summary>Where the decays start in <see cref="BackwardChunk"/>'s scratch (the states start at 0).</summary>
    protected int DecaysAt => (ChunkLength + 1) * N;
    /// <summary>Where the dB and dC sums start: step t's dB terms at SumsAt + (t − t0)·2N, its dC terms N after them.</summary>
    protected int SumsAt => (2 * ChunkLength + 1) * N;
    /// <summary>Where group e0's carried values start: dL/dh, then the dA sums, then the dD sum.</summary>
    protected int CarriedAt(int e0) => (4 * ChunkLength + 1) * N + e0 / Lanes * (2 * N + 1);
    /// <summary>Vectors <see cref="BackwardChunk"/>'s scratch holds.</summary>
    protected int BackwardScratch => CarriedAt(E / Lanes * Lanes);

    /// <summary>
    /// dDbc's B and C columns of chunk k += the lane sums of every group's terms: once per chunk, where a sum per group
    /// and step cost a shuffle tree and the registers the backward's states need.
    /// </summary>
    private void AddBcGradients(int b, int k, ReadOnlySpan<Vector512<float>> sums)
    {
        int t0 = k * ChunkLength, t1 = Math.Min(Length, t0 + ChunkLength);
        for (int t = t0; t < t1; t++)
        {
            var step = sums.Slice((t - t0) * 2 * N, 2 * N);
            var bc = DDbc.AsSpan((b * Length + t) * DbcWidth + BOffset, 2 * N);
            int n = 0;
            if (Avx512F.IsSupported) // B's and C's columns are consecutive, as the terms are: 16 at a time may span both
                for (; n + Lanes <= 2 * N; n += Lanes)
                    (Vector512.Create((ReadOnlySpan<float>)bc.Slice(n, Lanes)) + FastMath.SumEach16(step.Slice(n, Lanes))).CopyTo(bc.Slice(n, Lanes));
            for (; n < 2 * N; n++) bc[n] += FastMath.TreeSum(step[n]);
        }
    }

    /// <summary>Part <paramref name="part"/>'s <see cref="BackwardScratch"/> vectors, on cache lines; kept between calls, never cleared.</summary>
    private Span<Vector512<float>> Scratch(int part)
    {
        if (_scratch is null || part >= _scratchParts) throw new InvalidOperationException($"The scan's backward has scratch for {_scratchParts} parts; part {part} asked.");
        int floats = BackwardScratch * Lanes;
        return System.Runtime.InteropServices.MemoryMarshal.Cast<float, Vector512<float>>(_scratch.AsSpan(_scratchFirst + part * floats, floats));
    }

    private readonly float[]? _scratch;
    private readonly int _scratchFirst, _scratchParts;

    /// <summary>16 floats of <paramref name="a"/> from <paramref name="i"/>, unchecked: the kernels' indices stay inside the call's rows.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    protected static Vector512<float> Load(float[] a, int i) =>
        Vector512.LoadUnsafe(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(a), (nuint)i);

    /// <summary>
    /// Asks for the cache line holding a[i] ahead of its use (the next group's line of a row the backward is on): a
    /// group's 64 bytes of each (B, L, E) row sit on a line of their own, rows 4·E bytes apart, a stride the hardware
    /// prefetchers do not follow. A hint only: it neither faults nor reads outside <paramref name="a"/>.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    protected static unsafe void Prefetch(float[] a, int i)
    {
        if (Sse.IsSupported && (uint)i < (uint)a.Length)
            Sse.Prefetch0(System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.CompilerServices.Unsafe.Add(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(a), i)));
    }

    /// <summary>Stores 16 floats unchecked (see <see cref="Load"/>).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    protected static void Store(Vector512<float> v, float[] a, int i) =>
        v.StoreUnsafe(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(a), (nuint)i);

    /// <summary>Index of the saved state (b, chunk k, n, e).</summary>
    protected int StateIndex(int b, int k, int n, int e) => ((b * Chunks + k) * N + n) * E + e;

    /// <summary>Writes dL/dA and dL/dD partial sums of batch row b for 16 channels (called by generated backward kernels).</summary>
    protected Span<float> GradAPart(int b, int n, int e0) => _gradA.AsSpan((b * N + n) * E + e0, Lanes);
    protected Span<float> GradDPart(int b, int e0) => _gradD.AsSpan(b * E + e0, Lanes);

    /// <summary>The transition from its decay: the decay itself, or 2·decay − 1 with negative eigenvalues.</summary>
    private float Transition(float decay) => Negative ? Stability.NegativeTransition(decay) : decay;

    private void ForwardScalar(int b, int e0, int e1)
    {
        Span<float> h = stackalloc float[N];
        for (int e = e0; e < e1; e++)
        {
            for (int n = 0; n < N; n++) h[n] = Entering is null ? 0 : Entering[EndIndex(b, n, e)];
            for (int t = 0; t < Length; t++)
            {
                int row = b * Length + t, x = row * DbcWidth + BOffset;
                float dt = Delta[row * E + e], u = U[row * E + e], y = Dv[e] * u;
                for (int n = 0; n < N; n++)
                {
                    h[n] = Transition(MathF.Exp(Stability.LogDecay(dt * AT[RateIndex(n, e)]))) * h[n] + dt * u * Dbc[x + n];
                    y += Dbc[x + N + n] * h[n];
                }
                Ys[row * E + e] = y;
                if ((t + 1) % ChunkLength == 0 && t + 1 < Length)
                    for (int n = 0; n < N; n++) States[StateIndex(b, t / ChunkLength, n, e)] = h[n];
            }
            for (int n = 0; n < N; n++) EndStates[EndIndex(b, n, e)] = h[n];
        }
    }

    private void BackwardScalar(int b, int e0, int e1)
    {
        Span<float> g = stackalloc float[N], dA = stackalloc float[N], hs = stackalloc float[ChunkLength * N], start = stackalloc float[N];
        for (int e = e0; e < e1; e++)
        {
            for (int n = 0; n < N; n++) g[n] = Terminal is null ? 0 : Terminal[EndIndex(b, n, e)];
            dA.Clear();
            float dD = 0;
            for (int k = (Length - 1) / ChunkLength; k >= 0; k--)
            {
                int t0 = k * ChunkLength, t1 = Math.Min(Length, t0 + ChunkLength);
                for (int n = 0; n < N; n++) start[n] = k > 0 ? States[StateIndex(b, k - 1, n, e)] : Entering is null ? 0 : Entering[EndIndex(b, n, e)];
                // recompute the chunk's states from its boundary
                for (int t = t0; t < t1; t++)
                {
                    int row = b * Length + t, x = row * DbcWidth + BOffset;
                    float dt = Delta[row * E + e], u = U[row * E + e];
                    for (int n = 0; n < N; n++)
                    {
                        float prev = t == t0 ? start[n] : hs[(t - t0 - 1) * N + n];
                        hs[(t - t0) * N + n] = Transition(MathF.Exp(Stability.LogDecay(dt * AT[RateIndex(n, e)]))) * prev + dt * u * Dbc[x + n];
                    }
                }
                for (int t = t1 - 1; t >= t0; t--)
                {
                    int row = b * Length + t, x = row * DbcWidth + BOffset;
                    float dt = Delta[row * E + e], u = U[row * E + e], dy = DYs[row * E + e];
                    float dDt = 0, du = Dv[e] * dy;
                    dD += dy * u;
                    for (int n = 0; n < N; n++)
                    {
                        float a = AT[RateIndex(n, e)], decay = MathF.Exp(Stability.LogDecay(dt * a)), bn = Dbc[x + n];
                        float slope = Negative ? 2 * decay : decay;         // dĀ/d(Δ·A)
                        float prev = t == t0 ? start[n] : hs[(t - t0 - 1) * N + n];
                        g[n] += Dbc[x + N + n] * dy;                       // dL/dh_t
                        DDbc[x + N + n] += dy * hs[(t - t0) * N + n];      // dL/dC_t
                        DDbc[x + n] += g[n] * dt * u;                      // dL/dB_t
                        float dDecay = g[n] * prev;
                        dA[n] += dDecay * slope * dt;
                        dDt += dDecay * slope * a + g[n] * bn * u;
                        du += g[n] * dt * bn;
                        g[n] *= Transition(decay);                         // carried to h_{t−1}
                    }
                    DDelta[row * E + e] = dDt;
                    DU[row * E + e] += du;
                }
            }
            for (int n = 0; n < N; n++) _gradA[(b * N + n) * E + e] = dA[n];
            _gradD[b * E + e] = dD;
        }
    }
}
