using System.Numerics;

namespace SsmGen.Memory;

/// <summary>
/// Stability and convergence of a diagonal recurrence h_t = Ā_t ⊙ h_(t−1) + b_t over M modes, as an S4D layer
/// (Ā fixed) or a Mamba layer (Ā_t = exp(Δ_t·A)) runs it on real data ("Mathematical Formalism for Memory
/// Compression in Selective State Space Models": a contractive transition keeps the state bounded and makes it
/// forget where it started).
/// </summary>
/// <param name="MaxModulus">The largest |Ā_t,n| over steps and modes: below 1 means contractive.</param>
/// <param name="StateNorm">‖h_t‖₂ per step, the run from h₀ = 0.</param>
/// <param name="Bound">Per step the contraction bound ‖B_t‖₂, B_t,n = |Ā_t,n|·B_(t−1),n + |b_t,n| (so |h_t,n| ≤ B_t,n), which
/// never exceeds max|b|·√M/(1 − MaxModulus).</param>
/// <param name="Distance">‖h_t − h′_t‖₂ per step for two runs on the same input from different initial states.</param>
/// <param name="DistanceBound">‖h₀ − h′₀‖₂·Π_(s≤t) max_n |Ā_s,n| per step: what contraction guarantees for Distance.</param>
/// <param name="FittedRate">The per-step factor fitted to Distance: least squares on log Distance over the second half of
/// the steps where it is above rounding (the asymptotic rate, once faster modes have died out).</param>
/// <param name="PredictedRate">The factor the transition predicts for the same steps: the slowest mode's geometric
/// mean |Ā_t,n| over them. The distance approaches it once the faster modes have died out; before that it shrinks
/// faster (log Distance is a log-sum of the modes' exponentials, whose slope never exceeds the slowest one's).</param>
public sealed record ContractionReport(double MaxModulus, double[] StateNorm, double[] Bound, double[] Distance, double[] DistanceBound,
    double FittedRate, double PredictedRate);

public static class ContractionCheck
{
    /// <summary>
    /// S4D block <paramref name="block"/> on one sequence of real inputs (L, Input) or token ids as values: every
    /// channel's modes x_n(t) = Ā_n·x_n(t−1) + u(t), u the block's normalized input; the two starts differ by 1 in every mode.
    /// </summary>
    public static ContractionReport ForS4DBlock(Interpretability.S4DOperator op, ReadOnlySpan<float> sequence, int length, int block)
    {
        ArgumentNullException.ThrowIfNull(op);
        if ((uint)block >= (uint)op.Config.Layers.Count) throw new ArgumentOutOfRangeException(nameof(block), block, $"Block {block} is outside 0..{op.Config.Layers.Count - 1}.");
        var view = op.Oscillators.Blocks[block];
        var u = op.Trace(sequence, length)[block].U;
        int h = view.Channels, modes = view.Modes, width = h * modes;
        var (transitions, drive) = (new Complex[length * width], new Complex[length * width]);
        for (int c = 0; c < h; c++)
        {
            var oscillators = view.Channel(c);
            for (int n = 0; n < modes; n++)
                for (int t = 0; t < length; t++)
                    (transitions[t * width + c * modes + n], drive[t * width + c * modes + n]) = (oscillators[n].Transition, u[t * h + c]);
        }
        return Analyze(transitions, drive, length, width, Enumerable.Repeat(Complex.One, width).ToArray());
    }

    /// <summary>
    /// Mamba block <paramref name="block"/> of the reference's last Forward, sequence b: Ā_t = exp(Δ_t·A) (or
    /// 2·exp(Δ_t·A) − 1 with negative eigenvalues) and
    /// b_t = Δ_t·B_t·u_t per inner channel and state; the two starts differ by 1 in every state.
    /// </summary>
    public static ContractionReport ForMambaBlock(Reference.ReferenceModel<double> reference, int block, int b)
    {
        ArgumentNullException.ThrowIfNull(reference);
        var (a, drive) = reference.MambaRecurrence(block, b);
        var layer = (MambaLayerConfig)reference.Config.Layers[block];
        int width = layer.Inner(reference.Config.DModel) * layer.N;
        return Analyze(a.Select(v => new Complex(v, 0)).ToArray(), drive.Select(v => new Complex(v, 0)).ToArray(), a.Length / width, width,
            Enumerable.Repeat(Complex.One, width).ToArray());
    }

    /// <summary>
    /// Runs the recurrence with transitions (T, M) and drive b (T, M) from h₀ = 0, and the difference of two runs
    /// from initial states that differ by <paramref name="initialDifference"/> (M values; the difference evolves as
    /// Π Ā_s ⊙ (h₀ − h′₀) whatever the drive, which is what contraction means).
    /// </summary>
    public static ContractionReport Analyze(ReadOnlySpan<Complex> transitions, ReadOnlySpan<Complex> drive, int steps, int modes, ReadOnlySpan<Complex> initialDifference)
    {
        if (steps < 2 || modes < 1) throw new ArgumentException($"Need 2 or more steps and 1 or more modes; got {steps} and {modes}.");
        if (transitions.Length != (long)steps * modes) throw new ArgumentException($"Expected {steps}·{modes} transitions; got {transitions.Length}.", nameof(transitions));
        if (drive.Length != (long)steps * modes) throw new ArgumentException($"Expected {steps}·{modes} drive values; got {drive.Length}.", nameof(drive));
        if (initialDifference.Length != modes) throw new ArgumentException($"Expected {modes} initial differences; got {initialDifference.Length}.", nameof(initialDifference));
        var h = new Complex[modes];
        var bound = new double[modes];
        var difference = initialDifference.ToArray();
        var logModulus = new double[modes];      // Σ log|Ā| per mode over the fitted steps
        var (norms, bounds, distances, distanceBounds) = (new double[steps], new double[steps], new double[steps], new double[steps]);
        double maxModulus = 0, start = 0, start2 = 0;
        foreach (var d in difference) { start = Math.Max(start, d.Magnitude); start2 += d.Magnitude * d.Magnitude; }
        double distanceBound = Math.Sqrt(start2);
        for (int t = 0; t < steps; t++)
        {
            double n2 = 0, b2 = 0, d2 = 0, stepMax = 0;
            for (int m = 0; m < modes; m++)
            {
                var a = transitions[t * modes + m];
                double modulus = a.Magnitude;
                stepMax = Math.Max(stepMax, modulus);
                h[m] = a * h[m] + drive[t * modes + m];
                bound[m] = modulus * bound[m] + drive[t * modes + m].Magnitude;
                difference[m] *= a;
                n2 += h[m].Magnitude * h[m].Magnitude;
                b2 += bound[m] * bound[m];
                d2 += difference[m].Magnitude * difference[m].Magnitude;
            }
            maxModulus = Math.Max(maxModulus, stepMax);
            distanceBound *= stepMax;
            (norms[t], bounds[t], distances[t], distanceBounds[t]) = (Math.Sqrt(n2), Math.Sqrt(b2), Math.Sqrt(d2), distanceBound);
        }

        // fit log‖d_t‖ = c + t·log r over the steps where the distance is well above double rounding of the start
        var fitted = new List<(int T, double Log)>();
        for (int t = 0; t < steps; t++)
            if (distances[t] > 1e-12 * Math.Max(start, 1e-300)) fitted.Add((t, Math.Log(distances[t])));
        double fittedRate = double.NaN, predictedRate = double.NaN;
        // the second half of them: the asymptotic rate, after the faster modes' share of the distance has died out
        fitted = fitted.Skip(fitted.Count / 2).ToList();
        if (fitted.Count >= 2)
        {
            double meanT = fitted.Average(p => p.T), meanL = fitted.Average(p => p.Log), sxy = 0, sxx = 0;
            foreach (var (t, l) in fitted) { sxy += (t - meanT) * (l - meanL); sxx += (t - meanT) * (t - meanT); }
            fittedRate = Math.Exp(sxy / sxx);
            // the slowest of the modes that started apart, over the same steps
            int first = fitted[0].T, last = fitted[^1].T;
            double slowest = double.NegativeInfinity;
            for (int m = 0; m < modes; m++)
            {
                if (initialDifference[m] == Complex.Zero) continue;
                double sum = 0;
                for (int t = first + 1; t <= last; t++) sum += Math.Log(transitions[t * modes + m].Magnitude);
                slowest = Math.Max(slowest, sum / Math.Max(last - first, 1));
            }
            predictedRate = Math.Exp(slowest);
        }
        return new ContractionReport(maxModulus, norms, bounds, distances, distanceBounds, fittedRate, predictedRate);
    }
}
