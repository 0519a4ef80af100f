using System.Diagnostics;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using SsmGen.Benchmarks;

// dotnet run -c Release --project tests/SsmGen.Benchmarks                 full BenchmarkDotNet run
// dotnet run -c Release --project tests/SsmGen.Benchmarks -- --quick      short jobs (what CI runs)
// dotnet run -c Release --project tests/SsmGen.Benchmarks -- --filter '*Projection*'
bool quick = args.Contains("--quick");
var rest = args.Where(a => a != "--quick").ToArray();
IConfig config = DefaultConfig.Instance.WithOptions(ConfigOptions.JoinSummary);
if (quick) config = config.AddJob(Job.ShortRun.WithWarmupCount(1).WithIterationCount(3).WithLaunchCount(1));
Summary[] summaries = rest.Length > 0
    ? BenchmarkSwitcher.FromTypes([typeof(FmaPeak), typeof(Projection), typeof(Convolution), typeof(SmnistStep)]).Run(rest, config).ToArray()
    : BenchmarkRunner.Run([typeof(FmaPeak), typeof(Projection), typeof(Convolution), typeof(SmnistStep)], config);

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
