namespace SsmGen.Distributed;

/// <summary>
/// Sequence parallelism: the ranks of <see cref="Collective"/> each hold one consecutive piece of every sequence (rank 0
/// the first), and a model given this object (<see cref="ISsmModel.SequenceParallel"/>) runs its Forward and Backward
/// on its piece as if the whole sequence ran in one process. Each S4D or Mamba block runs its piece from a zero state;
/// the pieces' end states and decays (the piece is affine in the state entering it) are gathered and composed in rank
/// order, and each rank applies the state that really enters its piece; the backward passes the state's adjoint the
/// other way. A Mamba block's convolution also takes its first W−1 inputs from the rank before.
/// <para>
/// Every rank must call Forward and Backward together with the same batch (the same sequences); the pieces' lengths
/// may differ. Gradients are each rank's share: sum them over the ranks (the <see cref="Training.Trainer"/> does, given
/// the same collective). Give each rank its own <see cref="ISsmModel.DropoutSeed"/> when training with dropout, or the
/// pieces draw the same masks.
/// </para>
/// </summary>
public sealed class SequenceParallel
{
    // Every exchange carries (block, step of the pass, batch, values) so that ranks out of step fail with a message
    // instead of composing each other's wrong states.
    private const int Header = 4;
    private float[] _send = [], _receive = [];

    public SequenceParallel(ICollective collective)
    {
        ArgumentNullException.ThrowIfNull(collective);
        Collective = collective;
    }

    /// <summary>The ranks that share each sequence.</summary>
    public ICollective Collective { get; }
    /// <summary>This rank's piece: 0 holds each sequence's start.</summary>
    public int Rank => Collective.Rank;
    /// <summary>How many pieces each sequence is cut into.</summary>
    public int Size => Collective.Size;

    /// <summary>
    /// Gathers every rank's <paramref name="mine"/> (the same length on each) and returns them back to back in rank
    /// order. Checks first that every rank is at the same block and step with the same batch.
    /// </summary>
    public ReadOnlySpan<float> Gather(int block, int step, int batch, ReadOnlySpan<float> mine)
    {
        int n = mine.Length + Header;
        if (_send.Length < n) _send = new float[n];
        if (_receive.Length < (long)n * Size) _receive = new float[checked(n * Size)];
        _send[0] = block; _send[1] = step; _send[2] = batch; _send[3] = mine.Length;
        mine.CopyTo(_send.AsSpan(Header));
        Collective.AllGather(_send.AsSpan(0, n), _receive.AsSpan(0, n * Size));
        for (int r = 0; r < Size; r++)
        {
            var h = _receive.AsSpan(r * n, Header);
            if (h[0] != block || h[1] != step || h[2] != batch || h[3] != mine.Length)
                throw new InvalidOperationException(
                    $"Sequence-parallel ranks out of step: rank {Rank} is at block {block}, step {step}, batch {batch} ({mine.Length} values) " +
                    $"and rank {r} at block {h[0]}, step {h[1]}, batch {h[2]} ({h[3]} values). Every rank must run Forward and Backward together on the same sequences.");
        }
        // pack the values without the headers, in place (each moves left)
        for (int r = 0; r < Size; r++) _receive.AsSpan(r * n + Header, mine.Length).CopyTo(_receive.AsSpan(r * mine.Length));
        return _receive.AsSpan(0, mine.Length * Size);
    }

    /// <summary>The steps of one block's exchanges (their order inside a pass).</summary>
    internal static class Steps
    {
        public const int ConvHalo = 1, ForwardStates = 2, BackwardAdjoints = 3, ConvHaloGradient = 4;
    }
}
