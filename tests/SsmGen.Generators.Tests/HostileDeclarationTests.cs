using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace SsmGen.Generators.Tests;

/// <summary>
/// Declarations that once made the generator throw (CS8785, losing every model's code) or emit code that did not
/// compile although the user's did: each now gives correct code or an SSMG diagnostic.
/// </summary>
public class HostileDeclarationTests
{
    private const string Layers = "[S4DLayer(N = 4)]";

    /// <summary>Asserts the generator neither threw nor reported, and the whole output compiles without warnings.</summary>
    private static GeneratorDriverRunResult CompilesCleanly(params string[] sources)
    {
        var (output, genDiags, run) = GeneratorHarness.Run(sources);
        Assert.All(run.Results, r => Assert.Null(r.Exception));
        Assert.True(genDiags.IsEmpty, string.Join("\n", genDiags));
        var problems = output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToArray();
        Assert.True(problems.Length == 0, string.Join("\n", problems.Take(10).Select(Describe)));
        return run;
    }

    /// <summary>A diagnostic with the source line it points at.</summary>
    internal static string Describe(Diagnostic d)
    {
        var tree = d.Location.SourceTree;
        string line = tree is null ? "" : tree.GetText().Lines[d.Location.GetLineSpan().StartLinePosition.Line].ToString().Trim();
        return $"{d}\n    {line}";
    }

    /// <summary>Asserts the generator did not throw and reported the given SSMG diagnostic (and generated nothing for it).</summary>
    private static void Reports(string id, string source, LanguageVersion version = LanguageVersion.Latest, int otherModels = 0)
    {
        var options = CSharpParseOptions.Default.WithLanguageVersion(version);
        var compilation = CSharpCompilation.Create("UserAssembly", [CSharpSyntaxTree.ParseText(source, options, path: "Source0.cs")],
            GeneratorHarness.References, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        var driver = CSharpGeneratorDriver.Create([new SsmModelGenerator().AsSourceGenerator()], parseOptions: options)
            .RunGeneratorsAndUpdateCompilation(compilation, out _, out var genDiags);
        var run = driver.GetRunResult();
        Assert.All(run.Results, r => Assert.Null(r.Exception));
        Assert.True(genDiags.Any(d => d.Id == id), $"expected {id}, got: {string.Join("\n", genDiags)}");
        Assert.Equal(2 * otherModels, run.GeneratedTrees.Length);
    }

    [Fact]
    public void ModelsWhoseNamesDifferOnlyInCaseGetDistinctFiles()
    {
        var run = CompilesCleanly($$"""
            using SsmGen;
            namespace A { [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}} public partial class M { } }
            namespace a { [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}} public partial class M { } }
            namespace A { [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}} public partial class m { } }
            namespace A { [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}} public partial class @class { } }
            namespace A { [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}} public partial class Class { } }
            """);
        Assert.Equal(10, run.GeneratedTrees.Length);
        Assert.Equal(10, run.GeneratedTrees.Select(t => t.FilePath).Distinct(StringComparer.OrdinalIgnoreCase).Count());
    }

    [Fact]
    public void SsmModelOnTwoPartialPartsGeneratesOnce()
    {
        var (output, genDiags, run) = GeneratorHarness.Run($$"""
            using SsmGen;
            [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}} public partial class M { }
            [SsmModel(Input = 1, DModel = 4, Output = 2)] public partial class M { }
            """);
        Assert.All(run.Results, r => Assert.Null(r.Exception));
        Assert.DoesNotContain(genDiags, d => d.Id == "CS8785");
        Assert.Equal(2, run.GeneratedTrees.Length);
        // The user's duplicate attribute is the compiler's to report; the generated code adds nothing else.
        Assert.Equal(["CS0579"], output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => d.Id).Distinct());
    }

    [Fact]
    public void ASpoofedAttributeIsReportedNotParsed() => Reports("SSMG0026", """
        namespace SsmGen
        {
            public sealed class SsmModelAttribute : System.Attribute { public string Input { get; set; } = ""; public long DModel { get; set; } }
            public sealed class S4DLayerAttribute : System.Attribute { public string N { get; set; } = ""; }
        }
        [SsmGen.SsmModel(Input = "many", DModel = 1L << 40)]
        [SsmGen.S4DLayer(N = "x")]
        public partial class M { }
        """);

    [Fact]
    public void UserNamesNeverCaptureTheGeneratedCode() => CompilesCleanly($$"""
        using SsmGen;
        namespace Acme.System.Stability
        {
            public class Complex { }
            public class Math { }
            public class Array { }
            public class Span<T> { }
            public class ReadOnlySpan<T> { }
            public class IReadOnlyList<T> { }
            public class ArgumentException { }
            public class InvalidOperationException { }
            public class ComputeDevice { }
            public class Dim3 { }
            public class GpuModelRunner { }
            public class KernelArgument { }
            public class TensorPrimitives { }
            namespace Gemm { public class X { } }

            [SsmModel(Input = 2, DModel = 8, Output = 3)]
            [S4DLayer(N = 4)] [MambaLayer(N = 4)] [RnnLayer(8)] [IdsLayer(2)] [AttentionLayer(2)]
            public partial class Rng { }

            [SsmModel(Vocab = 5, DModel = 8, Output = 5, Pooling = SsmGen.Pooling.None)]
            [S4DLayer(N = 4)]
            public partial class Pooling { }
        }
        """);

    [Fact]
    public void ContextualKeywordNamesCompile() => CompilesCleanly("""
        using SsmGen;
        namespace nameof.Parameters { public class nameof { } }
        namespace @record.@async
        {
            [SsmModel(Input = 1, DModel = 4, Output = 2)] [S4DLayer(N = 4)] public partial class @record { }
            [SsmModel(Input = 1, DModel = 4, Output = 2)] [MambaLayer(N = 4)] public partial class @dynamic { }
        }
        namespace nameof.Parameters
        {
            [SsmModel(Vocab = 5, DModel = 4, Output = 2, Pooling = Pooling.None)] [RnnLayer(4)] [IdsLayer(2)] [AttentionLayer(2)] public partial class Dim3 { }
        }
        """);

    [Theory]
    [InlineData("Forward")]
    [InlineData("Step")]
    [InlineData("Config")]
    [InlineData("H")]
    [InlineData("GpuPath")]
    public void AModelNamedLikeAGeneratedMemberIsReported(string name) => Reports("SSMG0021", $$"""
        using SsmGen;
        [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}} public partial class {{name}} { }
        """);

    [Theory]
    [InlineData("public void Dispose() { }")]
    [InlineData("public int Forward;")]
    [InlineData("public void ZeroGradients() { }")]
    [InlineData("private const int H = 3;")]
    public void AUserMemberThatClashesIsReported(string member) => Reports("SSMG0022", $$"""
        using SsmGen;
        [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}} public partial class M { {{member}} }
        """);

    [Fact]
    public void UserOverloadsAndHelpersAreKept() => CompilesCleanly($$"""
        using SsmGen;
        [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}}
        public partial class M
        {
            public M() : this(1, 8) { }
            public void Forward(string note) { }
            public int Helper => 3;
        }
        """);

    [Fact]
    public void APrimaryConstructorIsReported() => Reports("SSMG0023", $$"""
        using SsmGen;
        [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}} public partial class M(int size) { public int Size => size; }
        """);

    [Fact]
    public void AConstructorThatSkipsTheGeneratedOneIsReported() => Reports("SSMG0031", $$"""
        using SsmGen;
        [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}}
        public partial class M { public M(string note) { } }
        """);

    [Fact]
    public void AModelDerivingFromAModelIsReported() => Reports("SSMG0024", $$"""
        using SsmGen;
        [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}} public partial class Base { }
        [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}} public partial class Derived : Base { }
        """, otherModels: 1);

    [Fact]
    public void ABaseWithoutAParameterlessConstructorIsReported() => Reports("SSMG0024", $$"""
        using SsmGen;
        public class Base { public Base(int x) { } }
        [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}} public partial class M : Base { }
        """);

    [Fact]
    public void APlainBaseClassWorks() => CompilesCleanly($$"""
        using SsmGen;
        public abstract class Base { public string Name { get; set; } = ""; protected Base() { } }
        [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}} public partial class M : Base { }
        """);

    [Theory]
    [InlineData("public partial class @var { }")]
    [InlineData("public partial class M { } public class @var { }")]
    public void ATypeNamedVarIsReported(string declarations) => Reports("SSMG0025", $$"""
        #pragma warning disable CS8981
        using SsmGen;
        [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}} {{declarations}}
        """);

    [Fact]
    public void AGlobalTypeHidingTheSystemNamespaceIsReported() => Reports("SSMG0027", $$"""
        using SsmGen;
        public class System { }
        namespace App { [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}} public partial class M { } }
        """);

    [Fact]
    public void CSharp12IsReported() => Reports("SSMG0020", $$"""
        using SsmGen;
        [SsmModel(Input = 1, DModel = 4, Output = 2)] {{Layers}} public partial class M { }
        """, LanguageVersion.CSharp12);

    [Theory]
    [InlineData("S4DLayer", "DtMax = 3.5e38")]
    [InlineData("MambaLayer", "DtMin = 1e-3, DtMax = 1e5")]
    [InlineData("MambaLayer", "DtMin = 1e-30")]
    public void DtBeyondFloatDiscretizationIsReported(string layer, string range) => Reports("SSMG0013", $$"""
        using SsmGen;
        [SsmModel(Input = 1, DModel = 4, Output = 2)] [{{layer}}({{range}})] public partial class M { }
        """);
}
