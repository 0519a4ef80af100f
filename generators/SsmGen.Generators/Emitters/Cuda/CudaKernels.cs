using System;
using System.Text.RegularExpressions;

namespace SsmGen.Generators.Emitters.Cuda;

/// <summary>One parameter of a CUDA kernel: the C# type its launcher takes for it, and its name.</summary>
internal sealed record KernelParameter(string CSharpType, string Name);

/// <summary>
/// A kernel of the model's CUDA source, read from its definition — the one place its name and argument list are
/// written. Each becomes an entry of the module's kernel list and a typed C# launcher, so a launch whose arguments do
/// not match the kernel's parameters fails to compile instead of passing the wrong bits.
/// </summary>
internal sealed record CudaKernel(string Name, IReadOnlyList<KernelParameter> Parameters)
{
    // Every kernel is an extern "C" __global__ function: its unmangled name is what the module is asked for.
    private static readonly Regex Definition =
        new(@"extern ""C"" __global__ void (\w+)\s*\(([^)]*)\)", RegexOptions.CultureInvariant);

    /// <summary>The C# name of the kernel's launcher.</summary>
    public string Launcher => "Launch_" + Name;

    /// <summary>The kernels defined in <paramref name="source"/>, in order.</summary>
    public static List<CudaKernel> Read(string source) =>
        Definition.Matches(source).Cast<Match>()
            .Select(m => new CudaKernel(m.Groups[1].Value, ReadParameters(m.Groups[1].Value, m.Groups[2].Value)))
            .ToList();

    private static List<KernelParameter> ReadParameters(string kernel, string list)
    {
        var parameters = new List<KernelParameter>();
        foreach (string raw in list.Split(','))
        {
            string text = Regex.Replace(raw, @"\s+", " ").Trim();
            if (text.Length == 0) continue;
            int cut = text.LastIndexOfAny(new[] { ' ', '*' });
            if (cut < 0) throw new InvalidOperationException($"Kernel {kernel}: parameter '{text}' has no type.");
            string name = text.Substring(cut + 1), type = text.Substring(0, cut + 1).Replace("__restrict__", "").Replace("const ", "").Trim();
            parameters.Add(new KernelParameter(CSharpTypeOf(kernel, type), Identifier(name)));
        }
        return parameters;
    }

    /// <summary>A device address for any pointer; the scalar types the kernels take, by their size.</summary>
    private static string CSharpTypeOf(string kernel, string cudaType) =>
        cudaType.EndsWith("*", StringComparison.Ordinal) ? "ulong" : cudaType switch
        {
            "int" => "int",
            "long" or "long long" => "long",
            "unsigned long long" => "ulong",
            "float" => "float",
            _ => throw new InvalidOperationException($"Kernel {kernel}: parameter type '{cudaType}' has no launcher type (KernelArgument carries pointers, 32/64-bit integers and float)."),
        };

    private static string Identifier(string name) =>
        Microsoft.CodeAnalysis.CSharp.SyntaxFacts.GetKeywordKind(name) == Microsoft.CodeAnalysis.CSharp.SyntaxKind.None ? name : "@" + name;

    /// <summary>The launcher: grid and block shapes (a uint converts to a one-dimensional Dim3), then the kernel's parameters.</summary>
    public void EmitLauncher(CodeWriter w)
    {
        string parameters = string.Concat(Parameters.Select(p => $", {p.CSharpType} {p.Name}"));
        string arguments = string.Concat(Parameters.Select(p => ", " + p.Name));
        w.Line($"private void {Launcher}(Dim3 grid, Dim3 block{parameters})");
        w.Line($"    => Runner.Gpu.Launch(Runner.Module[\"{Name}\"], grid, block{arguments});");
    }
}
