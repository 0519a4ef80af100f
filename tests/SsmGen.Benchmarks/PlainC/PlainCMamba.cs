using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SsmGen.Benchmarks;

/// <summary>
/// The plain-C fp32 step of <c>mamba_step.c</c> over a copy of a <see cref="MambaStackBench"/>'s parameters: compiled here
/// with gcc (-O3 -march=native -ffast-math, one thread) on first use, loaded, and checked against SsmGen's fp32 step
/// on the same tokens before anyone times it, so the two sides compute the same thing.
/// </summary>
public sealed unsafe class PlainCMamba : IDisposable
{
    public const string CompilerFlags = "-O3 -march=native -ffast-math";
    private static readonly object s_gate = new();
    private static nint s_library;
    private static delegate* unmanaged<float*, long*, int, int, int, int, int, int, int, nint> s_create;
    private static delegate* unmanaged<nint, int, float*, void> s_step;
    private static delegate* unmanaged<nint, void> s_reset, s_free;

    private readonly float* _weights;
    private readonly nint _handle;
    private readonly float[] _logits = new float[MambaStackBench.OutputSize];

    public PlainCMamba(MambaStackBench model)
    {
        Load();
        var table = MambaStackBench.Table;
        long At(string name) => table.Single(t => t.Name == name).Offset;
        int layers = table.Count(t => t.Name.EndsWith(".mixer.A_log", StringComparison.Ordinal));
        var aLog = table.Single(t => t.Name == "backbone.layers.0.mixer.A_log");
        var dtW = table.Single(t => t.Name == "backbone.layers.0.mixer.dt_proj.weight");
        var conv = table.Single(t => t.Name == "backbone.layers.0.mixer.conv1d.weight");
        var offsets = new List<long> { At("backbone.embeddings.weight"), At("backbone.norm_f.weight"), At("lm_head.weight") };
        string[] perLayer = ["norm.weight", "mixer.in_proj.weight", "mixer.conv1d.weight", "mixer.conv1d.bias", "mixer.x_proj.weight",
            "mixer.dt_proj.weight", "mixer.dt_proj.bias", "mixer.A_log", "mixer.D", "mixer.out_proj.weight"];
        for (int l = 0; l < layers; l++) offsets.AddRange(perLayer.Select(n => At($"backbone.layers.{l}.{n}")));
        // its own copy of the weights, as a C program loads its own weights file
        var p = model.Parameters;
        _weights = (float*)NativeMemory.AlignedAlloc((nuint)p.Length * sizeof(float), 64);
        p.CopyTo(new Span<float>(_weights, p.Length));
        fixed (long* po = offsets.ToArray())
            _handle = s_create(_weights, po, MambaStackBench.VocabSize, MambaStackBench.DModel, aLog.Shape[0], aLog.Shape[1], dtW.Shape[1], conv.Shape[^1], layers);
        Check(model);
    }

    /// <summary>One token; the logits (256) are overwritten by the next call.</summary>
    public ReadOnlySpan<float> Step(int token)
    {
        fixed (float* y = _logits) s_step(_handle, token, y);
        return _logits;
    }

    public void Reset() => s_reset(_handle);

    public void Dispose()
    {
        s_free(_handle);
        NativeMemory.AlignedFree(_weights);
    }

    /// <summary>64 tokens through both steps from a fresh state: the logits must agree to 1e-3 of their scale.</summary>
    private void Check(MambaStackBench model)
    {
        var state = model.CreateState();
        var y = new float[MambaStackBench.OutputSize];
        for (int t = 0; t < 64; t++)
        {
            int token = (37 * t + 11) % MambaStackBench.VocabSize;
            model.Step(state, token, y);
            var c = Step(token);
            float scale = y.Max(MathF.Abs), diff = 0;
            for (int i = 0; i < y.Length; i++) diff = MathF.Max(diff, MathF.Abs(y[i] - c[i]));
            if (!(diff <= 1e-3f * scale)) throw new InvalidOperationException($"The plain-C step differs from SsmGen's at token {t}: {diff} against logits of scale {scale}.");
        }
        Reset();
    }

    private static void Load()
    {
        lock (s_gate)
        {
            if (s_library != 0) return;
            string dir = Path.Combine(Path.GetTempPath(), $"ssmgen-plain-c-{Environment.ProcessId}");
            Directory.CreateDirectory(dir);
            string source = Path.Combine(dir, "mamba_step.c"), library = Path.Combine(dir, "libmamba_step.so");
            using (var s = typeof(PlainCMamba).Assembly.GetManifestResourceStream("mamba_step.c")!)
            using (var f = File.Create(source)) s.CopyTo(f);
            var start = new ProcessStartInfo("gcc") { RedirectStandardError = true, UseShellExecute = false };
            foreach (string a in CompilerFlags.Split(' ').Concat(["-shared", "-fPIC", source, "-o", library, "-lm"])) start.ArgumentList.Add(a);
            using (var gcc = Process.Start(start) ?? throw new InvalidOperationException("gcc could not be started."))
            {
                string errors = gcc.StandardError.ReadToEnd();
                gcc.WaitForExit();
                if (gcc.ExitCode != 0) throw new InvalidOperationException($"gcc could not build the plain-C peer:\n{errors}");
            }
            s_library = NativeLibrary.Load(library);
            s_create = (delegate* unmanaged<float*, long*, int, int, int, int, int, int, int, nint>)NativeLibrary.GetExport(s_library, "mamba_create");
            s_step = (delegate* unmanaged<nint, int, float*, void>)NativeLibrary.GetExport(s_library, "mamba_step");
            s_reset = (delegate* unmanaged<nint, void>)NativeLibrary.GetExport(s_library, "mamba_reset");
            s_free = (delegate* unmanaged<nint, void>)NativeLibrary.GetExport(s_library, "mamba_free");
        }
    }
}
