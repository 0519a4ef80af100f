using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using SsmGen.Examples.Mnist;
using SsmGen.Examples.Serve;
using SsmGen.Examples.Serve.Http;
using SsmGen.Examples.Sonnets;
using SsmGen.Streaming;
using Xunit.Abstractions;

namespace SsmGen.Tests.Serve;

/// <summary>
/// <c>ssm-serve http</c> in-process on a free loopback port. The oracle is the model itself stepped alone, one
/// stream at a time, on a twin built from the same seed: the server batches concurrent streams into shared steps,
/// and each must still get exactly its lone continuation.
/// </summary>
public sealed class HttpServerTests(ITestOutputHelper output)
{
    private const ulong Seed = 11;

    private static SonnetModel Sonnet(int batch, ulong seed = Seed)
    {
        var model = new SonnetModel(batch, 1, ModelUse.Inference);
        model.Initialize(seed);
        return model;
    }

    private static async Task<(HttpServer Server, HttpClient Http)> Start(ISsmModel model, CommandOptions? options = null)
    {
        var task = model.Config.Vocab == 0 ? ServedTask.ClassifyDigits : ServedTask.NextCharacter;
        var served = new ServedModel(model.GetType().Name, task, model, "test", 0, null);
        var server = await HttpServer.StartAsync(served, (options ?? new CommandOptions()) with { Port = 0 });
        // A response disposed before its end closes the connection at once: by default the client first reads up to
        // 1 MB more of it (to reuse the connection), and under a loaded test run a stream it was still reading once ran
        // to its end before the server saw the client leave.
        var handler = new SocketsHttpHandler { MaxResponseDrainSize = 0 };
        return (server, new HttpClient(handler) { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(60) });
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<T> Read<T>(HttpResponseMessage response, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) =>
        JsonSerializer.Deserialize(await response.Content.ReadAsByteArrayAsync(), type)!;

    private static async Task<string> Error(HttpResponseMessage response, HttpStatusCode expected)
    {
        Assert.Equal(expected, response.StatusCode);
        return (await Read(response, ServeJson.Api.ErrorReply)).Error;
    }

    private static async Task<string> NewSession(HttpClient http)
    {
        using var created = await http.PostAsync("/sessions", null);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        return "/sessions/" + (await Read(created, ServeJson.Api.SessionReply)).Id;
    }

    private static async Task<SessionReply> Session(HttpClient http, string path)
    {
        using var response = await http.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await Read(response, ServeJson.Api.SessionReply);
    }

    private static async Task<string> Generate(HttpClient http, string path, string prompt, int count)
    {
        using var response = await http.PostAsync(path, Json(JsonSerializer.Serialize(new GenerateRequest(prompt, count, null), ServeJson.Api.GenerateRequest)));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await Read(response, ServeJson.Api.GenerateReply)).Text;
    }

    [Fact]
    public async Task ConcurrentClientsEachGetTheirLoneContinuationInSharedSteps()
    {
        // 10 clients on 4 streams per step: streams queue, join and leave between steps.
        var (server, http) = await Start(Sonnet(batch: 4));
        await using var _ = server;
        using var __ = http;
        var report = await LoadTest.RunAsync(http, Sonnet(batch: 1), clients: 10, count: 40, rounds: 2);
        output.WriteLine(report.ToString());
        Assert.Empty(report.Failures);
        Assert.Equal(10 * 2 * 40, report.Tokens);
        Assert.True(report.MeanStreamsPerStep > 1.5, $"{report.MeanStreamsPerStep:F2} streams per step: the clients' steps were not shared");
        Assert.True(report.MeanStreamsPerStep <= 4);
        Assert.Equal(0, server.SessionCount); // every client deleted its session
    }

    [Fact]
    public async Task ASessionAppendsGeneratesSavesRestoresAndIsDeleted()
    {
        var (server, http) = await Start(Sonnet(batch: 2));
        await using var _ = server;
        using var __ = http;
        var twin = Sonnet(batch: 1);
        string s = await NewSession(http);
        Assert.Null((await Session(http, s)).Next);

        using (var appended = await http.PostAsync(s + "/append", Json("""{"text": "Shall I"}""")))
        {
            var reply = await Read(appended, ServeJson.Api.SessionReply);
            Assert.Equal(7, reply.Position);
            var state = twin.CreateState();
            var logits = new float[CharVocabulary.Size];
            foreach (char c in "Shall I") twin.Step(state, CharVocabulary.Encode(c), logits);
            Assert.Equal(CharVocabulary.Decode(Commands.ArgMax(logits)).ToString(), reply.Next);
        }
        // No prompt: the continuation starts from the appended text's prediction.
        string first = await Generate(http, s + "/generate", "", 12);
        Assert.Equal(LoadTest.Reference(twin, "Shall I", 12), first);
        Assert.Equal(19, (await Session(http, s)).Position);

        byte[] saved = await http.GetByteArrayAsync(s + "/state");
        Assert.Equal(StateSnapshot.SizeOf(twin), saved.Length);
        string second = await Generate(http, s + "/generate", " compare", 10);
        Assert.Equal(LoadTest.Reference(twin, "Shall I" + first + " compare", 10), second);

        using (var restored = await http.PutAsync(s + "/state", new ByteArrayContent(saved)))
        {
            Assert.Equal(HttpStatusCode.OK, restored.StatusCode);
            Assert.Equal(19, (await Read(restored, ServeJson.Api.SessionReply)).Position);
        }
        Assert.Equal(second, await Generate(http, s + "/generate", " compare", 10)); // the same continuation again

        using (var deleted = await http.DeleteAsync(s)) Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        using (var gone = await http.GetAsync(s)) Assert.Contains("No session", await Error(gone, HttpStatusCode.NotFound));
        Assert.Equal(0, server.SessionCount);
    }

    [Fact]
    public async Task StreamedTokensAreTheContinuationThenADoneEvent()
    {
        var (server, http) = await Start(Sonnet(batch: 2));
        await using var _ = server;
        using var __ = http;
        using var response = await http.PostAsync("/generate", Json("""{"prompt": "When forty", "count": 15, "stream": true}"""));
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        string body = await response.Content.ReadAsStringAsync();
        var events = body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(16, events.Length);
        var text = string.Concat(events[..15].Select(e => JsonSerializer.Deserialize(e["data: ".Length..], ServeJson.Api.TokenEvent)!.Text));
        Assert.Equal(LoadTest.Reference(Sonnet(1), "When forty", 15), text);
        Assert.StartsWith("event: done\ndata: ", events[15]);
        Assert.Equal(new DoneEvent(15, 25), JsonSerializer.Deserialize(events[15]["event: done\ndata: ".Length..], ServeJson.Api.DoneEvent));
    }

    [Fact]
    public async Task BadRequestsAreRefusedWithAMessageAndChangeNothing()
    {
        var (server, http) = await Start(Sonnet(batch: 2), new CommandOptions { MaxSessions = 2, MaxBodyBytes = 2048, MaxRequestTokens = 100 });
        await using var _ = server;
        using var __ = http;
        string s = await NewSession(http);
        using (var r = await http.PostAsync(s + "/append", Json("""{"text": "Shall"}"""))) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        byte[] before = await http.GetByteArrayAsync(s + "/state");

        async Task Refused(Func<Task<HttpResponseMessage>> send, HttpStatusCode status, string fragment)
        {
            using var response = await send();
            string message = await Error(response, status);
            output.WriteLine($"{(int)status}: {message}");
            Assert.Contains(fragment, message);
        }
        await Refused(() => http.PostAsync(s + "/append", Json("""{"text": "x", "temperature": 2}""")), HttpStatusCode.BadRequest, "$.temperature");
        await Refused(() => http.PostAsync(s + "/append", Json("""{"text": """)), HttpStatusCode.BadRequest, "Malformed request body");
        await Refused(() => http.PostAsync(s + "/append", Json("null")), HttpStatusCode.BadRequest, "JSON null");
        await Refused(() => http.PostAsync(s + "/append", Json("""{"text": ""}""")), HttpStatusCode.BadRequest, "at least one character");
        await Refused(() => http.PostAsync(s + "/append", new StringContent("text=x", Encoding.UTF8, "application/x-www-form-urlencoded")), HttpStatusCode.UnsupportedMediaType, "application/json");
        await Refused(() => http.PostAsync(s + "/append", Json($$"""{"text": "{{new string('a', 3000)}}"}""")), HttpStatusCode.RequestEntityTooLarge, "at most 2,048");
        await Refused(() => http.PostAsync(s + "/generate", Json("""{"prompt": "a", "count": 100}""")), HttpStatusCode.BadRequest, "--max-tokens");
        await Refused(() => http.PostAsync(s + "/generate", Json("""{"prompt": "a", "count": -3}""")), HttpStatusCode.BadRequest, "\"count\" is -3");
        await Refused(() => http.PostAsync("/generate", Json("""{"count": 3}""")), HttpStatusCode.BadRequest, "\"prompt\" needs");
        await Refused(() => http.PostAsync("/classify", Json("""{"digits": []}""")), HttpStatusCode.NotFound, "digit classifier");
        await Refused(() => http.GetAsync("/sessions/0123"), HttpStatusCode.NotFound, "No session '0123'");
        await Refused(() => http.GetAsync("/no/such/thing"), HttpStatusCode.NotFound, "No endpoint GET /no/such/thing");

        // States that are not this session's kind: damaged, truncated, from other weights.
        var damaged = (byte[])before.Clone();
        damaged[40] ^= 1;
        await Refused(() => http.PutAsync(s + "/state", new ByteArrayContent(damaged)), HttpStatusCode.BadRequest, "checksum");
        await Refused(() => http.PutAsync(s + "/state", new ByteArrayContent(before[..100])), HttpStatusCode.BadRequest, "session unchanged");
        var stranger = Sonnet(1, seed: Seed + 1);
        var strangerState = stranger.CreateState();
        stranger.Step(strangerState, 'a', new float[CharVocabulary.Size]);
        await Refused(() => http.PutAsync(s + "/state", new ByteArrayContent(StateSnapshot.Save(stranger, strangerState))), HttpStatusCode.BadRequest, "other weights");
        await Refused(() => http.PutAsync(s + "/state", new ByteArrayContent(new byte[before.Length + 1])), HttpStatusCode.RequestEntityTooLarge, "bytes");

        // Sessions: the second fits, the third is refused.
        string other = await NewSession(http);
        await Refused(() => http.PostAsync("/sessions", null), HttpStatusCode.TooManyRequests, "--max-sessions");
        Assert.Equal(2, server.SessionCount);

        // None of it moved the session.
        Assert.Equal(before, await http.GetByteArrayAsync(s + "/state"));
        Assert.Equal(5, (await Session(http, s)).Position);
        Assert.Equal(0, (await Session(http, other)).Position);
    }

    [Fact]
    public async Task ABusySessionRefusesASecondRequestAndALeavingClientReleasesIt()
    {
        // 200,000 tokens: several seconds of steps, if the server did not notice the client leaving.
        var (server, http) = await Start(Sonnet(batch: 2), new CommandOptions { MaxRequestTokens = 200_001 });
        await using var _ = server;
        using var __ = http;
        string s = await NewSession(http);
        var request = new HttpRequestMessage(HttpMethod.Post, s + "/generate") { Content = Json("""{"prompt": "a", "count": 200000, "stream": true}""") };
        var streaming = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var reader = new StreamReader(await streaming.Content.ReadAsStreamAsync());
        Assert.StartsWith("data: ", await reader.ReadLineAsync());
        using (var second = await http.PostAsync(s + "/append", Json("""{"text": "b"}""")))
            Assert.Contains("busy", await Error(second, HttpStatusCode.Conflict));

        // The client leaves mid-stream: the server stops that stream and frees the session.
        reader.Dispose();
        streaming.Dispose();
        SessionReply? after = null;
        for (int attempt = 0; attempt < 100 && after is null; attempt++)
        {
            using var response = await http.GetAsync(s);
            if (response.StatusCode == HttpStatusCode.OK) after = await Read(response, ServeJson.Api.SessionReply);
            else await Task.Delay(50);
        }
        Assert.NotNull(after);
        output.WriteLine($"The stream stopped at position {after.Position}.");
        Assert.True(after.Position < 200_001, $"the stream ran to {after.Position} after its client left");
    }

    [Fact]
    public async Task IdleSessionsExpire()
    {
        var (server, http) = await Start(Sonnet(batch: 1), new CommandOptions { IdleSeconds = 1 });
        await using var _ = server;
        using var __ = http;
        string s = await NewSession(http);
        Assert.Equal(1, server.SessionCount);
        for (int i = 0; i < 60 && server.SessionCount > 0; i++) await Task.Delay(100);
        Assert.Equal(0, server.SessionCount);
        using var gone = await http.GetAsync(s);
        Assert.Contains("expired", await Error(gone, HttpStatusCode.NotFound));
    }

    [Fact]
    public async Task ConcurrentClassifyRequestsShareForwardsAndMatchTheModelAlone()
    {
        var model = new QuickSmnistModel(8, ServedModel.DigitLength, ModelUse.Inference);
        model.Initialize(Seed);
        var twin = new QuickSmnistModel(1, ServedModel.DigitLength, ModelUse.Inference);
        twin.Initialize(Seed);
        var (server, http) = await Start(model);
        await using var _ = server;
        using var __ = http;

        var rng = new Rng(3);
        var digits = Enumerable.Range(0, 12).Select(_ => Enumerable.Range(0, ServedModel.DigitLength).Select(_ => (float)rng.NextDouble()).ToArray()).ToArray();
        var replies = await Task.WhenAll(Enumerable.Range(0, 6).Select(async r =>
        {
            var body = new { digits = digits.Skip(2 * r).Take(2).ToArray() };
            string json = "{\"digits\": [" + string.Join(",", body.digits.Select(d => "[" + string.Join(",", d.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture))) + "]")) + "]}";
            using var response = await http.PostAsync("/classify", Json(json));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return await Read(response, ServeJson.Api.ClassifyReply);
        }));
        var alone = new float[10];
        for (int d = 0; d < digits.Length; d++)
        {
            twin.Forward(digits[d], 1, ServedModel.DigitLength, alone);
            var got = replies[d / 2].Results[d % 2];
            for (int k = 0; k < 10; k++) Assert.True(Math.Abs(got.Logits[k] - alone[k]) <= 1e-5f * (1 + Math.Abs(alone[k])), $"digit {d} logit {k}: {got.Logits[k]} vs {alone[k]} alone");
            Assert.Equal(Commands.ArgMax(alone), got.Class);
        }
        using (var wrong = await http.PostAsync("/classify", Json("""{"digits": [[0.5, 0.5]]}""")))
            Assert.Contains("784", await Error(wrong, HttpStatusCode.BadRequest));
        using (var tooMany = await http.PostAsync("/classify", Json("{\"digits\": [" + string.Join(",", Enumerable.Repeat("[0]", 9)) + "]}")))
            Assert.Contains("1 to 8 digits", await Error(tooMany, HttpStatusCode.BadRequest));
        using (var sessions = await http.PostAsync("/sessions", null))
            Assert.Contains("character model", await Error(sessions, HttpStatusCode.NotFound));
    }
}

public class ServeOptionTests
{
    [Theory]
    [InlineData(new[] { "--weights", "bf17" }, "--weights takes fp32, bf16, int8 or int8-dynamic, not 'bf17'.")]
    [InlineData(new[] { "--port", "70000" }, "Option --port takes an integer from 0 to 65,535.")]
    [InlineData(new[] { "--host", "localhost" }, "--host takes an IP address to listen on (127.0.0.1, 0.0.0.0, ::1, …).")]
    [InlineData(new[] { "--max-sessions", "0" }, "Option --max-sessions takes an integer from 1 to 1,000,000.")]
    [InlineData(new[] { "--url", "ftp://x" }, "--url takes the server's address, e.g. http://127.0.0.1:8080.")]
    public void ABadOptionIsRefusedNamingIt(string[] args, string message) =>
        Assert.Equal(message, Assert.Throws<ArgumentException>(() => CommandOptions.Parse(args)).Message);

    [Fact]
    public void WeightsAreReadByName()
    {
        Assert.Equal(WeightFormat.Float32, CommandOptions.Parse([]).Weights);
        Assert.Equal(WeightFormat.BFloat16, CommandOptions.Parse(["--weights", "bf16"]).Weights);
        Assert.Equal(WeightFormat.Int8, CommandOptions.Parse(["--weights", "int8"]).Weights);
        Assert.Equal(WeightFormat.Int8Dynamic, CommandOptions.Parse(["--weights", "int8-dynamic"]).Weights);
    }
}
