using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Testing;
using SsmGen.Generators;

namespace SsmGen.Generators.Tests;

/// <summary>Compiles sources against the running runtime's assemblies plus SsmGen, with the generator attached.</summary>
internal static class GeneratorHarness
{
    public static readonly ImmutableArray<MetadataReference> References = BuildReferences();

    private static ImmutableArray<MetadataReference> BuildReferences()
    {
        var tpa = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        return tpa.Where(p => Path.GetFileName(p).StartsWith("System.") || Path.GetFileName(p) is "mscorlib.dll" or "netstandard.dll")
            .Append(typeof(SsmModelAttribute).Assembly.Location)
            .Append(typeof(System.Numerics.Tensors.TensorPrimitives).Assembly.Location)
            .Distinct()
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))
            .ToImmutableArray();
    }

    /// <summary>Reference assemblies for Microsoft.CodeAnalysis.Testing that need no download.</summary>
    public static ReferenceAssemblies Offline => new("net10.0");

    public static CSharpCompilation Compile(params string[] sources) =>
        CSharpCompilation.Create("UserAssembly",
            sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, CSharpParseOptions.Default.WithLanguageVersion(LanguageVersion.Latest), path: $"Source{i}.cs")),
            References,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

    public static GeneratorDriver Driver() =>
        CSharpGeneratorDriver.Create([new SsmModelGenerator().AsSourceGenerator()],
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true),
            parseOptions: CSharpParseOptions.Default.WithLanguageVersion(LanguageVersion.Latest));

    /// <summary>Runs the generator; returns the updated compilation and the generator's own diagnostics.</summary>
    public static (Compilation Output, ImmutableArray<Diagnostic> GeneratorDiagnostics, GeneratorDriverRunResult Run) Run(params string[] sources)
    {
        var driver = Driver().RunGeneratorsAndUpdateCompilation(Compile(sources), out var output, out var diags);
        return (output, diags, driver.GetRunResult());
    }

    /// <summary>A small model with a block of every kind (S4D, Mamba, RNN, IDS, attention), mean-pooled, in namespace App.</summary>
    public const string AllKinds = """
        using SsmGen;
        namespace App;
        [SsmModel(Vocab = 9, DModel = 16, Output = 9, Pooling = Pooling.Mean)]
        [S4DLayer(N = 8)] [MambaLayer(N = 4)] [RnnLayer(8)] [IdsLayer(2)] [AttentionLayer(2)]
        public partial class M { }
        """;

    /// <summary>The generated CPU and GPU files of <see cref="AllKinds"/>, after checking the generator reported nothing.</summary>
    public static (SyntaxTree Cpu, SyntaxTree Gpu) GenerateAllKinds()
    {
        var (_, diagnostics, run) = Run(AllKinds);
        Assert.Empty(diagnostics);
        SyntaxTree File(string name) => run.GeneratedTrees.Single(t => t.FilePath.EndsWith(name, StringComparison.Ordinal));
        return (File("M.g.cs"), File("M.Cuda.g.cs"));
    }
}
