using System.Runtime.InteropServices;
using System.Text;

namespace SsmGen.Cuda;

/// <summary>What NVRTC produced for one source: PTX for a virtual architecture, or a CUBIN for a real one, and its log.</summary>
/// <param name="Architecture">The target, e.g. <c>compute_80</c> (PTX) or <c>sm_90</c> (CUBIN).</param>
/// <param name="Image">PTX text (NUL-terminated, as the driver takes it) or the CUBIN's ELF bytes.</param>
/// <param name="Log">The compiler's messages: empty when it had no warning.</param>
public sealed record NvrtcOutput(string Architecture, byte[] Image, string Log)
{
    public bool IsCubin => Architecture.StartsWith("sm_", StringComparison.Ordinal);
}

/// <summary>A compile that NVRTC rejected, with its log; or an NVRTC call that failed, with its name and status.</summary>
public sealed class NvrtcException(string message, string log = "") : Exception(message)
{
    public string Log { get; } = log;
}

/// <summary>
/// CUDA C to PTX or CUBIN through NVRTC (libnvrtc), at run time and without a GPU. Every NVRTC status is checked
/// and reported with the call that returned it.
/// </summary>
public static unsafe partial class Nvrtc
{
    /// <summary>NVRTC's version, e.g. (11, 8).</summary>
    public static (int Major, int Minor) Version()
    {
        CudaLibraries.Require(CudaLibraries.Nvrtc);
        int major, minor;
        Check(nvrtcVersion(&major, &minor), "nvrtcVersion");
        return (major, minor);
    }

    /// <summary>
    /// The compute capabilities NVRTC can compile for, ascending, e.g. 35, 37, 50, …, 90 for NVRTC 11.8: a device whose
    /// capability is missing here gets PTX for a lower one, which the driver compiles when it loads the module.
    /// </summary>
    public static IReadOnlyList<int> SupportedArchitectures()
    {
        CudaLibraries.Require(CudaLibraries.Nvrtc);
        int count;
        Check(nvrtcGetNumSupportedArchs(&count), "nvrtcGetNumSupportedArchs");
        var architectures = new int[count];
        fixed (int* p = architectures) Check(nvrtcGetSupportedArchs(p), "nvrtcGetSupportedArchs");
        Array.Sort(architectures);
        return architectures;
    }

    /// <summary>
    /// Compiles <paramref name="source"/> for <paramref name="architecture"/>: <c>compute_XX</c> gives PTX, <c>sm_XX</c> a
    /// CUBIN. Throws <see cref="NvrtcException"/> with the log when the source does not compile.
    /// </summary>
    public static NvrtcOutput Compile(string source, string name, string architecture, IEnumerable<string>? options = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentException.ThrowIfNullOrEmpty(name);
        bool cubin = architecture.StartsWith("sm_", StringComparison.Ordinal);
        if (!cubin && !architecture.StartsWith("compute_", StringComparison.Ordinal))
            throw new ArgumentException($"Architecture '{architecture}' is neither compute_XX (PTX) nor sm_XX (CUBIN).", nameof(architecture));
        CudaLibraries.Require(CudaLibraries.Nvrtc);

        var args = new List<string> { "--gpu-architecture=" + architecture };
        if (options is not null) args.AddRange(options);
        var handles = new List<GCHandle>();
        nint program = 0;
        try
        {
            byte* Pin(string s)
            {
                var h = GCHandle.Alloc(Encoding.UTF8.GetBytes(s + "\0"), GCHandleType.Pinned);
                handles.Add(h);
                return (byte*)h.AddrOfPinnedObject();
            }
            Check(nvrtcCreateProgram(&program, Pin(source), Pin(name), 0, null, null), "nvrtcCreateProgram");
            var optionPointers = new byte*[args.Count];
            for (int i = 0; i < args.Count; i++) optionPointers[i] = Pin(args[i]);
            int status;
            fixed (byte** po = optionPointers) status = nvrtcCompileProgram(program, optionPointers.Length, po);
            string log = ProgramLog(program);
            if (status != 0)
                throw new NvrtcException($"NVRTC could not compile '{name}' for {architecture} ({ErrorString(status)}):\n{log}", log);
            nuint size;
            byte[] image;
            if (cubin)
            {
                Check(nvrtcGetCUBINSize(program, &size), "nvrtcGetCUBINSize");
                image = new byte[(int)size];
                fixed (byte* p = image) Check(nvrtcGetCUBIN(program, p), "nvrtcGetCUBIN");
            }
            else
            {
                Check(nvrtcGetPTXSize(program, &size), "nvrtcGetPTXSize");
                image = new byte[(int)size];
                fixed (byte* p = image) Check(nvrtcGetPTX(program, p), "nvrtcGetPTX");
            }
            return new NvrtcOutput(architecture, image, log);
        }
        finally
        {
            if (program != 0) nvrtcDestroyProgram(&program);
            foreach (var h in handles) h.Free();
        }
    }

    private static string ProgramLog(nint program)
    {
        nuint size;
        Check(nvrtcGetProgramLogSize(program, &size), "nvrtcGetProgramLogSize");
        var bytes = new byte[(int)size];
        fixed (byte* p = bytes) Check(nvrtcGetProgramLog(program, p), "nvrtcGetProgramLog");
        return Encoding.UTF8.GetString(bytes).TrimEnd('\0').Trim();
    }

    private static void Check(int status, string call)
    {
        if (status != 0) throw new NvrtcException($"{call} failed: {ErrorString(status)} (NVRTC status {status}).");
    }

    private static string ErrorString(int status) => Marshal.PtrToStringUTF8((nint)nvrtcGetErrorString(status)) ?? $"status {status}";

    [LibraryImport(CudaLibraries.Nvrtc)] private static partial int nvrtcVersion(int* major, int* minor);
    [LibraryImport(CudaLibraries.Nvrtc)] private static partial int nvrtcGetNumSupportedArchs(int* count);
    [LibraryImport(CudaLibraries.Nvrtc)] private static partial int nvrtcGetSupportedArchs(int* architectures);
    [LibraryImport(CudaLibraries.Nvrtc)] private static partial int nvrtcCreateProgram(nint* program, byte* source, byte* name, int headerCount, byte** headers, byte** includeNames);
    [LibraryImport(CudaLibraries.Nvrtc)] private static partial int nvrtcCompileProgram(nint program, int optionCount, byte** options);
    [LibraryImport(CudaLibraries.Nvrtc)] private static partial int nvrtcGetPTXSize(nint program, nuint* size);
    [LibraryImport(CudaLibraries.Nvrtc)] private static partial int nvrtcGetPTX(nint program, byte* ptx);
    [LibraryImport(CudaLibraries.Nvrtc)] private static partial int nvrtcGetCUBINSize(nint program, nuint* size);
    [LibraryImport(CudaLibraries.Nvrtc)] private static partial int nvrtcGetCUBIN(nint program, byte* cubin);
    [LibraryImport(CudaLibraries.Nvrtc)] private static partial int nvrtcGetProgramLogSize(nint program, nuint* size);
    [LibraryImport(CudaLibraries.Nvrtc)] private static partial int nvrtcGetProgramLog(nint program, byte* log);
    [LibraryImport(CudaLibraries.Nvrtc)] private static partial int nvrtcDestroyProgram(nint* program);
    [LibraryImport(CudaLibraries.Nvrtc)] private static partial byte* nvrtcGetErrorString(int status);
}
