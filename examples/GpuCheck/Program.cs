using System.Diagnostics;
using System.Globalization;
using SsmGen;
using SsmGen.Cuda;
using SsmGen.Examples.GpuCheck;

// ssm-gpu-check [all | equivalence | converge | bench | scan | nccl | train-mnist | pack-mnist OUT] [--emulation] [--quick] [--mnist FILE] [--kinds S4D,IDS,…]
//   On a GPU: the checks issue 7 asks for. With --emulation --quick: the same code paths, tiny sizes, on the CPU
//   emulation of the kernels (to check this program without a GPU). Exit code 1 when a check fails.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
string command = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : "all";
bool emulation = args.Contains("--emulation"), quick = args.Contains("--quick");
string? Option(string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
string mnist = Option("--mnist") ?? "mnist.bin";

if (command == "pack-mnist")
{
    string output = Option("--out") ?? (args.Length > 1 ? args[1] : "mnist.bin");
    Digits.Pack(Option("--from") ?? Path.Combine(".cache", "mnist"), output);
    return 0;
}
if (command is not ("all" or "equivalence" or "converge" or "bench" or "scan" or "train-mnist" or "nccl"))
{
    Console.Error.WriteLine($"Unknown command '{command}': use all, equivalence, converge, bench, scan, nccl, train-mnist or pack-mnist.");
    return 2;
}

using var device = emulation ? ComputeDevice.CudaEmulation() : ComputeDevice.Cuda();
Console.WriteLine($"device: {device.Name}; {(quick ? "quick sizes" : "full sizes")}");
if (device.Backend is CudaBackend cuda)
    Console.WriteLine($"  {cuda.MultiprocessorCount} SMs, {cuda.TotalMemory / (1 << 30)} GiB, peak memory bandwidth {cuda.PeakBandwidthBytesPerSecond / 1e9:F0} GB/s, driver {cuda.DriverVersion.Major}.{cuda.DriverVersion.Minor}");
if (command == "train-mnist")
{
    // the sMNIST example's full run on this device: train-mnist [--permuted] [--epochs N] --out DIR
    int epochs = int.Parse(Option("--epochs") ?? "20", CultureInfo.InvariantCulture);
    TrainMnist.Run(device, mnist, args.Contains("--permuted"), epochs, Option("--out") ?? "runs");
    return 0;
}
var report = new Report();
var watch = Stopwatch.StartNew();
if (command is "all" or "equivalence") Checks.Equivalence(device, quick, report, Option("--kinds"));
if (command is "all" or "converge") Checks.Converge(device, quick, mnist, report);
if (command is "all" or "bench") Checks.Bench(device, quick, report);
if (command is "all" or "scan") Checks.Scan(device, quick, report);
if (command is "all" or "nccl") Checks.Nccl(report);
Console.WriteLine($"{report.Failures} failed check(s); {watch.Elapsed.TotalSeconds:F0} s");
return report.Failures == 0 ? 0 : 1;

/// <summary>Prints each check's line and counts failures.</summary>
internal sealed class Report
{
    public int Failures { get; private set; }

    public void Check(string what, bool ok, string detail)
    {
        if (!ok) Failures++;
        Console.WriteLine($"  {(ok ? "PASS" : "FAIL")}  {what}: {detail}");
    }

    public static void Info(string line) => Console.WriteLine("  " + line);
}
