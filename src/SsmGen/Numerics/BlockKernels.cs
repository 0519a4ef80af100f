using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SsmGen.Numerics;

/// <summary>Float kernels for the block around each mixer: LayerNorm, RMSNorm, GELU (tanh form), GLU, transposes.</summary>
public static class BlockKernels
{
    private const float Eps = 1e-5f;

    /// <summary>LayerNorm over rows of width h; keeps mean and 1/std per row. Rows run in parallel.</summary>
    public static unsafe void LayerNormForward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, Span<float> mean, Span<float> rstd, int rows, int h, Workspace? workspace = null)
    {
        Need(x, rows * h); Need(y, rows * h); Need(mean, rows); Need(rstd, rows); Need(w, h); Need(b, h);
        using var pass = PassProfile.Enter(Pass.Norm, 7.0 * rows * h, 8.0 * rows * h);
        fixed (float* px = x, pw = w, pb = b, py = y, pm = mean, pr = rstd)
            RowParallel.Run(&LayerNormRows, new RowArgs { P0 = px, P1 = pw, P2 = pb, P3 = py, P4 = pm, P5 = pr, Width = h }, rows, h, workspace);
    }

    /// <summary>
    /// RMSNorm over rows of width h: y = x·rstd·w with rstd = 1/√(mean(x²) + 1e-5), kept per row. It is LayerNorm
    /// with the mean fixed at 0 and no bias, and runs through the same row kernels.
    /// </summary>
    public static unsafe void RmsNormForward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, Span<float> rstd, int rows, int h, Workspace? workspace = null)
    {
        Need(x, rows * h); Need(y, rows * h); Need(rstd, rows); Need(w, h);
        using var pass = PassProfile.Enter(Pass.Norm, 4.0 * rows * h, 8.0 * rows * h);
        fixed (float* px = x, pw = w, py = y, pr = rstd)
            RowParallel.Run(&LayerNormRows, new RowArgs { P0 = px, P1 = pw, P3 = py, P5 = pr, Width = h, Count = RmsFlag }, rows, h, workspace);
    }

    /// <summary>dx += RMSNorm backward (dx = it, with <paramref name="overwriteDx"/>: dx is then not read); rows in parallel; dw accumulates.</summary>
    public static unsafe void RmsNormBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> rstd, ReadOnlySpan<float> dy, Span<float> dx, Span<float> dw, int rows, int h, Workspace? workspace = null, bool overwriteDx = false)
    {
        Need(x, rows * h); Need(dy, rows * h); Need(dx, rows * h); Need(rstd, rows); Need(w, h); Need(dw, h);
        using var pass = PassProfile.Enter(Pass.Norm, 10.0 * rows * h, 16.0 * rows * h);
        fixed (float* px = x, pw = w, pr = rstd, pdy = dy, pdx = dx, pdw = dw)
            RowParallel.RunWithPartials(&LayerNormBackwardRows, new RowArgs { P0 = px, P1 = pw, P3 = pr, P4 = pdy, P5 = pdx, Width = h, Count = RmsFlag, Extra = overwriteDx ? 1 : 0 }, rows, h, pdw, null, h, workspace);
    }

    /// <summary>RowArgs.Count value that turns the LayerNorm row kernels into RMSNorm (mean 0, no bias).</summary>
    private const int RmsFlag = 1;

    private static unsafe void LayerNormRows(ref RowArgs a, int r0, int r1)
    {
        int h = a.Width;
        bool rms = a.Count == RmsFlag;
        float* w = a.P1, b = a.P2;
        for (int r = r0; r < r1; r++)
        {
            float* x = a.P0 + (long)r * h, y = a.P3 + (long)r * h;
            // two passes (mean, then squared deviations): no cancellation when |mean| ≫ std
            float sum = 0, sq = 0;
            int i = 0;
            if (Vector512.IsHardwareAccelerated && !rms)
            {
                Vector512<float> vs = default;
                for (; i + 16 <= h; i += 16) vs += Vector512.Load(x + i);
                sum = Vector512.Sum(vs);
            }
            if (!rms) for (; i < h; i++) sum += x[i];
            float m = sum / h;
            i = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                Vector512<float> vq = default;
                var vm = Vector512.Create(m);
                for (; i + 16 <= h; i += 16) { var d = Vector512.Load(x + i) - vm; vq += d * d; }
                sq = Vector512.Sum(vq);
            }
            for (; i < h; i++) sq += (x[i] - m) * (x[i] - m);
            float rs = 1f / MathF.Sqrt(sq / h + Eps);
            if (!rms) a.P4[r] = m;
            a.P5[r] = rs;
            i = 0;
            if (rms)
            {
                if (Vector512.IsHardwareAccelerated)
                {
                    var vr = Vector512.Create(rs);
                    for (; i + 16 <= h; i += 16) (Vector512.Load(x + i) * vr * Vector512.Load(w + i)).Store(y + i);
                }
                for (; i < h; i++) y[i] = x[i] * rs * w[i];
                continue;
            }
            if (Vector512.IsHardwareAccelerated)
            {
                var vm = Vector512.Create(m); var vr = Vector512.Create(rs);
                for (; i + 16 <= h; i += 16)
                    Vector512.FusedMultiplyAdd((Vector512.Load(x + i) - vm) * vr, Vector512.Load(w + i), Vector512.Load(b + i)).Store(y + i);
            }
            for (; i < h; i++) y[i] = (x[i] - m) * rs * w[i] + b[i];
        }
    }

    /// <summary>
    /// dx += LayerNorm backward (dx = it, with <paramref name="overwriteDx"/>: dx is then not read, where a caller would
    /// otherwise clear it first); dw and db accumulate. Rows in parallel, each part summing its rows' dw and db.
    /// </summary>
    public static unsafe void LayerNormBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, ReadOnlySpan<float> dy, Span<float> dx, Span<float> dw, Span<float> db, int rows, int h, Workspace? workspace = null, bool overwriteDx = false)
    {
        Need(x, rows * h); Need(dy, rows * h); Need(dx, rows * h); Need(mean, rows); Need(rstd, rows); Need(w, h); Need(dw, h); Need(db, h);
        using var pass = PassProfile.Enter(Pass.Norm, 14.0 * rows * h, 16.0 * rows * h);
        // dw and db sum over rows: each part sums its own rows into [dw | db] partials, added in part order after
        fixed (float* px = x, pw = w, pm = mean, pr = rstd, pdy = dy, pdx = dx, pdw = dw, pdb = db)
            RowParallel.RunWithPartials(&LayerNormBackwardRows, new RowArgs { P0 = px, P1 = pw, P2 = pm, P3 = pr, P4 = pdy, P5 = pdx, Width = h, Extra = overwriteDx ? 1 : 0 }, rows, h, pdw, pdb, h, workspace);
    }

    /// <summary>
    /// Rows [r0, r1): dx += the backward (dx = it when Extra is 1), and this part's sums dw += dy·x̂ into partial[0, h),
    /// db += dy into partial[h, 2h) (LayerNorm; RMSNorm has dw only).
    /// </summary>
    private static unsafe void LayerNormBackwardRows(ref RowArgs a, int r0, int r1, float* partial)
    {
        int h = a.Width;
        bool overwrite = a.Extra == 1;
        float* w = a.P1, pdw = partial, pdb = partial + h;
        for (int r = r0; r < r1; r++)
        {
            float* x = a.P0 + (long)r * h, dy = a.P4 + (long)r * h, dx = a.P5 + (long)r * h;
            bool rms = a.Count == RmsFlag;
            float m = rms ? 0 : a.P2[r], rs = a.P3[r];
            // g = dy·w, x̂ = (x − m)·rs; then dx += rs·(g − mean g − x̂·mean(g·x̂))
            float sumG = 0, sumGX = 0;
            int i = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                Vector512<float> vg = default, vgx = default;
                var vm = Vector512.Create(m); var vrs = Vector512.Create(rs);
                for (; i + 16 <= h; i += 16)
                {
                    var g = Vector512.Load(dy + i) * Vector512.Load(w + i);
                    vg += g;
                    vgx += g * (Vector512.Load(x + i) - vm) * vrs;
                }
                sumG = Vector512.Sum(vg); sumGX = Vector512.Sum(vgx);
            }
            for (; i < h; i++) { float g = dy[i] * w[i]; sumG += g; sumGX += g * (x[i] - m) * rs; }
            // RMSNorm has no mean to subtract, so no mean-of-g term
            float mG = rms ? 0 : sumG / h, mGX = sumGX / h;
            i = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var vm = Vector512.Create(m); var vrs = Vector512.Create(rs); var vmG = Vector512.Create(mG); var vmGX = Vector512.Create(mGX);
                for (; i + 16 <= h; i += 16)
                {
                    var xhat = (Vector512.Load(x + i) - vm) * vrs;
                    var d = Vector512.Load(dy + i);
                    var g = d * Vector512.Load(w + i);
                    var d0 = vrs * (g - vmG - xhat * vmGX);
                    (overwrite ? d0 : Vector512.Load(dx + i) + d0).Store(dx + i);
                    Vector512.FusedMultiplyAdd(d, xhat, Vector512.Load(pdw + i)).Store(pdw + i);
                    if (!rms) (Vector512.Load(pdb + i) + d).Store(pdb + i);
                }
            }
            for (; i < h; i++)
            {
                float xhat = (x[i] - m) * rs;
                float d0 = rs * (dy[i] * w[i] - mG - xhat * mGX);
                dx[i] = overwrite ? d0 : dx[i] + d0;
                pdw[i] += dy[i] * xhat;
                if (!rms) pdb[i] += dy[i];
            }
        }
    }

    /// <summary>y = SiLU(x) = x·σ(x). Vectors in parallel.</summary>
    public static unsafe void SiluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        Need(y, x.Length);
        using var pass = PassProfile.Enter(Pass.ElementWise, 0, 8.0 * x.Length);
        if (!Vector512.IsHardwareAccelerated)
        {
            for (int i = 0; i < x.Length; i++) y[i] = x[i] / (1f + MathF.Exp(-x[i]));
            return;
        }
        fixed (float* px = x, py = y) RunVectors(&SiluVectors, new RowArgs { P0 = px, P1 = py, Count = x.Length });
    }

    private static unsafe void SiluVectors(ref RowArgs a, int v0, int v1)
    {
        for (int i = 16 * v0; i < 16 * v1; i += 16)
        {
            var v = Lanes(a.P0, i, a.Count);
            Store(v * FastMath.Sigmoid(v), a.P1, i, a.Count);
        }
    }

    /// <summary>
    /// Runs an element-wise body over the vectors of [0, args.Count) on the <see cref="WorkerPool"/>: the body gets vector
    /// indices [v0, v1) (elements 16·v0 to 16·v1, the last vector partial) and reads and writes through
    /// <see cref="Lanes(float*, int, int)"/> and <see cref="Store(Vector512{float}, float*, int, int)"/> with end Count,
    /// so every vector but the last is whole wherever the split falls.
    /// </summary>
    internal static unsafe void RunVectors(delegate*<ref RowArgs, int, int, void> body, RowArgs args) =>
        RowParallel.Run(body, args, (args.Count + 15) / 16, 16, grain: 64);

    // The element-wise kernels run their last partial vector through the same lanes, zero-padded, so an element's value
    // does not depend on where it lies: a streaming step's rows give what they give alone, whatever their neighbours.
    internal static Vector512<float> Lanes(ReadOnlySpan<float> s, int i)
    {
        if (i + 16 <= s.Length) return Vector512.Create(s.Slice(i, 16));
        Span<float> t = stackalloc float[16];
        t.Clear();
        s[i..].CopyTo(t);
        return Vector512.Create(t);
    }

    internal static unsafe Vector512<float> Lanes(float* p, int i, int end) =>
        i + 16 <= end ? Vector512.Load(p + i) : Lanes(new ReadOnlySpan<float>(p + i, end - i), 0);

    internal static unsafe void Store(Vector512<float> v, float* p, int i, int end)
    {
        if (i + 16 <= end) v.Store(p + i);
        else Store(v, new Span<float>(p + i, end - i), 0, end - i);
    }

    internal static void Store(Vector512<float> v, Span<float> d, int i, int end)
    {
        if (i + 16 <= end) { v.CopyTo(d.Slice(i, 16)); return; }
        Span<float> t = stackalloc float[16];
        v.CopyTo(t);
        t[..(end - i)].CopyTo(d[i..]);
    }

    /// <summary>dx = dy · SiLU'(x), SiLU'(x) = σ(x)(1 + x(1 − σ(x))). dx may alias dy. Vectors in parallel.</summary>
    public static unsafe void SiluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        Need(dy, x.Length); Need(dx, x.Length);
        using var pass = PassProfile.Enter(Pass.ElementWise, 0, 12.0 * x.Length);
        if (!Vector512.IsHardwareAccelerated)
        {
            for (int i = 0; i < x.Length; i++)
            {
                float s = 1f / (1f + MathF.Exp(-x[i]));
                dx[i] = dy[i] * s * (1 + x[i] * (1 - s));
            }
            return;
        }
        fixed (float* px = x, pdy = dy, pdx = dx) RunVectors(&SiluBackwardVectors, new RowArgs { P0 = px, P1 = pdy, P2 = pdx, Count = x.Length });
    }

    private static unsafe void SiluBackwardVectors(ref RowArgs a, int v0, int v1)
    {
        for (int i = 16 * v0; i < 16 * v1; i += 16)
        {
            var v = Lanes(a.P0, i, a.Count);
            var s = FastMath.Sigmoid(v);
            Store(Lanes(a.P1, i, a.Count) * s * (Vector512<float>.One + v * (Vector512<float>.One - s)), a.P2, i, a.Count);
        }
    }

    /// <summary>An output gate (Mamba's, the delta rule's): g = y · SiLU(z); g may alias y. Vectors in parallel.</summary>
    public static unsafe void SiluGateForward(ReadOnlySpan<float> y, ReadOnlySpan<float> z, Span<float> g)
    {
        Need(z, y.Length); Need(g, y.Length);
        using var pass = PassProfile.Enter(Pass.ElementWise, 0, 12.0 * y.Length);
        if (!Vector512.IsHardwareAccelerated)
        {
            for (int i = 0; i < y.Length; i++) g[i] = y[i] * z[i] / (1f + MathF.Exp(-z[i]));
            return;
        }
        fixed (float* py = y, pz = z, pg = g) RunVectors(&SiluGateVectors, new RowArgs { P0 = py, P1 = pz, P2 = pg, Count = y.Length });
    }

    private static unsafe void SiluGateVectors(ref RowArgs a, int v0, int v1)
    {
        for (int i = 16 * v0; i < 16 * v1; i += 16)
        {
            var vz = Lanes(a.P1, i, a.Count);
            Store(Lanes(a.P0, i, a.Count) * vz * FastMath.Sigmoid(vz), a.P2, i, a.Count);
        }
    }

    /// <summary>Its backward: dy = dg·SiLU(z), dz = dg·y·SiLU'(z) (both overwritten). Vectors in parallel.</summary>
    public static unsafe void SiluGateBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> z, ReadOnlySpan<float> dg, Span<float> dy, Span<float> dz)
    {
        Need(z, y.Length); Need(dg, y.Length); Need(dy, y.Length); Need(dz, y.Length);
        using var pass = PassProfile.Enter(Pass.ElementWise, 0, 20.0 * y.Length);
        if (!Vector512.IsHardwareAccelerated)
        {
            for (int i = 0; i < y.Length; i++)
            {
                float s = 1f / (1f + MathF.Exp(-z[i]));
                float g = dg[i];
                dy[i] = g * z[i] * s;
                dz[i] = g * y[i] * s * (1 + z[i] * (1 - s));
            }
            return;
        }
        fixed (float* py = y, pz = z, pdg = dg, pdy = dy, pdz = dz)
            RunVectors(&SiluGateBackwardVectors, new RowArgs { P0 = py, P1 = pz, P2 = pdg, P3 = pdy, P4 = pdz, Count = y.Length });
    }

    private static unsafe void SiluGateBackwardVectors(ref RowArgs a, int v0, int v1)
    {
        for (int i = 16 * v0; i < 16 * v1; i += 16)
        {
            var vz = Lanes(a.P1, i, a.Count);
            var s = FastMath.Sigmoid(vz);
            var g = Lanes(a.P2, i, a.Count);
            var vy = Lanes(a.P0, i, a.Count);
            Store(g * vz * s, a.P3, i, a.Count);
            Store(g * vy * s * (Vector512<float>.One + vz * (Vector512<float>.One - s)), a.P4, i, a.Count);
        }
    }

    private static void Need(ReadOnlySpan<float> s, int n)
    {
        if (s.Length < n) throw new ArgumentException($"A buffer holds {s.Length} values; {n} are needed.");
    }

    private const float GeluC = 0.7978845608028654f; // √(2/π)

    /// <summary>
    /// y = GELU(x), tanh form: ½x(1 + tanh(√(2/π)(x + 0.044715x³))). With <paramref name="slope"/> (which may be x itself),
    /// slope = GELU'(x) too, from the same tanh: all a backward needs of x, so it runs as a product instead of a
    /// second pass of transcendentals. Vectorized, rows in parallel.
    /// </summary>
    public static unsafe void GeluForward(ReadOnlySpan<float> x, Span<float> y, Workspace? workspace = null, Span<float> slope = default)
    {
        Need(y, x.Length);
        if (!slope.IsEmpty) Need(slope, x.Length);
        using var pass = PassProfile.Enter(Pass.ElementWise, 0, (slope.IsEmpty ? 8.0 : 12.0) * x.Length);
        fixed (float* px = x, py = y, ps = slope)
            RowParallel.Run(&GeluRows, new RowArgs { P0 = px, P1 = py, P2 = slope.IsEmpty ? null : ps, Width = 1 }, x.Length, 1, workspace);
    }

    /// <summary>dx = dy · GELU'(x) (overwrites; dx may alias dy).</summary>
    public static unsafe void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, Workspace? workspace = null)
    {
        Need(dy, x.Length); Need(dx, x.Length);
        using var pass = PassProfile.Enter(Pass.ElementWise, 0, 12.0 * x.Length);
        fixed (float* px = x, pdy = dy, pdx = dx)
            RowParallel.Run(&GeluBackwardRows, new RowArgs { P0 = px, P1 = pdy, P2 = pdx, Width = 1 }, x.Length, 1, workspace);
    }

    private static unsafe void GeluRows(ref RowArgs a, int i0, int i1)
    {
        if (!Vector512.IsHardwareAccelerated)
        {
            for (int j = i0; j < i1; j++)
            {
                float v = a.P0[j], t = MathF.Tanh(GeluC * (v + 0.044715f * v * v * v));
                a.P1[j] = 0.5f * v * (1f + t);
                if (a.P2 != null) a.P2[j] = GeluSlope(v, t);
            }
            return;
        }
        for (int i = i0; i < i1; i += 16)
        {
            var v = Lanes(a.P0, i, i1);
            var t = GeluTanh(v);
            Store(Gelu(v, t), a.P1, i, i1);
            if (a.P2 != null) Store(GeluSlope(v, t), a.P2, i, i1);
        }
    }

    /// <summary>GELU(v) = ½v(1 + t) from t = <see cref="GeluTanh"/>(v), the arithmetic of <see cref="GeluForward"/> (kernels that fuse it call this).</summary>
    internal static Vector512<float> Gelu(Vector512<float> v, Vector512<float> t) => Vector512.Create(0.5f) * v * (Vector512<float>.One + t);

    /// <summary>tanh(√(2/π)(v + 0.044715v³)), the inner term of GELU and of its slope.</summary>
    internal static Vector512<float> GeluTanh(Vector512<float> v) =>
        FastMath.Tanh(Vector512.Create(GeluC) * (v + Vector512.Create(0.044715f) * v * v * v));

    /// <summary>GELU'(v) from t = <see cref="GeluTanh"/>(v): ½(1 + t) + ½v(1 − t²)·√(2/π)(1 + 3·0.044715v²).</summary>
    internal static Vector512<float> GeluSlope(Vector512<float> v, Vector512<float> t)
    {
        var half = Vector512.Create(0.5f); var one = Vector512<float>.One;
        return half * (one + t) + half * v * (one - t * t) * Vector512.Create(GeluC) * (one + Vector512.Create(3 * 0.044715f) * v * v);
    }

    private static float GeluSlope(float v, float t) => 0.5f * (1f + t) + 0.5f * v * (1f - t * t) * GeluC * (1f + 3f * 0.044715f * v * v);

    private static unsafe void GeluBackwardRows(ref RowArgs a, int i0, int i1)
    {
        if (!Vector512.IsHardwareAccelerated)
        {
            for (int j = i0; j < i1; j++)
            {
                float v = a.P0[j];
                a.P2[j] = a.P1[j] * GeluSlope(v, MathF.Tanh(GeluC * (v + 0.044715f * v * v * v)));
            }
            return;
        }
        for (int i = i0; i < i1; i += 16)
        {
            var v = Lanes(a.P0, i, i1);
            Store(Lanes(a.P1, i, i1) * GeluSlope(v, GeluTanh(v)), a.P2, i, i1);
        }
    }

    /// <summary>GLU over rows of width 2h: y = a·σ(g), a the first half. Rows in parallel.</summary>
    public static unsafe void GluForward(ReadOnlySpan<float> o, Span<float> y, int rows, int h, Workspace? workspace = null)
    {
        Need(o, rows * 2 * h); Need(y, rows * h);
        using var pass = PassProfile.Enter(Pass.ElementWise, 0, 12.0 * rows * h);
        fixed (float* po = o, py = y)
            RowParallel.Run(&GluRows, new RowArgs { P0 = po, P1 = py, Width = h }, rows, h, workspace);
    }

    private static unsafe void GluRows(ref RowArgs a, int r0, int r1)
    {
        int h = a.Width;
        for (int r = r0; r < r1; r++)
        {
            float* o = a.P0 + (long)r * 2 * h, y = a.P1 + (long)r * h;
            int i = 0;
            if (Vector512.IsHardwareAccelerated)
                for (; i + 16 <= h; i += 16)
                    (Vector512.Load(o + i) * FastMath.Sigmoid(Vector512.Load(o + h + i))).Store(y + i);
            for (; i < h; i++) y[i] = o[i] / (1f + MathF.Exp(-o[h + i]));
        }
    }

    /// <summary>
    /// The block's tail in one pass over rows of width 2h: next = x + GLU(o)·m, where the inverted-dropout factor m is 0
    /// where <see cref="Rng.DropoutBits"/>(key, i) of the flat index i = row·h + column is below
    /// <paramref name="threshold"/>, else <paramref name="scale"/> (threshold 0 and scale 1: no dropout). Rows in parallel.
    /// </summary>
    public static unsafe void GluResidual(ReadOnlySpan<float> o, ReadOnlySpan<float> x, Span<float> next, int rows, int h, uint key, uint threshold, float scale, Workspace? workspace = null)
    {
        Need(o, rows * 2 * h); Need(x, rows * h); Need(next, rows * h);
        using var pass = PassProfile.Enter(Pass.ElementWise, 0, 16.0 * rows * h);
        fixed (float* po = o, px = x, pn = next)
            RowParallel.Run(&GluResidualRows, new RowArgs { P0 = po, P1 = px, P2 = pn, Width = h, Count = (int)key, Extra = (int)threshold, Scale = scale }, rows, 3 * h, workspace);
    }

    /// <summary>
    /// The backward of <see cref="GluResidual"/> to the GLU's input: dO (rows, 2h) from dL/d(next) with the same mask
    /// (overwrites; the residual's own path, dL/dx += dL/d(next), is the caller's). With <paramref name="dBias"/> (2h), the
    /// gradient of the bias of the linear that made O too, dBias += Σ_rows dO, summed per part as the rows are written (a
    /// pass over dO fewer than the product's own bias sum).
    /// </summary>
    public static unsafe void GluResidualBackward(ReadOnlySpan<float> o, ReadOnlySpan<float> dNext, Span<float> dO, int rows, int h, uint key, uint threshold, float scale, Workspace? workspace = null, Span<float> dBias = default)
    {
        Need(o, rows * 2 * h); Need(dNext, rows * h); Need(dO, rows * 2 * h);
        if (!dBias.IsEmpty) Need(dBias, 2 * h);
        using var pass = PassProfile.Enter(Pass.ElementWise, 0, 20.0 * rows * h);
        fixed (float* po = o, pdn = dNext, pdo = dO, pdb = dBias)
        {
            var args = new RowArgs { P0 = po, P1 = pdn, P2 = pdo, Width = h, Count = (int)key, Extra = (int)threshold, Scale = scale };
            if (dBias.IsEmpty) RowParallel.Run(&GluResidualBackwardRows, args, rows, 3 * h, workspace);
            else RowParallel.RunWithPartials(&GluResidualBackwardRowsSummed, args, rows, 3 * h, pdb, null, 2 * h, workspace);
        }
    }

    private static unsafe void GluResidualBackwardRows(ref RowArgs a, int r0, int r1) => GluResidualBackwardRowsSummed(ref a, r0, r1, null);

    /// <summary>The dropout factor of elements [i, i + 16): 0 where <see cref="Rng.DropoutBits"/> falls below the threshold, else the scale.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // called, it passed its vectors through memory (1% of the sMNIST step)
    private static Vector512<float> DropoutFactors(int i, uint key, uint threshold, float scale)
    {
        var h = (Vector512.Create((uint)i) + Vector512.Create(0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 9u, 10u, 11u, 12u, 13u, 14u, 15u)) * Rng.DropoutGolden + Vector512.Create(key);
        h ^= Vector512.ShiftRightLogical(h, 16); h *= Rng.DropoutMix1;
        h ^= Vector512.ShiftRightLogical(h, 13); h *= Rng.DropoutMix2;
        h ^= Vector512.ShiftRightLogical(h, 16);
        return Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(h, Vector512.Create(threshold)).AsSingle(), Vector512.Create(scale), Vector512<float>.Zero);
    }

    private static float DropoutFactor(int i, uint key, uint threshold, float scale) => Rng.DropoutBits(key, (uint)i) < threshold ? 0f : scale;

    private static unsafe void GluResidualRows(ref RowArgs a, int r0, int r1)
    {
        int h = a.Width;
        uint key = (uint)a.Count, threshold = (uint)a.Extra;
        float scale = a.Scale;
        for (int r = r0; r < r1; r++)
        {
            float* o = a.P0 + (long)r * 2 * h, x = a.P1 + (long)r * h, next = a.P2 + (long)r * h;
            int c = 0, at = r * h;
            if (Vector512.IsHardwareAccelerated)
                for (; c + 16 <= h; c += 16)
                    (Vector512.Load(x + c) + Vector512.Load(o + c) * FastMath.Sigmoid(Vector512.Load(o + h + c)) * DropoutFactors(at + c, key, threshold, scale)).Store(next + c);
            for (; c < h; c++) next[c] = x[c] + o[c] / (1f + MathF.Exp(-o[h + c])) * DropoutFactor(at + c, key, threshold, scale);
        }
    }

    /// <summary>Rows [r0, r1) of <see cref="GluResidualBackward"/>; with <paramref name="sums"/> (2h), sums += the rows of dO.</summary>
    internal static unsafe void GluResidualBackwardRowsSummed(ref RowArgs a, int r0, int r1, float* sums)
    {
        int h = a.Width;
        uint key = (uint)a.Count, threshold = (uint)a.Extra;
        float scale = a.Scale;
        for (int r = r0; r < r1; r++)
        {
            float* o = a.P0 + (long)r * 2 * h, dn = a.P1 + (long)r * h, dO = a.P2 + (long)r * 2 * h;
            int c = 0, at = r * h;
            if (Vector512.IsHardwareAccelerated)
                for (; c + 16 <= h; c += 16)
                {
                    var s = FastMath.Sigmoid(Vector512.Load(o + h + c));
                    var g = Vector512.Load(dn + c) * DropoutFactors(at + c, key, threshold, scale);
                    var value = g * s; var gate = g * Vector512.Load(o + c) * s * (Vector512<float>.One - s);
                    value.Store(dO + c);
                    gate.Store(dO + h + c);
                    if (sums is null) continue;
                    (Vector512.Load(sums + c) + value).Store(sums + c);
                    (Vector512.Load(sums + h + c) + gate).Store(sums + h + c);
                }
            for (; c < h; c++)
            {
                float s = 1f / (1f + MathF.Exp(-o[h + c])), g = dn[c] * DropoutFactor(at + c, key, threshold, scale);
                dO[c] = g * s;
                dO[h + c] = g * o[c] * s * (1f - s);
                if (sums is null) continue;
                sums[c] += dO[c];
                sums[h + c] += dO[h + c];
            }
        }
    }

    /// <summary>
    /// Mean pooling over time: pooled (B, H) = (1/L)·Σ_t x[b, t] for x (B, L, H), each batch row summed in time order
    /// (the same sums on any core count). Batch rows in parallel.
    /// </summary>
    public static unsafe void MeanPool(ReadOnlySpan<float> x, Span<float> pooled, int batch, int length, int h, Workspace? workspace = null)
    {
        CheckPooling(batch, length, h);
        Need(x, batch * length * h); Need(pooled, batch * h);
        fixed (float* px = x, pp = pooled)
            RowParallel.Run(&MeanPoolRows, new RowArgs { P0 = px, P1 = pp, Width = h, Count = length }, batch, (long)length * h, workspace, grain: 1);
    }

    private static unsafe void MeanPoolRows(ref RowArgs a, int b0, int b1)
    {
        int h = a.Width, length = a.Count;
        for (int b = b0; b < b1; b++)
        {
            var sum = new Span<float>(a.P1 + (long)b * h, h);
            sum.Clear();
            for (int t = 0; t < length; t++) TensorPrimitives.Add(sum, new ReadOnlySpan<float>(a.P0 + ((long)b * length + t) * h, h), sum);
            TensorPrimitives.Multiply(sum, 1f / length, sum);
        }
    }

    private static void CheckPooling(int batch, int length, int h)
    {
        if (batch < 1 || length < 1 || h < 1) throw new ArgumentOutOfRangeException(nameof(batch), $"Batch ({batch}), length ({length}) and width ({h}) must be positive.");
        if ((long)batch * length * h > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(length), $"(B, L, H) = ({batch}, {length}, {h}) holds more values than a buffer can.");
    }

    /// <summary>The backward of <see cref="MeanPool"/>: dx[b, t] = dPooled[b] / L for every t (overwrites dx). Rows in parallel.</summary>
    public static unsafe void MeanPoolBackward(ReadOnlySpan<float> dPooled, Span<float> dx, int batch, int length, int h, Workspace? workspace = null)
    {
        CheckPooling(batch, length, h);
        Need(dPooled, batch * h); Need(dx, batch * length * h);
        fixed (float* pd = dPooled, px = dx)
            RowParallel.Run(&MeanPoolBackwardRows, new RowArgs { P0 = pd, P1 = px, Width = h, Count = length }, batch * length, h, workspace);
    }

    private static unsafe void MeanPoolBackwardRows(ref RowArgs a, int r0, int r1)
    {
        int h = a.Width, length = a.Count;
        for (int r = r0; r < r1; r++)
            TensorPrimitives.Multiply(new ReadOnlySpan<float>(a.P0 + (long)(r / length) * h, h), 1f / length, new Span<float>(a.P1 + (long)r * h, h));
    }

    /// <summary>(B, L, H) → (B, H, L).</summary>
    public static void ToChannelMajor(ReadOnlySpan<float> src, Span<float> dst, int batch, int length, int h)
    {
        for (int b = 0; b < batch; b++)
        {
            int o = b * length * h;
            for (int t = 0; t < length; t++)
                for (int c = 0; c < h; c++) dst[o + c * length + t] = src[o + t * h + c];
        }
    }

    /// <summary>(B, H, L) → (B, L, H).</summary>
    public static void ToTimeMajor(ReadOnlySpan<float> src, Span<float> dst, int batch, int length, int h)
    {
        for (int b = 0; b < batch; b++)
        {
            int o = b * length * h;
            for (int c = 0; c < h; c++)
                for (int t = 0; t < length; t++) dst[o + t * h + c] = src[o + c * length + t];
        }
    }
}
