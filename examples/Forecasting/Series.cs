using System.Globalization;

namespace SsmGen.Examples.Forecasting;

/// <summary>
/// One real series, evenly spaced, with what forecasting it means: the season (steps per cycle), the context a
/// forecaster reads, and the chronological split (the first 70% of the steps train, the next 15% validate, the last
/// 15% test; a window belongs to a span when its forecast targets all lie in it).
/// </summary>
public sealed class Series
{
    /// <summary>Steps forecast from each origin.</summary>
    public const int Horizon = 24;
    private const string Package = "vega-datasets@3.2.1";

    public string Name { get; }
    public string Description { get; }
    public string Unit { get; }
    public double[] Values { get; }
    public int Season { get; }
    public int Context { get; }
    public int TrainEnd => (int)(0.70 * Values.Length);
    public int ValidationEnd => (int)(0.85 * Values.Length);

    private Series(string name, string description, string unit, double[] values, int season, int context)
    {
        (Name, Description, Unit, Values, Season, Context) = (name, description, unit, values, season, context);
        if (TrainOrigins.Length < 2 || ValidationOrigins.Length < 1 || TestOrigins.Length < 1)
            throw new InvalidDataException($"{description}: too short for a context of {context} and a horizon of {Horizon} in each of the train, validation and test spans.");
    }

    /// <summary>Forecast origins o (context x[o − C, o), targets x[o, o + 24)) of a span [from, to).</summary>
    public int[] Origins(int from, int to) => Enumerable.Range(Math.Max(from, Context), Math.Max(0, to - Horizon - Math.Max(from, Context) + 1)).ToArray();

    public int[] TrainOrigins => Origins(0, TrainEnd);
    public int[] ValidationOrigins => Origins(TrainEnd, ValidationEnd);
    public int[] TestOrigins => Origins(ValidationEnd, Values.Length);

    /// <summary>Both series, from the npm package vega-datasets (fetched once into <paramref name="cacheDir"/>).</summary>
    public static IReadOnlyList<Series> Load(string cacheDir, Action<string> progress)
    {
        string data = Path.Combine(cacheDir, "package", "data");
        string co2 = Path.Combine(data, "co2-concentration.csv"), seattle = Path.Combine(data, "seattle-weather-hourly-normals.csv");
        if (!File.Exists(co2) || !File.Exists(seattle))
        {
            progress($"fetching the series (npm package {Package}) into {cacheDir}");
            NpmPackage.Fetch(Package, cacheDir, "the forecasting series");
            if (!File.Exists(co2) || !File.Exists(seattle)) throw new InvalidDataException($"The package '{Package}' lacks data/co2-concentration.csv or data/seattle-weather-hourly-normals.csv.");
        }
        return [ReadCo2(co2), ReadSeattle(seattle)];
    }

    /// <summary>Monthly Mauna Loa CO₂ (ppm); months missing from the file are filled by linear interpolation.</summary>
    public static Series ReadCo2(string path)
    {
        var rows = ReadColumns(path, "Date", "CO2");
        var months = new List<(int Month, double Value)>();
        foreach (var (line, date, value) in rows)
        {
            if (!DateOnly.TryParseExact(date, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d))
                throw new InvalidDataException($"{path}:{line}: '{date}' is not a yyyy-MM-dd date.");
            int month = d.Year * 12 + d.Month - 1;
            if (months.Count > 0 && month <= months[^1].Month) throw new InvalidDataException($"{path}:{line}: {date} does not follow the previous month.");
            months.Add((month, value));
        }
        var values = new List<double>();
        int filled = 0;
        for (int i = 0; i < months.Count; i++)
        {
            if (i > 0)
                for (int m = months[i - 1].Month + 1; m < months[i].Month; m++, filled++)
                {
                    double f = (double)(m - months[i - 1].Month) / (months[i].Month - months[i - 1].Month);
                    values.Add(months[i - 1].Value + f * (months[i].Value - months[i - 1].Value));
                }
            values.Add(months[i].Value);
        }
        return new Series("co2", $"Mauna Loa CO₂, monthly, {values.Count} months ({filled} missing months interpolated)", "ppm", values.ToArray(), season: 12, context: 60);
    }

    /// <summary>Seattle's hourly temperature normals (°C), one year hour by hour.</summary>
    public static Series ReadSeattle(string path)
    {
        var values = ReadColumns(path, "date", "temperature").Select(r => r.Value).ToArray();
        return new Series("seattle", $"Seattle hourly temperature normals, {values.Length} hours", "°C", values, season: 24, context: 96);
    }

    private static List<(int Line, string Key, double Value)> ReadColumns(string path, string keyColumn, string valueColumn)
    {
        using var reader = new StreamReader(path);
        var header = (reader.ReadLine() ?? throw new InvalidDataException($"{path} is empty.")).Split(',');
        int k = Array.IndexOf(header, keyColumn), v = Array.IndexOf(header, valueColumn);
        if (k < 0 || v < 0) throw new InvalidDataException($"{path}: the header lacks '{keyColumn}' or '{valueColumn}'.");
        var rows = new List<(int, string, double)>();
        int line = 1;
        for (string? text; (text = reader.ReadLine()) is not null;)
        {
            line++;
            if (text.Length == 0) continue;
            var cells = text.Split(',');
            if (cells.Length != header.Length) throw new InvalidDataException($"{path}:{line}: {cells.Length} cells where the header has {header.Length}.");
            if (!double.TryParse(cells[v], NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !double.IsFinite(value))
                throw new InvalidDataException($"{path}:{line}: '{cells[v]}' is not a number.");
            rows.Add((line, cells[k], value));
        }
        return rows;
    }
}
