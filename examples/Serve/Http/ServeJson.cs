using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SsmGen.Examples.Serve.Http;

// The HTTP API's bodies. JSON through source generation only (Native AOT); unknown fields in a request are refused.

public sealed record GenerateRequest(string? Prompt, int? Count, bool? Stream);
public sealed record AppendRequest(string? Text);
public sealed record ClassifyRequest(float[][]? Digits);

public sealed record ErrorReply(string Error);
public sealed record HealthReply(string Status, int Sessions, long WorkingSetBytes, long ManagedHeapBytes);
public sealed record InfoReply(
    string Model, string Task, long Parameters, long CheckpointBytes, string StepWeights, int Vocabulary, int MaxStreamsPerStep,
    int MaxSessions, int IdleSeconds, int RequestTimeoutSeconds, int MaxRequestTokens, int MaxBodyBytes, int StateBytes,
    int Sessions, long Steps, long StreamSteps, double StepSeconds, double StepP50Microseconds, double StepP99Microseconds);
public sealed record SessionReply(string Id, int Position, string? Next);
public sealed record GenerateReply(string Text, int Tokens, int Position);
public sealed record TokenEvent(int Token, string Text);
public sealed record DoneEvent(int Tokens, int Position);
public sealed record ClassifyResult(int Class, float[] Logits);
public sealed record ClassifyReply(ClassifyResult[] Results);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(GenerateRequest))]
[JsonSerializable(typeof(AppendRequest))]
[JsonSerializable(typeof(ClassifyRequest))]
[JsonSerializable(typeof(ErrorReply))]
[JsonSerializable(typeof(HealthReply))]
[JsonSerializable(typeof(InfoReply))]
[JsonSerializable(typeof(SessionReply))]
[JsonSerializable(typeof(GenerateReply))]
[JsonSerializable(typeof(TokenEvent))]
[JsonSerializable(typeof(DoneEvent))]
[JsonSerializable(typeof(ClassifyReply))]
public sealed partial class ServeJson : JsonSerializerContext
{
    /// <summary>The context the server and the load client use: as <see cref="Default"/>, with quotes and apostrophes left unescaped (no HTML here).</summary>
    public static ServeJson Api { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
