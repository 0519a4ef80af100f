using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ScottPlot;
using SsmGen.Examples.Forecasting;

// Multistep forecasting of real series against the classical baselines:
//   dotnet run -c Release --project examples/Forecasting -- [--series co2,seattle] [--steps N] [--quick] [--out DIR]
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
const string Usage = """
    usage: Forecasting [--series co2,seattle] [--steps N] [--batch B] [--seed N] [--quick] [--out DIR] [--data DIR]
      forecasts the next 24 steps of Mauna Loa CO₂ (monthly, from 60 months) and of Seattle's hourly temperature
      normals (from 96 hours) with S4D, Mamba and a tanh RNN of ≈30,000 parameters each, against naive, seasonal-naive
      and linear autoregressive baselines, on a chronological split (70% train, 15% validation, 15% test)
      --steps N   training steps per model (default 800; --quick 100)
      --batch B   windows per step (default 32)
      --out DIR   the report folder (default runs/forecasting)
      --data DIR  cache of the npm package vega-datasets (default .cache/vega-datasets)
    """;
if (args.Contains("--help") || args.Contains("-h")) { Console.Error.WriteLine(Usage); return 0; }
string? Option(string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
var clock = Stopwatch.StartNew();
void Progress(string what) => Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] {what}");
try
{
    string[] known = ["--series", "--steps", "--batch", "--seed", "--quick", "--out", "--data"];
    for (int i = 0; i < args.Length; i++)
    {
        if (!known.Contains(args[i])) throw new ArgumentException($"Unknown option '{args[i]}'.\n{Usage}");
        if (args[i] != "--quick") i++;
    }
    int Int(string name, int fallback) => Option(name) is { } text ? (int.TryParse(text, out int value) && value > 0 ? value : throw new ArgumentException($"{name} takes a positive whole number; got '{text}'.")) : fallback;
    bool quick = args.Contains("--quick");
    int steps = Int("--steps", quick ? 100 : 800), batch = Int("--batch", 32);
    ulong seed = (ulong)Int("--seed", 1);
    string output = Option("--out") ?? Path.Combine("runs", "forecasting");
    var wanted = (Option("--series") ?? "co2,seattle").Split(',');
    var all = Series.Load(Option("--data") ?? Path.Combine(".cache", "vega-datasets"), Progress);
    foreach (var w in wanted)
        if (!all.Any(s => s.Name == w)) throw new ArgumentException($"--series takes {string.Join(", ", all.Select(s => s.Name))}; got '{w}'.");

    var results = new List<SeriesResult>();
    foreach (var series in all.Where(s => wanted.Contains(s.Name)))
    {
        var scaling = new Scaling(series);
        Progress($"{series.Description}: {series.TrainOrigins.Length:N0} training, {series.ValidationOrigins.Length:N0} validation and {series.TestOrigins.Length:N0} test forecasts of {Series.Horizon} steps from {series.Context}");
        Forecaster[] methods =
        [
            new Naive(), new SeasonalNaive(series.Season, series.Context), new LinearAutoregression(series.Context),
            new NeuralForecaster("S4D", (b, l) => new S4DForecaster(b, l), steps, batch, seed),
            new NeuralForecaster("Mamba", (b, l) => new MambaForecaster(b, l), steps, batch, seed),
            new NeuralForecaster("RNN", (b, l) => new RnnForecaster(b, l), steps, batch, seed),
        ];
        var rows = new List<MethodResult>();
        var (contexts, _) = scaling.Windows(series.TestOrigins);
        int count = series.TestOrigins.Length, h = Series.Horizon, c = series.Context;
        foreach (var m in methods)
        {
            m.Fit(series, scaling, Progress);
            var forecasts = new float[count * h];
            m.Predict(contexts, count, forecasts);
            // one forecast at a time, as a service answers them: milliseconds per forecast
            var one = new float[h];
            var timer = Stopwatch.StartNew();
            for (int i = 0; i < count; i++) m.Predict(contexts.AsSpan(i * c, c), 1, one);
            double ms = timer.Elapsed.TotalMilliseconds / count;
            double se = 0, ae = 0;
            var lead = new double[count];
            for (int i = 0; i < count; i++)
                for (int t = 0; t < h; t++)
                {
                    int o = series.TestOrigins[i];
                    double f = scaling.Unscale(o, forecasts[i * h + t]), e = f - series.Values[o + t];
                    se += e * e;
                    ae += Math.Abs(e);
                    if (t == h - 1) lead[i] = f;
                }
            var row = new MethodResult(m.Name, m.Parameters, m.StateBytes, se / (count * h), ae / (count * h), ms, (m as NeuralForecaster)?.BestStep, lead);
            rows.Add(row);
            Progress($"{series.Name} {m.Name}: test MSE {row.Mse:G4} {series.Unit}², MAE {row.Mae:G4} {series.Unit}, {ms:F3} ms per forecast");
        }
        results.Add(new SeriesResult(series.Name, series.Description, series.Unit, series.Context, series.TestOrigins.Length, rows));
        Report.Chart(output, series, rows);
    }
    Report.Write(output, steps, batch, results);
    Progress($"report: {Path.Combine(output, "forecasting.md")}");
    return 0;
}
catch (Exception e) when (e is ArgumentException or InvalidDataException or InvalidOperationException or FileNotFoundException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

/// <summary>One method on one series' test span, errors in the series' units.</summary>
public sealed record MethodResult(string Method, int Parameters, long StateBytes, double Mse, double Mae, double MsPerForecast, int? KeptStep, double[] LastStepForecasts);

/// <summary>Every method on one series.</summary>
public sealed record SeriesResult(string Series, string Description, string Unit, int Context, int TestForecasts, List<MethodResult> Methods);

internal static class Report
{
    public static void Write(string output, int steps, int batch, List<SeriesResult> results)
    {
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "forecasting.json"), JsonSerializer.Serialize(new { steps, batch, horizon = Series.Horizon, results }, new JsonSerializerOptions { WriteIndented = true }));
        var md = new StringBuilder();
        md.AppendLine("# Forecasting real series");
        md.AppendLine();
        md.AppendLine($"Each method forecasts the next {Series.Horizon} steps from every origin of the test span (the last 15% of the series, never seen in training; validation is the 15% before it). Errors are averaged over all origins and all {Series.Horizon} steps, in the series' units. Neural models: {steps:N0} steps of batch {batch}, the validation span's best checkpoint kept. State bytes: what a method keeps per stream to forecast (a model's recurrent state, or the history a baseline reads).");
        foreach (var r in results)
        {
            md.AppendLine();
            md.AppendLine($"## {r.Description}");
            md.AppendLine();
            md.AppendLine($"{r.TestForecasts:N0} test forecasts, each from {r.Context} steps of context.");
            md.AppendLine();
            md.AppendLine($"| method | parameters | state bytes | test MSE ({r.Unit}²) | test MAE ({r.Unit}) | MSE ÷ naive | MSE ÷ seasonal naive | MSE ÷ linear AR | ms per forecast |");
            md.AppendLine("|---|---|---|---|---|---|---|---|---|");
            double Mse(string name) => r.Methods.First(m => m.Method == name).Mse;
            foreach (var m in r.Methods)
                md.AppendLine($"| {m.Method} | {m.Parameters:N0} | {m.StateBytes:N0} | {m.Mse:G4} | {m.Mae:G4} | {m.Mse / Mse("naive"):F3} | {m.Mse / Mse("seasonal naive"):F3} | {m.Mse / Mse("linear AR"):F3} | {m.MsPerForecast:F3} |");
            md.AppendLine();
            foreach (var m in r.Methods.Where(m => m.KeptStep is not null))
            {
                var beaten = new[] { "naive", "seasonal naive", "linear AR" }.Where(b => m.Mse < Mse(b)).ToList();
                var lost = new[] { "naive", "seasonal naive", "linear AR" }.Where(b => m.Mse >= Mse(b)).ToList();
                md.AppendLine($"- {m.Method}: " + (beaten.Count > 0 ? "beats " + string.Join(", ", beaten.Select(b => $"{b} ({100 * (1 - m.Mse / Mse(b)):F0}% lower MSE)")) : "beats no baseline")
                    + (lost.Count > 0 ? "; does not beat " + string.Join(", ", lost.Select(b => $"{b} ({m.Mse / Mse(b):F2}× its MSE)")) : "") + ".");
            }
            md.AppendLine();
            md.AppendLine($"![{r.Series} forecasts](forecast-{r.Series}.png)");
        }
        File.WriteAllText(Path.Combine(output, "forecasting.md"), md.ToString());
    }

    /// <summary>The test span's truth against each method's forecast of the horizon's last step, at the step it forecasts.</summary>
    public static void Chart(string output, Series series, List<MethodResult> rows)
    {
        Directory.CreateDirectory(output);
        var origins = series.TestOrigins;
        var plt = new Plot();
        var truthX = Enumerable.Range(origins[0], origins[^1] + Series.Horizon - origins[0]).ToArray();
        var truth = plt.Add.ScatterLine(truthX.Select(t => (double)t).ToArray(), truthX.Select(t => series.Values[t]).ToArray());
        truth.LegendText = "truth";
        truth.LineWidth = 2;
        foreach (var m in rows.Where(m => m.Method != "naive"))
        {
            var line = plt.Add.ScatterLine(origins.Select(o => (double)(o + Series.Horizon - 1)).ToArray(), m.LastStepForecasts);
            line.LegendText = m.Method;
        }
        plt.Title($"{series.Name}: the forecast {Series.Horizon} steps ahead, on the test span");
        plt.XLabel(series.Season == 12 ? "month since the series began" : "hour of the year");
        plt.YLabel(series.Unit);
        plt.ShowLegend(Alignment.UpperLeft);
        plt.SavePng(Path.Combine(output, $"forecast-{series.Name}.png"), 1000, 550);
    }
}
