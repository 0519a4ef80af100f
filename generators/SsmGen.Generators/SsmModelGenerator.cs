using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using SsmGen.Generators.Emitters;
using SsmGen.Generators.Emitters.Cuda;
using SsmGen.Generators.Model;

namespace SsmGen.Generators;

/// <summary>
/// Turns a <c>[SsmModel]</c> partial class into specialized forward, backward and step code.
/// Pipeline: Parse (symbols → ModelSpec) → Plan (→ ModelPlan) → Emit (→ source text); each step's
/// value is equatable, so unrelated edits leave the steps cached.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class SsmModelGenerator : IIncrementalGenerator
{
    /// <summary>Tracking names of the pipeline steps (tests assert on their caching).</summary>
    public const string ParseStep = "Parse", PlanStep = "Plan", EmitStep = "Emit", OrphanStep = "OrphanLayers";

    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var parsed = context.SyntaxProvider
            .ForAttributeWithMetadataName(Parser.ModelAttribute,
                static (node, _) => node is TypeDeclarationSyntax,
                Parser.Parse)
            .WithTrackingName(ParseStep);

        context.RegisterSourceOutput(parsed, Report);

        var emitted = parsed
            .Where(static r => r.Spec is not null)
            .Select(static (r, _) => Planner.Plan(r.Spec!))
            .WithTrackingName(PlanStep)
            .Select(static (plan, _) => new GeneratedFiles(Hint(plan.Spec), ModelEmitter.Emit(plan), CudaModelEmitter.Emit(plan)))
            .WithTrackingName(EmitStep);

        context.RegisterSourceOutput(emitted, static (spc, f) =>
        {
            spc.AddSource(f.HintName + ".g.cs", f.Cpu);
            spc.AddSource(f.HintName + ".Cuda.g.cs", f.Gpu);
        });

        foreach (var layerAttribute in Parser.LayerAttributeNames)
        {
            var orphans = context.SyntaxProvider
                .ForAttributeWithMetadataName(layerAttribute,
                    static (node, _) => node is TypeDeclarationSyntax,
                    Parser.ParseOrphanLayers)
                .WithTrackingName(OrphanStep);
            context.RegisterSourceOutput(orphans, Report);
        }
    }

    private static void Report(SourceProductionContext spc, ParseResult r)
    {
        foreach (var d in r.Diagnostics) spc.ReportDiagnostic(d.ToDiagnostic());
    }

    private static string Hint(ModelSpec s) => ((s.Namespace.Length == 0 ? "" : s.Namespace + ".") + s.ClassName).Replace("@", "");

    /// <summary>The CPU rendering ({Model}.g.cs) and the GPU rendering ({Model}.Cuda.g.cs) of one plan.</summary>
    private sealed record GeneratedFiles(string HintName, string Cpu, string Gpu);
}
