using System.Globalization;
using System.Text;
using SsmGen.Interpretability;

namespace SsmGen.Examples.Oscillators;

/// <summary>
/// Where the oscillator view extends: a Mamba checkpoint (the sonnet model) read token by token through
/// <see cref="SelectiveView"/>. Writes selective.md, selective-delta.csv and, with figures, one decay map per block.
/// </summary>
public static class SelectiveReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Per block: the inner channel whose Δ varies most over the text (the one the input steers hardest).</summary>
    public static void Write(ISsmModel model, string text, int[] tokens, string output, ISelectiveFigures? figures, Action<string> progress)
    {
        Directory.CreateDirectory(output);
        progress($"selective view: {tokens.Length} characters through the float64 reference");
        var views = SelectiveView.ForTokens(model, tokens);
        var md = new StringBuilder();
        md.AppendLine("# Where the oscillator view extends: Mamba, token by token");
        md.AppendLine();
        md.AppendLine(Inv, $"{model.GetType().Name}: {views.Count} Mamba blocks, {views[0].Inner} inner channels of {views[0].States} states each. Text ({tokens.Length} characters): “{text}”");
        md.AppendLine();
        md.AppendLine("A Mamba state is h_t = exp(Δ_t·A)·h_{t−1} + Δ_t·B_t·x_t with A = −exp(A_log) real and negative. What carries over from S4D's oscillators:");
        md.AppendLine("each state is still a mode with a damping rate, Δ_t·|A_n| per step, and a decay time 1/(Δ_t·|A_n|) — but both now change with every token (the input chooses Δ_t), " +
            "so there is no fixed kernel, only a product of per-token decays. What does not: A has no imaginary part (S4D-Real initialization, kept by training), so there are no frequencies, " +
            "no damped sinusoids and no ring on which waves travel — the modes are leaky integrators whose leak the text controls. The exact operator carries over only as a time-varying one: " +
            "y_t = Σ_{s≤t} C_t·(Π_{r=s+1..t} exp(Δ_r·A))·Δ_s·B_s·x_s, data-dependent through Δ, B and C.");
        md.AppendLine();
        var csv = new StringBuilder("block,position,char,mean_delta,min_delta,max_delta\n");
        foreach (var v in views)
        {
            int e = Enumerable.Range(0, v.Inner).MaxBy(ch => Variance(Enumerable.Range(0, v.Length).Select(t => v.Delta[t * v.Inner + ch])));
            var mean = Enumerable.Range(0, v.Length).Select(t => Enumerable.Range(0, v.Inner).Average(ch => v.Delta[t * v.Inner + ch])).ToArray();
            for (int t = 0; t < v.Length; t++)
            {
                var row = v.Delta.AsSpan(t * v.Inner, v.Inner).ToArray();
                csv.AppendLine(Inv, $"{v.Block},{t},\"{(text[t] == '"' ? "\"\"" : text[t].ToString())}\",{mean[t]:G6},{row.Min():G6},{row.Max():G6}");
            }
            var damping = v.DampingPerStep(e);
            var longest = Enumerable.Range(0, v.Length).Select(t => 1 / Enumerable.Range(0, v.States).Min(n => damping[t * v.States + n])).ToArray();
            int hold = Array.IndexOf(longest, longest.Max()), forget = Array.IndexOf(longest, longest.Min());
            md.AppendLine(Inv, $"## Block {v.Block}");
            md.AppendLine();
            md.AppendLine(Inv, $"Mean Δ over the channels per character: {mean.Min():G3}–{mean.Max():G3} (largest at “{text[Array.IndexOf(mean, mean.Max())]}”, position {Array.IndexOf(mean, mean.Max())}; " +
                $"smallest at “{text[Array.IndexOf(mean, mean.Min())]}”, position {Array.IndexOf(mean, mean.Min())}). Channel {e}, whose Δ varies most: its slowest state keeps its memory for " +
                $"{longest.Max():G3} steps at “{text[hold]}” (position {hold}) and {longest.Min():G3} steps at “{text[forget]}” (position {forget}).");
            md.AppendLine();
            if (figures is not null)
            {
                figures.Decay(Path.Combine(output, $"selective-block{v.Block}.png"), v, e, text);
                md.AppendLine(Inv, $"![block {v.Block}](selective-block{v.Block}.png)");
                md.AppendLine();
            }
        }
        File.WriteAllText(Path.Combine(output, "selective-delta.csv"), csv.ToString());
        File.WriteAllText(Path.Combine(output, "selective.md"), md.ToString());
    }

    private static double Variance(IEnumerable<double> values)
    {
        var v = values.ToArray();
        double m = v.Average();
        return v.Sum(x => (x - m) * (x - m)) / v.Length;
    }
}

/// <summary>The selective view's figure.</summary>
public interface ISelectiveFigures
{
    void Decay(string path, SelectiveView view, int channel, string text);
}
