namespace SsmGen.Examples.Serve.Http;

/// <summary>The commands <c>http</c> (run a server) and <c>load</c> (drive one and check its answers).</summary>
public static class HttpCommands
{
    public static int Serve(ServedModel m, CommandOptions o, TextWriter output)
    {
        var server = HttpServer.StartAsync(m, o).GetAwaiter().GetResult();
        output.WriteLine($"ssm-serve: {m.TypeName} ({m.Task}) listening on {server.Address} — up to {m.Model.MaxBatch} streams per step, {o.MaxSessions} sessions; Ctrl+C stops.");
        output.Flush();
        server.WaitForShutdownAsync().GetAwaiter().GetResult();
        server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return 0;
    }

    public static int Load(ServedModel m, CommandOptions o, TextWriter output)
    {
        if (m.Task != ServedTask.NextCharacter) throw new ArgumentException($"'load' streams text: it needs a character model; {m.Path} holds a {m.TypeName}.");
        using var http = new HttpClient { BaseAddress = o.Url, Timeout = TimeSpan.FromSeconds(o.RequestTimeoutSeconds + 30) };
        LoadReport report;
        try { report = LoadTest.RunAsync(http, m.Model, o.Clients, o.Count, o.Rounds, output).GetAwaiter().GetResult(); }
        catch (HttpRequestException e) { throw new IOException($"No server answers at {o.Url}: {e.Message}", e); }
        output.WriteLine(report);
        foreach (string failure in report.Failures.Take(20)) output.WriteLine("  " + failure);
        if (report.Rounds >= 2 && !report.MemoryFlat)
            output.WriteLine($"The server's memory grew after the first round: working set {report.WorkingSetAfterFirstRound:N0} → {report.WorkingSetAtEnd:N0} bytes.");
        return report.Failures.Count == 0 && (report.Rounds < 2 || report.MemoryFlat) ? 0 : 1;
    }
}
