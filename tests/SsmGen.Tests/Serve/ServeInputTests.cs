using System.Diagnostics;
using System.Text;
using SsmGen.Checkpoints;
using SsmGen.Examples.Mnist;
using SsmGen.Examples.Serve;
using SsmGen.Examples.Sonnets;
using Xunit.Abstractions;

namespace SsmGen.Tests.Serve;

/// <summary>A reader that counts the characters taken from it, to see how far a refusal read.</summary>
internal sealed class CountingReader(TextReader inner) : TextReader
{
    public long CharactersRead { get; private set; }
    public override int Read(char[] buffer, int index, int count) { int n = inner.Read(buffer, index, count); CharactersRead += n; return n; }
    public override int Read() { int c = inner.Read(); if (c >= 0) CharactersRead++; return c; }
    public override int Peek() => inner.Peek();
}

/// <summary>An endless line of one repeated character: what a 100 MB line would be, without its memory.</summary>
internal sealed class EndlessLine(string before) : TextReader
{
    private int _position;
    public override int Read(char[] buffer, int index, int count)
    {
        for (int i = 0; i < count; i++, _position++) buffer[index + i] = _position < before.Length ? before[_position] : '0';
        return count;
    }
    public override int Read() => throw new NotSupportedException();
}

public class BoundedLineReaderTests
{
    private static List<string> AllLines(TextReader reader)
    {
        var lines = new List<string>();
        for (string? line; (line = reader.ReadLine()) is not null;) lines.Add(line);
        return lines;
    }

    private static List<string> AllLines(BoundedLineReader reader)
    {
        var lines = new List<string>();
        for (string? line; (line = reader.ReadLine()) is not null;) lines.Add(line);
        return lines;
    }

    [Theory]
    [InlineData("")]
    [InlineData("a")]
    [InlineData("a\nb")]
    [InlineData("a\nb\n")]
    [InlineData("\n\n\r\n\r\r")]
    [InlineData("a\r\nb\rc\n\rd")]
    public void LinesAreThoseOfTextReaderReadLine(string text)
    {
        var reader = new BoundedLineReader(new StringReader(text), 100);
        var expected = AllLines(new StringReader(text));
        Assert.Equal(expected, AllLines(reader));
        Assert.Equal(expected.Count, reader.LineNumber);
    }

    [Fact]
    public void LinesAndLineEndsAcrossBlockBoundariesAreThoseOfReadLine()
    {
        // Lengths around the 4,096-character block, with every kind of line end, so "\r\n" falls across blocks.
        var rng = new Rng(5);
        string[] ends = ["\n", "\r\n", "\r"];
        for (int round = 0; round < 20; round++)
        {
            var text = new StringBuilder();
            for (int line = 0; line < 12; line++)
            {
                text.Append('x', 4090 + rng.NextInt(12));
                text.Append(ends[rng.NextInt(3)]);
            }
            if (round % 2 == 1) text.Append("tail");
            string s = text.ToString();
            Assert.Equal(AllLines(new StringReader(s)), AllLines(new BoundedLineReader(new StringReader(s), 5000)));
        }
    }

    [Fact]
    public void ALineOfTheLimitIsReadAndOneMoreIsRefusedNamingItsNumber()
    {
        string text = "first\n" + new string('7', 50) + "\n" + new string('7', 51) + "\nlast\n";
        var reader = new BoundedLineReader(new StringReader(text), 50);
        Assert.Equal("first", reader.ReadLine());
        Assert.Equal(50, reader.ReadLine()!.Length);
        var e = Assert.Throws<FormatException>(() => reader.ReadLine());
        Assert.Equal("Line 3 is longer than 50 characters, the most this command reads in a line.", e.Message);
    }

    [Fact]
    public void AnEndlessLineIsRefusedAfterReadingAboutTheLimit()
    {
        var input = new CountingReader(new EndlessLine("ok\n"));
        var reader = new BoundedLineReader(input, 65_536);
        Assert.Equal("ok", reader.ReadLine());
        var e = Assert.Throws<FormatException>(() => reader.ReadLine());
        Assert.Contains("Line 2 is longer than 65,536 characters", e.Message);
        Assert.True(input.CharactersRead <= 65_536 + 2 * 4096, $"read {input.CharactersRead:N0} characters");
    }
}

public sealed class ServeInputTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "ssmgen-serve-" + Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Runs <paramref name="read"/> with a deadline, so a read that blocks (a pipe) fails instead of hanging.</summary>
    private static Exception Refusal(Action read)
    {
        var task = Task.Run(read);
        Assert.True(((IAsyncResult)task).AsyncWaitHandle.WaitOne(TimeSpan.FromSeconds(20)), "the read did not return");
        Assert.NotNull(task.Exception);
        return task.Exception.InnerException!;
    }

    [Fact]
    public void ADeviceIsRefusedWithoutReadingIt()
    {
        if (!File.Exists("/dev/zero")) return; // not a Unix system
        var clock = Stopwatch.StartNew();
        var e = Refusal(() => ServedModel.Load("/dev/zero", 1));
        output.WriteLine($"{clock.Elapsed.TotalMilliseconds:F1} ms: {e.Message}");
        Assert.IsType<InvalidDataException>(e);
        Assert.Equal("'/dev/zero' is 0 bytes long: a checkpoint is a regular file of at least 8 bytes (devices, pipes and sockets are refused).", e.Message);

        // The same through a link.
        string link = Path.Combine(_dir, "zero.safetensors");
        File.CreateSymbolicLink(link, "/dev/zero");
        Assert.IsType<InvalidDataException>(Refusal(() => CheckpointBytes.Read(link, ServedModel.MaxCheckpointBytes)));
    }

    [Fact]
    public void APipeIsRefusedWithoutWaitingForAWriter()
    {
        if (!OperatingSystem.IsLinux()) return;
        string fifo = Path.Combine(_dir, "pipe.safetensors");
        using (var mkfifo = Process.Start("mkfifo", fifo)) mkfifo.WaitForExit();
        var e = Refusal(() => CheckpointBytes.Read(fifo, ServedModel.MaxCheckpointBytes));
        Assert.IsType<InvalidDataException>(e);
        Assert.Contains("regular file", e.Message);
    }

    [Fact]
    public void ADirectoryAMissingFileAndAnOversizedFileAreRefusedNamingWhy()
    {
        var e = Assert.Throws<IOException>(() => CheckpointBytes.Read(_dir, 1000));
        Assert.Equal($"'{_dir}' is a directory, not a checkpoint file.", e.Message);
        string missing = Path.Combine(_dir, "missing.safetensors");
        Assert.Equal($"No checkpoint at '{missing}'.", Assert.Throws<FileNotFoundException>(() => CheckpointBytes.Read(missing, 1000)).Message);

        string big = Path.Combine(_dir, "big.safetensors");
        using (var f = File.Create(big)) f.SetLength(ServedModel.MaxCheckpointBytes + 1); // sparse: no disk used
        var tooBig = Assert.Throws<InvalidDataException>(() => CheckpointBytes.Read(big, ServedModel.MaxCheckpointBytes));
        Assert.Contains($"more than the {ServedModel.MaxCheckpointBytes:N0} bytes", tooBig.Message);
    }

    [Fact]
    public void TheCapFitsTheLargestServedModelInF64AndACheckpointStillLoads()
    {
        long largest = new[] { SmnistModel.ParameterCount, QuickSmnistModel.ParameterCount, SonnetModel.ParameterCount }.Max();
        Assert.Equal(8 + SafetensorsFile.MaxHeaderLength + 8 * largest, ServedModel.MaxCheckpointBytes);

        var model = new QuickSmnistModel(1, ServedModel.DigitLength, ModelUse.Inference);
        model.Initialize(3);
        string path = Path.Combine(_dir, "quick.safetensors");
        Checkpoint.Save(model, path);
        var served = ServedModel.Load(path, 4);
        Assert.Equal("QuickSmnistModel", served.TypeName);
        Assert.Equal(new FileInfo(path).Length, served.FileBytes);
        Assert.Equal(model.Parameters.ToArray(), served.Model.Parameters.ToArray());
    }

    [Fact]
    public void ClassifyAnswersTheDigitsBeforeAnOverlongLineAndNamesIt()
    {
        var model = new QuickSmnistModel(ServedModel.MaxClassifyBatch, ServedModel.DigitLength, ModelUse.Inference);
        model.Initialize(4);
        var served = new ServedModel("QuickSmnistModel", ServedTask.ClassifyDigits, model, "test", 0, null);
        string digit = string.Join(' ', Enumerable.Range(0, ServedModel.DigitLength).Select(t => (t % 7 / 7f).ToString("R", System.Globalization.CultureInfo.InvariantCulture)));
        var input = new CountingReader(new EndlessLine(digit + "\n"));
        var answers = new StringWriter();
        var e = Assert.Throws<FormatException>(() => Commands.Classify(served, CommandOptions.Parse([]), input, answers));
        output.WriteLine($"{input.CharactersRead:N0} characters read: {e.Message}");
        Assert.StartsWith("Line 2 is longer than 65,536 characters", e.Message);
        Assert.Single(answers.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)); // the first digit is answered
        Assert.True(input.CharactersRead <= digit.Length + 1 + ServedModel.MaxDigitLineLength + 2 * 4096, $"read {input.CharactersRead:N0} characters");
    }

    /// <summary>Records the text written so far at every Flush.</summary>
    private sealed class FlushRecorder : StringWriter
    {
        public List<int> LengthAtFlush { get; } = [];
        public override void Flush() { base.Flush(); LengthAtFlush.Add(GetStringBuilder().Length); }
    }

    [Fact]
    public void GenerateWritesEachCharacterAsSoonAsItIsChosen()
    {
        var model = new SonnetModel(1, 1, ModelUse.Inference);
        model.Initialize(6);
        var served = new ServedModel("SonnetModel", ServedTask.NextCharacter, model, "test", 0, null);
        const string prompt = "Shall I";
        const int count = 40;
        var recorder = new FlushRecorder();
        Commands.Generate(served, CommandOptions.Parse(["--prompt", prompt, "--count", count.ToString()]), recorder);

        // The prompt, then one more character per flush, then the line end.
        Assert.Equal([.. Enumerable.Range(0, count + 1).Select(i => prompt.Length + i), prompt.Length + count + Environment.NewLine.Length], recorder.LengthAtFlush);

        // The characters are the greedy continuation, computed here step by step.
        var twin = new SonnetModel(1, 1, ModelUse.Inference);
        twin.Initialize(6);
        var state = twin.CreateState();
        var logits = new float[CharVocabulary.Size];
        foreach (char c in prompt) twin.Step(state, CharVocabulary.Encode(c), logits);
        var expected = new StringBuilder(prompt);
        for (int i = 0; i < count; i++)
        {
            int next = Array.IndexOf(logits, logits.Max());
            expected.Append(CharVocabulary.Decode(next));
            twin.Step(state, next, logits);
        }
        Assert.Equal(expected + Environment.NewLine, recorder.ToString());
    }
}

/// <summary>ssm-serve's --session: a stream kept in a file continues where it stopped; a wrong file is refused whole.</summary>
public sealed class ServeSessionTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "ssmgen-session-" + Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void ASessionFileContinuesTheStreamAndAWrongOneIsRefusedUntouched()
    {
        var (model, _) = SsmGen.Tests.Generated.GeneratedVsReferenceTests.Make("S4Tokens", 1, 16); // tokens in, S4 tables in the state
        using (model)
        {
            model.Initialize(3);
            string path = Path.Combine(_dir, "session.bin");
            var y = new float[model.Config.Output];
            var fresh = Session.Open(model, path); // no file yet: a new stream
            Assert.Equal(0, fresh.Position);
            foreach (int token in new[] { 1, 2, 3 }) model.Step(fresh, token, y);
            Session.Save(model, fresh, path);
            Assert.False(File.Exists(path + ".tmp"));

            var resumed = Session.Open(model, path);
            Assert.Equal(3, resumed.Position);
            Assert.Equal(fresh.Values, resumed.Values);

            string wrong = Path.Combine(_dir, "wrong.bin");
            File.WriteAllBytes(wrong, new byte[100]);
            var e = Assert.Throws<InvalidDataException>(() => Session.Open(model, wrong));
            Assert.Contains("holds 100 bytes", e.Message);
            Assert.Equal(new byte[100], File.ReadAllBytes(wrong));
        }
    }
}
