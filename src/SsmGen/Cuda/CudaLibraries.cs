using System.Reflection;
using System.Runtime.InteropServices;

namespace SsmGen.Cuda;

/// <summary>A CUDA library (NVRTC, the driver, cuBLAS) that could not be loaded, with what to install.</summary>
public sealed class CudaUnavailableException(string message) : Exception(message);

/// <summary>
/// Loads CUDA's shared libraries by every name a Linux install uses (toolkit 13, 12 and 11 sonames, then the
/// unversioned link), once per process, and resolves the bindings' library names to them.
/// </summary>
public static class CudaLibraries
{
    internal const string Nvrtc = "ssmgen-nvrtc", Driver = "ssmgen-cuda", Cublas = "ssmgen-cublas", Nccl = "ssmgen-nccl";

    private static readonly Dictionary<string, (string[] Names, string Install)> Known = new()
    {
        [Nvrtc] = (["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"],
            "install the CUDA toolkit's NVRTC, or on Debian the package libnvrtc11.2 from the non-free component (.ci/install-nvrtc does this)"),
        [Driver] = (["libcuda.so.1", "libcuda.so"], "install the NVIDIA driver (libcuda.so.1 comes with it); a GPU is needed to run kernels"),
        [Cublas] = (["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"], "install the CUDA toolkit's cuBLAS (libcublas)"),
        [Nccl] = (["libnccl.so.2", "libnccl.so"],
            "install NCCL (NVIDIA's libnccl2), or put the folder of the one PyTorch's wheels carry (site-packages/nvidia/nccl/lib) on LD_LIBRARY_PATH"),
    };

    private static readonly Dictionary<string, nint> Loaded = new();
    private static readonly object Gate = new();
    private static bool s_resolverSet;

    /// <summary>True when NVRTC loads; <paramref name="reason"/> says why not otherwise.</summary>
    public static bool TryNvrtc(out string reason) => TryLoad(Nvrtc, out reason);

    /// <summary>True when the CUDA driver loads; it does not say whether a device is present.</summary>
    public static bool TryDriver(out string reason) => TryLoad(Driver, out reason);

    /// <summary>True when NCCL loads; <paramref name="reason"/> says why not otherwise.</summary>
    public static bool TryNccl(out string reason) => TryLoad(Nccl, out reason);

    /// <summary>The handle of a loaded library (after <see cref="Require"/>), for bindings that read its exports.</summary>
    internal static nint Handle(string library)
    {
        lock (Gate) return Loaded[library];
    }

    /// <summary>Loads the library or throws <see cref="CudaUnavailableException"/> naming what was tried and what to install.</summary>
    internal static void Require(string library)
    {
        if (!TryLoad(library, out string reason)) throw new CudaUnavailableException(reason);
    }

    private static bool TryLoad(string library, out string reason)
    {
        lock (Gate)
        {
            if (!s_resolverSet)
            {
                NativeLibrary.SetDllImportResolver(typeof(CudaLibraries).Assembly, Resolve);
                s_resolverSet = true;
            }
            reason = "";
            if (Loaded.ContainsKey(library)) return true;
            var (names, install) = Known[library];
            foreach (string name in names)
                if (NativeLibrary.TryLoad(name, out nint handle)) { Loaded[library] = handle; return true; }
            reason = $"none of {string.Join(", ", names)} could be loaded: {install}.";
            return false;
        }
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        lock (Gate) return Loaded.TryGetValue(name, out nint handle) ? handle : 0;
    }
}
