using System.Numerics;

namespace SsmGen;

/// <summary>
/// The HiPPO-LegS state-space matrices and their normal-plus-low-rank (NPLR) form, as S4 uses them
/// ("Efficiently Modeling Long Sequences with Structured State Spaces"; "On the Parameterization and Initialization
/// of Diagonal State Space Models"). In the original basis, for n, k &lt; N:
/// <code>
///   A[n,k] = −√((2n+1)(2k+1)) for n &gt; k,  −(n+1) for n = k,  0 for n &lt; k;   B[n] = √(2n+1);   P[n] = √(n + ½)
///   A = (−½·I + T) − P·Pᵀ,   T skew-symmetric: T[n,k] = −½·√((2n+1)(2k+1)) for n &gt; k, +½·√(…) for n &lt; k
/// </code>
/// The normal part −½·I + T is diagonalized by a unitary V: its eigenvalues are −½ ± iω. In that basis
/// A = Λ − p̃·p̃* with p̃ = V*·P, and B becomes b̃ = V*·B. The conjugate half is implied (everything is real in the
/// original basis), so only the N/2 eigenvalues with ω &gt; 0 are kept. Double precision, built once at
/// initialization (O(N³)).
/// </summary>
public static class HippoLegS
{
    /// <summary>The NPLR of HiPPO-LegS for the N/2 eigenvalues −½ + iω (ω ascending) of its normal part.</summary>
    /// <param name="Frequencies">ω, N/2 values, ascending.</param>
    /// <param name="Vectors">V (N × N/2): column k is the unit eigenvector of eigenvalue −½ + iω_k.</param>
    /// <param name="P">p̃ = V*·P (N/2).</param>
    /// <param name="B">b̃ = V*·B (N/2).</param>
    public sealed record Nplr(double[] Frequencies, Complex[,] Vectors, Complex[] P, Complex[] B);

    /// <summary>A, B and P in the original basis (N × N, N, N).</summary>
    public static (double[,] A, double[] B, double[] P) Dense(int n)
    {
        CheckSize(n, even: false);
        var a = new double[n, n];
        var b = new double[n];
        var p = new double[n];
        for (int i = 0; i < n; i++)
        {
            b[i] = Math.Sqrt(2.0 * i + 1);
            p[i] = Math.Sqrt(i + 0.5);
            for (int k = 0; k < n; k++) a[i, k] = i > k ? -Math.Sqrt((2.0 * i + 1) * (2.0 * k + 1)) : i == k ? -(i + 1.0) : 0;
        }
        return (a, b, p);
    }

    /// <summary>T, the skew-symmetric part of A + P·Pᵀ = −½·I + T.</summary>
    public static double[,] Skew(int n)
    {
        CheckSize(n, even: false);
        var t = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < n; k++)
                t[i, k] = i == k ? 0 : (i > k ? -0.5 : 0.5) * Math.Sqrt((2.0 * i + 1) * (2.0 * k + 1));
        return t;
    }

    /// <summary>
    /// The N/2 positive frequencies ω of the normal part, ascending: ω² are the eigenvalues (each twice) of the
    /// symmetric matrix −T².
    /// </summary>
    public static double[] Frequencies(int n) => Decompose(n, vectors: false).Frequencies;

    /// <summary>The NPLR form (N even). Each eigenvector comes from a unit eigenvector u of −T² with eigenvalue ω²:
    /// v = (u − i·T·u/ω)/√2 satisfies T·v = iω·v and |v| = 1.</summary>
    public static Nplr Diagonalize(int n) => Decompose(n, vectors: true);

    private static Nplr Decompose(int n, bool vectors)
    {
        CheckSize(n, even: true);
        var t = Skew(n);
        var m = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int k = 0; k < n; k++) s -= t[i, k] * t[k, j];
                m[i, j] = s;
            }
        var (values, u) = SymmetricEigen(m, vectors);
        var order = Enumerable.Range(0, n).OrderBy(i => values[i]).ToArray();
        int half = n / 2;
        var w = new double[half];
        var v = new Complex[n, vectors ? half : 0];
        var (_, b, p) = Dense(n);
        var pt = new Complex[vectors ? half : 0];
        var bt = new Complex[vectors ? half : 0];
        for (int k = 0; k < half; k++)
        {
            w[k] = Math.Sqrt(Math.Max(0, 0.5 * (values[order[2 * k]] + values[order[2 * k + 1]])));
            if (!vectors) continue;
            int col = order[2 * k];
            for (int i = 0; i < n; i++)
            {
                double tu = 0;
                for (int j = 0; j < n; j++) tu += t[i, j] * u![j, col];
                v[i, k] = new Complex(u![i, col], -tu / w[k]) / Math.Sqrt(2);
            }
            for (int i = 0; i < n; i++)
            {
                pt[k] += Complex.Conjugate(v[i, k]) * p[i];
                bt[k] += Complex.Conjugate(v[i, k]) * b[i];
            }
        }
        return new Nplr(w, v, pt, bt);
    }

    /// <summary>
    /// The discrete basis functions of HiPPO-LegS under the bilinear rule with step Δ: row l holds Āˡ·B̄ (N values),
    /// for l &lt; length; the state's coordinate n convolves the input with column n. With <paramref name="normalPart"/>,
    /// those of (A + P·Pᵀ, B/2) instead, the normal part S4D-LegS keeps (Theorem 3 of the S4D paper: both bases
    /// agree as N → ∞). Dense, in the original basis: O(N³ + length·N²).
    /// </summary>
    public static double[,] Basis(int n, double dt, int length, bool normalPart)
    {
        if (!(dt > 0) || length < 1) throw new ArgumentOutOfRangeException(nameof(dt), "The step must be positive and the length at least 1.");
        var (a, b, p) = Dense(n);
        // [I − Δ/2·A | I + Δ/2·A | Δ·B], reduced to [I | Ā | B̄]
        var m = new double[n, 2 * n + 1];
        for (int i = 0; i < n; i++)
        {
            for (int k = 0; k < n; k++)
            {
                double aik = a[i, k] + (normalPart ? p[i] * p[k] : 0);
                m[i, k] = (i == k ? 1 : 0) - dt / 2 * aik;
                m[i, n + k] = (i == k ? 1 : 0) + dt / 2 * aik;
            }
            m[i, 2 * n] = dt * b[i] * (normalPart ? 0.5 : 1);
        }
        for (int col = 0; col < n; col++)
        {
            int pivot = col;
            for (int r = col + 1; r < n; r++) if (Math.Abs(m[r, col]) > Math.Abs(m[pivot, col])) pivot = r;
            for (int c = 0; c <= 2 * n; c++) (m[col, c], m[pivot, c]) = (m[pivot, c], m[col, c]);
            double inv = 1 / m[col, col];
            for (int c = 0; c <= 2 * n; c++) m[col, c] *= inv;
            for (int r = 0; r < n; r++)
            {
                double f = m[r, col];
                if (r == col || f == 0) continue;
                for (int c = 0; c <= 2 * n; c++) m[r, c] -= f * m[col, c];
            }
        }
        var basis = new double[length, n];
        var x = new double[n];
        var next = new double[n];
        for (int i = 0; i < n; i++) x[i] = m[i, 2 * n];
        for (int l = 0; l < length; l++)
        {
            for (int i = 0; i < n; i++) basis[l, i] = x[i];
            for (int i = 0; i < n; i++)
            {
                double s = 0;
                for (int k = 0; k < n; k++) s += m[i, n + k] * x[k];
                next[i] = s;
            }
            (x, next) = (next, x);
        }
        return basis;
    }

    private static void CheckSize(int n, bool even)
    {
        if (n < 1 || (even && n % 2 != 0))
            throw new ArgumentOutOfRangeException(nameof(n), n, even ? "HiPPO-LegS's NPLR form needs an even state size N ≥ 2." : "The state size must be positive.");
    }

    /// <summary>
    /// Eigenvalues (and, when asked, eigenvectors as columns) of a real symmetric matrix by cyclic Jacobi rotations;
    /// initialization time only.
    /// </summary>
    internal static (double[] Values, double[,]? Vectors) SymmetricEigen(double[,] matrix, bool vectors)
    {
        int n = matrix.GetLength(0);
        var a = (double[,])matrix.Clone();
        double[,]? q = null;
        if (vectors)
        {
            q = new double[n, n];
            for (int i = 0; i < n; i++) q[i, i] = 1;
        }
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0, diag = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    if (i != j) off += a[i, j] * a[i, j]; else diag += a[i, i] * a[i, i];
            if (off <= 1e-26 * diag) break;
            for (int p = 0; p < n - 1; p++)
                for (int r = p + 1; r < n; r++)
                {
                    if (a[p, r] == 0) continue;
                    double theta = (a[r, r] - a[p, p]) / (2 * a[p, r]);
                    double tt = theta == 0 ? 1 : Math.Sign(theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    double c = 1 / Math.Sqrt(tt * tt + 1), s = tt * c;
                    for (int k = 0; k < n; k++)
                    {
                        double akp = a[k, p], akr = a[k, r];
                        a[k, p] = c * akp - s * akr;
                        a[k, r] = s * akp + c * akr;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double apk = a[p, k], ark = a[r, k];
                        a[p, k] = c * apk - s * ark;
                        a[r, k] = s * apk + c * ark;
                    }
                    if (q is null) continue;
                    for (int k = 0; k < n; k++)
                    {
                        double qkp = q[k, p], qkr = q[k, r];
                        q[k, p] = c * qkp - s * qkr;
                        q[k, r] = s * qkp + c * qkr;
                    }
                }
        }
        var d = new double[n];
        for (int i = 0; i < n; i++) d[i] = a[i, i];
        return (d, q);
    }
}
