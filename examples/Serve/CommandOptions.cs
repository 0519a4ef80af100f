using System.Globalization;

namespace SsmGen.Examples.Serve;

/// <summary>The few options the commands take: --batch, --tokens, --count, --prompt, --logits, --session.</summary>
public sealed record CommandOptions(int Batch, int Tokens, int Count, string Prompt, bool Logits, string? Session = null)
{
    public static CommandOptions Parse(string[] args)
    {
        var o = new CommandOptions(16, 2000, 200, "Shall I compare thee", false);
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"Option {a} needs a value.");
            int Positive() => int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0 ? v : throw new ArgumentException($"Option {a} takes a positive integer.");
            o = a switch
            {
                "--batch" => o with { Batch = Positive() is var b && b <= ServedModel.MaxClassifyBatch ? b : throw new ArgumentException($"--batch takes 1 to {ServedModel.MaxClassifyBatch}.") },
                "--tokens" => o with { Tokens = Positive() },
                "--count" => o with { Count = Positive() },
                "--prompt" => o with { Prompt = Value() is { Length: > 0 } p ? p : throw new ArgumentException("--prompt needs at least one character.") },
                "--logits" => o with { Logits = true },
                "--session" => o with { Session = Value() is { Length: > 0 } f ? f : throw new ArgumentException("--session needs a file name.") },
                _ => throw new ArgumentException($"Unknown option '{a}'."),
            };
        }
        return o;
    }
}
