using BenchmarkDotNet.Attributes;
using SsmGen.Reference;

namespace SsmGen.Benchmarks;

/// <summary>
/// One block of a layer kind at d_model 256, batch 8, L = 256: the generated model's Forward, Forward + Backward
/// and one streaming Step, against the float reference implementation of the same architecture (the oracle the
/// tests compare with). The reference's step is its mixer's step alone, so the ratio there is conservative.
/// </summary>
[MemoryDiagnoser]
public abstract class LayerBench<TModel> where TModel : ISsmModel
{
    public const int Batch = 8, Length = 256, Vocab = 16;
    protected TModel Model = default!;
    protected ReferenceModel<float> Reference = null!;
    private int[] _tokens = null!;
    private float[] _y = null!, _dy = null!, _yStep = null!;
    private SsmState _state = null!;
    protected float[] RefState = null!;
    protected float[] RefX = null!, RefY = null!;

    protected abstract TModel Create();

    [GlobalSetup]
    public void Setup()
    {
        Model = Create();
        Model.Initialize(1);
        Reference = new ReferenceModel<float>(Model.Config);
        Model.Parameters.CopyTo(Reference.Parameters);
        var rng = new Rng(2);
        _tokens = new int[Batch * Length];
        for (int i = 0; i < _tokens.Length; i++) _tokens[i] = rng.NextInt(Vocab);
        _y = new float[Batch * Length * Vocab];
        _dy = new float[_y.Length];
        for (int i = 0; i < _dy.Length; i++) _dy[i] = (float)rng.Normal() * 1e-3f;
        _yStep = new float[Vocab];
        _state = Model.CreateState();
        RefX = new float[Model.Config.DModel];
        RefY = new float[Model.Config.DModel];
        for (int i = 0; i < RefX.Length; i++) RefX[i] = (float)rng.Normal();
        SetupReferenceStep();
    }

    protected abstract void SetupReferenceStep();

    /// <summary>A view of one reference tensor by name.</summary>
    protected Span<float> P(string name)
    {
        var p = Reference.Table.Single(t => t.Name == name);
        return Reference.Parameters.AsSpan(p.Offset, p.Length);
    }

    [Benchmark] public void GeneratedForward() => Model.Forward(_tokens, Batch, Length, _y, training: true);

    [Benchmark]
    public void GeneratedForwardBackward()
    {
        Model.Forward(_tokens, Batch, Length, _y, training: true);
        Model.Backward(_dy);
    }

    [Benchmark]
    public void GeneratedStep()
    {
        if (_state.Position >= Length) _state.Reset();
        Model.Step(_state, 3, _yStep);
    }

    [Benchmark] public float[] ReferenceForward() => Reference.Forward(_tokens, Batch, Length, training: true);

    [Benchmark]
    public void ReferenceForwardBackward()
    {
        Reference.Forward(_tokens, Batch, Length, training: true);
        Reference.Backward(_dy);
    }

    [Benchmark] public void ReferenceStep() => ReferenceMixerStep();

    protected abstract void ReferenceMixerStep();
}

public class S4DLayer : LayerBench<S4DBench>
{
    private const int H = 256, Modes = 32;
    private readonly Complex<float>[] _z = new Complex<float>[H * Modes], _w = new Complex<float>[H * Modes], _x = new Complex<float>[H * Modes];
    private float[] _d = null!;
    protected override S4DBench Create() => new(Batch, Length);

    // The reference's recurrent mode for one token: modes discretized once (as a stream does), then
    // x ← Ā x + u and y = 2·Re Σ W x + D u per channel.
    protected override void SetupReferenceStep()
    {
        string m = "layers.0.mixer.";
        var p = new S4DReference<float>.Params(P(m + "log_dt"), P(m + "log_A_real"), P(m + "A_imag"), Span<float>.Empty, P(m + "C"), P(m + "D"));
        var s4d = new S4DReference<float>(H, 2 * Modes, Discretization.Zoh);
        for (int h = 0; h < H; h++)
            for (int n = 0; n < Modes; n++) (_z[h * Modes + n], _w[h * Modes + n]) = s4d.Discretize(p, h, n);
        _d = P(m + "D").ToArray();
    }

    protected override void ReferenceMixerStep()
    {
        for (int h = 0; h < H; h++)
        {
            float y = _d[h] * RefX[h];
            for (int n = 0; n < Modes; n++)
            {
                int i = h * Modes + n;
                _x[i] = _z[i] * _x[i] + Complex<float>.Real(RefX[h]);
                y += 2 * (_w[i] * _x[i]).Re;
            }
            RefY[h] = y;
        }
    }
}

/// <summary>
/// S4 (DPLR): the generated block's kernel comes from the generating function at the roots of unity; the reference's
/// step is the dense bilinear recurrence (Ā, B̄ and C formed once, as a stream does), O(N²) per channel against the
/// generated O(N) DPLR step.
/// </summary>
public class S4Layer : LayerBench<S4Bench>
{
    private const int H = 256, N = 64; // the reference writes both conjugate halves: N complex states
    private Complex<float>[][,] _a = null!;
    private Complex<float>[][] _b = null!, _c = null!;
    private readonly Complex<float>[] _x = new Complex<float>[H * N], _next = new Complex<float>[N];
    private float[] _d = null!;
    protected override S4Bench Create() => new(Batch, Length);

    protected override void SetupReferenceStep()
    {
        string m = "layers.0.mixer.";
        var p = new S4Reference<float>.Params(P(m + "log_dt"), P(m + "log_A_real"), P(m + "A_imag"), P(m + "P"), P(m + "B"), P(m + "C"), P(m + "D"));
        var s4 = new S4Reference<float>(H, N, 256);
        (_a, _b, _c) = (new Complex<float>[H][,], new Complex<float>[H][], new Complex<float>[H][]);
        for (int h = 0; h < H; h++) { (_a[h], _b[h]) = s4.Discretize(p, h); _c[h] = s4.OutputRow(p, h); }
        _d = P(m + "D").ToArray();
    }

    // x ← Ā x + B̄ u and y = Re(C x) + D u per channel, with dense N × N products.
    protected override void ReferenceMixerStep()
    {
        for (int h = 0; h < H; h++)
        {
            var x = _x.AsSpan(h * N, N);
            float y = _d[h] * RefX[h];
            for (int i = 0; i < N; i++)
            {
                var acc = _b[h][i] * Complex<float>.Real(RefX[h]);
                for (int j = 0; j < N; j++) acc += _a[h][i, j] * x[j];
                _next[i] = acc;
            }
            for (int i = 0; i < N; i++) { x[i] = _next[i]; y += (_c[h][i] * x[i]).Re; }
            RefY[h] = y;
        }
    }
}

public class MambaLayer : LayerBench<MambaBench>
{
    private MambaReference<float> _mixer = null!;
    protected override MambaBench Create() => new(Batch, Length);
    protected override void SetupReferenceStep() { _mixer = new(256, 16, 2, 4, 16); RefState = new float[_mixer.StateSize]; }
    protected override void ReferenceMixerStep()
    {
        string m = "backbone.layers.0.mixer.";
        var p = new MambaReference<float>.Params(P(m + "in_proj.weight"), P(m + "conv1d.weight"), P(m + "conv1d.bias"), P(m + "x_proj.weight"),
            P(m + "dt_proj.weight"), P(m + "dt_proj.bias"), P(m + "A_log"), P(m + "D"), P(m + "out_proj.weight"));
        _mixer.Step(p, RefState.AsSpan(0, _mixer.ConvStateSize), RefState.AsSpan(_mixer.ConvStateSize), RefX, RefY);
    }
}

public class RnnLayer : LayerBench<RnnBench>
{
    private RnnReference<float> _mixer = null!;
    protected override RnnBench Create() => new(Batch, Length);
    protected override void SetupReferenceStep() { _mixer = new(256, 256, Nonlinearity.Tanh); RefState = new float[_mixer.StateSize]; }
    protected override void ReferenceMixerStep()
    {
        string m = "layers.0.mixer.";
        _mixer.Step(new(P(m + "weight_ih"), P(m + "weight_hh"), P(m + "bias_ih"), P(m + "bias_hh"), P(m + "out_proj.weight"), P(m + "out_proj.bias")), RefState, RefX, RefY);
    }
}

public class IdsLayer : LayerBench<IdsBench>
{
    private IdsReference<float> _mixer = null!;
    protected override IdsBench Create() => new(Batch, Length);
    protected override void SetupReferenceStep() { _mixer = new(256, 16); RefState = new float[_mixer.StateSize]; }
    protected override void ReferenceMixerStep()
    {
        string m = "layers.0.mixer.";
        _mixer.Step(new(P(m + "A.weight"), P(m + "A.bias"), P(m + "B.weight"), P(m + "C.weight"), P(m + "C.bias")), RefState, RefX, RefY);
    }
}

public class AttentionLayer : LayerBench<AttentionBench>
{
    private AttentionReference<float> _mixer = null!;
    private int _position;
    protected override AttentionBench Create() => new(Batch, Length);
    protected override void SetupReferenceStep() { _mixer = new(256, 4); RefState = new float[AttentionReference<float>.CacheSize(Length, 256)]; }
    protected override void ReferenceMixerStep()
    {
        string m = "layers.0.mixer.";
        if (_position >= Length) _position = 0;
        _mixer.Step(new(P(m + "in_proj.weight"), P(m + "in_proj.bias"), P(m + "out_proj.weight"), P(m + "out_proj.bias")), RefState, _position++, RefX, RefY);
    }
}

/// <summary>The delta rule: the generated block trains in the chunked WY form; the reference goes token by token.</summary>
public class DeltaLayer : LayerBench<DeltaBench>
{
    private DeltaReference<float> _mixer = null!;
    protected override DeltaBench Create() => new(Batch, Length);
    protected override void SetupReferenceStep() { _mixer = new(256, 4, 64); RefState = new float[_mixer.StateSize]; }
    protected override void ReferenceMixerStep()
    {
        string m = "layers.0.mixer.";
        _mixer.Step(new(P(m + "q_proj.weight"), P(m + "k_proj.weight"), P(m + "v_proj.weight"), P(m + "b_proj.weight"), P(m + "a_proj.weight"),
            P(m + "A_log"), P(m + "dt_bias"), P(m + "q_conv1d.weight"), P(m + "k_conv1d.weight"), P(m + "v_conv1d.weight"),
            P(m + "g_proj.weight"), P(m + "o_norm.weight"), P(m + "o_proj.weight")), RefState, RefX, RefY);
    }
}

/// <summary>
/// The generated N = 16 selective scan alone on one core, at the Mamba block's shape (B 8, L 256, E 512).
/// Flops as executed per (b, t, e, n), an FMA counting 2: the exponent Δ·A·log₂e 1; 2^x as fraction 1, Horner 12
/// and scale 1; the input term Δu·B_t 1 and the state update FMA 2; the output FMA 2: 20. (Clamps and rounding
/// are not counted.)
/// </summary>
[MemoryDiagnoser]
public class MambaScan
{
    public const int B = 8, L = 256, E = 512, N = 16, R = 16;
    public const double ForwardFlops = 20.0 * B * L * E * N;
    private readonly MambaBench.Mamba_N16_Scan _scan = new(E, R + 2 * N, R, B, L) { MaxParallelism = 1 };
    private readonly float[] _u = Fill(B * L * E, 1, 0), _delta = Fill(B * L * E, 0.05, 0.06), _dbc = Fill(B * L * (R + 2 * N), 1, 0);
    private readonly float[] _aLog = Fill(E * N, 0.5, 1), _d = Fill(E, 1, 0), _ys = new float[B * L * E];
    private readonly float[] _dys = Fill(B * L * E, 1, 0), _du = new float[B * L * E], _dDelta = new float[B * L * E], _dDbc = new float[B * L * (R + 2 * N)];
    private readonly float[] _gA = new float[E * N], _gD = new float[E];

    private static float[] Fill(int n, double scale, double offset)
    {
        var rng = new Rng(5);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(offset + scale * Math.Abs(rng.Normal()));
        return a;
    }

    [Benchmark] public void Forward() => _scan.Forward(_u, _delta, _dbc, _aLog, _d, _ys, B, L);

    [Benchmark]
    public void ForwardBackward()
    {
        Forward();
        Backward();
    }

    /// <summary>The backward of the last <see cref="Forward"/> (timed alone by <c>--passes</c>).</summary>
    public void Backward() => _scan.Backward(_dys, _du, _dDelta, _dDbc, _gA, _gD);
}

/// <summary>
/// Model FLOPs of the layer benchmarks (d_model 256, batch 8, L = 256, vocab 16): the matrix products, the
/// sequence mixing (scan, recurrence, attention scores and sums) and the decoder; element-wise work is not
/// counted. Forward + Backward counts the products three times (y, dx, dW) and the mixing three times.
/// A Step is one token, attention at the average position of the benchmark's stream (L/2).
/// </summary>
public static class LayerFlops
{
    private const double H = 256, Rows = LayerBench<MambaBench>.Batch * LayerBench<MambaBench>.Length, Dec = 2 * H * 16;

    /// <summary>Per-token forward FLOPs of one block kind (attention at sequence position <paramref name="position"/>).</summary>
    private static double PerToken(string layer, double position) => layer switch
    {
        // S4D, counted in its recurrent form (the convolution mode of Forward executes FFTs instead): per complex
        // mode Ā x + u and 2·Re W x (8 + 4), 32 modes; the H → 2H GLU projection
        nameof(S4DLayer) => 12.0 * 32 * H + 2 * H * 2 * H,
        // S4, counted in its recurrent form too: the DPLR step per complex mode (p̄·x 4, v 12, D·v 6, p̄·Dv 4, the
        // rank-1 correction 6, 2·Re C x 4: 36), 32 modes; the H → 2H GLU projection
        nameof(S4Layer) => 36.0 * 32 * H + 2 * H * 2 * H,
        // in_proj, conv (width 4), x_proj (R + 2N = 48), dt_proj (R = 16), scan (20 per state), out_proj; E = 512, N = 16
        nameof(MambaLayer) => 2 * H * 1024 + 2 * 512 * 4 + 2 * 512 * 48 + 2 * 16 * 512 + 20.0 * 512 * 16 + 2 * 512 * H,
        // W_ih, W_hh, out_proj; hidden 256
        nameof(RnnLayer) => 3 * 2 * H * H,
        // A(x) (N² × H), B, the N×N product, C; N = 16
        nameof(IdsLayer) => 2 * H * 256 + 2 * H * 16 + 2 * 256 + 2 * 16 * H,
        // q|k|v, β, gate and g projections, the convolutions (width 4), the recurrence counted token by token (per head
        // of d = 64: the gate d², Sᵀk 2d², the update 2d², Sᵀq 2d²), o_proj; 4 heads
        nameof(DeltaLayer) => 2 * H * 768 + 2 * H * 8 + 2 * H * 256 + 2 * 768 * 4 + 7.0 * 4 * 64 * 64 + 2 * 256 * H,
        // in_proj, scores and weighted sums over position + 1 keys, out_proj, MLP (×4)
        _ => 2 * H * 3 * H + 4 * (position + 1) * H + 2 * H * H + 2 * 2 * H * 4 * H,
    };

    public static double Of(string layer, string pass)
    {
        const double length = LayerBench<MambaBench>.Length;
        double forward = layer == nameof(AttentionLayer)
            ? Enumerable.Range(0, (int)length).Sum(t => PerToken(layer, t)) * LayerBench<MambaBench>.Batch + Rows * Dec
            : (PerToken(layer, 0) + Dec) * Rows;
        return pass switch
        {
            "Forward" => forward,
            "ForwardBackward" => 3 * forward,
            _ => PerToken(layer, length / 2) + Dec,
        };
    }
}
