using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using SsmGen.Checkpoints;
using Xunit.Abstractions;

namespace SsmGen.Tests.Checkpoints;

/// <summary>
/// What a save leaves behind when it is killed, and what a hostile header costs: stale temporaries of a path are
/// deleted by its next save (and nothing a running save still writes); a header's tensor count, a shape's rank and
/// every message are bounded.
/// </summary>
public sealed class CheckpointBoundsTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "ssmgen-bounds-" + Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static TinyRealMean Model(ulong seed)
    {
        var m = new TinyRealMean(1, 4);
        m.Initialize(seed);
        return m;
    }

    private string Temporary(string target, string tail, TimeSpan age)
    {
        string path = Path.Combine(_dir, $".{target}.{tail}.tmp");
        File.WriteAllBytes(path, new byte[1000]); // what a killed save leaves: part of a checkpoint
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow - age);
        return path;
    }

    [Fact]
    public void ASaveDeletesTheStaleTemporariesOfItsOwnPathOnly()
    {
        var old = TimeSpan.FromHours(2);
        string[] stale = [.. Enumerable.Range(0, 3).Select(_ => Temporary("model.safetensors", Guid.NewGuid().ToString("N"), old))];
        string[] kept =
        [
            Temporary("other.safetensors", Guid.NewGuid().ToString("N"), old),      // another target's
            Temporary("model.safetensors", Guid.NewGuid().ToString("N"), TimeSpan.FromMinutes(1)), // may be a save still starting
            Temporary("model.safetensors", "notes", old),                            // not a name a save makes
            Temporary("model.safetensors.bak", Guid.NewGuid().ToString("N"), old),   // a target whose name extends this one's
        ];
        // An old temporary that a save still holds (a save paused for hours): its lock keeps it.
        string held = Temporary("model.safetensors", Guid.NewGuid().ToString("N"), old);
        using (new FileStream(held, FileMode.Open, FileAccess.Write, FileShare.None))
        {
            string target = Path.Combine(_dir, "model.safetensors");
            var model = Model(3);
            Checkpoint.Save(model, target);

            Assert.All(stale, path => Assert.False(File.Exists(path), $"{Path.GetFileName(path)} is still there"));
            Assert.All(kept.Append(held), path => Assert.True(File.Exists(path), $"{Path.GetFileName(path)} was deleted"));
            var loaded = Model(4);
            Checkpoint.Load(loaded, target);
            Assert.Equal(model.Parameters.ToArray(), loaded.Parameters.ToArray());
        }
        Assert.Equal(6, Directory.GetFiles(_dir).Length); // the checkpoint and the five kept temporaries
    }

    /// <summary>A header of <paramref name="count"/> empty F32 tensors named prefix0, prefix1, …, after the given entries.</summary>
    private static byte[] EmptyTensors(int count, string prefix = "t", string entries = "", int dataBytes = 0)
    {
        var header = new MemoryStream();
        header.Write(Encoding.UTF8.GetBytes("{" + entries));
        for (int i = 0; i < count; i++)
            header.Write(Encoding.ASCII.GetBytes($"{(i > 0 || entries.Length > 0 ? "," : "")}\"{prefix}{i}\":{{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}"));
        header.WriteByte((byte)'}');
        var bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.ToArray().CopyTo(bytes, 8);
        return bytes;
    }

    [Fact]
    public void AMillionEmptyTensorsAreRefusedQuicklyWithAShortMessage()
    {
        string path = Path.Combine(_dir, "million.safetensors");
        File.WriteAllBytes(path, EmptyTensors(1_000_000));
        long fileBytes = new FileInfo(path).Length;
        var model = Model(3);
        var before = model.Parameters.ToArray();
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(model, path));
        clock.Stop();
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        output.WriteLine($"{fileBytes:N0}-byte file refused in {clock.Elapsed.TotalMilliseconds:F0} ms, {allocated:N0} bytes allocated: {e.Message}");
        Assert.Contains($"more than {SafetensorsFile.MaxTensorCount:N0} tensors", e.Message);
        Assert.True(e.Message.Length < 200, $"a message of {e.Message.Length} characters");
        Assert.True(allocated < fileBytes + 16_000_000, $"{allocated:N0} bytes allocated beyond the file's {fileBytes:N0}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Equal(before, model.Parameters.ToArray());
    }

    [Fact]
    public void TheLimitItselfParsesAndALoadNamesOnlyAFewOfManyExtraTensors()
    {
        Assert.Equal(SafetensorsFile.MaxTensorCount, SafetensorsFile.Parse(EmptyTensors(SafetensorsFile.MaxTensorCount)).Tensors.Count);
        Assert.Throws<InvalidDataException>(() => SafetensorsFile.Parse(EmptyTensors(SafetensorsFile.MaxTensorCount + 1)));

        // The model's tensors, then 99,000 empty ones it does not have.
        var model = Model(3);
        string path = Path.Combine(_dir, "model.safetensors");
        Checkpoint.Save(model, path);
        var saved = SafetensorsFile.Read(path);
        var own = new StringBuilder();
        foreach (var t in saved.Tensors)
            own.Append(own.Length > 0 ? "," : "").Append($"\"{t.Name}\":{{\"dtype\":\"F32\",\"shape\":[{string.Join(",", t.Shape)}],\"data_offsets\":[{t.Begin},{t.End}]}}");
        long dataBytes = saved.Tensors.Max(t => t.End);
        var bytes = EmptyTensors(99_000, "extra", own.ToString(), (int)dataBytes);
        var target = Model(4);
        var before = target.Parameters.ToArray();
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(target, SafetensorsFile.Parse(bytes)));
        output.WriteLine(e.Message);
        Assert.Contains("unexpected tensors not in the model: 'extra0', 'extra1', 'extra2', 'extra3', 'extra4', and 98,995 more.", e.Message);
        Assert.True(e.Message.Length < 300, $"a message of {e.Message.Length} characters");
        Assert.Equal(before, target.Parameters.ToArray());
    }

    [Fact]
    public void AMegabyteNameIsQuotedShort()
    {
        string name = new('n', 1_000_000);
        var header = Encoding.ASCII.GetBytes($"{{\"{name}\":{{\"dtype\":\"F31\",\"shape\":[0],\"data_offsets\":[0,0]}}}}");
        var bytes = new byte[8 + header.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Parse(bytes));
        output.WriteLine(e.Message);
        Assert.Contains("(1,000,000 characters)", e.Message);
        Assert.Contains("unknown dtype 'F31'", e.Message);
        Assert.True(e.Message.Length < 300, $"a message of {e.Message.Length} characters");
    }

    [Fact]
    public void AShapeOfMoreThan64DimensionsIsRefused()
    {
        string Shape(int rank) => "[" + string.Join(",", Enumerable.Repeat(1, rank)) + "]";
        byte[] File(int rank)
        {
            var header = Encoding.ASCII.GetBytes($"{{\"w\":{{\"dtype\":\"F32\",\"shape\":{Shape(rank)},\"data_offsets\":[0,4]}}}}");
            var bytes = new byte[8 + header.Length + 4];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
            header.CopyTo(bytes, 8);
            return bytes;
        }
        Assert.Equal(64, SafetensorsFile.Parse(File(64))["w"].Shape.Length);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Parse(File(100_000)));
        Assert.Contains("the shape has 100,000 dimensions; this reader accepts at most 64", e.Message);
    }
}
