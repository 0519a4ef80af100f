using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace SsmGen.Generators.Tests;

/// <summary>
/// The incremental pipeline's contract: its values are plain data (no Roslyn symbol, syntax, tree or compilation, which
/// would pin old compilations in memory and defeat caching), and edits that do not change a declaration leave every
/// step after parsing cached — even in the model's own file.
/// </summary>
public class PipelineTests
{
    private const string Model = """
        using SsmGen;
        namespace App;
        [SsmModel(Input = 2, DModel = 8, Output = 3)]
        [S4DLayer(N = 4)] [MambaLayer(N = 4)] [RnnLayer(4)] [IdsLayer(2)] [AttentionLayer(2)]
        public partial class M { }
        """;

    private static readonly string[] Steps = [SsmModelGenerator.ParseStep, SsmModelGenerator.PlanStep, SsmModelGenerator.EmitStep];

    [Fact]
    public void NoPipelineValueHoldsARoslynObject()
    {
        var run = GeneratorHarness.Driver().RunGenerators(GeneratorHarness.Compile(Model)).GetRunResult().Results.Single();
        int inspected = 0;
        foreach (string step in Steps)
            foreach (var output in run.TrackedSteps[step].SelectMany(s => s.Outputs))
                inspected += Inspect(output.Value, step, new HashSet<object>(ReferenceEqualityComparer.Instance));
        Assert.True(inspected > 20, $"only {inspected} objects inspected");
    }

    /// <summary>Walks the object graph of a pipeline value; fails on a Roslyn type; returns the objects seen.</summary>
    private static int Inspect(object? value, string path, HashSet<object> seen)
    {
        if (value is null || value is string || value.GetType().IsPrimitive || value.GetType().IsEnum || !seen.Add(value)) return 0;
        var type = value.GetType();
        Assert.False(value is ISymbol or SyntaxNode or SyntaxTree or Compilation or SemanticModel or Location or AttributeData,
            $"{path} holds a {type.Name}, a Roslyn object");
        // Roslyn's plain value types (TextSpan, LinePositionSpan) are data; its classes are not.
        Assert.False(!type.IsValueType && (type.Assembly == typeof(Compilation).Assembly || type.Assembly == typeof(CSharpCompilation).Assembly),
            $"{path} holds a {type.FullName}, a Roslyn object");
        int count = 1;
        if (value is Array items) // other collections are walked through their fields (a default ImmutableArray cannot be enumerated)
        {
            int i = 0;
            foreach (object? item in items) count += Inspect(item, $"{path}[{i++}]", seen);
        }
        for (var t = type; t is not null && t != typeof(object); t = t.BaseType)
            foreach (var field in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
                count += Inspect(field.GetValue(value), $"{path}.{field.Name}", seen);
        return count;
    }

    [Theory]
    [InlineData("// a comment\n")]
    [InlineData("public class Unrelated { public int X; }\n")]
    public void AnEditInTheModelsOwnFileLeavesEveryStepAfterParsingCached(string addition)
    {
        var compilation = GeneratorHarness.Compile(Model);
        var driver = GeneratorHarness.Driver().RunGenerators(compilation);
        var tree = compilation.SyntaxTrees.Single();
        var edited = compilation.ReplaceSyntaxTree(tree, CSharpSyntaxTree.ParseText(Model + "\n" + addition, (CSharpParseOptions)tree.Options, tree.FilePath));
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();
        foreach (string step in Steps)
        {
            var outputs = result.TrackedSteps[step].SelectMany(s => s.Outputs).ToArray();
            Assert.NotEmpty(outputs);
            Assert.All(outputs, o => Assert.True(o.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{step}: {o.Reason}"));
        }
        Assert.All(result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs),
            o => Assert.True(o.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"output: {o.Reason}"));
    }
}
