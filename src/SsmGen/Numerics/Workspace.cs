namespace SsmGen.Numerics;

/// <summary>
/// The scratch and parallel-job objects a model hands to its kernels, made once in its constructor, so that
/// no call allocates on any thread. One workspace serves one caller at a time (a model is not used by two
/// threads at once). Products called without a workspace use one per thread, made on that thread's first call; row
/// kernels called without one share a single job (<see cref="RowParallel.Run"/>), so they allocate on no thread.
/// </summary>
public sealed class Workspace
{
    internal AlignedBuffer Transposed;
    internal readonly Gemm.Job GemmJob = new();
    internal readonly Gemm.GluJob GluJob = new();
    internal readonly RowParallel.Job RowJob = new();
    internal readonly RowParallel.PartialsJob PartialsJob = new();
    internal readonly ChannelParallel.Job ChannelJob = new();
    /// <summary>Per-part sums of <see cref="RowParallel.RunWithPartials"/>, grown on first use.</summary>
    internal AlignedBuffer Partials = AlignedBuffer.Empty;
    /// <summary>
    /// A row of zeros for products that write their output from a zero start rather than add to it (<see cref="Gemm.LinearBackward"/>'s
    /// dx, the partial products of a product split over k, the block tail backward's dx), grown on first use.
    /// </summary>
    internal AlignedBuffer Zeros = AlignedBuffer.Empty;
    /// <summary>The partial products of <see cref="Gemm"/>'s products split over k, grown on first use.</summary>
    internal AlignedBuffer KPartials = AlignedBuffer.Empty;
    internal readonly Gemm.KSplitJob KSplitJob = new();
    internal readonly Gemm.GluBackwardJob GluBackwardJob = new();
    internal readonly Gemm.RowSumsJob RowSumsJob = new();
    /// <summary>
    /// dL/dO of <see cref="Gemm.GluResidualLinearBackward"/>: each part's block of rows where it runs fused, all of it
    /// where the separate passes run; grown on first use.
    /// </summary>
    internal AlignedBuffer GluGradient = AlignedBuffer.Empty;

    /// <param name="maxWeights">Largest in·out of the linear layers it will serve (room for a transposed weight).</param>
    public Workspace(int maxWeights = 0) => Transposed = new AlignedBuffer(Math.Max(0, maxWeights));

    [ThreadStatic] private static Workspace? t_current;

    internal static Workspace ForCurrentThread => t_current ??= new Workspace();
}
