using SsmGen.Distributed;
using SsmGen.Numerics;

namespace SsmGen.Layers;

/// <summary>
/// One Mamba block's part of sequence parallelism (see <see cref="SequenceParallel"/>); generated code calls it after the
/// block's convolution and in place of its scan when the model runs a piece of each sequence.
/// <list type="bullet">
/// <item>Convolution: each piece's first W−1 outputs also read the W−1 inputs before it, which the rank before sends;
/// the backward sends their gradient back.</item>
/// <item>Scan: each piece runs from a zero state; the pieces' end states and transition products P = Π Ā are gathered
/// and composed in rank order in fp32 (h_in(r+1) = P_r ⊙ h_in(r) + h_end(r)), and every rank but the first runs its
/// scan again from the state that really enters it. The backward gathers each piece's dL/dh_in with nothing arriving
/// at its end, composes the adjoint arriving at each piece's end the other way (T(r) = a(r+1) + P_(r+1) ⊙ T(r+1)),
/// and runs the scan's backward from it.</item>
/// </list>
/// </summary>
public sealed class MambaStatePassing(int block, int e, int n, int convWidth)
{
    private float[] _send = [], _halo = [], _dHalo = [], _entering = [], _terminal = [], _pieces = [];
    private int _pieceWidth;

    /// <summary>After the convolution: adds the taps that reach into the piece before (whose last W−1 inputs this gathers and keeps).</summary>
    public void ConvForward(SequenceParallel seq, ReadOnlySpan<float> xi, ReadOnlySpan<float> w, Span<float> c, int batch, int length)
    {
        int wm = convWidth - 1, size = batch * wm * e;
        if (wm == 0 || seq.Size == 1) return;
        if (length < wm) throw new ArgumentException($"Each rank's piece of a sequence must hold at least W − 1 = {wm} tokens for block {block}'s convolution; this one holds {length}.", nameof(length));
        Grow(ref _send, size);
        for (int b = 0; b < batch; b++) xi.Slice((b * length + length - wm) * e, wm * e).CopyTo(_send.AsSpan(b * wm * e));
        var all = seq.Gather(block, SequenceParallel.Steps.ConvHalo, batch, _send.AsSpan(0, size));
        if (seq.Rank == 0) return; // the sequence's start: zeros before it, as the convolution assumed
        Grow(ref _halo, size);
        all.Slice((seq.Rank - 1) * size, size).CopyTo(_halo);
        MambaKernels.ConvHaloForward(_halo, w, c, batch, length, e, convWidth);
    }

    /// <summary>After the convolution's backward: adds the halo taps' weight gradients, and the gradient the piece after owes this piece's last W−1 inputs into dxi.</summary>
    public void ConvBackward(SequenceParallel seq, ReadOnlySpan<float> dc, ReadOnlySpan<float> w, Span<float> dw, Span<float> dxi, int batch, int length)
    {
        int wm = convWidth - 1, size = batch * wm * e;
        if (wm == 0 || seq.Size == 1) return;
        Grow(ref _dHalo, size);
        if (seq.Rank == 0) _dHalo.AsSpan(0, size).Clear();
        else MambaKernels.ConvHaloBackward(_halo, w, dc, dw, _dHalo, batch, length, e, convWidth);
        var all = seq.Gather(block, SequenceParallel.Steps.ConvHaloGradient, batch, _dHalo.AsSpan(0, size));
        if (seq.Rank == seq.Size - 1) return;
        var owed = all.Slice((seq.Rank + 1) * size, size);
        for (int b = 0; b < batch; b++)
        {
            var rows = dxi.Slice((b * length + length - wm) * e, wm * e);
            System.Numerics.Tensors.TensorPrimitives.Add(rows, owed.Slice(b * wm * e, wm * e), rows);
        }
    }

    /// <summary>The scan of this rank's piece, from the state that enters it (see the class summary).</summary>
    public void ScanForward(SequenceParallel seq, SelectiveScan scan, float[] u, float[] delta, float[] dbc, ReadOnlySpan<float> aLog, ReadOnlySpan<float> d, float[] ys, int batch, int length)
    {
        scan.Forward(u, delta, dbc, aLog, d, ys, batch, length); // from zero
        if (seq.Size == 1) return;
        int width = batch * n * e;
        _pieceWidth = width;
        Grow(ref _send, 2 * width);
        scan.EndStates.AsSpan(0, width).CopyTo(_send);
        scan.DecayProducts(_send.AsSpan(width, width));
        var all = seq.Gather(block, SequenceParallel.Steps.ForwardStates, batch, _send.AsSpan(0, 2 * width));
        Grow(ref _pieces, all.Length);
        all.CopyTo(_pieces); // the backward composes with the later pieces' products
        if (seq.Rank == 0) return;
        Grow(ref _entering, width);
        var h = _entering.AsSpan(0, width);
        h.Clear();
        for (int r = 0; r < seq.Rank; r++)
        {
            var piece = _pieces.AsSpan(r * 2 * width, 2 * width);
            System.Numerics.Tensors.TensorPrimitives.FusedMultiplyAdd(piece.Slice(width, width), h, piece.Slice(0, width), h); // P ⊙ h + h_end
        }
        scan.ForwardFrom(_entering, u, delta, dbc, aLog, d, ys, batch, length);
    }

    /// <summary>The scan's backward for this rank's piece, with the adjoint the later pieces send to its end.</summary>
    public void ScanBackward(SequenceParallel seq, SelectiveScan scan, float[] dys, float[] du, float[] dDelta, float[] dDbc, Span<float> gALog, Span<float> gD, int batch)
    {
        if (seq.Size == 1) { scan.Backward(dys, du, dDelta, dDbc, gALog, gD); return; }
        int width = _pieceWidth;
        if (width != batch * n * e) throw new InvalidOperationException("The scan's backward needs the sequence-parallel forward of the same batch first.");
        Grow(ref _send, width);
        scan.EnteringAdjoints(dys, _send.AsSpan(0, width));
        var all = seq.Gather(block, SequenceParallel.Steps.BackwardAdjoints, batch, _send.AsSpan(0, width));
        if (seq.Rank == seq.Size - 1) { scan.Backward(dys, du, dDelta, dDbc, gALog, gD); return; }
        Grow(ref _terminal, width);
        var g = _terminal.AsSpan(0, width);
        g.Clear();
        for (int r = seq.Size - 1; r > seq.Rank; r--)
            System.Numerics.Tensors.TensorPrimitives.FusedMultiplyAdd(_pieces.AsSpan(r * 2 * width + width, width), g, all.Slice(r * width, width), g); // a(r) + P(r) ⊙ g
        scan.BackwardWith(_terminal, dys, du, dDelta, dDbc, gALog, gD);
    }

    private static void Grow(ref float[] a, int n)
    {
        if (a.Length < n) a = new float[n];
    }
}
