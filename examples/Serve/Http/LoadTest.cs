using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using SsmGen.Examples.Sonnets;

namespace SsmGen.Examples.Serve.Http;

/// <summary>What a load run measured.</summary>
/// <param name="Failures">Every response that was lost, refused, or differed from the reference: empty when all held.</param>
public sealed record LoadReport(
    int Clients, int Rounds, int TokensPerClient, long Tokens, double Seconds,
    double FirstTokenP50Ms, double FirstTokenP99Ms, double IntervalP50Ms, double IntervalP99Ms, double GapP99Ms,
    double MeanStepUs, double MeanStreamsPerStep,
    long WorkingSetAfterFirstRound, long WorkingSetAtEnd, long HeapAfterFirstRound, long HeapAtEnd,
    IReadOnlyList<string> Failures)
{
    public double TokensPerSecond => Tokens / Seconds;

    /// <summary>
    /// The server's working set after the last round within 16 MiB (or 10%) of its size after the first: the later
    /// rounds repeat the first's work, so a leak (sessions, jobs, buffers kept) shows as growth.
    /// </summary>
    public bool MemoryFlat => WorkingSetAtEnd <= WorkingSetAfterFirstRound + Math.Max(16L << 20, WorkingSetAfterFirstRound / 10);

    public override string ToString() =>
        $"{Clients} clients × {Rounds} rounds × {TokensPerClient} tokens: {Tokens:N0} tokens in {Seconds:F2} s, {TokensPerSecond:N0} tokens/s. " +
        $"Per token (a stream's mean interval) p50 {IntervalP50Ms:F2} ms, p99 {IntervalP99Ms:F2} ms; longest gaps p99 {GapP99Ms:F2} ms; " +
        $"first token (after the prompt) p50 {FirstTokenP50Ms:F1} ms, p99 {FirstTokenP99Ms:F1} ms. " +
        $"Server: {MeanStreamsPerStep:F1} streams per shared step, {MeanStepUs:F0} µs per step; working set " +
        $"{WorkingSetAfterFirstRound / 1048576.0:F1} MiB after round 1, {WorkingSetAtEnd / 1048576.0:F1} MiB at the end " +
        $"(managed heap {HeapAfterFirstRound / 1048576.0:F1} → {HeapAtEnd / 1048576.0:F1} MiB). " +
        (Failures.Count == 0 ? "Every response complete and equal to the reference." : $"{Failures.Count} FAILURES.");
}

/// <summary>
/// <c>ssm-serve load</c>: concurrent clients against a running <c>ssm-serve http</c>. Each client opens a session,
/// streams a greedy continuation of its own prompt over server-sent events, checks its position, and deletes the
/// session. Every client's text is compared with the same continuation computed here, one stream alone, on the same
/// checkpoint: the server's batched steps give each stream exactly its lone outputs, so a token lost, duplicated or
/// taken from another session shows as a difference.
/// </summary>
public static class LoadTest
{
    private static readonly string[] Openings =
    [
        "From fairest creatures we desire increase", "When forty winters shall besiege thy brow", "Look in thy glass and tell the face",
        "Unthrifty loveliness why dost thou spend", "Those hours that with gentle work did frame", "Then let not winter's ragged hand deface",
        "Lo in the orient when the gracious light", "Music to hear why hear'st thou music sadly", "Is it for fear to wet a widow's eye",
        "For shame deny that thou bear'st love to any", "As fast as thou shalt wane so fast thou grow'st", "When I do count the clock that tells the time",
    ];

    /// <summary>Client <paramref name="client"/>'s prompt: an opening line and its number, so no two clients share one.</summary>
    public static string PromptOf(int client) => $"{Openings[client % Openings.Length]} ({client})";

    /// <summary>The greedy continuation of <paramref name="prompt"/> by <paramref name="model"/>, one stream alone.</summary>
    public static string Reference(ISsmModel model, string prompt, int count)
    {
        var state = model.CreateState();
        var logits = new float[model.Config.Output];
        foreach (char c in prompt) model.Step(state, CharVocabulary.Encode(c), logits);
        var text = new StringBuilder(count);
        for (int i = 0; i < count; i++)
        {
            int next = Commands.ArgMax(logits);
            text.Append(CharVocabulary.Decode(next));
            model.Step(state, next, logits);
        }
        return text.ToString();
    }

    public static async Task<LoadReport> RunAsync(HttpClient http, ISsmModel reference, int clients, int count, int rounds, TextWriter? log = null)
    {
        var expected = Enumerable.Range(0, clients).Select(c => Reference(reference, PromptOf(c), count)).ToArray();
        var failures = new List<string>();
        var gaps = new List<double>();
        var intervals = new List<double>();
        var firsts = new List<double>();
        long tokens = 0;
        long workingSetFirst = 0, heapFirst = 0;
        var before = await GetJson(http, "/info", ServeJson.Api.InfoReply);
        var clock = Stopwatch.StartNew();
        for (int round = 0; round < rounds; round++)
        {
            var results = await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(() => Client(http, c, count, expected[c]))));
            foreach (var r in results)
            {
                if (r.Failure is not null) failures.Add($"round {round + 1}: {r.Failure}");
                tokens += r.Tokens;
                gaps.AddRange(r.Gaps);
                firsts.Add(r.FirstMs);
                if (r.Gaps.Count > 0) intervals.Add(r.Gaps.Average());
            }
            if (round == 0)
            {
                var health = await GetJson(http, "/health", ServeJson.Api.HealthReply);
                (workingSetFirst, heapFirst) = (health.WorkingSetBytes, health.ManagedHeapBytes);
            }
            log?.WriteLine($"round {round + 1}: {results.Sum(r => r.Tokens):N0} tokens, {results.Count(r => r.Failure is not null)} failures");
        }
        double seconds = clock.Elapsed.TotalSeconds;
        var end = await GetJson(http, "/health", ServeJson.Api.HealthReply);
        var after = await GetJson(http, "/info", ServeJson.Api.InfoReply);
        long steps = Math.Max(1, after.Steps - before.Steps);
        double streamsPerStep = (after.StreamSteps - before.StreamSteps) / (double)steps, stepUs = 1e6 * (after.StepSeconds - before.StepSeconds) / steps;
        gaps.Sort();
        intervals.Sort();
        firsts.Sort();
        return new LoadReport(clients, rounds, count, tokens, seconds,
            Percentile(firsts, 0.50), Percentile(firsts, 0.99), Percentile(intervals, 0.50), Percentile(intervals, 0.99), Percentile(gaps, 0.99),
            stepUs, streamsPerStep,
            workingSetFirst, end.WorkingSetBytes, heapFirst, end.ManagedHeapBytes, failures);
    }

    private sealed record ClientResult(int Tokens, double FirstMs, List<double> Gaps, string? Failure);

    private static async Task<ClientResult> Client(HttpClient http, int client, int count, string expected)
    {
        var gaps = new List<double>(count);
        var text = new StringBuilder(count);
        double firstMs = 0;
        string? sessionPath = null;
        try
        {
            using (var created = await http.PostAsync("/sessions", null))
            {
                if ((int)created.StatusCode != 201) return new(0, 0, gaps, $"client {client}: POST /sessions answered {(int)created.StatusCode} {await created.Content.ReadAsStringAsync()}");
                var session = JsonSerializer.Deserialize(await created.Content.ReadAsByteArrayAsync(), ServeJson.Api.SessionReply)!;
                sessionPath = $"/sessions/{session.Id}";
            }
            string prompt = PromptOf(client);
            var body = JsonSerializer.SerializeToUtf8Bytes(new GenerateRequest(prompt, count, true), ServeJson.Api.GenerateRequest);
            using var request = new HttpRequestMessage(HttpMethod.Post, sessionPath + "/generate") { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            var clock = Stopwatch.StartNew();
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            if (!response.IsSuccessStatusCode) return new(0, 0, gaps, $"client {client}: generate answered {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            string? ev = null, line;
            double last = 0;
            DoneEvent? done = null;
            while ((line = await reader.ReadLineAsync()) is not null)
            {
                if (line.StartsWith("event: ", StringComparison.Ordinal)) { ev = line[7..]; continue; }
                if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
                var data = Encoding.UTF8.GetBytes(line[6..]);
                if (ev is null)
                {
                    double now = clock.Elapsed.TotalMilliseconds;
                    if (text.Length == 0) firstMs = now; else gaps.Add(now - last);
                    last = now;
                    text.Append(JsonSerializer.Deserialize(data, ServeJson.Api.TokenEvent)!.Text);
                }
                else if (ev == "done") done = JsonSerializer.Deserialize(data, ServeJson.Api.DoneEvent);
                else return new(text.Length, firstMs, gaps, $"client {client}: event {ev}: {line[6..]}");
                ev = null;
            }
            int position = (await GetJson(http, sessionPath, ServeJson.Api.SessionReply)).Position;
            string? failure =
                done is null ? $"client {client}: the stream ended without its done event after {text.Length} tokens"
                : text.ToString() != expected ? $"client {client}: got \"{text}\", expected \"{expected}\""
                : done.Tokens != count || position != prompt.Length + count ? $"client {client}: done reports {done.Tokens} tokens, the session is at {position}; expected {count} and {prompt.Length + count}"
                : null;
            return new(text.Length, firstMs, gaps, failure);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or JsonException or TaskCanceledException)
        {
            return new(text.Length, firstMs, gaps, $"client {client}: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            if (sessionPath is not null) try { using var _ = await http.DeleteAsync(sessionPath); } catch (HttpRequestException) { }
        }
    }

    private static async Task<T> GetJson<T>(HttpClient http, string path, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        using var response = await http.GetAsync(path);
        response.EnsureSuccessStatusCode();
        return JsonSerializer.Deserialize(await response.Content.ReadAsByteArrayAsync(), type)!;
    }

    private static double Percentile(List<double> sorted, double p) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
}
