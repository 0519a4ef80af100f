using System.Diagnostics;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using SsmGen;
using SsmGen.Benchmarks;

// dotnet run -c Release --project tests/SsmGen.Benchmarks                 full BenchmarkDotNet run
// dotnet run -c Release --project tests/SsmGen.Benchmarks -- --quick      short jobs (what CI runs)
// dotnet run -c Release --project tests/SsmGen.Benchmarks -- --filter '*Projection*'
// dotnet run -c Release --project tests/SsmGen.Benchmarks -- --steps [seconds]   the streaming steps in interleaved windows
// dotnet run -c Release --project tests/SsmGen.Benchmarks -- --train [seconds]   the train steps beside PyTorch, interleaved
// dotnet run -c Release --project tests/SsmGen.Benchmarks -- --passes [steps]   each train step split by pass, with peak and bandwidth shares
// dotnet run -c Release --project tests/SsmGen.Benchmarks -- --first sMNIST|Mamba [steps]   a fresh process's first steps
// dotnet run -c Release --project tests/SsmGen.Benchmarks -- --loop sMNIST|Mamba [seconds]   one train step in a loop (profiling)
// dotnet run -c Release --project tests/SsmGen.Benchmarks -- --s4d-paths [calls]   S4D's FFT convolution against its recurrence
// dotnet run -c Release --project tests/SsmGen.Benchmarks -- --scan [pairs]   the selective scan's backward against its forward, one core
// the number after a mode's flag (at position i), or its default
double Number(int i, double fallback) => args.Length > i ? double.Parse(args[i], System.Globalization.CultureInfo.InvariantCulture) : fallback;
string mode = args.Length > 0 ? args[0] : "";
switch (mode)
{
    case "--first" when args.Length > 1: TrainSteps.First(args[1], (int)Number(2, 15)); return;
    case "--loop" when args.Length > 1: TrainSteps.Loop(args[1], Number(2, 30)); return;
    case "--passes": TrainSteps.Passes((int)Number(1, 10)); return;
    case "--s4d-paths": S4DPaths.Run((int)Number(1, 20)); return;
    case "--scan": TrainSteps.ScanRatio((int)Number(1, 200)); return;
    case "--train": TrainSteps.Run(Number(1, 120)); return;
    case "--steps": InterleavedSteps.Run(Number(1, 120)); return;
}
Type[] Suite = [typeof(FmaPeak), typeof(Int8DotPeak), typeof(Projection), typeof(Convolution), typeof(SmnistStep), typeof(MambaLmStep), typeof(MambaScan),
    typeof(S4DLayer), typeof(S4Layer), typeof(MambaLayer), typeof(RnnLayer), typeof(IdsLayer), typeof(AttentionLayer), typeof(DeltaLayer), typeof(StreamingStep), typeof(PlainCStep), typeof(BatchedStep), typeof(MemoryTriad)];
bool quick = args.Contains("--quick");
var rest = args.Where(a => a != "--quick").ToArray();
// Dynamic PGO off: its instrumented tier allocates a few bytes on the JIT's background thread while a benchmark
// runs (2–10 B per call in the memory diagnoser otherwise). Tiered compilation stays on, as in applications.
var noTiering = new EnvironmentVariable("DOTNET_TieredPGO", "0");
IConfig config = DefaultConfig.Instance.WithOptions(ConfigOptions.JoinSummary)
    .AddJob((quick ? Job.ShortRun.WithWarmupCount(1).WithIterationCount(3).WithLaunchCount(1) : Job.Default).WithEnvironmentVariables(noTiering).AsDefault());
Summary[] summaries = rest.Length > 0
    ? BenchmarkSwitcher.FromTypes(Suite).Run(rest, config).ToArray()
    : BenchmarkRunner.Run(Suite, config);

// Fractions of the peak measured in this same run.
double? Mean(string type, string method) => summaries.SelectMany(s => s.Reports)
    .Where(r => r.BenchmarkCase.Descriptor.Type.Name == type && r.BenchmarkCase.Descriptor.WorkloadMethod.Name == method && r.ResultStatistics is not null)
    .Select(r => (double?)r.ResultStatistics!.Mean).FirstOrDefault();
double? peakNs = Mean(nameof(FmaPeak), nameof(FmaPeak.Fma));
if (peakNs is double p)
{
    double peak1 = FmaPeak.Flops / p; // GFLOP/s (flops per ns)
    int cores = Environment.ProcessorCount;
    Console.WriteLine($"FP32 FMA peak: {peak1:F1} GFLOP/s on one core, {peak1 * cores:F1} GFLOP/s on {cores} cores (measured in this run).");
    void Report(string method, double flops)
    {
        if (Mean(nameof(Projection), method) is double ns)
            Console.WriteLine($"Projection.{method}: {flops / ns:F1} GFLOP/s = {100 * flops / ns / (peak1 * cores):F0}% of the {cores}-core peak.");
    }
    Report(nameof(Projection.Forward), Projection.ForwardFlops);
    Report(nameof(Projection.Backward), Projection.BackwardFlops);
}

static int LayerWeights(string layer) => layer switch
{
    nameof(S4DLayer) => S4DBench.ParameterCount,
    nameof(S4Layer) => S4Bench.ParameterCount,
    nameof(MambaLayer) => MambaBench.ParameterCount,
    nameof(RnnLayer) => RnnBench.ParameterCount,
    nameof(IdsLayer) => IdsBench.ParameterCount,
    nameof(DeltaLayer) => DeltaBench.ParameterCount,
    _ => AttentionBench.ParameterCount,
};

// Generated vs reference, side by side from this run, with the generated pass's share of the peak: the 2-core
// peak for Forward and Forward + Backward (both cores work), the 1-core peak for a Step (one thread).
foreach (string layer in new[] { nameof(S4DLayer), nameof(S4Layer), nameof(MambaLayer), nameof(RnnLayer), nameof(IdsLayer), nameof(AttentionLayer), nameof(DeltaLayer) })
    foreach (string pass in new[] { "Forward", "ForwardBackward", "Step" })
        if (Mean(layer, "Generated" + pass) is double g && Mean(layer, "Reference" + pass) is double r)
        {
            string share = "";
            if (peakNs is double pk)
            {
                double peak1 = FmaPeak.Flops / pk, flops = LayerFlops.Of(layer, pass), gflops = flops / g;
                double peak = pass == "Step" ? peak1 : peak1 * Environment.ProcessorCount;
                share = $"; {gflops:F1} GFLOP/s = {100 * gflops / peak:F1}% of the {(pass == "Step" ? "1" : Environment.ProcessorCount.ToString())}-core peak";
            }
            // A step reads every weight once: its share of the one-core memory bandwidth, when the triad ran.
            if (pass == "Step" && Mean(nameof(MemoryTriad), nameof(MemoryTriad.OneCore)) is double triad)
                share += $"; its {4.0 * LayerWeights(layer) / 1e6:F2} MB of weights = {100 * 4.0 * LayerWeights(layer) / g / (MemoryTriad.Bytes / triad):F0}% of the one-core memory bandwidth";
            Console.WriteLine($"{layer}.{pass}: generated {g / 1e6:F3} ms, reference {r / 1e6:F3} ms: {r / g:F1}× faster{share}.");
        }
if (peakNs is double p1 && Mean(nameof(MambaScan), nameof(MambaScan.Forward)) is double scanNs)
{
    double peak1 = FmaPeak.Flops / p1;
    Console.WriteLine($"MambaScan.Forward (N = 16, one core): {MambaScan.ForwardFlops / scanNs:F1} GFLOP/s = {100 * MambaScan.ForwardFlops / scanNs / peak1:F0}% of the one-core FP32 peak.");
}

// Memory bandwidth from the triad, and the streaming steps against their targets (issue 6) with the share of the
// one-core bandwidth their weight reads would need from memory (they mostly come from the caches).
double? triadNs = Mean(nameof(MemoryTriad), nameof(MemoryTriad.OneCore));
if (triadNs is double tn)
{
    double bw1 = MemoryTriad.Bytes / tn; // GB/s (bytes per ns)
    string all = Mean(nameof(MemoryTriad), nameof(MemoryTriad.AllCores)) is double ta ? $", {MemoryTriad.Bytes / ta:F1} GB/s on {Environment.ProcessorCount} cores" : "";
    Console.WriteLine($"Memory bandwidth (triad): {bw1:F1} GB/s on one core{all} (measured in this run).");
}
// The streaming steps at batch 1 with each format of their matrices, against issue 22's targets (S4D ≤ 10 µs, Mamba ≤ 55 µs),
// with the bytes one token reads and their share of the one-core memory bandwidth (they partly come from the caches).
double? Streaming(string method, WeightFormat format) => summaries.SelectMany(s => s.Reports)
    .Where(r => r.BenchmarkCase.Descriptor.Type.Name == nameof(StreamingStep) && r.BenchmarkCase.Descriptor.WorkloadMethod.Name == method
        && r.BenchmarkCase.Parameters[nameof(StreamingStep.Weights)] is WeightFormat f && f == format && r.ResultStatistics is not null)
    .Select(r => (double?)r.ResultStatistics!.Mean).FirstOrDefault();
foreach (var (method, target, bytes) in new (string, double, Func<WeightFormat, double>)[] { (nameof(StreamingStep.S4DStack4), 10.0, StreamingStep.S4DBytes), (nameof(StreamingStep.MambaStack4), 55.0, StreamingStep.MambaBytes) })
    foreach (var format in Enum.GetValues<WeightFormat>())
        if (Streaming(method, format) is double ns)
        {
            string bw = triadNs is double t ? $" = {100 * bytes(format) / ns / (MemoryTriad.Bytes / t):F0}% of the one-core memory bandwidth" : "";
            string gain = format != WeightFormat.Float32 && Streaming(method, WeightFormat.Float32) is double fp32 ? $", {fp32 / ns:F2}× the fp32 step" : "";
            Console.WriteLine($"StreamingStep.{method}, {format} matrices: {ns / 1e3:F1} µs per token at batch 1 (target ≤ {target:F0} µs: {(ns / 1e3 <= target ? "met" : "not met")}){gain}; {bytes(format) / 1e6:F2} MB of parameters per token{bw}.");
        }
if (Mean(nameof(PlainCStep), nameof(PlainCStep.MambaStack4)) is double peerNs)
    foreach (var format in Enum.GetValues<WeightFormat>())
        if (Streaming(nameof(StreamingStep.MambaStack4), format) is double ns)
            Console.WriteLine($"StreamingStep.MambaStack4, {format} matrices: {peerNs / ns:F2}× the plain-C fp32 step ({peerNs / 1e3:F1} µs; target for compact weights ≥ 2.5×).");

// Many streams per step: tokens per second at each stream count against one stream's, both from this run and with the
// same matrices (target: ≥ 10× at 64), and the floor the products alone set on a stream-token at this run's peak
// (fp32 FMAs, or VNNI's byte products for Int8Dynamic).
double? Batched(string method, int streams, WeightFormat format) => summaries.SelectMany(s => s.Reports)
    .Where(r => r.BenchmarkCase.Descriptor.Type.Name == nameof(BatchedStep) && r.BenchmarkCase.Descriptor.WorkloadMethod.Name == method
        && r.BenchmarkCase.Parameters[nameof(BatchedStep.Streams)] is int n && n == streams
        && r.BenchmarkCase.Parameters[nameof(BatchedStep.Weights)] is WeightFormat f && f == format && r.ResultStatistics is not null)
    .Select(r => (double?)r.ResultStatistics!.Mean).FirstOrDefault();
double? vnniNs = Mean(nameof(Int8DotPeak), nameof(Int8DotPeak.Vnni));
if (vnniNs is double vn) Console.WriteLine($"Int8 dot-product peak (AVX-VNNI, 256-bit): {Int8DotPeak.Macs / vn:F1} G multiply-adds/s on one core (measured in this run).");
foreach (var (method, macs) in new[] { (nameof(BatchedStep.S4DStack4), BatchedStep.StepMacs(SmnistBench.Table, SmnistBench.StepMatrixNames)), (nameof(BatchedStep.MambaStack4), BatchedStep.StepMacs(MambaStackBench.Table, MambaStackBench.StepMatrixNames)) })
    foreach (var format in new[] { WeightFormat.Float32, WeightFormat.Int8Dynamic })
        if (Batched(method, 1, format) is double one)
        {
            // G multiply-adds per ns: half the FMA peak's flops, or VNNI's
            double? roof = format == WeightFormat.Float32 ? (peakNs is double pn ? FmaPeak.Flops / 2 / pn : null) : (vnniNs is double v ? Int8DotPeak.Macs / v : null);
            string floor = roof is double r ? $"; the products alone need ≥ {macs / r / 1e3:F2} µs a stream-token at this run's peak, so at most {one / (macs / r):F1}× one stream's" : "";
            Console.WriteLine($"BatchedStep.{method}, {format} matrices: {macs / 1e6:F2} M multiply-adds per stream-token{floor}.");
            foreach (int streams in new[] { 1, 4, 16, 64 })
                if (Batched(method, streams, format) is double ns)
                {
                    double rate = streams / ns * 1e9, gain = rate / (1e9 / one);
                    string target = streams == 64 ? $" (target ≥ 10×: {(gain >= 10 ? "met" : "not met")})" : "";
                    Console.WriteLine($"BatchedStep.{method}, {format}, {streams} streams: {ns / 1e3:F1} µs per step, {rate:F0} tokens/s = {gain:F1}× one stream's{target}.");
                }
        }
