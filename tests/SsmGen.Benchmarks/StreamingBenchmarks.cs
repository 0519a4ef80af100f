using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;

namespace SsmGen.Benchmarks;

/// <summary>
/// Streaming inference at batch 1, one token per call, on one thread: the 4-block S4D stack of the sMNIST model
/// (H = 128, N = 64) and a 4-block Mamba stack (d_model 256, N = 16), both built for inference
/// (ModelUse.Inference). Targets (issue 6): ≤ 10 µs and ≤ 40 µs per token.
/// </summary>
[MemoryDiagnoser]
public class StreamingStep
{
    /// <summary>Tokens per stream before it starts over (the S4D state is reset; its cost does not depend on it).</summary>
    public const int StreamLength = 4096;
    /// <summary>The step's matrices as fp32 parameters, or a BF16 / int8 copy (ISsmModel.UseStepWeights), int8 with the inputs quantized too.</summary>
    [Params(WeightFormat.Float32, WeightFormat.BFloat16, WeightFormat.Int8, WeightFormat.Int8Dynamic)] public WeightFormat Weights;
    private SmnistBench _s4d = null!;
    private MambaStackBench _mamba = null!;
    private SsmState _s4dState = null!, _mambaState = null!;
    private readonly float[] _x = [0.5f];
    private float[] _s4dY = null!, _mambaY = null!;

    [GlobalSetup]
    public void Setup()
    {
        _s4d = new SmnistBench(1, 1, ModelUse.Inference);
        _s4d.Initialize(1);
        _mamba = new MambaStackBench(1, 1, ModelUse.Inference);
        _mamba.Initialize(1);
        _s4d.UseStepWeights(Weights);
        _mamba.UseStepWeights(Weights);
        _s4dState = _s4d.CreateState();
        _mambaState = _mamba.CreateState();
        _s4dY = new float[SmnistBench.OutputSize];
        _mambaY = new float[MambaStackBench.OutputSize];
    }

    [Benchmark]
    public void S4DStack4()
    {
        if (_s4dState.Position >= StreamLength) _s4dState.Reset();
        _s4d.Step(_s4dState, _x, _s4dY);
    }

    [Benchmark]
    public void MambaStack4()
    {
        if (_mambaState.Position >= StreamLength) _mambaState.Reset();
        _mamba.Step(_mambaState, 7, _mambaY);
    }

    /// <summary>
    /// Parameter bytes one step reads (every weight once, one embedding row; the step's matrices in
    /// <paramref name="format"/>, with int8's row scales, and the dynamic format's row sums): the memory side of a step's cost.
    /// </summary>
    public static double S4DBytes(WeightFormat format) => Bytes(SmnistBench.Table, SmnistBench.StepMatrixNames, format, 0);
    public static double MambaBytes(WeightFormat format) =>
        Bytes(MambaStackBench.Table, MambaStackBench.StepMatrixNames, format, (MambaStackBench.VocabSize - 1) * MambaStackBench.DModel);

    private static double Bytes(IReadOnlyList<ParameterInfo> table, IReadOnlyList<string> matrices, WeightFormat format, int unread) =>
        table.Sum(t => !matrices.Contains(t.Name) || format == WeightFormat.Float32 ? 4.0 * t.Length
            : format == WeightFormat.BFloat16 ? 2.0 * t.Length
            : t.Length + (format == WeightFormat.Int8Dynamic ? 8.0 : 4.0) * t.Length / t.Shape[^1]) - 4.0 * unread;
}

/// <summary>
/// The memory-bandwidth roof: a STREAM-style triad a = b + s·c over three 64 MiB arrays (far beyond the caches),
/// on one thread and on every core.
/// </summary>
public class MemoryTriad
{
    public const int Length = 16 << 20;
    /// <summary>Bytes moved per call: two reads and one write of Length floats.</summary>
    public const double Bytes = 3.0 * 4 * Length;
    private float[] _a = null!, _b = null!, _c = null!;

    [GlobalSetup]
    public void Setup()
    {
        _a = new float[Length]; _b = new float[Length]; _c = new float[Length];
        _b.AsSpan().Fill(1f); _c.AsSpan().Fill(2f);
    }

    [Benchmark] public void OneCore() => Triad(0, Length);

    [Benchmark]
    public void AllCores()
    {
        int parts = Environment.ProcessorCount, size = Length / parts;
        Parallel.For(0, parts, p => Triad(p * size, p == parts - 1 ? Length - p * size : size));
    }

    private void Triad(int start, int count)
    {
        var s = Vector512.Create(0.5f);
        var a = _a.AsSpan(start, count); var b = _b.AsSpan(start, count); var c = _c.AsSpan(start, count);
        int i = 0;
        for (; i <= count - 16; i += 16)
            Vector512.FusedMultiplyAdd(Vector512.Create(c.Slice(i, 16)), s, Vector512.Create(b.Slice(i, 16))).CopyTo(a.Slice(i, 16));
        for (; i < count; i++) a[i] = b[i] + 0.5f * c[i];
    }
}

/// <summary>
/// Many streams per step on one thread (issue 22): one batched Step of <see cref="Streams"/> streams, each reading its
/// own token, through the same two stacks as <see cref="StreamingStep"/>. Every weight is read once per step whatever
/// the number of streams, so tokens per second should grow with it until the arithmetic, not the memory, bounds it.
/// </summary>
/// <remarks>
/// Each stream-token still multiplies by every weight once (<see cref="StepMacs"/>), so at the measured peak of the
/// format's products a token costs at least StepMacs / peak however many streams share the step: Program.cs prints
/// that floor next to each ratio.
/// </remarks>
[MemoryDiagnoser]
public class BatchedStep
{
    public const int MaxStreams = 64;
    [Params(1, 4, 16, 64)] public int Streams;
    /// <summary>fp32 matrices, or the fastest compact format (int8 weights and inputs, byte products).</summary>
    [Params(WeightFormat.Float32, WeightFormat.Int8Dynamic)] public WeightFormat Weights;
    private SmnistBench _s4d = null!;
    private MambaStackBench _mamba = null!;
    private SsmState[] _s4dStates = null!, _mambaStates = null!;
    private float[] _x = null!, _s4dY = null!, _mambaY = null!;
    private int[] _tokens = null!;

    [GlobalSetup]
    public void Setup()
    {
        _s4d = new SmnistBench(MaxStreams, 1, ModelUse.Inference);
        _s4d.Initialize(1);
        _mamba = new MambaStackBench(MaxStreams, 1, ModelUse.Inference);
        _mamba.Initialize(1);
        _s4d.UseStepWeights(Weights);
        _mamba.UseStepWeights(Weights);
        _s4dStates = Enumerable.Range(0, Streams).Select(_ => _s4d.CreateState()).ToArray();
        _mambaStates = Enumerable.Range(0, Streams).Select(_ => _mamba.CreateState()).ToArray();
        _x = Enumerable.Range(0, Streams).Select(s => 0.1f * s).ToArray();
        _tokens = Enumerable.Range(0, Streams).Select(s => (7 * s + 3) % MambaStackBench.VocabSize).ToArray();
        _s4dY = new float[Streams * SmnistBench.OutputSize];
        _mambaY = new float[Streams * MambaStackBench.OutputSize];
    }

    [Benchmark]
    public void S4DStack4()
    {
        if (_s4dStates[0].Position >= StreamingStep.StreamLength) foreach (var s in _s4dStates) s.Reset();
        _s4d.Step(_s4dStates, _x, _s4dY);
    }

    /// <summary>Multiply-adds of one stream-token's products: every weight of the step's matrices once.</summary>
    public static double StepMacs(IReadOnlyList<ParameterInfo> table, IReadOnlyList<string> matrices) =>
        table.Where(t => matrices.Contains(t.Name)).Sum(t => (double)t.Length);

    [Benchmark]
    public void MambaStack4()
    {
        if (_mambaStates[0].Position >= StreamingStep.StreamLength) foreach (var s in _mambaStates) s.Reset();
        _mamba.Step(_mambaStates, _tokens, _mambaY);
    }
}

/// <summary>
/// The plain-C fp32 Mamba step (<see cref="PlainCMamba"/>, gcc -O3 -march=native -ffast-math) on the weights of
/// <see cref="StreamingStep"/>'s Mamba stack, one token per call: the peer its step is compared with.
/// </summary>
[MemoryDiagnoser]
public class PlainCStep
{
    private PlainCMamba _peer = null!;
    private int _position;

    [GlobalSetup]
    public void Setup()
    {
        var model = new MambaStackBench(1, 1, ModelUse.Inference);
        model.Initialize(1);
        _peer = new PlainCMamba(model);
    }

    [GlobalCleanup]
    public void Cleanup() => _peer.Dispose();

    [Benchmark]
    public void MambaStack4()
    {
        if (++_position >= StreamingStep.StreamLength) { _peer.Reset(); _position = 0; }
        _peer.Step(7);
    }
}
