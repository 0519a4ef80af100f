# Compares two ssm-serve outputs (awk -v tol=1e-5 -f THIS EXPECTED ACTUAL) field by field: identical fields pass,
# numbers pass when |a − b| ≤ tol·max(1, |a|), anything else fails (NaN, Infinity, text); so do different numbers of
# lines or fields, and an empty expected file. Prints the largest numeric difference.
function numeric(s) { return s ~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ }
FILENAME == ARGV[1] { line[FNR] = $0; lines = FNR; next }
{
    seen = FNR
    n = split(line[FNR], a, /[ \t]+/); m = split($0, b, /[ \t]+/)
    if (n != m) { printf "line %d: %d vs %d fields\n", FNR, n, m; bad = 1; next }
    for (i = 1; i <= n; i++) {
        if (a[i] == b[i] "") continue
        if (!numeric(a[i]) || !numeric(b[i])) { printf "line %d, field %d: '%s' vs '%s'\n", FNR, i, a[i], b[i]; bad = 1; continue }
        d = a[i] - b[i]; if (d < 0) d = -d
        s = a[i] < 0 ? -a[i] : a[i]; if (s < 1) s = 1
        if (d > max) max = d
        if (d > tol * s) { printf "line %d, field %d: %s vs %s\n", FNR, i, a[i], b[i]; bad = 1 }
    }
}
END {
    if (lines == 0) { print "the expected output is empty"; bad = 1 }
    if (seen != lines) { printf "%d vs %d lines\n", lines, seen; bad = 1 }
    printf "largest |JIT − AOT| difference: %g (tolerance %g)\n", max, tol
    exit bad
}
