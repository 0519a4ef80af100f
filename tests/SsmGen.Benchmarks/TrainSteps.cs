using System.Diagnostics;
using System.Globalization;
using SsmGen.Numerics;
using SsmGen.Training;

namespace SsmGen.Benchmarks;

/// <summary>
/// <c>--train [seconds]</c>: the two training benchmarks of the CPU suite — the sMNIST S4D model (4 blocks, H 128,
/// N 64, dropout 0.1, batch 16, L 784) and the byte-level Mamba LM (4 blocks, d_model 256, N 16, vocab 256, batch 8,
/// L 256) — timed side by side with the same architectures in PyTorch eager (<c>examples/GpuCheck/pytorch_eager.py</c>,
/// when <c>python3</c> can import torch), in windows taken in turn for the whole run, so both sides share the
/// machine's moments. A train step is forward, loss, backward, gradient clipping and AdamW; a forward is the
/// inference forward (PyTorch: eval mode under no_grad). Each configuration reports its fastest window and its median.
/// </summary>
public static class TrainSteps
{
    private sealed class Config(string model, string pass, string side, Func<double> window)
    {
        public readonly string Model = model, Pass = pass, Side = side;
        public readonly Func<double> Window = window; // ms per step
        public readonly List<double> Windows = [];
    }

    public static void Run(double seconds)
    {
        var configs = new List<Config>();
        foreach (var (name, build) in new (string, Func<Bench>)[] { ("sMNIST S4D", SmnistTrain), ("Mamba LM", MambaTrain) })
        {
            var bench = build();
            configs.Add(new(name, "train step", "SsmGen", () => Time(2, bench.TrainStep)));
            configs.Add(new(name, "forward", "SsmGen", () => Time(4, bench.Forward)));
            if (PyTorchPeer.Start(bench.PeerArguments) is { } peer)
            {
                Console.WriteLine($"PyTorch peer for {name}: {peer.Description}");
                configs.Add(new(name, "train step", "PyTorch", () => peer.Time("train", bench.PeerTrainSteps)));
                configs.Add(new(name, "forward", "PyTorch", () => peer.Time("forward", 4)));
            }
            else Console.WriteLine($"PyTorch peer for {name}: not run ({PyTorchPeer.WhyNot}).");
        }
        foreach (var c in configs) c.Window(); // warm-up: every path compiled, its buffers touched
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds)
            foreach (var c in configs) c.Windows.Add(c.Window());

        Console.WriteLine($"Windows taken in turn over {seconds:F0} s ({configs[0].Windows.Count} per configuration), both sides on {Environment.ProcessorCount} threads: ms per step, fastest window (median).");
        Console.WriteLine("| model | pass | SsmGen | PyTorch | SsmGen faster (fastest windows) | (medians) |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var ours in configs.Where(c => c.Side == "SsmGen"))
        {
            var peer = configs.FirstOrDefault(c => c.Side == "PyTorch" && c.Model == ours.Model && c.Pass == ours.Pass);
            string theirs = peer is null ? "—" : Describe(peer), ratio = peer is null ? "—" : $"{peer.Windows.Min() / ours.Windows.Min():F2}×",
                   medianRatio = peer is null ? "—" : $"{Median(peer) / Median(ours):F2}×";
            Console.WriteLine($"| {ours.Model} | {ours.Pass} | {Describe(ours)} | {theirs} | {ratio} | {medianRatio} |");
        }
    }

    /// <summary>
    /// <c>--passes [steps]</c>: each model's train step split by pass (<see cref="PassProfile"/>), with each pass's
    /// FLOP rate against the FP32 peak of all cores and its byte rate against the all-core triad bandwidth, both
    /// measured first in the same run.
    /// </summary>
    public static void Passes(int steps)
    {
        int cores = Environment.ProcessorCount;
        var fma = new FmaPeak();
        // One thread per core, released together by a barrier, each timing its own FMA run: the fastest over 20 rounds
        // is what a core does while the others work. Timing the whole parallel round instead (best of 5) once halved the
        // peak when a neighbour held one core through all five, and the passes then showed over 100% of it.
        double peakNs = double.MaxValue;
        for (int i = 0; i < 20; i++)
        {
            using var start = new Barrier(cores);
            var threads = Enumerable.Range(0, cores).Select(_ => new Thread(() =>
            {
                start.SignalAndWait();
                var clock = Stopwatch.StartNew();
                fma.Fma();
                double ns = clock.Elapsed.TotalNanoseconds;
                lock (fma) peakNs = Math.Min(peakNs, ns);
            })).ToArray();
            foreach (var t in threads) t.Start();
            foreach (var t in threads) t.Join();
        }
        double peak = cores * FmaPeak.Flops / peakNs; // GFLOP/s
        var triad = new MemoryTriad();
        triad.Setup();
        double triadNs = double.MaxValue;
        for (int i = 0; i < 20; i++)
        {
            var clock = Stopwatch.StartNew();
            triad.AllCores();
            triadNs = Math.Min(triadNs, clock.Elapsed.TotalNanoseconds);
        }
        double bandwidth = MemoryTriad.Bytes / triadNs; // GB/s
        Console.WriteLine($"FP32 FMA peak of {cores} cores: {peak:F1} GFLOP/s (the fastest core of 20 rounds on all cores, times {cores}); triad bandwidth on {cores} cores: {bandwidth:F1} GB/s (best of 20, this run).");
        ScanRatio(Math.Max(200, steps * 20)); // fewer pairs caught no quiet moment on a busy machine
        foreach (var (name, build) in new (string, Func<Bench>)[] { ("sMNIST S4D", SmnistTrain), ("Mamba LM", MambaTrain) })
        {
            var bench = build();
            Split($"{name} train step", bench.TrainStep, steps, peak, bandwidth);
            Split($"{name} forward (inference)", bench.Forward, steps, peak, bandwidth);
        }
    }

    /// <summary>One pass's table: <paramref name="run"/> timed <paramref name="steps"/> times after its warm-up (<see cref="WarmUp"/>), split by pass.</summary>
    private static void Split(string what, Action run, int steps, double peak, double bandwidth)
    {
        int warmUp = WarmUp(run);
        PassProfile.Start();
        var clock = Stopwatch.StartNew();
        var each = new double[steps];
        for (int i = 0; i < steps; i++)
        {
            double start = clock.Elapsed.TotalMilliseconds;
            run();
            each[i] = clock.Elapsed.TotalMilliseconds - start;
        }
        Array.Sort(each);
        double fastest = each[0], median = each[steps / 2];
        double stepMs = clock.Elapsed.TotalMilliseconds / steps;
        var totals = PassProfile.Stop();
        Console.WriteLine();
        // the passes are the mean call's; the fastest call is printed too, as the peak and the triad are their best rounds
        Console.WriteLine($"{what}: {stepMs:F1} ms (mean of {steps} after {warmUp} warm-up calls; the median {median:F1} ms, the fastest {fastest:F1} ms), by pass:");
        Console.WriteLine("| pass | ms per call | share | GFLOP/s | of the peak | GB/s | of the bandwidth |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        double claimed = 0, flops = 0;
        foreach (var t in totals)
        {
            double ms = t.Time.TotalMilliseconds / steps, ns = t.Time.TotalNanoseconds;
            claimed += ms; flops += t.Flops;
            if (ms == 0) continue;
            string rate = t.Flops > 0 ? $"{t.Flops / ns:F1} | {100 * t.Flops / ns / peak:F1}%" : "— | —";
            Console.WriteLine($"| {t.Pass} | {ms:F2} | {100 * ms / stepMs:F1}% | {rate} | {t.Bytes / ns:F1} | {100 * t.Bytes / ns / bandwidth:F0}% |");
        }
        Console.WriteLine($"| other (generated loops, the S4D discretization, hand-offs) | {stepMs - claimed:F2} | {100 * (stepMs - claimed) / stepMs:F1}% | | | | |");
        // time inside the passes when a core had no part to run: where the threads' shares end unevenly
        int threads = WorkerPool.Shared.Concurrency;
        double waitMs = PassProfile.Waiting.TotalMilliseconds / steps;
        Console.WriteLine($"Threads idle inside parallel passes (waiting for a hand-off, or after their last part for the others'): {waitMs:F2} ms per call summed over the {threads} threads, {100 * waitMs / (threads * stepMs):F1}% of their time.");
        double callFlops = flops / steps;
        Console.WriteLine($"Counted work: {callFlops / 1e9:F2} GFLOP per call = {callFlops / (stepMs * 1e6):F1} GFLOP/s over the mean call, {100 * callFlops / (stepMs * 1e6) / peak:F1}% of the {Environment.ProcessorCount}-core peak (the median call: {100 * callFlops / (median * 1e6) / peak:F1}%, the fastest: {100 * callFlops / (fastest * 1e6) / peak:F1}%).");
    }

    /// <summary>
    /// The generated N = 16 selective scan at the <see cref="MambaScan"/> shape on one core: forward and backward timed in
    /// turn, <paramref name="pairs"/> times, the fastest of each — the backward's cost in forwards (issue 24: ≤ 3).
    /// </summary>
    public static void ScanRatio(int pairs)
    {
        var scan = new MambaScan();
        scan.Forward();
        scan.Backward();
        double forward = double.MaxValue, backward = double.MaxValue;
        for (int i = 0; i < pairs; i++)
        {
            var clock = Stopwatch.StartNew();
            scan.Forward();
            double f = clock.Elapsed.TotalMilliseconds;
            scan.Backward();
            forward = Math.Min(forward, f);
            backward = Math.Min(backward, clock.Elapsed.TotalMilliseconds - f);
        }
        Console.WriteLine($"Selective scan (N 16, B 8, L 256, E 512, one core), fastest of {pairs} pairs: forward {forward:F2} ms, backward {backward:F2} ms = {backward / forward:F2}× the forward.");
    }

    /// <summary>
    /// Calls <paramref name="run"/> until tiered compilation is done with it: until <see cref="QuietCalls"/> calls in a row
    /// compiled no method (at most 200 calls). Under dynamic PGO a method without loops runs unoptimized for 30 calls,
    /// then instrumented for 30 more, and only then is compiled optimized, on a background thread: a method called once
    /// a step is recompiled near call 60, after a quiet stretch of 30 calls. Three quiet calls (the ninth session's rule)
    /// ended the warm-up inside that stretch, and those compiles then landed in the timed steps: on two cores a
    /// background compile stalls half of every parallel pass, and steps near the 60th took up to twice the others.
    /// </summary>
    private static int WarmUp(Action run)
    {
        int calls = 0, quiet = 0;
        while (calls < 200 && quiet < QuietCalls)
        {
            long before = System.Runtime.JitInfo.GetCompiledMethodCount();
            run();
            calls++;
            quiet = System.Runtime.JitInfo.GetCompiledMethodCount() == before ? quiet + 1 : 0;
        }
        return calls;
    }

    /// <summary>A quiet stretch longer than the 30 instrumented calls and the tiering delay after them.</summary>
    private const int QuietCalls = 36;

    private static string Describe(Config c) => $"{c.Windows.Min():F1} ({Median(c):F1})";
    private static double Median(Config c) => c.Windows.Order().ElementAt(c.Windows.Count / 2);

    private static double Time(int steps, Action step)
    {
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) step();
        return clock.Elapsed.TotalMilliseconds / steps;
    }

    /// <summary>One benchmark model with its trainer and fixed batch: the steps to time, and the PyTorch peer's arguments.</summary>
    public sealed record Bench(Action TrainStep, Action Forward, string PeerArguments, int PeerTrainSteps = 2);

    /// <summary>
    /// <c>--first sMNIST|Mamba [steps]</c>: the first train steps of a fresh process, each timed alone, against the
    /// fastest of 10 more after them — what tiered compilation costs a short run (rerun it under DOTNET_ settings to compare).
    /// </summary>
    public static void First(string model, int steps)
    {
        var clock = Stopwatch.StartNew();
        var bench = model.Equals("Mamba", StringComparison.OrdinalIgnoreCase) ? MambaTrain() : SmnistTrain();
        double setup = clock.Elapsed.TotalMilliseconds;
        var times = new double[steps];
        for (int i = 0; i < steps; i++) times[i] = Time(1, bench.TrainStep);
        double warm = Enumerable.Range(0, 10).Min(_ => Time(1, bench.TrainStep));
        Console.WriteLine($"{model}: setup {setup:F0} ms; first {steps} steps {times.Sum():F0} ms = {times.Sum() / (steps * warm):F2}× {steps} warmed-up steps ({warm:F1} ms each); each: {string.Join(", ", times.Select(t => t.ToString("F0", CultureInfo.InvariantCulture)))} ms.");
    }

    /// <summary><c>--loop sMNIST|Mamba [seconds]</c>: one model's train step over and over, for a profiler to watch.</summary>
    public static void Loop(string model, double seconds)
    {
        var bench = model.Equals("Mamba", StringComparison.OrdinalIgnoreCase) ? MambaTrain() : SmnistTrain();
        var clock = Stopwatch.StartNew();
        int steps = 0;
        while (clock.Elapsed.TotalSeconds < seconds) { bench.TrainStep(); steps++; }
        Console.WriteLine($"{steps} train steps in {clock.Elapsed.TotalSeconds:F1} s: {clock.Elapsed.TotalMilliseconds / steps:F1} ms each.");
    }

    /// <summary>The sMNIST S4D model, its trainer and a fixed batch of 16 sequences of 784 pixels.</summary>
    public static Bench SmnistTrain()
    {
        const int batch = SmnistStep.Batch, length = SmnistStep.Length;
        var model = new SmnistBench(batch, length);
        model.Initialize(1);
        var trainer = new Trainer(model, new TrainerOptions());
        var rng = new Rng(2);
        var x = new float[batch * length];
        for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextDouble();
        var y = new int[batch];
        for (int i = 0; i < batch; i++) y[i] = rng.NextInt(10);
        var logits = new float[batch * 10];
        return new(() => trainer.TrainStep(x, y, batch, length), () => model.Forward(x, batch, length, logits),
            $"--bench smnist-s4d --batch {batch} --length {length} --blocks 4");
    }

    /// <summary>The byte-level Mamba LM, its trainer and a fixed batch of 8 sequences of 256 tokens with targets.</summary>
    public static Bench MambaTrain()
    {
        const int batch = MambaLmStep.Batch, length = MambaLmStep.Length;
        var model = new MambaStackBench(batch, length);
        model.Initialize(1);
        var trainer = new Trainer(model, new TrainerOptions());
        var rng = new Rng(2);
        var tokens = new int[batch * length];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = rng.NextInt(MambaStackBench.VocabSize);
        var targets = new int[batch * length];
        for (int i = 0; i < targets.Length; i++) targets[i] = rng.NextInt(MambaStackBench.VocabSize);
        var logits = new float[batch * length * MambaStackBench.OutputSize];
        return new(() => trainer.TrainStep(tokens, targets, batch, length), () => model.Forward(tokens, batch, length, logits),
            $"--bench mamba-lm --batch {batch} --length {length} --blocks 4", PeerTrainSteps: 1);
    }
}

/// <summary>The PyTorch script in serve mode: one process per model, asked for timings line by line.</summary>
public sealed class PyTorchPeer
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _errors;
    public string Description { get; }
    public static string WhyNot { get; private set; } = "";

    private PyTorchPeer(Process process, System.Text.StringBuilder errors, string description) { _process = process; _errors = errors; Description = description; }

    public static PyTorchPeer? Start(string arguments)
    {
        string? script = null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null && script is null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "examples", "GpuCheck", "pytorch_eager.py")))
                script = Path.Combine(dir.FullName, "examples", "GpuCheck", "pytorch_eager.py");
        if (script is null) { WhyNot = "examples/GpuCheck/pytorch_eager.py not found above the benchmark's folder"; return null; }
        // Debian's python3-torch is installed for the system's interpreter, which a user's PATH may shadow.
        string python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        Process process;
        try
        {
            process = Process.Start(new ProcessStartInfo(python, $"\"{script}\" --device cpu --serve {arguments}")
            { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false })!;
        }
        catch (System.ComponentModel.Win32Exception e) { WhyNot = $"{python} could not start: {e.Message}"; return null; }
        // stderr read as it comes, so that warnings never fill its pipe and stall the script
        var errors = new System.Text.StringBuilder();
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (errors) errors.AppendLine(e.Data); };
        process.BeginErrorReadLine();
        string? header = process.StandardOutput.ReadLine();
        if (header is null)
        {
            process.WaitForExit();
            string error;
            lock (errors) error = errors.ToString().Trim().Split('\n').LastOrDefault() ?? "";
            WhyNot = $"the script stopped: {error} (.ci/install-pytorch installs Debian's python3-torch with OpenBLAS)";
            return null;
        }
        return new PyTorchPeer(process, errors, header);
    }

    /// <summary>Milliseconds per step of <paramref name="steps"/> steps of the given kind ("train" or "forward").</summary>
    public double Time(string what, int steps)
    {
        _process.StandardInput.WriteLine($"{what} {steps}");
        _process.StandardInput.Flush();
        string? line = _process.StandardOutput.ReadLine();
        if (line is null)
        {
            _process.WaitForExit();
            lock (_errors) throw new InvalidOperationException("The PyTorch peer stopped: " + _errors);
        }
        return double.Parse(line, CultureInfo.InvariantCulture) / steps;
    }
}
