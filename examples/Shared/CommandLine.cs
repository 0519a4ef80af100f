using Spectre.Console;

namespace SsmGen.Examples;

/// <summary>What reading an example's command line came to.</summary>
public enum CommandLineOutcome { Run, Help, Invalid }

/// <summary>
/// The examples' command-line loop, linked into each example that reads options: the example applies one option at a
/// time and says whether it and its value were valid; --help prints the usage, and a bad option is named before it.
/// </summary>
public static class CommandLine
{
    /// <param name="option">Applies the option <c>name</c>, reading its value (if it takes one) with <c>next</c>,
    /// which gives null past the last argument; returns false when the option is unknown or the value invalid.</param>
    public static CommandLineOutcome Read(string[] args, TextWriter help, TextWriter error, string usage, Func<string, Func<string?>, bool> option)
    {
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i];
            if (name is "--help" or "-h")
            {
                help.WriteLine(usage);
                return CommandLineOutcome.Help;
            }
            string? Next() => i + 1 < args.Length ? args[++i] : null;
            if (!option(name, Next))
            {
                error.WriteLine($"Invalid option or value at '{name}'.");
                error.WriteLine(usage);
                return CommandLineOutcome.Invalid;
            }
        }
        return CommandLineOutcome.Run;
    }
}

/// <summary>
/// Ctrl+C as a request: the training loop finishes its batch and saves what it promises before it exits, instead of
/// the process dying in the middle of a write.
/// </summary>
public sealed class StopRequest
{
    private volatile bool _requested;

    public bool Requested => _requested;

    /// <param name="then">What the example does before exiting, as the line printed when Ctrl+C arrives says.</param>
    public static StopRequest OnCtrlC(string then)
    {
        var request = new StopRequest();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            request._requested = true;
            AnsiConsole.MarkupLine($"[yellow]Ctrl+C: {Markup.Escape(then)}[/]");
        };
        return request;
    }
}
