using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace SsmGen.Generators.Tests;

/// <summary>
/// Every kernel launch goes through a launcher typed from the kernel's CUDA parameters, so a launch that passes the
/// wrong number or kind of arguments fails to compile instead of handing the GPU the wrong bits.
/// </summary>
public class KernelLauncherTests
{
    private static (string Cuda, ClassDeclarationSyntax GpuPath) Generated()
    {
        var gpuPath = GeneratorHarness.GenerateAllKinds().Gpu.GetRoot().DescendantNodes().OfType<ClassDeclarationSyntax>().Single(c => c.Identifier.Text == "GpuPath");
        var source = gpuPath.Members.OfType<FieldDeclarationSyntax>().Single(f => f.Declaration.Variables[0].Identifier.Text == "Source");
        string cuda = ((LiteralExpressionSyntax)source.Declaration.Variables[0].Initializer!.Value).Token.ValueText;
        return (cuda, gpuPath);
    }

    [Fact]
    public void EachKernelHasOneLauncherAndNothingElseLaunches()
    {
        var (cuda, gpuPath) = Generated();
        var kernels = Regex.Matches(cuda, @"extern ""C"" __global__ void (\w+)\(").Select(m => m.Groups[1].Value).ToList();
        Assert.True(kernels.Count > 40, $"{kernels.Count} kernels");
        var launchers = gpuPath.Members.OfType<MethodDeclarationSyntax>().Where(m => m.Identifier.Text.StartsWith("Launch_", StringComparison.Ordinal)).ToList();
        Assert.Equal(kernels.Select(k => "Launch_" + k), launchers.Select(m => m.Identifier.Text));
        // The module is asked for a kernel by name only inside its launcher.
        foreach (var access in gpuPath.DescendantNodes().OfType<ElementAccessExpressionSyntax>().Where(e => e.Expression.ToString() == "Runner.Module"))
        {
            var method = access.Ancestors().OfType<MethodDeclarationSyntax>().Single();
            Assert.Equal("Launch_" + ((LiteralExpressionSyntax)access.ArgumentList.Arguments[0].Expression).Token.ValueText, method.Identifier.Text);
        }
    }

    [Theory]
    // Pointers are device addresses; int, long and float keep their width (a long count must not arrive as an int).
    [InlineData("gelu_forward", "Dim3 grid, Dim3 block, ulong y, ulong g, long n")]
    [InlineData("glu_residual_forward", "Dim3 grid, Dim3 block, ulong o, ulong x, ulong next, int n, int key, int threshold, float scale")]
    [InlineData("pool_mean_step", "Dim3 grid, Dim3 block, ulong sum, ulong x, ulong @out, int t")]
    [InlineData("norm_finish", "Dim3 grid, Dim3 block, ulong partial, int blocks, ulong stats, float max_norm")]
    public void LaunchersTakeTheKernelsParameterTypes(string kernel, string parameters)
    {
        var (_, gpuPath) = Generated();
        var launcher = gpuPath.Members.OfType<MethodDeclarationSyntax>().Single(m => m.Identifier.Text == "Launch_" + kernel);
        Assert.Equal(parameters, string.Join(", ", launcher.ParameterList.Parameters.Select(p => $"{p.Type!.ToString().Replace("global::SsmGen.Cuda.", "")} {p.Identifier.Text}")));
    }

    [Fact]
    public void AModelTheGpuCannotRunLaunchesNothingAndSaysWhy()
    {
        var (output, diagnostics, run) = GeneratorHarness.Run("""
            using SsmGen;
            namespace App;
            [SsmModel(Input = 2, DModel = 8, Output = 2)]
            [RnnLayer(6145)]
            public partial class Wide { }
            """);
        Assert.Empty(diagnostics);
        Assert.Empty(output.GetDiagnostics().Where(d => d.Severity >= Microsoft.CodeAnalysis.DiagnosticSeverity.Warning));
        string gpu = run.GeneratedTrees.Single(t => t.FilePath.EndsWith("Wide.Cuda.g.cs", StringComparison.Ordinal)).ToString();
        Assert.Contains("private void Layer0Forward(int batch, int length) => throw new global::System.NotSupportedException(Unsupported);", gpu);
        Assert.DoesNotContain("Launch_rnn_", gpu);
    }
}
