using SsmGen.Checkpoints;
using SsmGen.Numerics;
using SsmGen.Streaming;
using SsmGen.Tests.Generated;
using Xunit.Abstractions;

namespace SsmGen.Tests.Streaming;

/// <summary>
/// Compact step weights (BF16, int8 with per-row scales). The oracle is written here, independently of
/// <see cref="CompactWeights"/>: bf16 by choosing the nearer of the two neighbouring bf16 values in double precision
/// (ties to the even one), int8 by rounding w / (max |w| / 127) in double. A compact step must then equal a float64
/// step over these dequantized weights.
/// </summary>
public class CompactStepWeightsTests(ITestOutputHelper output)
{
    /// <summary>The bf16 value nearest to <paramref name="w"/>, ties to an even last mantissa bit.</summary>
    public static double NearestBFloat16(float w)
    {
        uint bits = BitConverter.SingleToUInt32Bits(w) & 0xFFFF0000u;
        double below = BitConverter.UInt32BitsToSingle(bits), above = BitConverter.UInt32BitsToSingle(bits + 0x10000u);
        double dBelow = Math.Abs(w - below), dAbove = Math.Abs(above - w);
        if (dBelow != dAbove) return dBelow < dAbove ? below : above;
        return (bits & 0x10000u) == 0 ? below : above;
    }

    /// <summary>The parameters as a compact step sees them: the step's matrices dequantized, the rest as they are.</summary>
    public static double[] Dequantized(ISsmModel model, WeightFormat format)
    {
        var p = model.Parameters.ToArray();
        var result = p.Select(v => (double)v).ToArray();
        if (format == WeightFormat.Float32) return result;
        foreach (var t in model.ParameterTable.Where(t => model.StepMatrices.Contains(t.Name)))
        {
            int n = t.Shape[^1], length = t.Shape.Aggregate(1, (a, d) => a * d);
            for (int row = t.Offset; row < t.Offset + length; row += n)
            {
                float scale = p.AsSpan(row, n).ToArray().Max(MathF.Abs) / 127f;
                for (int i = row; i < row + n; i++)
                    result[i] = format == WeightFormat.BFloat16 ? NearestBFloat16(p[i])
                        : scale == 0 ? 0 : Math.Clamp(Math.Round(p[i] / (double)scale, MidpointRounding.ToEven), -127, 127) * scale;
            }
        }
        return result;
    }

    [Fact]
    public void BFloat16RoundsToTheNearestTiesToEven()
    {
        var rng = new Random(5);
        var values = Enumerable.Range(0, 20_000).Select(_ => (float)((rng.NextDouble() - 0.5) * Math.Pow(2, rng.Next(-30, 30)))).ToList();
        // Exact ties (the lower 16 bits 0x8000) with even and odd kept halves, and their neighbours.
        foreach (uint high in new uint[] { 0x3F800000, 0x3F810000, 0xBF810000, 0x42C80000 })
            foreach (uint low in new uint[] { 0x7FFF, 0x8000, 0x8001 })
                values.Add(BitConverter.UInt32BitsToSingle(high | low));
        foreach (float v in values)
            Assert.Equal(NearestBFloat16(v), CompactWeights.FromBFloat16(CompactWeights.ToBFloat16(v)));
    }

    [Fact]
    public void Int8RowsMapTheirLargestMagnitudeTo127AndRoundToTheNearestStep()
    {
        var rng = new Random(6);
        var row = Enumerable.Range(0, 300).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        row[17] = -1.5f;
        var q = new sbyte[row.Length];
        float scale = CompactWeights.QuantizeRow(row, q);
        Assert.Equal(1.5f / 127f, scale);
        Assert.Equal(-127, q[17]);
        for (int i = 0; i < row.Length; i++) Assert.True(Math.Abs(row[i] - q[i] * (double)scale) <= scale / 2 * (1 + 1e-6), $"weight {i}");
        Assert.Equal(0f, CompactWeights.QuantizeRow(new float[5], new sbyte[5]));
    }

    public static TheoryData<WeightFormat, int, int, int> Products => new()
    {
        { WeightFormat.BFloat16, 1, 37, 13 }, { WeightFormat.BFloat16, 5, 64, 24 }, { WeightFormat.BFloat16, 9, 130, 7 },
        { WeightFormat.Int8, 1, 37, 13 }, { WeightFormat.Int8, 5, 64, 24 }, { WeightFormat.Int8, 9, 130, 7 },
    };

    [Theory]
    [MemberData(nameof(Products))]
    public void ProductsAreThoseOfTheDequantizedWeightsInFloat64(WeightFormat format, int rows, int inF, int outF)
    {
        // Two matrices and a vector in one buffer; the product reads the second matrix from its third row on.
        var table = new List<ParameterInfo>
        {
            new("a", [3, 5], 0, OptimizerGroup.Default), new("v", [11], 15, OptimizerGroup.Default), new("w", [outF + 3, inF], 26, OptimizerGroup.Default),
        };
        var p = TestConfigs.RandomArray(26 + (outF + 3) * inF, 9).Select(v => (float)v).ToArray();
        var compact = new CompactWeights(p, table, ["a", "w"], format);
        var x = TestConfigs.RandomArray(rows * inF, 10).Select(v => (float)v).ToArray();
        var b = TestConfigs.RandomArray(outF, 11).Select(v => (float)v).ToArray();
        var y = new float[rows * outF];
        int offset = 26 + 3 * inF;
        compact.StepForward(x, offset, b, y, rows, inF, outF);

        var oracle = new double[p.Length];
        for (int r = 0; r < outF + 3; r++)
        {
            var row = p.AsSpan(26 + r * inF, inF).ToArray();
            float scale = row.Max(MathF.Abs) / 127f;
            for (int i = 0; i < inF; i++)
                oracle[26 + r * inF + i] = format == WeightFormat.BFloat16 ? NearestBFloat16(row[i]) : Math.Clamp(Math.Round(row[i] / (double)scale, MidpointRounding.ToEven), -127, 127) * scale;
        }
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outF; o++)
            {
                double sum = b[o], magnitude = Math.Abs(b[o]);
                for (int i = 0; i < inF; i++)
                {
                    double t = x[r * inF + i] * oracle[offset + o * inF + i];
                    sum += t;
                    magnitude += Math.Abs(t);
                }
                Assert.True(Math.Abs(y[r * outF + o] - sum) <= 1e-6 * magnitude, $"row {r}, output {o}: {y[r * outF + o]} vs {sum}");
            }

        // Rows that are not whole rows of a matrix, or a vector, are a bug in the caller: refused.
        Assert.Throws<InvalidOperationException>(() => compact.StepForward(x, offset + 1, b, y, rows, inF, outF));
        Assert.Throws<InvalidOperationException>(() => compact.StepForward(x, 15, b, y, rows, inF, outF));
    }

    /// <summary>An input row rounded as Int8Dynamic specifies: q = round(x · 127 / max|x|) ties to even; scale max|x| / 127.</summary>
    private static (int[] Q, float Scale) RoundedRow(ReadOnlySpan<float> x)
    {
        float max = 0;
        foreach (float v in x) max = Math.Max(max, Math.Abs(v));
        if (max == 0) return (new int[x.Length], 0);
        float inv = 127f / max;
        var q = new int[x.Length];
        for (int i = 0; i < x.Length; i++) q[i] = (int)Math.Clamp(Math.Round(x[i] * inv, MidpointRounding.ToEven), -127, 127);
        return (q, max / 127f);
    }

    public static TheoryData<int, int, int> DynamicShapes => new()
    {
        { 1, 37, 13 }, { 5, 64, 24 }, { 9, 130, 7 }, { 4, 16, 9 }, { 3, 256, 40 }, { 6, 48, 17 }, { 1, 512, 33 },
    };

    /// <summary>
    /// Int8Dynamic: every output is the exact integer dot product of the rounded input row and the int8 weight row,
    /// times the two scales, plus the bias (the oracle sums in long, here); and it is within the input's rounding
    /// (half a step per element) of the float64 product of x and the dequantized weights. A zero row gives the
    /// bias; a row holding NaN gives NaN.
    /// </summary>
    [Theory]
    [MemberData(nameof(DynamicShapes))]
    public void DynamicProductsAreExactIntegerDotsOfTheRoundedRows(int rows, int inF, int outF)
    {
        var table = new List<ParameterInfo> { new("a", [3, 5], 0, OptimizerGroup.Default), new("w", [outF + 3, inF], 15, OptimizerGroup.Default) };
        var p = TestConfigs.RandomArray(15 + (outF + 3) * inF, 19).Select(v => (float)v).ToArray();
        var compact = new CompactWeights(p, table, ["a", "w"], WeightFormat.Int8Dynamic);
        var x = TestConfigs.RandomArray(rows * inF, 20).Select(v => (float)(3 * v)).ToArray();
        if (rows > 2) x.AsSpan(inF, inF).Clear();
        var b = TestConfigs.RandomArray(outF, 21).Select(v => (float)v).ToArray();
        var y = new float[rows * outF];
        int offset = 15 + 3 * inF;
        compact.StepForward(x, offset, b, y, rows, inF, outF);
        for (int r = 0; r < rows; r++)
        {
            var (qx, sx) = RoundedRow(x.AsSpan(r * inF, inF));
            for (int o = 0; o < outF; o++)
            {
                var row = p.AsSpan(offset + o * inF, inF).ToArray();
                float sw = row.Max(MathF.Abs) / 127f;
                long dot = 0;
                double exact = b[o], rounding = 0, magnitude = Math.Abs(b[o]);
                for (int i = 0; i < inF; i++)
                {
                    double qw = Math.Clamp(Math.Round(row[i] / (double)sw, MidpointRounding.ToEven), -127, 127);
                    dot += qx[i] * (long)qw;
                    exact += x[r * inF + i] * qw * sw;
                    rounding += sx / 2.0 * Math.Abs(qw * sw);
                    magnitude += Math.Abs(x[r * inF + i] * qw * sw);
                }
                float expected = (float)dot * sw * sx + b[o];
                Assert.True(expected == y[r * outF + o], $"row {r}, output {o}: {y[r * outF + o]} vs {expected}");
                Assert.True(Math.Abs(y[r * outF + o] - exact) <= rounding * (1 + 1e-6) + 1e-6 * magnitude, $"row {r}, output {o}: {y[r * outF + o]} vs {exact} ± {rounding}");
                if (rows > 2 && r == 1) Assert.Equal(b[o], y[r * outF + o]);
            }
        }
        x[inF - 1] = float.NaN;
        compact.StepForward(x, offset, b, y, rows, inF, outF);
        Assert.All(y.Take(outF), v => Assert.True(float.IsNaN(v)));
        if (rows > 1) Assert.DoesNotContain(y.Skip(outF), float.IsNaN);
    }

    /// <summary>The VNNI kernel, the AVX-512BW widening kernel and the scalar loop give the same bits (integer sums), tails and tiles included.</summary>
    [Theory]
    [MemberData(nameof(DynamicShapes))]
    public unsafe void DynamicProductsAreTheSameBitsOnEveryPath(int rows, int inF, int outF)
    {
        var paths = new List<QuantizedProducts.ByteDot> { QuantizedProducts.ByteDot.Scalar };
        if (System.Runtime.Intrinsics.X86.Avx512BW.IsSupported) paths.Add(QuantizedProducts.ByteDot.Widening);
        if (System.Runtime.Intrinsics.X86.AvxVnni.IsSupported) paths.Add(QuantizedProducts.ByteDot.Vnni);
        if (paths.Count == 1) output.WriteLine("Skipped: this CPU has neither AVX-VNNI nor AVX-512BW, so only the scalar loop runs here (the other test checks it).");
        var rng = new Random(rows * 1000 + inF);
        var u = new byte[rows * inF]; var w = new sbyte[outF * inF];
        rng.NextBytes(u);
        foreach (ref sbyte v in w.AsSpan()) v = (sbyte)rng.Next(-127, 128);
        var xs = Enumerable.Range(0, rows).Select(_ => (float)rng.NextDouble()).ToArray();
        var ws = Enumerable.Range(0, outF).Select(_ => (float)rng.NextDouble()).ToArray();
        var wsum = Enumerable.Range(0, outF).Select(o => w.Skip(o * inF).Take(inF).Sum(v => (int)v)).ToArray();
        float[]? first = null;
        foreach (var path in paths)
        {
            var y = new float[rows * outF];
            fixed (byte* pu = u) fixed (sbyte* pw = w) fixed (float* pxs = xs, pws = ws, py = y) fixed (int* ps = wsum)
                QuantizedProducts.Run(pu, pxs, pw, pws, ps, py, rows, inF, outF, path);
            if (first is null) first = y;
            else Assert.Equal(first, y);
        }
        output.WriteLine($"paths compared: {string.Join(", ", paths)}");
    }

    [Fact]
    public void ACopyOfWhatIsNotAFiniteMatrixIsRefusedByName()
    {
        var table = new List<ParameterInfo> { new("m", [2, 3], 0, OptimizerGroup.Default), new("v", [4], 6, OptimizerGroup.Default) };
        var p = new float[10];
        Assert.Contains("'missing'", Assert.Throws<ArgumentException>(() => new CompactWeights(p, table, ["missing"], WeightFormat.Int8)).Message);
        Assert.Contains("'v' has shape [4]", Assert.Throws<ArgumentException>(() => new CompactWeights(p, table, ["v"], WeightFormat.BFloat16)).Message);
        p[4] = float.NaN;
        Assert.Contains("not finite", Assert.Throws<ArgumentException>(() => new CompactWeights(p, table, ["m"], WeightFormat.Int8)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new CompactWeights(new float[10], table, ["m"], WeightFormat.Float32));
    }

    [Fact]
    public void OnlyInferenceBuildsOnTheCpuTakeThemAndFloat32ComesBackExact()
    {
        var (training, _) = GeneratedVsReferenceTests.Make("MambaTokens", 2, 8, ModelUse.Training);
        Assert.Contains("inference builds", Assert.Throws<InvalidOperationException>(() => training.UseStepWeights(WeightFormat.Int8)).Message);
        training.UseStepWeights(WeightFormat.Float32); // always allowed
        var (m, cfg) = GeneratedVsReferenceTests.Make("MambaTokens", 2, 8, ModelUse.Inference);
        Assert.Throws<ArgumentOutOfRangeException>(() => m.UseStepWeights((WeightFormat)7));
        m.Initialize(3);
        float[] Run()
        {
            var s = m.CreateState();
            var y = new float[cfg.Output];
            foreach (int t in new[] { 1, 4, 2, 0, 3 }) m.Step(s, t, y);
            return y;
        }
        var exact = Run();
        m.UseStepWeights(WeightFormat.BFloat16);
        Assert.Equal(WeightFormat.BFloat16, m.StepWeights);
        var bf16 = Run();
        Assert.NotEqual(exact, bf16);
        m.UseStepWeights(WeightFormat.Float32);
        Assert.Equal(exact, Run());
    }

    [Fact]
    public void LoadingACheckpointRemakesTheCompactCopy()
    {
        var (a, cfg) = GeneratedVsReferenceTests.Make("MambaTokens", 2, 8, ModelUse.Inference);
        var (b, _) = GeneratedVsReferenceTests.Make("MambaTokens", 2, 8, ModelUse.Inference);
        a.Initialize(4);
        b.Initialize(5);
        string path = Path.Combine(Path.GetTempPath(), $"compact-{Guid.NewGuid():N}.safetensors");
        try
        {
            Checkpoint.Save(a, path);
            foreach (var format in new[] { WeightFormat.Int8, WeightFormat.Int8Dynamic })
            {
                var ya = new float[cfg.Output]; var yb = new float[cfg.Output];
                b.Initialize(5);
                b.UseStepWeights(format);
                b.Step(b.CreateState(), 3, yb); // what the step derives from the copy (Mamba's rates) is made now, for the old weights
                Checkpoint.Load(b, path);
                a.UseStepWeights(format);
                a.Step(a.CreateState(), 3, ya);
                b.Step(b.CreateState(), 3, yb);
                Assert.Equal(format, b.StepWeights);
                Assert.Equal(ya, yb);
            }
        }
        finally { File.Delete(path); }
    }

    /// <summary>
    /// Streams that started under the compact copy step with the model's one shared copy of their discretized modes; a
    /// restored (or forked) stream with its own: the same values, so the same outputs bit for bit. A stream begun
    /// before a checkpoint load keeps its own modes, as it did before the copy existed.
    /// </summary>
    [Theory]
    [InlineData("AllKinds")]
    [InlineData("Hybrid")]
    [InlineData("VectorTokens")]
    public void StreamsSharingTheirModesStepAsStreamsWithTheirOwn(string name)
    {
        var (m, cfg) = GeneratedVsReferenceTests.Make(name, 3, 16, ModelUse.Inference);
        m.Initialize(8);
        m.UseStepWeights(WeightFormat.Int8Dynamic);
        var inputs = Enumerable.Range(0, 12).Select(t => Inputs(cfg, t)).ToArray();
        var shared = m.CreateState();
        Step(m, cfg, shared, inputs[0]);
        var own = m.CreateState();
        StateSnapshot.Restore(m, own, StateSnapshot.Save(m, shared)); // the same values, its own to step with
        var fork = StateSnapshot.Fork(m, shared);
        for (int t = 1; t < inputs.Length; t++)
        {
            var a = Step(m, cfg, shared, inputs[t]);
            Assert.Equal(a, Step(m, cfg, own, inputs[t]));
            Assert.Equal(a, Step(m, cfg, fork, inputs[t]));
        }
    }

    private static (int Token, float[] Features) Inputs(ModelConfig cfg, int t) =>
        ((7 * t + 3) % Math.Max(cfg.Vocab, 1), TestConfigs.RandomArray(Math.Max(cfg.Input, 1), 300 + (ulong)t).Select(v => (float)v).ToArray());

    private static float[] Step(ISsmModel m, ModelConfig cfg, SsmState s, (int Token, float[] Features) input)
    {
        var y = new float[cfg.Output];
        if (cfg.TokenInput) m.Step(s, input.Token, y);
        else m.Step(s, input.Features.AsSpan(0, cfg.Input), y);
        return y;
    }

    [Fact]
    public void CompactStepsAllocateNothing()
    {
        var (m, cfg) = GeneratedVsReferenceTests.Make("AllKinds", 4, 16, ModelUse.Inference);
        m.Initialize(2);
        foreach (var format in new[] { WeightFormat.BFloat16, WeightFormat.Int8, WeightFormat.Int8Dynamic })
        {
            m.UseStepWeights(format);
            var states = Enumerable.Range(0, 4).Select(_ => m.CreateState()).ToArray();
            var x = new float[4 * cfg.Input];
            var y = new float[4 * cfg.Output];
            m.Step(states, x, y);
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int t = 0; t < 8; t++) m.Step(states, x, y);
            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
            output.WriteLine($"{format}: 0 B over 8 batched steps");
        }
    }
}
