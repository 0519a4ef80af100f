using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using BenchmarkDotNet.Attributes;
using SsmGen.Layers;
using SsmGen.Numerics;
using SsmGen.Training;

namespace SsmGen.Benchmarks;

/// <summary>The machine's FP32 peak on one core: 12 independent Vector512 FMA chains, 32 flops each.</summary>
public class FmaPeak
{
    public const int Iterations = 1 << 20;
    /// <summary>Flops per call.</summary>
    public const double Flops = 12.0 * 32 * Iterations;

    [Benchmark]
    public float Fma()
    {
        var m = Vector512.Create(0.999f); var a = Vector512.Create(0.001f);
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default,
                         c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (int i = 0; i < Iterations; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, a); c1 = Vector512.FusedMultiplyAdd(c1, m, a);
            c2 = Vector512.FusedMultiplyAdd(c2, m, a); c3 = Vector512.FusedMultiplyAdd(c3, m, a);
            c4 = Vector512.FusedMultiplyAdd(c4, m, a); c5 = Vector512.FusedMultiplyAdd(c5, m, a);
            c6 = Vector512.FusedMultiplyAdd(c6, m, a); c7 = Vector512.FusedMultiplyAdd(c7, m, a);
            c8 = Vector512.FusedMultiplyAdd(c8, m, a); c9 = Vector512.FusedMultiplyAdd(c9, m, a);
            c10 = Vector512.FusedMultiplyAdd(c10, m, a); c11 = Vector512.FusedMultiplyAdd(c11, m, a);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }
}

/// <summary>
/// The int8 dot-product peak of one core: AVX-VNNI's byte products (32 multiply-adds per instruction on 256-bit
/// registers, .NET exposing no 512-bit form), twelve independent chains. The roof of <see cref="WeightFormat.Int8Dynamic"/>'s products.
/// </summary>
public class Int8DotPeak
{
    public const int Iterations = 1 << 20;
    /// <summary>Multiply-adds per call.</summary>
    public const double Macs = 12.0 * 32 * Iterations;

    [Benchmark]
    public int Vnni()
    {
        if (!AvxVnni.IsSupported) throw new PlatformNotSupportedException("This CPU has no AVX-VNNI.");
        var u = Vector256.Create((byte)3); var w = Vector256.Create((sbyte)-1);
        Vector256<int> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default,
                       c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (int i = 0; i < Iterations; i++)
        {
            c0 = AvxVnni.MultiplyWideningAndAdd(c0, u, w); c1 = AvxVnni.MultiplyWideningAndAdd(c1, u, w);
            c2 = AvxVnni.MultiplyWideningAndAdd(c2, u, w); c3 = AvxVnni.MultiplyWideningAndAdd(c3, u, w);
            c4 = AvxVnni.MultiplyWideningAndAdd(c4, u, w); c5 = AvxVnni.MultiplyWideningAndAdd(c5, u, w);
            c6 = AvxVnni.MultiplyWideningAndAdd(c6, u, w); c7 = AvxVnni.MultiplyWideningAndAdd(c7, u, w);
            c8 = AvxVnni.MultiplyWideningAndAdd(c8, u, w); c9 = AvxVnni.MultiplyWideningAndAdd(c9, u, w);
            c10 = AvxVnni.MultiplyWideningAndAdd(c10, u, w); c11 = AvxVnni.MultiplyWideningAndAdd(c11, u, w);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }
}

/// <summary>
/// The H→2H output projection of one S4D block at the sMNIST shape (B·L = 16·784 rows, 128 → 256):
/// forward, and backward (dx and dW).
/// </summary>
[MemoryDiagnoser]
public class Projection
{
    public const int Rows = 16 * 784, In = 128, Out = 256;
    public const double ForwardFlops = 2.0 * Rows * In * Out, BackwardFlops = 2 * ForwardFlops;
    private readonly float[] _x = Fill(Rows * In), _w = Fill(Out * In), _b = Fill(Out), _y = new float[Rows * Out];
    private readonly float[] _dx = new float[Rows * In], _dw = new float[Out * In], _db = new float[Out];

    private static float[] Fill(int n)
    {
        var rng = new Rng(1);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)rng.Normal();
        return a;
    }

    [Benchmark] public void Forward() => Gemm.LinearForward(_x, _w, _b, _y, Rows, In, Out);
    [Benchmark] public void Backward() => Gemm.LinearBackward(_x, _w, _y, _dx, _dw, _db, Rows, In, Out);
}

/// <summary>The S4D convolution of one block at the sMNIST shape: (B, L, H) = (16, 784, 128), 16-lane FFTs.</summary>
[MemoryDiagnoser]
public class Convolution
{
    private const int B = 16, L = 784, H = 128;
    private readonly CausalConvolution _conv = new(H, B, L);
    private readonly float[] _k = Fill(H * L), _u = Fill(B * L * H), _y = new float[B * L * H], _du = new float[B * L * H], _dk = new float[H * L];

    private static float[] Fill(int n)
    {
        var rng = new Rng(3);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)rng.Normal();
        return a;
    }

    private readonly S4DRecurrence _recurrence = new(H, 32);
    private readonly float[] _modes = S4DPaths.Table(32, L).Modes, _d = new float[H];

    [Benchmark] public void Forward() => _conv.Forward(_k, _u, _y, B, L);
    [Benchmark] public void Backward() => _conv.Backward(_k, _u, _y, _du, _dk, B, L);
    /// <summary>The same block's forward as the recurrence the generated model runs for N = 64 (32 modes, D and no GELU).</summary>
    [Benchmark] public void Recurrence() => _recurrence.Forward(_modes, 32, _d, _u, _y, Span<float>.Empty, B, L);
}

/// <summary>One training step (forward + backward + AdamW) and one forward of the sMNIST model (dropout 0.1 as in the example), batch 16, L = 784.</summary>
[MemoryDiagnoser]
public class SmnistStep
{
    public const int Batch = 16, Length = 784;
    private TrainSteps.Bench _bench = null!;

    [GlobalSetup] public void Setup() => _bench = TrainSteps.SmnistTrain();
    [Benchmark] public void Forward() => _bench.Forward();
    [Benchmark] public void TrainStep() => _bench.TrainStep();
}

/// <summary>One training step (forward + backward + AdamW) and one forward of the byte-level Mamba LM, batch 8, L = 256.</summary>
[MemoryDiagnoser]
public class MambaLmStep
{
    public const int Batch = 8, Length = 256;
    private TrainSteps.Bench _bench = null!;

    [GlobalSetup] public void Setup() => _bench = TrainSteps.MambaTrain();
    [Benchmark] public void Forward() => _bench.Forward();
    [Benchmark] public void TrainStep() => _bench.TrainStep();
}
