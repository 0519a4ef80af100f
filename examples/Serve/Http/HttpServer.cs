using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SsmGen.Examples.Sonnets;
using SsmGen.Streaming;

namespace SsmGen.Examples.Serve.Http;

/// <summary>A refusal: the HTTP status and the message the client gets as {"error": …}.</summary>
public sealed class ApiException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>
/// <c>ssm-serve http</c>: the served model behind ASP.NET Core's minimal APIs (Kestrel, no reflection, so it
/// publishes with Native AOT). Every request that runs the model goes through one <see cref="ModelWorker"/>, which
/// batches the concurrent ones into shared steps. Everything is bounded (<see cref="CommandOptions"/>): request bodies,
/// tokens per request, sessions, idle time, a request's time, requests waiting for the model. A refused request gets
/// a 4xx status with {"error": "…"} and changes nothing.
/// </summary>
public sealed class HttpServer : IAsyncDisposable
{
    private readonly ServedModel _served;
    private readonly CommandOptions _o;
    private readonly ModelWorker _worker;
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, StreamSession> _sessions = new(StringComparer.Ordinal);
    private readonly int _vocabulary, _stateBytes;
    private int _sessionCount;

    private HttpServer(ServedModel served, CommandOptions o)
    {
        _served = served;
        _o = o;
        _vocabulary = served.Model.Config.Output;
        _stateBytes = served.Task == ServedTask.NextCharacter ? StateSnapshot.SizeOf(served.Model) : 0;
        _worker = new ModelWorker(served.Model, maxQueued: 4 * served.Model.MaxBatch + o.MaxSessions, everySecond: ExpireIdleSessions);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Parse(o.Host), o.Port);
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = Math.Max(o.MaxBodyBytes, _stateBytes);
            k.Limits.MaxConcurrentConnections = 4L * o.MaxSessions + 64;
        });
        _app = builder.Build();
        Map(_app);
    }

    /// <summary>The address the server listens on (with the port chosen when <c>--port 0</c>).</summary>
    public Uri Address { get; private set; } = null!;
    public int SessionCount => Volatile.Read(ref _sessionCount);

    public static async Task<HttpServer> StartAsync(ServedModel served, CommandOptions options)
    {
        if (served.Task == ServedTask.NextCharacter && served.Model.Config.Vocab != CharVocabulary.Size)
            throw new InvalidDataException($"{served.TypeName} has a vocabulary of {served.Model.Config.Vocab}; the HTTP server speaks {CharVocabulary.Size}-character ASCII.");
        var server = new HttpServer(served, options);
        await server._app.StartAsync();
        string address = server._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.Address = new Uri(address.Replace("[::]", "[::1]").Replace("0.0.0.0", "127.0.0.1"));
        return server;
    }

    /// <summary>Runs until the process is told to stop (Ctrl+C, SIGTERM).</summary>
    public Task WaitForShutdownAsync() => _app.WaitForShutdownAsync();

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _worker.Dispose();
    }

    private void Map(WebApplication app)
    {
        app.MapGet("/health", Handle(Health));
        app.MapGet("/info", Handle(Info));
        app.MapPost("/classify", Handle(Classify));
        app.MapPost("/generate", Handle(ctx => Generate(ctx, session: null)));
        app.MapPost("/sessions", Handle(CreateSession));
        app.MapGet("/sessions/{id}", Handle(ctx => WithSession(ctx, s => Reply(ctx, 200, Describe(s), ServeJson.Api.SessionReply))));
        app.MapPost("/sessions/{id}/append", Handle(ctx => WithSession(ctx, s => Append(ctx, s))));
        app.MapPost("/sessions/{id}/generate", Handle(ctx => WithSession(ctx, s => Generate(ctx, s))));
        app.MapGet("/sessions/{id}/state", Handle(ctx => WithSession(ctx, s => SaveState(ctx, s))));
        app.MapPut("/sessions/{id}/state", Handle(ctx => WithSession(ctx, s => RestoreState(ctx, s))));
        app.MapDelete("/sessions/{id}", Handle(DeleteSession));
        app.MapFallback(Handle(ctx => throw new ApiException(404, $"No endpoint {ctx.Request.Method} {ctx.Request.Path}; see GET /info and the README.")));
    }

    private static RequestDelegate Handle(Func<HttpContext, Task> handler) => async ctx =>
    {
        try { await handler(ctx); }
        catch (Exception e) when (!ctx.Response.HasStarted && Refusal(e) is (int status, string message))
        {
            await Reply(ctx, status, new ErrorReply(message), ServeJson.Api.ErrorReply);
        }
    };

    private static (int, string)? Refusal(Exception e) => e switch
    {
        ApiException a => (a.Status, a.Message),
        BadHttpRequestException b => (b.StatusCode, b.Message),
        OperationCanceledException => (504, "The request ran out of time (--request-timeout) or was cancelled."),
        _ => null,
    };

    private static async Task Reply<T>(HttpContext ctx, int status, T value, JsonTypeInfo<T> type)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json; charset=utf-8";
        await JsonSerializer.SerializeAsync(ctx.Response.Body, value, type);
        await ctx.Response.Body.WriteAsync("\n"u8.ToArray()); // a line of its own at a terminal
    }

    private Task Health(HttpContext ctx) =>
        Reply(ctx, 200, new HealthReply("ok", SessionCount, Environment.WorkingSet, GC.GetTotalMemory(false)), ServeJson.Api.HealthReply);

    private Task Info(HttpContext ctx) => Reply(ctx, 200, new InfoReply(
        _served.TypeName, _served.Task.ToString(), _served.Model.Parameters.Length, _served.FileBytes, _served.Model.StepWeights.ToString(), _vocabulary, _served.Model.MaxBatch,
        _o.MaxSessions, _o.IdleSeconds, _o.RequestTimeoutSeconds, _o.MaxRequestTokens, _o.MaxBodyBytes, _stateBytes,
        SessionCount, _worker.Steps, _worker.StreamSteps, _worker.StepSeconds, _worker.StepMicroseconds(0.50), _worker.StepMicroseconds(0.99)), ServeJson.Api.InfoReply);

    // ---- request bodies ----

    private static async Task<byte[]> ReadBody(HttpContext ctx, int maxBytes)
    {
        if (ctx.Request.ContentLength > maxBytes)
            throw new ApiException(413, $"The body is {ctx.Request.ContentLength:N0} bytes; this endpoint takes at most {maxBytes:N0}.");
        using var body = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await ctx.Request.Body.ReadAsync(buffer, ctx.RequestAborted)) > 0)
        {
            if (body.Length + read > maxBytes) throw new ApiException(413, $"The body is longer than the {maxBytes:N0} bytes this endpoint takes.");
            body.Write(buffer, 0, read);
        }
        return body.ToArray();
    }

    /// <summary>The fields each request takes, for the message that refuses a malformed one.</summary>
    private static string Expected<T>() =>
        typeof(T) == typeof(GenerateRequest) ? "{\"prompt\": text, \"count\": tokens to generate (200 unless given), \"stream\": true for server-sent events}"
        : typeof(T) == typeof(AppendRequest) ? "{\"text\": text}"
        : "{\"digits\": [[784 pixel values], …]}";

    private async Task<T> ReadJson<T>(HttpContext ctx, JsonTypeInfo<T> type) where T : class
    {
        string? contentType = ctx.Request.ContentType;
        if (contentType is not null && !contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
            throw new ApiException(415, $"The body is '{contentType}'; send JSON with Content-Type: application/json.");
        byte[] body = await ReadBody(ctx, _o.MaxBodyBytes);
        try
        {
            return JsonSerializer.Deserialize(body, type) ?? throw new ApiException(400, "The body is JSON null; send an object.");
        }
        catch (JsonException e)
        {
            // The message names the place; the runtime's own text is not shipped in the native build (UseSystemResourceKeys).
            throw new ApiException(400, $"Malformed request body at {e.Path ?? "$"} (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}): this endpoint takes {Expected<T>()}, with no other fields.");
        }
    }

    // ---- classify ----

    private async Task Classify(HttpContext ctx)
    {
        Require(ServedTask.ClassifyDigits, "POST /classify");
        var request = await ReadJson(ctx, ServeJson.Api.ClassifyRequest);
        const int L = ServedModel.DigitLength;
        int max = _served.Model.MaxBatch;
        if (request.Digits is not { Length: > 0 } digits || digits.Length > max)
            throw new ApiException(400, $"\"digits\" takes 1 to {max} digits per request (--batch), each {L} pixel values.");
        var pixels = new float[digits.Length * L];
        for (int d = 0; d < digits.Length; d++)
        {
            if (digits[d] is not { Length: L } digit)
                throw new ApiException(400, $"Digit {d} has {digits[d]?.Length ?? 0} values; a digit has {L} (28×28 pixels in the model's order).");
            for (int t = 0; t < L; t++)
                if (!float.IsFinite(digit[t])) throw new ApiException(400, $"Digit {d}, value {t} is not a finite number.");
            digit.CopyTo(pixels, d * L);
        }
        using var deadline = Deadline(ctx);
        float[] logits = await _worker.Classify(pixels, digits.Length, deadline.Token).WaitAsync(deadline.Token);
        var results = new ClassifyResult[digits.Length];
        for (int d = 0; d < digits.Length; d++)
        {
            var row = logits.AsSpan(d * _vocabulary, _vocabulary).ToArray();
            results[d] = new ClassifyResult(Commands.ArgMax(row), row);
        }
        await Reply(ctx, 200, new ClassifyReply(results), ServeJson.Api.ClassifyReply);
    }

    // ---- streams ----

    private CancellationTokenSource Deadline(HttpContext ctx)
    {
        var deadline = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        deadline.CancelAfter(TimeSpan.FromSeconds(_o.RequestTimeoutSeconds));
        return deadline;
    }

    private void Require(ServedTask task, string endpoint)
    {
        if (_served.Task != task)
            throw new ApiException(404, $"{endpoint} needs a {(task == ServedTask.ClassifyDigits ? "digit classifier" : "character model")}; this server serves a {_served.TypeName} ({_served.Task}).");
    }

    private int[] Encode(string? text, string field)
    {
        text ??= "";
        if (text.Length > _o.MaxRequestTokens)
            throw new ApiException(400, $"\"{field}\" has {text.Length:N0} characters; a request takes at most {_o.MaxRequestTokens:N0} tokens (--max-tokens).");
        return CharVocabulary.Encode(text);
    }

    private async Task Generate(HttpContext ctx, StreamSession? session)
    {
        Require(ServedTask.NextCharacter, session is null ? "POST /generate" : "POST /sessions/{id}/generate");
        var request = await ReadJson(ctx, ServeJson.Api.GenerateRequest);
        int[] prompt = Encode(request.Prompt, "prompt");
        int count = request.Count ?? 200;
        if (count < 0 || prompt.Length + (long)count > _o.MaxRequestTokens)
            throw new ApiException(400, $"\"count\" is {count}; with the prompt's {prompt.Length} tokens a request takes 0 to {_o.MaxRequestTokens:N0} tokens in all (--max-tokens).");
        if (prompt.Length == 0 && !(session?.HasLogits ?? false))
            throw new ApiException(400, session is null
                ? "\"prompt\" needs at least one character."
                : "This session has no prediction yet (new or just restored): send a \"prompt\" of at least one character.");
        session ??= new StreamSession("", await _worker.Invoke(m => m.CreateState()), _vocabulary);

        await Run(ctx, session, prompt, count, async job =>
        {
            if (request.Stream ?? false) await StreamEvents(ctx, job);
            else
            {
                var text = new StringBuilder(count);
                await foreach (int token in ReadAll(job)) text.Append(CharVocabulary.Decode(token));
                await Reply(ctx, 200, new GenerateReply(text.ToString(), text.Length, session.State.Position), ServeJson.Api.GenerateReply);
            }
        });
    }

    /// <summary>
    /// Queues a job on the session and lets <paramref name="answer"/> read it. Whatever happens to the answer (the
    /// client leaves, a write fails), the job is cancelled and the model's thread done with it before this returns,
    /// so the session is never released while a step may still move it.
    /// </summary>
    private async Task Run(HttpContext ctx, StreamSession session, int[] prompt, int count, Func<StepJob, Task> answer)
    {
        using var deadline = Deadline(ctx);
        var job = new StepJob(session, prompt, count, deadline.Token);
        if (!_worker.TrySubmit(job))
            throw new ApiException(503, $"{_worker.MaxQueued} requests already wait for the model; try again shortly.");
        try { await answer(job); }
        finally
        {
            deadline.Cancel();
            await job.Ended;
        }
    }

    /// <summary>The job's tokens, rethrowing its failure as itself (not wrapped by the channel).</summary>
    private static async IAsyncEnumerable<int> ReadAll(StepJob job)
    {
        var reader = job.Tokens;
        while (true)
        {
            bool more;
            try { more = await reader.WaitToReadAsync(); }
            catch (ChannelClosedException e) when (e.InnerException is not null) { throw e.InnerException; }
            if (!more) yield break;
            while (reader.TryRead(out int token)) yield return token;
        }
    }

    /// <summary>Server-sent events: one "data: {token, text}" per token as it is chosen, then "event: done" (or "event: error").</summary>
    private static async Task StreamEvents(HttpContext ctx, StepJob job)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        await ctx.Response.StartAsync();
        var body = ctx.Response.Body;
        int tokens = 0;
        try
        {
            await foreach (int token in ReadAll(job))
            {
                await WriteEvent(body, null, JsonSerializer.SerializeToUtf8Bytes(new TokenEvent(token, CharVocabulary.Decode(token).ToString()), ServeJson.Api.TokenEvent));
                tokens++;
            }
            await WriteEvent(body, "done", JsonSerializer.SerializeToUtf8Bytes(new DoneEvent(tokens, job.Session.State.Position), ServeJson.Api.DoneEvent));
        }
        catch (Exception e) when (Refusal(e) is (int, string message) && !ctx.RequestAborted.IsCancellationRequested)
        {
            await WriteEvent(body, "error", JsonSerializer.SerializeToUtf8Bytes(new ErrorReply($"{message} {tokens} tokens were sent; the stream is at position {job.Session.State.Position}."), ServeJson.Api.ErrorReply));
        }
        catch (Exception) when (ctx.RequestAborted.IsCancellationRequested) { } // the client left
    }

    private static readonly byte[] DataField = "data: "u8.ToArray(), EventEnd = "\n\n"u8.ToArray();

    private static async Task WriteEvent(Stream body, string? name, byte[] json)
    {
        if (name is not null) await body.WriteAsync(Encoding.UTF8.GetBytes($"event: {name}\n"));
        await body.WriteAsync(DataField);
        await body.WriteAsync(json);
        await body.WriteAsync(EventEnd);
        await body.FlushAsync();
    }

    private async Task Append(HttpContext ctx, StreamSession session)
    {
        var request = await ReadJson(ctx, ServeJson.Api.AppendRequest);
        int[] text = Encode(request.Text, "text");
        if (text.Length == 0) throw new ApiException(400, "\"text\" needs at least one character.");
        await Run(ctx, session, text, 0, async job =>
        {
            await foreach (int _ in ReadAll(job)) { }
            await Reply(ctx, 200, Describe(session), ServeJson.Api.SessionReply);
        });
    }

    // ---- sessions ----

    private SessionReply Describe(StreamSession s) =>
        new(s.Id, s.State.Position, s.HasLogits ? CharVocabulary.Decode(Commands.ArgMax(s.Logits)).ToString() : null);

    private async Task CreateSession(HttpContext ctx)
    {
        Require(ServedTask.NextCharacter, "POST /sessions");
        if (Interlocked.Increment(ref _sessionCount) > _o.MaxSessions)
        {
            Interlocked.Decrement(ref _sessionCount);
            throw new ApiException(429, $"{_o.MaxSessions} sessions are open, the most this server keeps (--max-sessions); delete one, or wait until idle ones expire ({_o.IdleSeconds} s).");
        }
        StreamSession session;
        try { session = new StreamSession(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), await _worker.Invoke(m => m.CreateState()), _vocabulary); }
        catch { Interlocked.Decrement(ref _sessionCount); throw; }
        _sessions[session.Id] = session;
        ctx.Response.Headers.Location = $"/sessions/{session.Id}";
        await Reply(ctx, 201, Describe(session), ServeJson.Api.SessionReply);
    }

    /// <summary>Runs <paramref name="action"/> with the session of the route's id held, so no other request uses it meanwhile.</summary>
    private async Task WithSession(HttpContext ctx, Func<StreamSession, Task> action)
    {
        Require(ServedTask.NextCharacter, "/sessions");
        var session = Find(ctx);
        if (!session.TryAcquire())
            throw new ApiException(409, $"Session {session.Id} is busy with another request; one request at a time per session.");
        try
        {
            if (!_sessions.TryGetValue(session.Id, out var still) || !ReferenceEquals(still, session))
                throw new ApiException(404, $"Session {session.Id} has just expired or been deleted.");
            await action(session);
        }
        finally { session.Release(); }
    }

    private StreamSession Find(HttpContext ctx)
    {
        string id = ctx.Request.RouteValues["id"] as string ?? "";
        return _sessions.TryGetValue(id, out var s) ? s
            : throw new ApiException(404, $"No session '{id}' (never created, deleted, or expired after {_o.IdleSeconds} s idle).");
    }

    private async Task SaveState(HttpContext ctx, StreamSession session)
    {
        byte[] snapshot = await _worker.Invoke(m => StateSnapshot.Save(m, session.State));
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/octet-stream";
        ctx.Response.ContentLength = snapshot.Length;
        await ctx.Response.Body.WriteAsync(snapshot);
    }

    private async Task RestoreState(HttpContext ctx, StreamSession session)
    {
        byte[] snapshot = await ReadBody(ctx, _stateBytes);
        try { await _worker.Invoke(m => { StateSnapshot.Restore(m, session.State, snapshot); return 0; }); }
        catch (InvalidDataException e) { throw new ApiException(400, $"State refused, session unchanged: {e.Message}"); }
        session.HasLogits = false;
        await Reply(ctx, 200, Describe(session), ServeJson.Api.SessionReply);
    }

    private Task DeleteSession(HttpContext ctx)
    {
        Require(ServedTask.NextCharacter, "DELETE /sessions/{id}");
        var session = Find(ctx);
        if (!session.TryAcquire())
            throw new ApiException(409, $"Session {session.Id} is busy with another request; delete it when that ends.");
        if (_sessions.TryRemove(new KeyValuePair<string, StreamSession>(session.Id, session))) Interlocked.Decrement(ref _sessionCount);
        ctx.Response.StatusCode = 204;
        return Task.CompletedTask;
    }

    /// <summary>On the model's thread, once a second: sessions idle longer than --idle-seconds are removed.</summary>
    private void ExpireIdleSessions()
    {
        var limit = TimeSpan.FromSeconds(_o.IdleSeconds);
        foreach (var (id, session) in _sessions)
            if (session.Idle > limit && session.TryAcquire() && _sessions.TryRemove(new KeyValuePair<string, StreamSession>(id, session)))
                Interlocked.Decrement(ref _sessionCount);
    }
}
