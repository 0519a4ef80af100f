namespace SsmGen.Numerics;

/// <summary>Arrays whose data starts on a cache line, so that each 64-byte vector load touches one line.</summary>
internal static unsafe class CacheLines
{
    /// <summary>The cache line of the x64 CPUs the kernels target.</summary>
    public const int Bytes = 64;

    /// <summary>A pinned array of <paramref name="length"/> elements from its returned index on, that index on a cache line.</summary>
    public static (T[] Array, int First) PinnedArray<T>(int length) where T : unmanaged
    {
        var array = GC.AllocateArray<T>(length + Bytes / sizeof(T), pinned: true);
        fixed (T* p = array) return (array, (int)((Bytes - (nint)p % Bytes) % Bytes) / sizeof(T));
    }
}
