using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SsmGen.Cuda;

namespace SsmGen.Distributed;

/// <summary>An NCCL call failed; <see cref="Status"/> is NCCL's result code.</summary>
public sealed class NcclException(string message, int status) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>
/// The collectives over NCCL, NVIDIA's library for GPU-to-GPU communication (NVLink, PCIe, InfiniBand), one GPU per
/// rank. The values move through a buffer on this rank's GPU: copied there, reduced or gathered by NCCL, copied back
/// (the trainer brings a GPU model's gradients home for its step; see docs/distributed.md). NCCL is loaded at run
/// time like the CUDA libraries (libnccl.so.2), every result is checked, and an error NCCL reports later (a rank that
/// died) is read after each operation. The ranks agree on NCCL's unique id through a bootstrap collective (MPI:
/// rank 0 makes the id and broadcasts it) or through a file the launcher's ranks share. NCCL's sums follow its own
/// order (a ring or a tree), the same from run to run on the same machines, but not rank order as
/// <see cref="MpiCollective"/>'s are. A collective that waits past <see cref="Timeout"/> ends its process (exit 70)
/// after saying so, as MpiCollective's do.
/// </summary>
public sealed unsafe class NcclCollective : ICollective
{
    private const int Float32 = 7, Sum = 0, Success = 0, IdBytes = 128;

    [InlineArray(IdBytes)]
    private struct UniqueId { private byte _first; }

    private static delegate* unmanaged<UniqueId*, int> s_getUniqueId;
    private static delegate* unmanaged<nint*, int, UniqueId, int, int> s_commInitRank;
    private static delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int> s_allReduce;
    private static delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int> s_broadcast;
    private static delegate* unmanaged<nint, nint, nuint, int, nint, nint, int> s_allGather;
    private static delegate* unmanaged<nint, int> s_commDestroy, s_commAbort;
    private static delegate* unmanaged<nint, int*, int> s_commGetAsyncError;
    private static delegate* unmanaged<int, byte*> s_getErrorString;
    private static delegate* unmanaged<int*, int> s_getVersion;
    private static delegate* unmanaged<int, void> s_exit;
    private static readonly object s_gate = new();

    private readonly CudaBackend _device;
    private readonly nint _comm;
    private ulong _buffer;
    private long _bufferBytes;
    private readonly float[] _one = new float[1];
    private readonly Thread _watchdog;
    private long _waitingSince; // Stopwatch ticks when the current collective began; 0 when none runs
    private string _waitingOn = "";
    private bool _disposed;

    /// <summary>How long one collective may wait for the other ranks before this rank gives up and ends.</summary>
    public TimeSpan Timeout { get; }
    public int Rank { get; }
    public int Size { get; }
    public string Name { get; }

    /// <summary>True when NCCL and a CUDA driver load; <paramref name="reason"/> says why not otherwise (what to install).</summary>
    public static bool IsAvailable(out string reason) => CudaLibraries.TryDriver(out reason) && CudaLibraries.TryNccl(out reason);

    /// <summary>
    /// Joins the job of <paramref name="bootstrap"/>'s ranks (an <see cref="MpiCollective"/> under mpirun) with the same
    /// rank and size, on CUDA device <paramref name="device"/> (by default the rank's place among the ranks on its
    /// machine, OMPI_COMM_WORLD_LOCAL_RANK: one GPU per rank). Every rank calls it at the same point.
    /// </summary>
    public NcclCollective(ICollective bootstrap, int? device = null, TimeSpan? timeout = null)
        : this(bootstrap.Rank, bootstrap.Size, device, timeout, id =>
        {
            // 128 bytes as 32 floats: MPI moves them bit for bit between machines of one kind
            var words = MemoryMarshal.Cast<byte, float>(id);
            bootstrap.Broadcast(words, root: 0);
        })
    { }

    /// <summary>
    /// Joins a job whose ranks share a folder: rank 0 writes NCCL's unique id to <paramref name="idFile"/> (a file that
    /// must not exist yet), the others wait for it (up to the timeout).
    /// </summary>
    public NcclCollective(string idFile, int rank, int size, int? device = null, TimeSpan? timeout = null)
        : this(rank, size, device, timeout, id => ShareThroughFile(idFile, rank, id, timeout ?? TimeSpan.FromMinutes(5)))
    { }

    private NcclCollective(int rank, int size, int? device, TimeSpan? timeout, SpanAction share)
    {
        if (size < 1 || (uint)rank >= (uint)size) throw new ArgumentOutOfRangeException(nameof(rank), rank, $"A rank must be in [0, {size}) of a job of at least one rank.");
        Timeout = timeout ?? TimeSpan.FromMinutes(5);
        if (Timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The collectives' timeout must be positive.");
        Load();
        (Rank, Size) = (rank, size);
        _device = CudaBackend.Create(device ?? LocalDevice());
        try
        {
            UniqueId id = default;
            if (rank == 0) Check(s_getUniqueId(&id), "ncclGetUniqueId");
            share(MemoryMarshal.CreateSpan(ref Unsafe.As<UniqueId, byte>(ref id), IdBytes));
            int version;
            Check(s_getVersion(&version), "ncclGetVersion");
            Name = $"NCCL {version / 10000}.{version / 100 % 100}.{version % 100} on {_device.Name}";
            _device.Synchronize(); // makes the device's context current on this thread for NCCL
            nint comm;
            Check(s_commInitRank(&comm, size, id, rank), "ncclCommInitRank");
            _comm = comm;
        }
        catch
        {
            _device.Dispose();
            throw;
        }
        _watchdog = new Thread(Watch) { IsBackground = true, Name = "NCCL watchdog" };
        _watchdog.Start();
    }

    private delegate void SpanAction(Span<byte> id);

    private static int LocalDevice() =>
        int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_RANK"), out int local) ? local : 0;

    private static void ShareThroughFile(string path, int rank, Span<byte> id, TimeSpan wait)
    {
        if (rank == 0)
        {
            if (File.Exists(path)) throw new IOException($"NCCL's id file {path} exists already: remove it (a previous job's) before starting the ranks.");
            string temporary = path + $".{Environment.ProcessId}.tmp";
            File.WriteAllBytes(temporary, id.ToArray());
            File.Move(temporary, path); // the others never read half a file
            return;
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!File.Exists(path))
        {
            if (clock.Elapsed > wait) throw new TimeoutException($"Rank {rank} waited {wait.TotalSeconds:0} s for rank 0 to write NCCL's id file {path}.");
            Thread.Sleep(20);
        }
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length != IdBytes) throw new IOException($"NCCL's id file {path} holds {bytes.Length} bytes, not {IdBytes}.");
        bytes.CopyTo(id);
    }

    private static void Load()
    {
        lock (s_gate)
        {
            if (s_allReduce != null) return;
            CudaLibraries.Require(CudaLibraries.Driver);
            CudaLibraries.Require(CudaLibraries.Nccl);
            nint lib = CudaLibraries.Handle(CudaLibraries.Nccl);
            nint Export(string name) => NativeLibrary.GetExport(lib, name);
            s_getUniqueId = (delegate* unmanaged<UniqueId*, int>)Export("ncclGetUniqueId");
            s_commInitRank = (delegate* unmanaged<nint*, int, UniqueId, int, int>)Export("ncclCommInitRank");
            s_broadcast = (delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int>)Export("ncclBroadcast");
            s_allGather = (delegate* unmanaged<nint, nint, nuint, int, nint, nint, int>)Export("ncclAllGather");
            s_commDestroy = (delegate* unmanaged<nint, int>)Export("ncclCommDestroy");
            s_commAbort = (delegate* unmanaged<nint, int>)Export("ncclCommAbort");
            s_commGetAsyncError = (delegate* unmanaged<nint, int*, int>)Export("ncclCommGetAsyncError");
            s_getErrorString = (delegate* unmanaged<int, byte*>)Export("ncclGetErrorString");
            s_getVersion = (delegate* unmanaged<int*, int>)Export("ncclGetVersion");
            s_exit = (delegate* unmanaged<int, void>)NativeLibrary.GetExport(NativeLibrary.Load("libc.so.6"), "_exit");
            s_allReduce = (delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int>)Export("ncclAllReduce"); // last: marks the table complete
        }
    }

    private static void Check(int status, string call)
    {
        if (status == Success) return;
        string text = s_getErrorString != null ? Marshal.PtrToStringUTF8((nint)s_getErrorString(status)) ?? "" : "";
        throw new NcclException($"{call} failed with NCCL result {status}: {text}", status);
    }

    /// <summary>Makes the device buffer hold at least <paramref name="floats"/> values.</summary>
    private nint Buffer(long floats)
    {
        long bytes = floats * sizeof(float);
        if (bytes > _bufferBytes)
        {
            ulong old = _buffer;
            (_buffer, _bufferBytes) = (0, 0); // nothing refers to freed memory if the allocation below fails
            _device.Free(old);
            _buffer = _device.Allocate(bytes);
            _bufferBytes = bytes;
        }
        return (nint)_buffer;
    }

    /// <summary>
    /// Checks what queuing the operation returned, waits for it, then reads the error NCCL may have met on another rank's
    /// account; the watchdog stops timing it however this ends.
    /// </summary>
    private void Finish(string call, int queued)
    {
        try
        {
            Check(queued, call);
            _device.Synchronize();
            int async;
            Check(s_commGetAsyncError(_comm, &async), "ncclCommGetAsyncError");
            Check(async, call);
        }
        finally { Volatile.Write(ref _waitingSince, 0); }
    }

    private void Begin(string call)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _waitingOn = call;
        Volatile.Write(ref _waitingSince, System.Diagnostics.Stopwatch.GetTimestamp());
    }

    public void AllReduceSum(Span<float> values) => OutOfPlace(values, "ncclAllReduce", s_allReduce, Sum);

    public void Broadcast(Span<float> values, int root = 0)
    {
        if ((uint)root >= (uint)Size) throw new ArgumentOutOfRangeException(nameof(root), root, $"The job has ranks 0 to {Size - 1}.");
        OutOfPlace(values, "ncclBroadcast", s_broadcast, root);
    }

    /// <summary>
    /// values → the device buffer's first half, NCCL's operation into its cleared second half (all-reduce with its
    /// reduction, or broadcast from its root: the two take the same arguments), and back. Out of place, so that even a
    /// job of one rank shows an operation that did not run or read the wrong type (its GPU check runs one).
    /// </summary>
    private void OutOfPlace(Span<float> values, string call, delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int> operation, int reductionOrRoot)
    {
        if (values.IsEmpty) return;
        long bytes = (long)values.Length * sizeof(float);
        nint send = Buffer(2L * values.Length), receive = send + (nint)bytes;
        fixed (float* v = values)
        {
            _device.CopyToDevice((ulong)send, v, bytes);
            _device.Clear((ulong)receive, bytes);
            Begin(call);
            Finish(call, operation(send, receive, (nuint)values.Length, Float32, reductionOrRoot, _comm, 0));
            _device.CopyToHost(v, (ulong)receive, bytes);
        }
    }

    public void AllGather(ReadOnlySpan<float> mine, Span<float> all)
    {
        if ((long)mine.Length * Size != all.Length)
            throw new ArgumentException($"Gathering {mine.Length} values from each of {Size} ranks needs room for {(long)mine.Length * Size}, not {all.Length}.", nameof(all));
        if (mine.IsEmpty) return;
        long mineBytes = (long)mine.Length * sizeof(float), allBytes = (long)all.Length * sizeof(float);
        nint send = Buffer((long)mine.Length + all.Length), receive = send + (nint)mineBytes;
        fixed (float* m = mine, a = all)
        {
            _device.CopyToDevice((ulong)send, m, mineBytes);
            _device.Clear((ulong)receive, allBytes);
            Begin("ncclAllGather");
            Finish("ncclAllGather", s_allGather(send, receive, (nuint)mine.Length, Float32, _comm, 0));
            _device.CopyToHost(a, (ulong)receive, allBytes);
        }
    }

    public void Barrier() => AllReduceSum(_one.AsSpan());

    private void Watch()
    {
        while (!_disposed)
        {
            Thread.Sleep(200);
            long since = Volatile.Read(ref _waitingSince);
            if (since == 0) continue;
            var waited = System.Diagnostics.Stopwatch.GetElapsedTime(since);
            if (waited <= Timeout) continue;
            Console.Error.WriteLine($"rank {Rank}: {_waitingOn} waited {waited.TotalSeconds:0} s (timeout {Timeout.TotalSeconds:0} s) for the other ranks; ending this rank.");
            Console.Error.Flush();
            s_commAbort(_comm);
            s_exit(70); // at once: the main thread is inside NCCL or the driver and cannot unwind
        }
    }

    /// <summary>Destroys the communicator (every rank must) and frees the device buffer.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        int destroyed = s_commDestroy(_comm);
        try { _device.Free(_buffer); }
        finally { _device.Dispose(); }
        Check(destroyed, "ncclCommDestroy");
    }
}
