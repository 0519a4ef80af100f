using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SsmGen.Distributed;

/// <summary>
/// <see cref="ICollective"/> over MPI_COMM_WORLD of Open MPI (Debian's <c>libopenmpi3</c>; ranks started with its
/// <c>mpirun -np N dotnet …</c>). Bound directly to the MPI C API of <c>libmpi.so.40</c> through function pointers
/// (no reflection, no marshalling stubs: Native-AOT compatible). Why not a .NET MPI package: the maintained ones
/// ship their own native builds or target MPICH's integer handles; Open MPI's handles are the addresses of its
/// exported objects (<c>ompi_mpi_comm_world</c>, <c>ompi_mpi_float</c>), which this binding reads from the library,
/// so it works with the Open MPI the machine's package manager installs. Every call's status is checked
/// (MPI_ERRORS_RETURN on the communicator) and a failure throws <see cref="MpiException"/> naming the call.
/// <para>
/// A rank that dies makes <c>mpirun</c> end the job. A rank that hangs would leave the others waiting inside a
/// collective forever: a watchdog ends this process (exit code 70, after a message on standard error naming the
/// operation and the wait) when one collective has waited longer than <see cref="Timeout"/>, and <c>mpirun</c> then
/// ends the job.
/// </para>
/// </summary>
public sealed unsafe class MpiCollective : ICollective
{
    private const int ThreadSerialized = 2, Success = 0, MaxErrorString = 256;
    private const string Library = "libmpi.so.40";

    private static nint s_library;
    private static nint s_commWorld, s_float, s_errorsReturn;
    private static delegate* unmanaged<int*, int> s_initialized, s_finalized;
    private static delegate* unmanaged<int*, byte***, int, int*, int> s_initThread;
    private static delegate* unmanaged<int> s_finalize;
    private static delegate* unmanaged<nint, int*, int> s_commRank, s_commSize;
    private static delegate* unmanaged<nint, nint, int> s_setErrhandler;
    private static delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int> s_alltoall, s_allgather;
    private static delegate* unmanaged<void*, int, nint, int, nint, int> s_bcast;
    private static delegate* unmanaged<nint, int> s_barrier;
    private static delegate* unmanaged<int, byte*, int*, int> s_errorString;
    private static delegate* unmanaged<int, void> s_exit;
    private static delegate* unmanaged<byte*, byte*, int, int> s_setenv;
    private static delegate* unmanaged<int*, int> s_queryThread;
    private static delegate* unmanaged<nint, int, int> s_abort;
    private static int s_open; // MpiCollective instances not yet disposed: MPI is initialized and finalized once

    private float[] _send = [], _receive = [], _chunk = [];
    private readonly Thread _watchdog;
    private long _callStarted; // Stopwatch ticks of the collective in flight, 0 when none
    private string _callName = "";
    private volatile bool _disposed;

    public int Rank { get; }
    public int Size { get; }
    public string Name => $"Open MPI, rank {Rank} of {Size}";
    /// <summary>The longest one collective may wait for the other ranks before this process ends the job.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>True when this process was started by Open MPI's launcher (mpirun sets OMPI_COMM_WORLD_SIZE).</summary>
    public static bool LaunchedByMpirun => Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null;

    /// <summary>Initializes MPI (once per process) and joins MPI_COMM_WORLD.</summary>
    /// <param name="timeout">How long one collective may wait for the other ranks (5 minutes unless given).</param>
    public MpiCollective(TimeSpan? timeout = null)
    {
        Timeout = timeout ?? TimeSpan.FromMinutes(5);
        if (Timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The collectives' timeout must be positive.");
        Load();
        if (Interlocked.Increment(ref s_open) != 1)
        {
            Interlocked.Decrement(ref s_open);
            throw new InvalidOperationException("An MpiCollective is already open in this process; use that one (MPI is initialized and finalized once per process).");
        }
        int flag, provided, rank, size;
        Check(s_initialized(&flag), "MPI_Initialized");
        // Serialized: the trainer's all-reduce thread calls MPI while the main thread waits (never two calls at once)
        if (flag == 0)
        {
            // A collective waiting for the other ranks yields its core instead of spinning on it, unless the launcher
            // says otherwise: the all-reduce thread waits while the backward computes (measured here: spinning cost the
            // overlapped sMNIST job 12% of its steps). Open MPI reads it from the C environment at MPI_Init.
            fixed (byte* name = "OMPI_MCA_mpi_yield_when_idle\0"u8, value = "1\0"u8) s_setenv(name, value, 0);
            Check(s_initThread(null, null, ThreadSerialized, &provided), "MPI_Init_thread");
        }
        else Check(s_queryThread(&provided), "MPI_Query_thread"); // initialized by someone else: at what level?
        if (provided < ThreadSerialized)
            throw new MpiException($"MPI runs at thread support level {provided}; SsmGen needs MPI_THREAD_SERIALIZED ({ThreadSerialized}) to all-reduce from a thread of its own.", 0);
        Check(s_setErrhandler(s_commWorld, s_errorsReturn), "MPI_Comm_set_errhandler");
        Check(s_commRank(s_commWorld, &rank), "MPI_Comm_rank");
        Check(s_commSize(s_commWorld, &size), "MPI_Comm_size");
        (Rank, Size) = (rank, size);
        _watchdog = new Thread(Watch) { IsBackground = true, Name = "MPI watchdog" };
        _watchdog.Start();
    }

    public void AllReduceSum(Span<float> values)
    {
        if (Size == 1 || values.IsEmpty) return;
        // A reduce-scatter (rank c receives everyone's chunk c and adds them in rank order), then an all-gather of the
        // reduced chunks: each sum is done once, in a fixed order, by one rank, so every rank gets the same bits.
        int chunk = checked((values.Length + Size - 1) / Size);
        long padded = (long)chunk * Size;
        if (padded > int.MaxValue) throw new ArgumentException($"{values.Length} values are more than one all-reduce of this binding takes; reduce them in parts.", nameof(values));
        Grow(ref _send, (int)padded); Grow(ref _receive, (int)padded); Grow(ref _chunk, chunk);
        values.CopyTo(_send);
        _send.AsSpan(values.Length, (int)padded - values.Length).Clear();
        fixed (float* send = _send, receive = _receive, mine = _chunk)
        {
            Begin("MPI_Alltoall (all-reduce)");
            End(s_alltoall(send, chunk, s_float, receive, chunk, s_float, s_commWorld));
            var sum = new Span<float>(mine, chunk);
            new ReadOnlySpan<float>(receive, chunk).CopyTo(sum);
            for (int r = 1; r < Size; r++) System.Numerics.Tensors.TensorPrimitives.Add(sum, new ReadOnlySpan<float>(receive + (long)r * chunk, chunk), sum);
            Begin("MPI_Allgather (all-reduce)");
            End(s_allgather(mine, chunk, s_float, send, chunk, s_float, s_commWorld));
        }
        _send.AsSpan(0, values.Length).CopyTo(values);
    }

    public void Broadcast(Span<float> values, int root = 0)
    {
        if ((uint)root >= (uint)Size) throw new ArgumentOutOfRangeException(nameof(root), root, $"The job has ranks 0 to {Size - 1}.");
        if (Size == 1 || values.IsEmpty) return;
        int count = values.Length;
        fixed (float* p = values)
        {
            Begin("MPI_Bcast");
            End(s_bcast(p, count, s_float, root, s_commWorld));
        }
    }

    public void AllGather(ReadOnlySpan<float> mine, Span<float> all)
    {
        if ((long)mine.Length * Size != all.Length)
            throw new ArgumentException($"Gathering {mine.Length} values from each of {Size} ranks needs room for {(long)mine.Length * Size}, not {all.Length}.", nameof(all));
        if (mine.IsEmpty) return;
        int count = mine.Length;
        fixed (float* send = mine, receive = all)
        {
            Begin("MPI_Allgather");
            End(s_allgather(send, count, s_float, receive, count, s_float, s_commWorld));
        }
    }

    public void Barrier()
    {
        Begin("MPI_Barrier");
        End(s_barrier(s_commWorld));
    }

    /// <summary>
    /// Ends the whole job at once (MPI_Abort) with <paramref name="exitCode"/>: what a rank that cannot go on (an
    /// exception, bad input) calls after saying why, since the other ranks would otherwise wait for it inside a
    /// collective and finalizing could wait for them. Does not return.
    /// </summary>
    public void Abort(int exitCode)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        s_abort(s_commWorld, exitCode);
        s_exit(exitCode); // MPI_Abort should not return; if it does, this rank still ends
    }

    /// <summary>Finalizes MPI (every rank must dispose; afterwards no MPI call may be made in this process).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Interlocked.Decrement(ref s_open);
        int flag;
        Check(s_finalized(&flag), "MPI_Finalized");
        if (flag == 0) Check(s_finalize(), "MPI_Finalize");
    }

    /// <summary>A collective starts: the watchdog times it from now.</summary>
    private void Begin(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _callName = name;
        Volatile.Write(ref _callStarted, Stopwatch.GetTimestamp());
    }

    /// <summary>It returned <paramref name="status"/>.</summary>
    private void End(int status)
    {
        Volatile.Write(ref _callStarted, 0);
        Check(status, _callName);
    }

    private void Watch()
    {
        while (!_disposed)
        {
            Thread.Sleep(200);
            long started = Volatile.Read(ref _callStarted);
            if (started == 0 || Stopwatch.GetElapsedTime(started) <= Timeout) continue;
            Console.Error.WriteLine($"SsmGen MPI rank {Rank} of {Size}: {_callName} has waited {Stopwatch.GetElapsedTime(started).TotalSeconds:F0} s " +
                $"(timeout {Timeout.TotalSeconds:F0} s) for the other ranks: one of them has died or hangs. Ending this rank so that mpirun ends the job.");
            Console.Error.Flush();
            s_exit(70); // at once: the main thread is inside MPI and cannot unwind
        }
    }

    private static void Grow(ref float[] buffer, int length)
    {
        if (buffer.Length < length) buffer = new float[length];
    }

    private static void Check(int status, string call)
    {
        if (status == Success) return;
        byte* text = stackalloc byte[MaxErrorString + 1];
        int length = 0;
        string message = s_errorString(status, text, &length) == Success ? System.Text.Encoding.ASCII.GetString(text, Math.Clamp(length, 0, MaxErrorString)) : "no description";
        throw new MpiException($"{call} failed with MPI error {status}: {message}.", status);
    }

    private static void Load()
    {
        if (s_library != 0) return;
        if (!NativeLibrary.TryLoad(Library, out var library))
            throw new DllNotFoundException($"Open MPI's {Library} was not found: install Debian's libopenmpi3 (and openmpi-bin for mpirun), as .ci/install-mpi does.");
        nint Export(string name) => NativeLibrary.TryGetExport(library, name, out var address)
            ? address : throw new EntryPointNotFoundException($"{Library} has no '{name}': this binding needs Open MPI 4 or later (MPICH and others name their objects differently).");
        s_commWorld = Export("ompi_mpi_comm_world");
        s_float = Export("ompi_mpi_float");
        s_errorsReturn = Export("ompi_mpi_errors_return");
        s_initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized");
        s_finalized = (delegate* unmanaged<int*, int>)Export("MPI_Finalized");
        s_initThread = (delegate* unmanaged<int*, byte***, int, int*, int>)Export("MPI_Init_thread");
        s_finalize = (delegate* unmanaged<int>)Export("MPI_Finalize");
        s_commRank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank");
        s_commSize = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size");
        s_setErrhandler = (delegate* unmanaged<nint, nint, int>)Export("MPI_Comm_set_errhandler");
        s_alltoall = (delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int>)Export("MPI_Alltoall");
        s_allgather = (delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int>)Export("MPI_Allgather");
        s_bcast = (delegate* unmanaged<void*, int, nint, int, nint, int>)Export("MPI_Bcast");
        s_barrier = (delegate* unmanaged<nint, int>)Export("MPI_Barrier");
        s_queryThread = (delegate* unmanaged<int*, int>)Export("MPI_Query_thread");
        s_errorString = (delegate* unmanaged<int, byte*, int*, int>)Export("MPI_Error_string");
        s_abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort");
        nint libc = NativeLibrary.Load("libc.so.6");
        s_exit = (delegate* unmanaged<int, void>)NativeLibrary.GetExport(libc, "_exit");
        s_setenv = (delegate* unmanaged<byte*, byte*, int, int>)NativeLibrary.GetExport(libc, "setenv");
        s_library = library;
    }
}

/// <summary>An MPI call returned an error; <see cref="Status"/> is its code.</summary>
public sealed class MpiException(string message, int status) : Exception(message)
{
    public int Status { get; } = status;
}
