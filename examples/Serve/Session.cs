using SsmGen.Streaming;

namespace SsmGen.Examples.Serve;

/// <summary>
/// A stream kept in a file between runs (<c>--session FILE</c>): read at the start when the file exists — a snapshot
/// of another model, other weights, or a damaged one is refused before anything runs — and written at the end,
/// through a temporary file renamed over it, so an interrupted save leaves the previous session whole.
/// </summary>
public static class Session
{
    public static SsmState Open(ISsmModel model, string? path)
    {
        var state = model.CreateState();
        if (path is null || !File.Exists(path)) return state;
        long expected = StateSnapshot.SizeOf(model), length = new FileInfo(path).Length;
        if (length != expected)
            throw new InvalidDataException($"Session file {path} holds {length:N0} bytes; a session of this model takes {expected:N0} (another model, or damaged).");
        try { StateSnapshot.Restore(model, state, File.ReadAllBytes(path)); }
        catch (InvalidDataException e) { throw new InvalidDataException($"Session file {path}: {e.Message}", e); }
        return state;
    }

    public static void Save(ISsmModel model, SsmState state, string? path)
    {
        if (path is null) return;
        string temporary = path + ".tmp";
        File.WriteAllBytes(temporary, StateSnapshot.Save(model, state));
        File.Move(temporary, path, overwrite: true);
    }
}
