using System.Runtime.Intrinsics;

namespace SsmGen.Numerics;

// What a piece of a sequence needs to be run on its own (SsmGen.Layers.MambaStatePassing): the state entering it, the
// state leaving it, the product of its transitions, and the adjoints that cross its two ends. The scan of a piece is
// affine in its entering state h_in: h_end = P ⊙ h_in + h_end(from zero), P = Π_t Ā_t; and its backward is affine in the
// adjoint arriving at its end: dL/dh_in = a(from zero) + P ⊙ dL/dh_end.
public abstract partial class SelectiveScan
{
    /// <summary>The state entering each batch row at t = 0, (B, N, E), or null for zero (set by <see cref="ForwardFrom"/>).</summary>
    protected float[]? Entering;
    /// <summary>dL/d(the state after the last step) from beyond the sequence, (B, N, E), or null for zero (during <see cref="BackwardWith"/>).</summary>
    protected float[]? Terminal;
    /// <summary>Each batch row's state after the last step of the last forward, (B, N, E).</summary>
    protected internal readonly float[] EndStates;
    private float[] _adjoint = [];
    private double[] _products = [];

    /// <summary>Index of (b, n, e) in the (B, N, E) entering, end and adjoint states.</summary>
    protected int EndIndex(int b, int n, int e) => (b * N + n) * E + e;

    /// <summary>The entering state of channels [e0, e0 + 16) of state n (zero without one).</summary>
    protected Vector512<float> StartState(int b, int n, int e0) =>
        Entering is null ? Vector512<float>.Zero : Load(Entering, EndIndex(b, n, e0));

    /// <summary>The adjoint arriving at the end of channels [e0, e0 + 16) of state n (zero without one).</summary>
    protected Vector512<float> EndAdjoint(int b, int n, int e0) =>
        Terminal is null ? Vector512<float>.Zero : Load(Terminal, EndIndex(b, n, e0));

    /// <summary>P = Π_t Ā_t over the last forward, (B, N, E), the product taken in double.</summary>
    internal void DecayProducts(Span<float> products)
    {
        int width = N * E;
        if (_products.Length < width) _products = new double[width];
        var acc = _products.AsSpan(0, width);
        for (int b = 0; b < Batch; b++)
        {
            // exp(Δ·A) multiplies as a sum of exponents; 2·exp(Δ·A) − 1 has to be multiplied out
            acc.Fill(Negative ? 1 : 0);
            for (int t = 0; t < Length; t++)
            {
                int row = (b * Length + t) * E;
                for (int n = 0; n < N; n++)
                    for (int e = 0; e < E; e++)
                    {
                        float x = Stability.LogDecay(Delta[row + e] * AT[RateIndex(n, e)]);
                        if (Negative) acc[n * E + e] *= Stability.NegativeTransition(MathF.Exp(x));
                        else acc[n * E + e] += x;
                    }
            }
            for (int i = 0; i < width; i++) products[b * width + i] = (float)(Negative ? acc[i] : Math.Exp(acc[i]));
        }
    }

    /// <summary>
    /// dL/dh_in of the last forward with nothing arriving at its end: g ← Ā_t ⊙ (g + C_t·dy_t) from t = L − 1 down to 0,
    /// into <paramref name="adjoints"/> (B, N, E). dys: dL/d(the scan's output) (B, L, E).
    /// </summary>
    internal void EnteringAdjoints(float[] dys, Span<float> adjoints)
    {
        Need(dys, (long)Batch * Length * E, nameof(dys));
        int width = N * E;
        if (_adjoint.Length < width) _adjoint = new float[width];
        var g = _adjoint;
        for (int b = 0; b < Batch; b++)
        {
            Array.Clear(g, 0, width);
            for (int t = Length - 1; t >= 0; t--)
            {
                int row = b * Length + t, o = row * E, c = row * DbcWidth + BOffset + N;
                for (int n = 0; n < N; n++)
                {
                    float cn = Dbc[c + n];
                    int e = 0;
                    if (Vector512.IsHardwareAccelerated)
                        for (; e + Lanes <= E; e += Lanes)
                        {
                            var decay = FastMath.Exp2Decay(Load(Delta, o + e) * Load(AT2, RateIndex(n, e)));
                            var transition = Negative ? Stability.NegativeTransition(decay) : decay;
                            Store((Load(g, n * E + e) + Vector512.Create(cn) * Load(dys, o + e)) * transition, g, n * E + e);
                        }
                    for (; e < E; e++)
                    {
                        float decay = MathF.Exp(Stability.LogDecay(Delta[o + e] * AT[RateIndex(n, e)]));
                        g[n * E + e] = (g[n * E + e] + cn * dys[o + e]) * (Negative ? Stability.NegativeTransition(decay) : decay);
                    }
                }
            }
            g.AsSpan(0, width).CopyTo(adjoints.Slice(b * width, width));
        }
    }
}
