namespace SsmGen.Memory;

/// <summary>
/// A model's memory curve: how well a linear probe reads the input at lag τ back from the state after a sequence —
/// the final state of each sequence, the input at position L − 1 − τ. The probe is fitted on the first sequences and
/// scored on the rest, so the curve is a held-out measurement.
/// </summary>
public static class MemoryCurve
{
    /// <summary>Token inputs (sequences, L) over a vocabulary: one-hot targets; accuracy, mean R² and Gaussian bits per lag.</summary>
    public static ProbeScore[] Measure(ReadOnlySpan<float> states, int sequences, int stateSize, ReadOnlySpan<int> tokens, int length, int vocab,
        IReadOnlyList<int> lags, int trainSequences, double ridge = 1.0)
    {
        Check(states, sequences, stateSize, tokens.Length, length, lags, trainSequences);
        if (vocab < 2) throw new ArgumentOutOfRangeException(nameof(vocab), vocab, "Token targets need a vocabulary of 2 or more.");
        var targets = new float[sequences * vocab];
        var scores = new ProbeScore[lags.Count];
        for (int i = 0; i < lags.Count; i++)
        {
            Array.Clear(targets);
            for (int s = 0; s < sequences; s++)
            {
                int token = tokens[s * length + length - 1 - lags[i]];
                if ((uint)token >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(tokens), token, $"Token {token} of sequence {s} is outside 0..{vocab - 1}.");
                targets[s * vocab + token] = 1;
            }
            scores[i] = Score(states, sequences, stateSize, targets, vocab, trainSequences, ridge);
        }
        return scores;
    }

    /// <summary>Real scalar inputs (sequences, L): R² and Gaussian bits per lag.</summary>
    public static ProbeScore[] Measure(ReadOnlySpan<float> states, int sequences, int stateSize, ReadOnlySpan<float> inputs, int length,
        IReadOnlyList<int> lags, int trainSequences, double ridge = 1.0)
    {
        Check(states, sequences, stateSize, inputs.Length, length, lags, trainSequences);
        var targets = new float[sequences];
        var scores = new ProbeScore[lags.Count];
        for (int i = 0; i < lags.Count; i++)
        {
            for (int s = 0; s < sequences; s++) targets[s] = inputs[s * length + length - 1 - lags[i]];
            scores[i] = Score(states, sequences, stateSize, targets, 1, trainSequences, ridge);
        }
        return scores;
    }

    private static ProbeScore Score(ReadOnlySpan<float> states, int sequences, int d, float[] targets, int k, int train, double ridge)
    {
        var probe = LinearProbe.Fit(states[..(train * d)], targets.AsSpan(0, train * k), train, d, k, ridge);
        int heldOut = sequences - train;
        return probe.Score(states[(train * d)..], targets.AsSpan(train * k, heldOut * k), heldOut);
    }

    private static void Check(ReadOnlySpan<float> states, int sequences, int stateSize, int inputLength, int length, IReadOnlyList<int> lags, int train)
    {
        ArgumentNullException.ThrowIfNull(lags);
        if (states.Length != (long)sequences * stateSize) throw new ArgumentException($"Expected {sequences}·{stateSize} state values; got {states.Length}.", nameof(states));
        if (inputLength != (long)sequences * length) throw new ArgumentException($"Expected {sequences}·{length} inputs; got {inputLength}.");
        if (train < 2 || train > sequences - 2) throw new ArgumentOutOfRangeException(nameof(train), train, $"Fit on 2 to {sequences - 2} of the {sequences} sequences, leaving 2 or more to score on.");
        foreach (int lag in lags)
            if (lag < 0 || lag >= length) throw new ArgumentOutOfRangeException(nameof(lags), lag, $"Lags must lie in 0..{length - 1}.");
    }

    /// <summary>
    /// The state each sequence leaves in a streaming model (token ids, (sequences, L)): every value of
    /// <see cref="SsmState.Values"/> after the last step, (sequences, state size).
    /// </summary>
    public static float[] FinalStates(ISsmModel model, ReadOnlySpan<int> tokens, int sequences, int length)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (tokens.Length != (long)sequences * length) throw new ArgumentException($"Expected {sequences}·{length} tokens; got {tokens.Length}.", nameof(tokens));
        var state = model.CreateState();
        var output = new float[model.Config.Output];
        var states = new float[(long)sequences * state.Size];
        for (int s = 0; s < sequences; s++)
        {
            state.Reset();
            for (int t = 0; t < length; t++) model.Step(state, tokens[s * length + t], output);
            state.Values.CopyTo(states, (long)s * state.Size);
        }
        return states;
    }
}
