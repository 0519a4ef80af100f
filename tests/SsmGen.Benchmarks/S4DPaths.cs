using System.Diagnostics;
using System.Numerics;
using SsmGen.Layers;
using SsmGen.Numerics;

namespace SsmGen.Benchmarks;

/// <summary>
/// The two ways the generated S4D forward can run one block (H 128, batch 1 and 16, both cores), timed in turn as a
/// training forward runs them, GELU and its slope included: the FFT convolution with a kernel already built, GELU in its
/// inverse's last stage, and the recurrence (<see cref="S4DRecurrence"/>) with GELU in its last pass, over state sizes and lengths — the
/// measurements behind <see cref="S4DRecurrence.Faster"/>'s cost model, whose choice the last column shows.
/// </summary>
public static class S4DPaths
{
    private const int H = 128, Batch = 16;

    /// <summary>Stable modes as trained S4D has them, |Ā| in [0.95, 0.9995), and their kernel K[h, l] = 2·Re Σ W·Ā^l.</summary>
    public static (float[] Modes, float[] Kernel) Table(int m, int length)
    {
        var rng = new Rng(5);
        var modes = new float[6 * H * m];
        var k = new float[H * length];
        for (int i = 0; i < H * m; i++)
        {
            var z = Complex.FromPolarCoordinates(0.9995 - 0.0495 * rng.NextDouble(), Math.PI * rng.NextDouble());
            var w = new Complex(0.01 * rng.Normal(), 0.01 * rng.Normal());
            (modes[i], modes[H * m + i], modes[2 * H * m + i], modes[3 * H * m + i]) = ((float)z.Real, (float)z.Imaginary, (float)w.Real, (float)w.Imaginary);
            int c = i / m;
            for (int l = 0; l < length; l++, w *= z) k[c * length + l] += (float)(2 * w.Real);
        }
        return (modes, k);
    }

    public static void Run(int repeats)
    {
        Console.WriteLine($"S4D forward of one block (H {H}, both cores) as a training forward runs it, GELU and its slope included: the FFT convolution (kernel built beforehand) with GELU in its inverse's last stage, against the recurrence with GELU in its last pass; fastest of {repeats} calls each, in turn.");
        Console.WriteLine("| B | L | M = N/2 | FFT, ms | recurrence, ms | FFT / recurrence | the rule takes |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (int batch in new[] { 1, Batch })
            foreach (int length in new[] { 64, 256, 784, 4096 })
                foreach (int m in new[] { 8, 16, 32, 64, 128 })
                {
                    var (modes, k) = Table(m, length);
                    var u = new float[batch * length * H];
                    var rng = new Rng(6);
                    for (int i = 0; i < u.Length; i++) u[i] = (float)rng.Normal();
                    var d = new float[H];
                    var y = new float[u.Length];
                    var g = new float[u.Length];
                    var conv = new CausalConvolution(H, batch, length);
                    var recurrence = new S4DRecurrence(H, m);
                    double fft = double.MaxValue, rec = double.MaxValue;
                    for (int r = 0; r <= repeats; r++) // the first round warms up
                    {
                        var clock = Stopwatch.StartNew();
                        conv.Forward(k, u, d, y, g, batch, length, y);
                        double f = clock.Elapsed.TotalMilliseconds;
                        recurrence.Forward(modes, m, d, u, y, g, batch, length, y);
                        if (r == 0) continue;
                        fft = Math.Min(fft, f);
                        rec = Math.Min(rec, clock.Elapsed.TotalMilliseconds - f);
                    }
                    Console.WriteLine($"| {batch} | {length} | {m} | {fft:F3} | {rec:F3} | {fft / rec:F2} | {(S4DRecurrence.Faster(m, length, batch) ? "recurrence" : "FFT")} |");
                }
    }
}
