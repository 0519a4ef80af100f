using Microsoft.CodeAnalysis;

namespace SsmGen.Generators.Tests;

public class GeneratedCodeTests
{
    private const string Models = """
        using SsmGen;
        namespace User.Models;

        [SsmModel(Input = 1, DModel = 128, Output = 10, Pooling = Pooling.Mean)]
        [S4DLayer(N = 64, Init = S4DInit.Lin, Repeat = 4)]
        public partial class SeqClassifier { }

        [SsmModel(Vocab = 50, DModel = 24, Output = 50, Pooling = Pooling.None)]
        [S4DLayer(N = 16, Init = S4DInit.LegS, Discretization = Discretization.Bilinear, TrainB = true, Dropout = 0.1)]
        [S4DLayer(N = 6, Init = S4DInit.Inv)]
        internal partial class CharModel { }

        // every layer kind, in a namespace whose members share names with SsmGen's runtime types
        [SsmModel(Vocab = 9, DModel = 16, Output = 9, Pooling = Pooling.None)]
        [MambaLayer(N = 16, Norm = NormKind.LayerNorm)]
        [RnnLayer(8, Nonlinearity = Nonlinearity.Relu)]
        [IdsLayer(4)]
        [AttentionLayer(2)]
        [S4DLayer(N = 8)]
        public partial class Hybrid { }
        """;

    private const string ShadowingNamespaces = """
        namespace User.Models.Stability { public class Marker { } }
        namespace User.Models.Gemm { public class Marker { } }
        namespace User.Models { public class FastMath { } public class Workspace { } }
        """;

    private const string GlobalNamespaceModel = """
        [SsmGen.SsmModel(Input = 3, DModel = 8, Output = 2, Pooling = SsmGen.Pooling.Last)]
        [SsmGen.S4DLayer(N = 10, Init = SsmGen.S4DInit.Random)]
        partial class NoNamespace { }
        """;

    [Fact]
    public void SampleModelsGenerateSourceThatCompilesWithoutWarnings()
    {
        var (output, genDiags, run) = GeneratorHarness.Run(Models, GlobalNamespaceModel, ShadowingNamespaces);
        Assert.Empty(genDiags);
        // The generator ran: a CPU and a GPU file per model. (A generator compiled against a newer Roslyn than the
        // compiler is silently skipped; this count catches that.)
        Assert.Equal(["CharModel.Cuda.g.cs", "CharModel.g.cs", "Hybrid.Cuda.g.cs", "Hybrid.g.cs", "NoNamespace.Cuda.g.cs", "NoNamespace.g.cs", "SeqClassifier.Cuda.g.cs", "SeqClassifier.g.cs"],
            run.GeneratedTrees.Select(t => Path.GetFileName(t.FilePath).Replace("User.Models.", "")).Order().ToArray());
        var problems = output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToArray();
        Assert.True(problems.Length == 0, string.Join("\n", problems.Select(d => d.ToString())));
    }

    [Fact]
    public void StateLoopsAreSpecializedToTheDeclaredSize()
    {
        var (_, _, run) = GeneratorHarness.Run(Models);
        string src = run.GeneratedTrees.Single(t => t.FilePath.EndsWith("SeqClassifier.g.cs")).ToString();
        // N = 64 → 32 complex modes → two Vector512 registers per quantity, with a Vector256 and a scalar path.
        Assert.Contains("const int M = 32, HM = H * M;", src);
        Assert.Contains("var zr1 = global::System.Runtime.Intrinsics.Vector512.Create(modes.Slice(m0 + 16, 16));", src);
        Assert.DoesNotContain("var zr2 = global::System.Runtime.Intrinsics.Vector512", src);
        Assert.Contains("var zr3 = global::System.Runtime.Intrinsics.Vector256.Create(modes.Slice(m0 + 24, 8));", src);
        Assert.Contains("private const int H = 128;", src);
        Assert.Contains("private const int P_layers_3_mixer_log_dt = ", src);
        // N = 6 → 3 modes: no vector width divides, scalar only.
        string chr = run.GeneratedTrees.Single(t => t.FilePath.EndsWith("CharModel.g.cs")).ToString();
        Assert.Contains("private static void S4D_N6_Kernel", chr);
        Assert.DoesNotContain("Vector256.Create(modes.Slice(m0 + 0, 8))", chr.Substring(chr.IndexOf("private static void S4D_N6_Kernel")));
    }

    [Fact]
    public void AnUnrelatedEditLeavesEveryTrackedStepCached()
    {
        var compilation = GeneratorHarness.Compile(Models, "namespace Other; public class Unrelated { }");
        var driver = GeneratorHarness.Driver().RunGenerators(compilation);
        var edited = compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.Last(),
            Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree.ParseText("namespace Other; public class Unrelated { public int X; }", (Microsoft.CodeAnalysis.CSharp.CSharpParseOptions)compilation.SyntaxTrees.Last().Options, "Source1.cs"));
        var second = driver.RunGenerators(edited).GetRunResult().Results.Single();
        foreach (var step in new[] { SsmModelGenerator.ParseStep, SsmModelGenerator.PlanStep, SsmModelGenerator.EmitStep })
        {
            var outputs = second.TrackedSteps[step].SelectMany(s => s.Outputs).ToArray();
            Assert.NotEmpty(outputs);
            Assert.All(outputs, o => Assert.True(o.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{step}: {o.Reason}"));
        }
        Assert.All(second.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs),
            o => Assert.Equal(IncrementalStepRunReason.Cached, o.Reason));
    }

    [Fact]
    public void ChangingTheDeclarationRegeneratesTheModel()
    {
        var compilation = GeneratorHarness.Compile(Models);
        var driver = GeneratorHarness.Driver().RunGenerators(compilation);
        var edited = compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.First(),
            Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree.ParseText(Models.Replace("N = 64", "N = 32"), (Microsoft.CodeAnalysis.CSharp.CSharpParseOptions)compilation.SyntaxTrees.First().Options, "Source0.cs"));
        var result = driver.RunGenerators(edited).GetRunResult();
        var emit = result.Results.Single().TrackedSteps[SsmModelGenerator.EmitStep].SelectMany(s => s.Outputs).ToArray();
        Assert.Contains(emit, o => o.Reason == IncrementalStepRunReason.Modified);
        Assert.Contains("const int M = 16, HM = H * M;", result.GeneratedTrees.Single(t => t.FilePath.EndsWith("SeqClassifier.g.cs")).ToString());
    }

    [Fact]
    public void BrokenDeclarationsNeverCrashTheGenerator()
    {
        var (output, genDiags, run) = GeneratorHarness.Run("""
            using SsmGen;
            [SsmModel(Input = "x", DModel = 8 +, Output = 2)]
            [S4DLayer(N = UnknownConstant, Init = 3.5)]
            public partial class Broken { }
            [S4DLayer]
            [SsmModel(Input = 1)]
            public partial class Half { }
            """);
        Assert.DoesNotContain(genDiags, d => d.Id == "CS8785"); // "generator threw"
        Assert.All(run.Results, r => Assert.Null(r.Exception));
        Assert.Contains(genDiags, d => d.Id == "SSMG0006");
    }

    [Fact]
    public void RecordsAndKeywordNamesGenerateCompilableCode()
    {
        var (output, genDiags, run) = GeneratorHarness.Run("""
            using SsmGen;
            namespace @class.Models
            {
                [SsmModel(Input = 1, DModel = 4, Output = 2)]
                [S4DLayer(N = 4)]
                public partial record @int { }
            }
            """);
        Assert.Empty(genDiags);
        Assert.Equal(2, run.GeneratedTrees.Length); // {Model}.g.cs and {Model}.Cuda.g.cs
        var problems = output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToArray();
        Assert.True(problems.Length == 0, string.Join("\n", problems.Select(d => d.ToString())));
    }
}
