namespace SsmGen.Numerics;

/// <summary>
/// Arrays whose data starts on a cache line, so that each 64-byte vector load touches one line, and on a different line
/// of the 4 KB page than the arrays allocated just before it. Buffers of a multiple of 4 KB made one after another
/// otherwise start a few bytes apart within a page: a kernel that reads one and writes another at the same index then
/// has every load match a store still in flight in its low twelve address bits, which the core treats as a possible
/// dependence and waits on, and the rows it touches together fall into the same L1 sets (one 2,048-point lane transform
/// of sMNIST's backward, its rows read from cache, took 14.9 µs with its real and imaginary parts 64 bytes apart in the
/// page, 10.4–10.8 with them 2–2.5 KB apart).
/// </summary>
internal static unsafe class CacheLines
{
    /// <summary>The cache line of the x64 CPUs the kernels target.</summary>
    public const int Bytes = 64;

    private const int Page = 4096, LinesPerPage = Page / Bytes;

    /// <summary>Bytes an array holds beyond its elements: room to move its start to the chosen line.</summary>
    public const int Slack = Page + Bytes;

    [ThreadStatic] private static int t_allocations; // per thread: a model's buffers, made in sequence by one thread, step alike anywhere

    /// <summary>
    /// A pinned array of <paramref name="length"/> elements from its returned index on, that index on a cache line. For an
    /// array of a page or more, the line within the page steps by about the golden ratio of a page per such allocation (41
    /// lines; counted per thread), so buffers made in sequence start far apart in it (consecutive ones 2.6 KB, two apart
    /// 1.1 KB). The step is odd: buffers read and written at a power-of-two row stride (the (B, L, H) sequences' 512-byte
    /// rows) then meet in their low bits only when made 8 apart; a step of 40 lines put every pair a multiple of 512
    /// bytes apart.
    /// </summary>
    public static (T[] Array, int First) PinnedArray<T>(int length) where T : unmanaged
    {
        bool stagger = (long)length * sizeof(T) >= Page;
        var array = GC.AllocateArray<T>(checked(length + (stagger ? Slack : Bytes) / sizeof(T)), pinned: true);
        fixed (T* p = array)
        {
            long at = ((long)p + Bytes - 1) & ~(long)(Bytes - 1); // the first line
            if (stagger)
            {
                long line = (uint)++t_allocations * 41u % LinesPerPage;
                long chosen = (at & ~(long)(Page - 1)) + line * Bytes;
                at = chosen < at ? chosen + Page : chosen;
            }
            return (array, (int)((at - (long)p) / sizeof(T)));
        }
    }
}
