namespace SsmGen.Distributed;

/// <summary>
/// The collective operations data-parallel training needs, over the ranks of one job. Every rank calls the same
/// operations in the same order with the same lengths, from any thread, one call at a time. <see cref="AllReduceSum"/> adds in a fixed order (rank 0's
/// values first), so its result is the same on every rank and the same from run to run.
/// </summary>
public interface ICollective : IDisposable
{
    /// <summary>This process's rank, 0 … Size − 1.</summary>
    int Rank { get; }
    /// <summary>The number of ranks.</summary>
    int Size { get; }
    /// <summary>The backend, in words (for logs).</summary>
    string Name { get; }
    /// <summary>values ← Σ over ranks of values, added in rank order; equal on every rank on return.</summary>
    void AllReduceSum(Span<float> values);
    /// <summary>values ← rank <paramref name="root"/>'s values, on every rank.</summary>
    void Broadcast(Span<float> values, int root = 0);
    /// <summary>
    /// all ← every rank's <paramref name="mine"/>, back to back in rank order (all.Length = Size · mine.Length; every rank
    /// gives the same length).
    /// </summary>
    void AllGather(ReadOnlySpan<float> mine, Span<float> all);
    /// <summary>Returns once every rank has called it.</summary>
    void Barrier();
}

/// <summary>One process, no communication: the collective a job of one rank has.</summary>
public sealed class SingleProcess : ICollective
{
    public static SingleProcess Instance { get; } = new();
    public int Rank => 0;
    public int Size => 1;
    public string Name => "one process";
    public void AllReduceSum(Span<float> values) { }
    public void Broadcast(Span<float> values, int root = 0)
    {
        if (root != 0) throw new ArgumentOutOfRangeException(nameof(root), root, "A job of one process has rank 0 only.");
    }
    public void AllGather(ReadOnlySpan<float> mine, Span<float> all)
    {
        if (all.Length != mine.Length) throw new ArgumentException($"A job of one process gathers {mine.Length} values into as many, not {all.Length}.", nameof(all));
        mine.CopyTo(all);
    }
    public void Barrier() { }
    public void Dispose() { }
}
