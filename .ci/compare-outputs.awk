# Compares two ssm-serve outputs number by number: |a − b| ≤ tol·max(1, |a|) (awk -v tol=1e-5 -f THIS A B);
# prints the largest difference and fails on a mismatch or on a different number of lines or values.
NR == FNR { line[FNR] = $0; lines = FNR; next }
{
    n = split(line[FNR], a, /[ \t]+/); m = split($0, b, /[ \t]+/)
    if (n != m) { printf "line %d: %d vs %d values\n", FNR, n, m; bad = 1; next }
    for (i = 1; i <= n; i++) {
        d = a[i] - b[i]; if (d < 0) d = -d
        s = a[i] < 0 ? -a[i] : a[i]; if (s < 1) s = 1
        if (d > max) max = d
        if (d > tol * s) bad = 1
    }
}
END { if (FNR != lines) { printf "%d vs %d lines\n", lines, FNR; bad = 1 }; printf "largest |JIT − AOT| difference: %g (tolerance %g)\n", max, tol; exit bad }
