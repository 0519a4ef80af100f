using SsmGen.Numerics;
using SsmGen.Reference;
using SsmGen.Tests.Reference;
using Xunit.Abstractions;

namespace SsmGen.Tests.Numerics;

/// <summary>S4's float core against the double reference: the kernel, its backward, and the DPLR step against the dense recurrence.</summary>
public class S4KernelTests(ITestOutputHelper output)
{
    // M = 7 modes: a vector of modes (Vector<double> of 4) and a scalar tail of 3 in the core's loops.
    private const int H = 3, M = 7, Lk = 64;

    /// <summary>The parameter tensors as floats, in the reference's order: log_dt, log_A_real, A_imag, P, B, C, D.</summary>
    private static float[][] Split(double[] a)
    {
        var sizes = S4ReferenceTests.Sizes(H, M);
        var parts = new float[7][];
        for (int i = 0, o = 0; i < 7; o += sizes[i], i++) parts[i] = a.Skip(o).Take(sizes[i]).Select(v => (float)v).ToArray();
        return parts;
    }

    /// <summary>The flat float buffer in the reference's order and where each SSM tensor starts in it.</summary>
    private static (float[] Flat, S4Tensors At) Flat(double[] a)
    {
        var sizes = S4ReferenceTests.Sizes(H, M);
        var o = new int[7];
        for (int i = 1; i < 7; i++) o[i] = o[i - 1] + sizes[i - 1];
        return (a.Select(v => (float)v).ToArray(), new S4Tensors(o[0], o[1], o[2], o[3], o[4], o[5]));
    }

    /// <summary>The parameters rounded to float and back, so both sides see the same numbers.</summary>
    private static double[] Rounded(double[] a) => a.Select(v => (double)(float)v).ToArray();

    private static double Relative(ReadOnlySpan<float> x, ReadOnlySpan<double> y)
    {
        double worst = 0, scale = 1e-30;
        for (int i = 0; i < y.Length; i++) { worst = Math.Max(worst, Math.Abs(x[i] - y[i])); scale = Math.Max(scale, Math.Abs(y[i])); }
        return worst / scale;
    }

    [Theory]
    [InlineData(64)]
    [InlineData(41)]
    public void TheKernelAndItsBackwardMatchTheReference(int length)
    {
        var a = Rounded(S4ReferenceTests.RandomParameters(H, M, 8));
        var f = Split(a);
        var core = new S4Kernel(H, 2 * M, Lk, length);
        var reference = new S4Reference<double>(H, 2 * M, Lk);
        var k = new float[H * length];
        var (flat, at) = Flat(a);
        core.Kernel(flat, at, k, length);
        double kernelError = Relative(k, reference.Kernel(S4ReferenceTests.View(a, H, M), length));

        var dk = TestConfigs.RandomArray(H * length, 9);
        var g = new double[a.Length];
        reference.KernelBackward(S4ReferenceTests.View(a, H, M), S4ReferenceTests.View(g, H, M), dk, length);
        var gflat = new float[a.Length];
        core.KernelBackward(flat, gflat, at, dk.Select(v => (float)v).ToArray(), length);
        var gf = Split(gflat.Select(v => (double)v).ToArray());
        var gs = Split(g);
        string[] names = ["log_dt", "log_A_real", "A_imag", "P", "B", "C"];
        output.WriteLine($"L = {length}: kernel {kernelError:E2}");
        Assert.True(kernelError < 2e-6, $"kernel error {kernelError:E2}");
        for (int t = 0; t < 6; t++)
        {
            double e = Relative(gf[t], gs[t].Select(v => (double)v).ToArray());
            output.WriteLine($"  {names[t],-10} {e:E2}");
            Assert.True(e < 2e-5, $"{names[t]}: gradient error {e:E2}");
        }
    }

    [Fact]
    public void TheStepMatchesTheDenseRecurrence()
    {
        const int length = Lk;
        var a = Rounded(S4ReferenceTests.RandomParameters(H, M, 12));
        var f = Split(a);
        var core = new S4Kernel(H, 2 * M, Lk, length);
        var reference = new S4Reference<double>(H, 2 * M, Lk);
        var u = TestConfigs.RandomArray(length * H, 13);
        var expected = new double[u.Length];
        reference.Recurrent(S4ReferenceTests.View(a, H, M), u, expected, 1, length);
        var tables = new float[core.StepTableSize];
        core.Prepare(f[0], f[1], f[2], f[3], f[4], f[5], tables);
        var state = new float[2 * H * M];
        var y = new float[length * H];
        var ut = new float[H];
        for (int t = 0; t < length; t++)
        {
            for (int h = 0; h < H; h++) ut[h] = (float)u[t * H + h];
            core.Step(tables, f[6], state, ut, y.AsSpan(t * H, H));
        }
        double e = Relative(y, expected);
        output.WriteLine($"step vs dense recurrence over {length} steps: {e:E2}");
        Assert.True(e < 1e-5, $"step error {e:E2}");
        // and the convolution agrees with both
        var k = new float[H * length];
        var (flat, at) = Flat(a);
        core.Kernel(flat, at, k, length);
        var conv = new double[u.Length];
        BlockReference<double>.CausalConvolution(k.Select(v => (double)v).ToArray(), a.Skip(a.Length - H).ToArray(), u, conv, H, 1, length);
        Assert.True(Relative(y, conv) < 1e-5);
    }

    [Fact]
    public void KernelBackwardAndStepAllocateNothing()
    {
        var a = Rounded(S4ReferenceTests.RandomParameters(H, M, 8));
        var f = Split(a);
        var (flat, at) = Flat(a);
        var core = new S4Kernel(H, 2 * M, Lk, Lk);
        var k = new float[H * Lk];
        var g = new float[a.Length];
        var tables = new float[core.StepTableSize];
        core.Prepare(f[0], f[1], f[2], f[3], f[4], f[5], tables);
        var state = new float[2 * H * M];
        var u = new float[H];
        var y = new float[H];
        void Run()
        {
            core.Kernel(flat, at, k, Lk);
            core.KernelBackward(flat, g, at, k, Lk);
            core.Step(tables, f[6], state, u, y);
        }
        Run();
        long before = GC.GetAllocatedBytesForCurrentThread();
        Run();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void BadSizesAreRefused()
    {
        Assert.Contains("power of two", Assert.Throws<ArgumentOutOfRangeException>(() => new S4Kernel(1, 2, 100, 10)).Message);
        Assert.Contains("at most 64 steps", Assert.Throws<ArgumentOutOfRangeException>(() => new S4Kernel(1, 2, 64, 65)).Message);
        // K and dK are read and written through a pinned pointer: a short span is refused before anything runs
        var a = Rounded(S4ReferenceTests.RandomParameters(H, M, 9));
        var (flat, at) = Flat(a);
        var core = new S4Kernel(H, 2 * M, Lk, Lk);
        var g = new float[a.Length];
        Assert.Contains("kernel buffer holds", Assert.Throws<ArgumentException>(() => core.Kernel(flat, at, new float[H * Lk - 1], Lk)).Message);
        Assert.Contains("dK holds", Assert.Throws<ArgumentException>(() => core.KernelBackward(flat, g, at, new float[H * Lk - 1], Lk)).Message);
        Assert.All(g, v => Assert.Equal(0f, v));
    }
}
