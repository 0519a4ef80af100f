using System.Globalization;

namespace SsmGen.Examples.Serve;

/// <summary>
/// The options the commands take. Every value is checked here, before a checkpoint is read or a port opened.
/// </summary>
public sealed record CommandOptions
{
    /// <summary>classify: digits per Forward; http: streams (or digits) per shared step.</summary>
    public int Batch { get; init; } = 16;
    public int Tokens { get; init; } = 2000;
    public int Count { get; init; } = 200;
    public string Prompt { get; init; } = "Shall I compare thee";
    public bool Logits { get; init; }
    public string? Session { get; init; }
    /// <summary>The format the streaming step reads its matrices in (--weights fp32|bf16|int8|int8-dynamic); Forward stays fp32.</summary>
    public WeightFormat Weights { get; init; } = WeightFormat.Float32;
    /// <summary>compare: held-out text (character models), or digits and their labels (classifiers).</summary>
    public string? TextFile { get; init; }
    public string? DigitsFile { get; init; }
    public string? LabelsFile { get; init; }
    /// <summary>http: the address to listen on (loopback unless told otherwise) and its port (0: any free one).</summary>
    public string Host { get; init; } = "127.0.0.1";
    public int Port { get; init; } = 8080;
    /// <summary>http: sessions kept, idle expiry, a request's time, tokens (prompt and generated) and body bytes.</summary>
    public int MaxSessions { get; init; } = 256;
    public int IdleSeconds { get; init; } = 600;
    public int RequestTimeoutSeconds { get; init; } = 60;
    public int MaxRequestTokens { get; init; } = 4096;
    public int MaxBodyBytes { get; init; } = 65_536;
    /// <summary>load: the server's address, concurrent clients and rounds.</summary>
    public Uri Url { get; init; } = new("http://127.0.0.1:8080");
    public int Clients { get; init; } = 16;
    public int Rounds { get; init; } = 3;

    public static CommandOptions Parse(string[] args)
    {
        var o = new CommandOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"Option {a} needs a value.");
            int Integer(int min, int max) =>
                int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v >= min && v <= max
                    ? v : throw new ArgumentException($"Option {a} takes an integer from {min:N0} to {max:N0}.");
            int Positive() => Integer(1, int.MaxValue);
            o = a switch
            {
                "--batch" => o with { Batch = Integer(1, ServedModel.MaxClassifyBatch) },
                "--tokens" => o with { Tokens = Positive() },
                "--count" => o with { Count = Positive() },
                "--prompt" => o with { Prompt = Value() is { Length: > 0 } p ? p : throw new ArgumentException("--prompt needs at least one character.") },
                "--logits" => o with { Logits = true },
                "--text" => o with { TextFile = Value() },
                "--digits" => o with { DigitsFile = Value() },
                "--labels" => o with { LabelsFile = Value() },
                "--weights" => o with
                {
                    Weights = Value() switch
                    {
                        "fp32" => WeightFormat.Float32,
                        "bf16" => WeightFormat.BFloat16,
                        "int8" => WeightFormat.Int8,
                        "int8-dynamic" => WeightFormat.Int8Dynamic,
                        var v => throw new ArgumentException($"--weights takes fp32, bf16, int8 or int8-dynamic, not '{v}'."),
                    },
                },
                "--session" => o with { Session = Value() is { Length: > 0 } f ? f : throw new ArgumentException("--session needs a file name.") },
                "--host" => o with { Host = Value() is { Length: > 0 } h && System.Net.IPAddress.TryParse(h, out _) ? h : throw new ArgumentException("--host takes an IP address to listen on (127.0.0.1, 0.0.0.0, ::1, …).") },
                "--port" => o with { Port = Integer(0, 65_535) },
                "--max-sessions" => o with { MaxSessions = Integer(1, 1_000_000) },
                "--idle-seconds" => o with { IdleSeconds = Integer(1, 7 * 24 * 3600) },
                "--request-timeout" => o with { RequestTimeoutSeconds = Integer(1, 24 * 3600) },
                "--max-tokens" => o with { MaxRequestTokens = Integer(1, 1_000_000) },
                "--max-body" => o with { MaxBodyBytes = Integer(1024, 64 << 20) },
                "--url" => o with { Url = Uri.TryCreate(Value(), UriKind.Absolute, out var u) && u.Scheme is "http" or "https" ? u : throw new ArgumentException("--url takes the server's address, e.g. http://127.0.0.1:8080.") },
                "--clients" => o with { Clients = Integer(1, 1024) },
                "--rounds" => o with { Rounds = Integer(1, 1000) },
                _ => throw new ArgumentException($"Unknown option '{a}'."),
            };
        }
        return o;
    }
}
