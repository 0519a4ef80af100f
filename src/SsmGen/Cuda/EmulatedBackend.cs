using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace SsmGen.Cuda;

/// <summary>
/// Runs the generated CUDA C on the CPU, to check kernels where no GPU is present: the source is compiled by the
/// system C++ compiler (g++) after a prelude that gives threadIdx/blockIdx/__syncthreads their CUDA meaning.
/// Each block runs on the calling thread as one fiber per CUDA thread; a fiber that reaches __syncthreads (or a warp
/// shuffle) waits until every unfinished fiber of its block (or warp) has arrived, so barriers, shared memory and
/// block- and warp-wide reductions behave as on a GPU, and a barrier some threads never reach aborts with a message
/// instead of hanging. Device memory is host memory and GEMM is a plain loop. It is slow, and it
/// checks what kernels compute, not how fast or whether they race on a real GPU.
/// </summary>
public sealed unsafe class EmulatedBackend : GpuBackend
{
    private readonly List<nint> _libraries = [];
    private readonly string _cacheDirectory;
    private bool _disposed;

    public override string Name => "CPU emulation of CUDA (g++)";

    /// <param name="cacheDirectory">
    /// Where compiled modules are kept, keyed by a hash of the source: by default the folder <c>emulation</c> in
    /// <see cref="KernelCache.DefaultDirectory"/> (a fresh temporary folder where that has none), created so that only
    /// its owner can write it (the modules in it are loaded as code).
    /// </param>
    public EmulatedBackend(string? cacheDirectory = null)
    {
        _cacheDirectory = cacheDirectory
            ?? (KernelCache.DefaultDirectory is { } kernels ? Path.Combine(kernels, "emulation") : Path.Combine(Path.GetTempPath(), "ssmgen-emulation-" + Guid.NewGuid().ToString("N")));
    }

    /// <summary>True when a C++ compiler for the emulation is on the PATH; <paramref name="reason"/> says why not otherwise.</summary>
    public static bool IsAvailable(out string reason)
    {
        reason = "";
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator))
            if (dir.Length > 0 && File.Exists(Path.Combine(dir, "g++"))) return true;
        reason = "g++ is not on the PATH (install the Debian package g++)";
        return false;
    }

    // Like a CUDA context, a disposed emulation refuses every call but Free (whose memory a context would have taken along).
    public override ulong Allocate(long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        void* p = NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 256);
        NativeMemory.Clear(p, (nuint)bytes);
        return (ulong)p;
    }

    public override void Free(ulong address) => NativeMemory.AlignedFree((void*)address);
    public override void* AllocatePinned(long bytes) => (void*)Allocate(bytes);
    public override void FreePinned(void* pointer) => Free((ulong)pointer);
    public override void CopyToDevice(ulong destination, void* source, long bytes) { ObjectDisposedException.ThrowIf(_disposed, this); Buffer.MemoryCopy(source, (void*)destination, bytes, bytes); }
    public override void CopyToHost(void* destination, ulong source, long bytes) { ObjectDisposedException.ThrowIf(_disposed, this); Buffer.MemoryCopy((void*)source, destination, bytes, bytes); }
    public override void CopyOnDevice(ulong destination, ulong source, long bytes) { ObjectDisposedException.ThrowIf(_disposed, this); Buffer.MemoryCopy((void*)source, (void*)destination, bytes, bytes); }
    public override void Clear(ulong address, long bytes) { ObjectDisposedException.ThrowIf(_disposed, this); NativeMemory.Clear((void*)address, (nuint)bytes); }
    public override void Synchronize() { }

    public override GpuModule Load(string source, string name, IReadOnlyList<string> kernels)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var text = new StringBuilder(Prelude);
        text.Append("#line 1 \"").Append(name).Append("\"\n").Append(source).Append('\n');
        foreach (string k in kernels)
            text.Append("extern \"C\" __attribute__((visibility(\"default\"))) void emu_launch_").Append(k)
                .Append("(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, void** args) { emu::launch(")
                .Append(k).Append(", dim3{gx, gy, gz}, dim3{bx, by, bz}, args); }\n");
        string code = text.ToString();
        string hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(code + "\0" + CompilerOptions)))[..32];
        if (!Directory.Exists(_cacheDirectory))
        {
            if (OperatingSystem.IsWindows()) Directory.CreateDirectory(_cacheDirectory);
            else Directory.CreateDirectory(_cacheDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        string library = Path.Combine(_cacheDirectory, hash + ".so");
        bool cached = File.Exists(library);
        if (!cached) Compile(code, name, library);
        nint handle = NativeLibrary.Load(library);
        _libraries.Add(handle);
        var functions = new Dictionary<string, GpuFunction>();
        foreach (string k in kernels)
            functions[k] = new GpuFunction(NativeLibrary.GetExport(handle, "emu_launch_" + k), k);
        return new GpuModule(functions, cached ? "CPU emulation, from the cache" : "CPU emulation, compiled by g++");
    }

    private const string CompilerOptions = "-std=c++20 -O2 -shared -fPIC -fvisibility=hidden -ffp-contract=off";

    private void Compile(string code, string name, string library)
    {
        if (!IsAvailable(out string reason)) throw new CudaUnavailableException("The CUDA emulation needs a C++ compiler: " + reason + ".");
        string work = Path.Combine(_cacheDirectory, $"build-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(work);
        try
        {
            string src = Path.Combine(work, "module.cpp"), output = Path.Combine(work, "module.so");
            File.WriteAllText(src, code);
            var start = new ProcessStartInfo("g++") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (string o in CompilerOptions.Split(' ')) start.ArgumentList.Add(o);
            start.ArgumentList.Add("-o"); start.ArgumentList.Add(output); start.ArgumentList.Add(src);
            using var p = Process.Start(start)!;
            var stderr = p.StandardError.ReadToEndAsync();
            string stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0)
                throw new NvrtcException($"g++ could not compile '{name}' for the CUDA emulation:\n{stdout}{stderr.Result}", stdout + stderr.Result);
            File.Move(output, library, overwrite: true); // atomic: another process never loads half a file
        }
        finally { try { Directory.Delete(work, true); } catch (IOException) { } }
    }

    public override void Launch(GpuFunction function, Dim3 grid, Dim3 block, void** arguments)
    {
        ObjectDisposedException.ThrowIf(_disposed, this); // its kernels' library is unloaded
        if (grid.Count == 0 || block.Count == 0) throw new ArgumentException($"Launch of {function.Name} with an empty grid or block.");
        if (block.Count > 1024 || block.Z > 64) throw new ArgumentException($"Launch of {function.Name} with block {block}; CUDA allows at most 1024 threads and z ≤ 64.");
        if (grid.Y > 65535 || grid.Z > 65535) throw new ArgumentException($"Launch of {function.Name} with grid {grid}; CUDA allows y and z up to 65535.");
        ((delegate* unmanaged<uint, uint, uint, uint, uint, uint, void**, void>)function.Handle)(grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, arguments);
    }

    public override void Sgemm(bool transposeA, bool transposeB, int m, int n, int k, float alpha, ulong a, int lda, ulong b, int ldb, float beta, ulong c, int ldc)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        float* pa = (float*)a, pb = (float*)b, pc = (float*)c;
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++)
            {
                float s = 0;
                for (int l = 0; l < k; l++)
                    s += (transposeA ? pa[i * lda + l] : pa[l * lda + i]) * (transposeB ? pb[l * ldb + j] : pb[j * ldb + l]);
                float* dst = pc + j * ldc + i;
                *dst = beta == 0 ? alpha * s : alpha * s + beta * *dst; // β = 0 ignores C, as cuBLAS does
            }
    }

    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (nint h in _libraries) NativeLibrary.Free(h);
        _libraries.Clear();
    }

    /// <summary>The CUDA vocabulary the generated kernels use, given its meaning on the CPU.</summary>
    private const string Prelude = """
        #include <math.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <stdint.h>
        #include <ucontext.h>
        #include <vector>
        #include <memory>
        #include <utility>
        struct dim3 { unsigned x = 1, y = 1, z = 1; };
        struct uint3 { unsigned x, y, z; };
        namespace emu {
        // A counting barrier: the last of the expected fibers to arrive opens it for all.
        struct Gate { unsigned arrived = 0, generation = 0; };
        struct Fiber { ucontext_t context; bool done; };
        struct Block {
          ucontext_t scheduler; std::vector<Fiber> fibers; std::vector<std::unique_ptr<char[]>> stacks;
          std::vector<float> lanes; Gate all; std::vector<Gate> warps; unsigned live; std::vector<unsigned> warp_live;
          bool progress; void (*body)(void*); void* closure; unsigned current;
        };
        constexpr size_t StackBytes = 128 * 1024;
        thread_local Block* block;
        thread_local uint3 thread_index, block_index;
        thread_local dim3 block_dim, grid_dim;
        inline void yield() { swapcontext(&block->fibers[block->current].context, &block->scheduler); }
        inline void open(Gate& g) { g.arrived = 0; g.generation++; block->progress = true; }
        inline void wait(Gate& g, unsigned expected) {
          unsigned generation = g.generation;
          block->progress = true;
          if (++g.arrived >= expected) { open(g); return; }
          while (g.generation == generation) yield();
        }
        // __syncthreads: every fiber of the block still running; __shfl_*_sync: every lane of the warp still running.
        inline void sync_block() { wait(block->all, block->live); }
        inline void sync_warp() { unsigned w = block->current / 32; wait(block->warps[w], block->warp_live[w]); }
        inline void fiber_entry() {
          block->body(block->closure);
          Block& b = *block; unsigned w = b.current / 32;
          b.fibers[b.current].done = true; b.progress = true;
          b.live--; b.warp_live[w]--;
          // an exited thread no longer holds back a barrier the others wait at
          if (b.all.arrived > 0 && b.all.arrived >= b.live) open(b.all);
          if (b.warps[w].arrived > 0 && b.warps[w].arrived >= b.warp_live[w]) open(b.warps[w]);
        }
        template <class... A, size_t... I> void call(void (*k)(A...), void** a, std::index_sequence<I...>) { k(*static_cast<A*>(a[I])...); }
        template <class... A> void launch(void (*k)(A...), dim3 g, dim3 b, void** args) {
          Block self; Block* outer = block; block = &self;
          unsigned n = b.x * b.y * b.z, nw = (n + 31) / 32;
          self.fibers.resize(n);
          self.lanes.resize(n);
          for (unsigned i = 0; i < n; i++) self.stacks.emplace_back(new char[StackBytes]);
          struct Closure { void (*k)(A...); void** args; } c{k, args};
          self.closure = &c;
          self.body = [](void* p) { auto* cl = static_cast<Closure*>(p); call(cl->k, cl->args, std::index_sequence_for<A...>{}); };
          grid_dim = g; block_dim = b;
          for (unsigned bz = 0; bz < g.z; bz++) for (unsigned by = 0; by < g.y; by++) for (unsigned bx = 0; bx < g.x; bx++) {
            block_index = {bx, by, bz};
            self.all = Gate{}; self.warps.assign(nw, Gate{}); self.live = n; self.warp_live.assign(nw, 32);
            if (n % 32 != 0) self.warp_live[nw - 1] = n % 32;
            for (unsigned i = 0; i < n; i++) {
              Fiber& f = self.fibers[i];
              f.done = false;
              getcontext(&f.context);
              f.context.uc_stack.ss_sp = self.stacks[i].get();
              f.context.uc_stack.ss_size = StackBytes;
              f.context.uc_link = &self.scheduler;
              makecontext(&f.context, fiber_entry, 0);
            }
            // Rounds resume every unfinished fiber once; a round in which no fiber arrives anywhere, opens a
            // barrier or finishes means some wait at a barrier that others never reach: on a GPU, a hang.
            for (bool waiting = true; waiting;) {
              waiting = false; self.progress = false;
              for (unsigned i = 0; i < n; i++) {
                if (self.fibers[i].done) continue;
                self.current = i;
                thread_index = {i % b.x, (i / b.x) % b.y, i / (b.x * b.y)};
                swapcontext(&self.scheduler, &self.fibers[i].context);
                if (!self.fibers[i].done) waiting = true;
              }
              if (waiting && !self.progress) {
                fprintf(stderr, "CUDA emulation: deadlock in block (%u, %u, %u): threads wait at a barrier others never reach\n", bx, by, bz);
                abort();
              }
            }
          }
          block = outer;
        }
        }
        #define threadIdx (emu::thread_index)
        #define blockIdx (emu::block_index)
        #define blockDim (emu::block_dim)
        #define gridDim (emu::grid_dim)
        #define __global__
        #define __device__ static
        #define __forceinline__ inline
        #define __shared__ static thread_local
        #define __constant__ static
        #define __launch_bounds__(...)
        inline void __syncthreads() { emu::sync_block(); }
        // A warp shuffle: every lane posts its value, the warp meets, each reads its partner's, the warp meets again
        // (so no lane posts the next value before its partner has read this one). Lanes are consecutive fibers.
        inline float __shfl_xor_sync(unsigned, float v, int lane_mask)
        {
          unsigned i = emu::block->current;
          emu::block->lanes[i] = v;
          emu::sync_warp();
          float r = emu::block->lanes[i ^ (unsigned)lane_mask];
          emu::sync_warp();
          return r;
        }
        // Fibers of a block run one at a time on one OS thread, so a plain read-modify-write is atomic.
        inline float atomicAdd(float* p, float v) { float old = *p; *p = old + v; return old; }
        inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
        inline float __expf(float x) { return expf(x); }
        inline void sincospi(double x, double* s, double* c) { *s = sin(M_PI * x); *c = cos(M_PI * x); }
        inline float __logf(float x) { return logf(x); }
        inline float __fdividef(float a, float b) { return a / b; }
        inline float __int_as_float(int v) { float f; memcpy(&f, &v, 4); return f; }
        inline int __float_as_int(float f) { int v; memcpy(&v, &f, 4); return v; }
        inline int min(int a, int b) { return a < b ? a : b; }
        inline int max(int a, int b) { return a > b ? a : b; }

        """;
}
