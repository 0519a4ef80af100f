using System.Globalization;
using SsmGen;
using SsmGen.Checkpoints;
using SsmGen.Distributed;
using SsmGen.Training;

// The data-parallel tests' rank program. Under mpirun every rank runs it; alone it is a job of one process.
//   train --steps K --batch B --seed S --out DIR [--timeout S]   K steps of batch B split over the ranks; each rank
//         [--stop-after J] [--resume DIR]                        writes its parameters and AdamW moments to DIR;
//                                                                rank 0 checkpoints after step J and the job stops
//                                                                there; --resume continues from such a checkpoint
//   sequence --length L --out DIR [--repeat N]                   one forward and backward of 2 sequences of length L,
//                                                                each rank its piece (sequence parallelism); each rank
//                                                                writes its outputs, rank 0 the ranks' summed gradients;
//                                                                then N more, timed (rank 0 prints the median)
//   hang --rank R [--timeout S]                                  rank R never reaches the first all-reduce
//   die --rank R                                                 rank R is killed before it
//   fail --rank R                                                rank R throws before it (and aborts the job)
var options = new Dictionary<string, string>();
for (int i = 1; i + 1 < args.Length; i += 2) options[args[i].TrimStart('-')] = args[i + 1];
int Int(string name, int fallback) => options.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
var timeout = TimeSpan.FromSeconds(Int("timeout", 300));
using ICollective collective = MpiCollective.LaunchedByMpirun ? new MpiCollective(timeout) : SingleProcess.Instance;

try
{
    return Command();
}
catch (InvalidDataException e) when (collective is MpiCollective mpi && mpi.Size > 1)
{
    // One rank cannot go on: say why, then end the whole job rather than leave the others waiting for it.
    Console.Error.WriteLine($"rank {collective.Rank}: error: {e.Message}");
    mpi.Abort(1);
    return 1;
}

int Command()
{
    switch (args.Length > 0 ? args[0] : "")
    {
        case "train":
            return Train(collective, Int("steps", 5), Int("batch", 8), (ulong)Int("seed", 1), options["out"], Int("stop-after", -1), options.GetValueOrDefault("resume"));
        case "sequence":
            return Sequence(collective, Int("length", 8192), options["out"], Int("repeat", 0));
        case "hang" or "die" or "fail":
            if (collective.Rank == Int("rank", 1))
            {
                if (args[0] == "fail") throw new InvalidDataException("this rank's data shard is damaged (on purpose)");
                if (args[0] == "die")
                {
                    // a crash: no MPI_Finalize, no clean-up
                    Console.Error.WriteLine($"rank {collective.Rank}: dying on purpose");
                    Console.Error.Flush();
                    System.Diagnostics.Process.GetCurrentProcess().Kill();
                }
                Thread.Sleep(Timeout.Infinite);
            }
            collective.AllReduceSum(new float[16]);
            return 0;
        default:
            Console.Error.WriteLine("usage: train --steps K --batch B --seed S --out DIR | sequence --length L --out DIR | hang --rank R | die --rank R | fail --rank R");
            return 2;
    }
}

static int Train(ICollective collective, int steps, int batch, ulong seed, string outDir, int stopAfter, string? resume)
{
    if (batch % collective.Size != 0) throw new ArgumentException($"A batch of {batch} does not split evenly over {collective.Size} ranks.");
    const int Length = 24;
    int share = batch / collective.Size, first = collective.Rank * share;
    using var model = new RankModel(share, Length, ModelUse.Training);
    model.Initialize(seed + (ulong)collective.Rank * 1000); // ranks other than 0 start elsewhere: the broadcast must fix it
    var trainer = new Trainer(model, new TrainerOptions { LearningRate = 3e-3f, WarmupSteps = 2, TotalSteps = steps }, collective);
    var x = new float[share * Length];
    var y = new int[share];
    if (resume is not null)
    {
        // every rank reads the same checkpoint: the same parameters, moments and step
        Checkpoint.Load(model, Path.Combine(resume, "model.safetensors"));
        var opt = SafetensorsFile.Read(Path.Combine(resume, "optimizer.safetensors"));
        var m = new float[model.Parameters.Length]; var v = new float[m.Length];
        opt.ReadAsFloat32("adamw.m", m);
        opt.ReadAsFloat32("adamw.v", v);
        trainer.Step = long.Parse(opt.Metadata["step"], CultureInfo.InvariantCulture);
        trainer.Optimizer.Restore(m, v, trainer.Step);
    }
    for (int step = (int)trainer.Step; step < steps; step++)
    {
        // The whole batch is drawn from the seed and the step; this rank takes rows [first, first + share).
        var rng = new Rng(seed * 7919 + (ulong)step);
        var allX = new float[batch * Length];
        var allY = new int[batch];
        for (int i = 0; i < allX.Length; i++) allX[i] = (float)rng.Normal();
        for (int b = 0; b < batch; b++) allY[b] = allX[b * Length] + allX[b * Length + 3] > 0 ? (allX[b * Length + 5] > 0 ? 1 : 0) : (allX[b * Length + 7] > 0 ? 3 : 2);
        allX.AsSpan(first * Length, share * Length).CopyTo(x);
        allY.AsSpan(first, share).CopyTo(y);
        var r = trainer.TrainStep(x, y, share, Length);
        if (collective.Rank == 0) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"step {step}: loss {r.Loss:R}, correct {r.Correct}/{r.Count}, gradient norm {r.GradientNorm:R}"));
        if (step + 1 == stopAfter)
        {
            if (collective.Rank == 0)
            {
                Directory.CreateDirectory(outDir);
                Checkpoint.Write(Path.Combine(outDir, "optimizer.safetensors"),
                    [("adamw.m", [model.Parameters.Length], trainer.Optimizer.FirstMoments.ToArray()), ("adamw.v", [model.Parameters.Length], trainer.Optimizer.SecondMoments.ToArray())],
                    new Dictionary<string, string> { ["step"] = trainer.Step.ToString(CultureInfo.InvariantCulture) });
                Checkpoint.Save(model, Path.Combine(outDir, "model.safetensors"));
            }
            collective.Barrier();
            return 0;
        }
    }
    Directory.CreateDirectory(outDir);
    using var file = File.Create(Path.Combine(outDir, $"rank{collective.Rank}.bin"));
    foreach (var span in new[] { model.Parameters.ToArray(), trainer.Optimizer.FirstMoments.ToArray(), trainer.Optimizer.SecondMoments.ToArray() })
        file.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(span.AsSpan()));
    return 0;
}

static int Sequence(ICollective collective, int length, string outDir, int repeat)
{
    const int Batch = 2;
    // rank r holds positions [from, from + count) of both sequences
    int from = (int)((long)length * collective.Rank / collective.Size), count = (int)((long)length * (collective.Rank + 1) / collective.Size) - from;
    using var model = new SequenceModel(Batch, count, ModelUse.Training);
    model.Initialize(9);
    if (collective.Size > 1) model.SequenceParallel = new SequenceParallel(collective);
    // inputs and dL/d(output) drawn per (sequence, position): a piece reads exactly its slice of them
    float[] Draw(int width, ulong seed)
    {
        var values = new float[Batch * count * width];
        for (int b = 0; b < Batch; b++)
            for (int t = 0; t < count; t++)
            {
                var rng = new Rng(seed * 1_000_003 + (ulong)(b * length + from + t));
                for (int f = 0; f < width; f++) values[(b * count + t) * width + f] = (float)rng.Normal();
            }
        return values;
    }
    var y = new float[Batch * count * SequenceModel.OutputSize];
    model.Forward(Draw(SequenceModel.InputSize, 11), Batch, count, y, training: true);
    model.ZeroGradients();
    model.Backward(Draw(SequenceModel.OutputSize, 97));
    var gradients = model.Gradients.ToArray();
    collective.AllReduceSum(gradients);
    Directory.CreateDirectory(outDir);
    File.WriteAllBytes(Path.Combine(outDir, $"outputs.rank{collective.Rank}.bin"), System.Runtime.InteropServices.MemoryMarshal.AsBytes(y.AsSpan()).ToArray());
    if (collective.Rank == 0) File.WriteAllBytes(Path.Combine(outDir, "gradients.bin"), System.Runtime.InteropServices.MemoryMarshal.AsBytes(gradients.AsSpan()).ToArray());
    if (repeat > 0)
    {
        var x = Draw(SequenceModel.InputSize, 11);
        var dy = Draw(SequenceModel.OutputSize, 97);
        var times = new double[repeat];
        for (int i = 0; i < repeat; i++)
        {
            collective.Barrier();
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            model.Forward(x, Batch, count, y, training: true);
            model.Backward(dy);
            collective.Barrier(); // the pass ends when the slowest rank's does
            times[i] = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        Array.Sort(times);
        if (collective.Rank == 0)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"sequence: 2 × {length} tokens on {collective.Size} rank(s): {times[repeat / 2]:F1} ms per forward and backward (median of {repeat})"));
    }
    return 0;
}

/// <summary>An S4D block and a Mamba block, one output per token: the model the sequence-parallel test cuts into pieces.</summary>
[SsmModel(Input = 2, DModel = 16, Output = 3, Pooling = Pooling.None)]
[S4DLayer(N = 8)]
[MambaLayer(N = 4)]
public partial class SequenceModel { }

/// <summary>A small model with an S4D block and a Mamba block.</summary>
[SsmModel(Input = 1, DModel = 16, Output = 4, Pooling = Pooling.Mean)]
[S4DLayer(N = 8)]
[MambaLayer(N = 4)]
public partial class RankModel { }
