using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using SsmGen.Generators.Emitters.Cuda;

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

        var valid = parsed.Where(static r => r.Spec is not null);
        var emitted = valid
            .Select(static (r, _) => TryPlan(r.Spec!))
            .WithTrackingName(PlanStep)
            .Select(static (p, _) => TryEmit(p))
            .WithTrackingName(EmitStep);
        var contexts = valid.Select(static (r, _) => r.Context!);

        context.RegisterSourceOutput(emitted.Collect().Combine(contexts.Collect()), static (spc, all) => AddSources(spc, all.Left, all.Right));

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

    private static PlannedModel TryPlan(ModelSpec spec)
    {
        try { return new PlannedModel(Hints.FullName(spec), Planner.Plan(spec), null); }
        catch (System.Exception e) { return new PlannedModel(Hints.FullName(spec), null, e.GetType().Name + ": " + e.Message); }
    }

    private static GeneratedFiles TryEmit(PlannedModel p)
    {
        if (p.Plan is null) return new GeneratedFiles(p.FullName, "", "", "", default, p.Error);
        try
        {
            string className = p.Plan.Spec.ClassName.TrimStart('@');
            var cpu = NameQualifier.Qualify(ModelEmitter.Emit(p.Plan));
            var gpu = NameQualifier.Qualify(CudaModelEmitter.Emit(p.Plan));
            var members = cpu.Members.Concat(gpu.Members).Distinct().OrderBy(m => m, System.StringComparer.Ordinal);
            return new GeneratedFiles(p.FullName, className, cpu.Code, gpu.Code, EquatableArray.From(members.ToArray()), null);
        }
        catch (System.Exception e) { return new GeneratedFiles(p.FullName, "", "", "", default, e.GetType().Name + ": " + e.Message); }
    }

    /// <summary>
    /// Adds every model's sources, once all are known: a model whose generated members would clash with its own
    /// (or its name) gets a diagnostic instead; hint names differ even where file systems ignore case (M and m).
    /// </summary>
    private static void AddSources(SourceProductionContext spc, ImmutableArray<GeneratedFiles> files, ImmutableArray<ModelContext> contexts)
    {
        var byName = new Dictionary<string, ModelContext>(System.StringComparer.Ordinal);
        foreach (var c in contexts) byName[c.FullName] = c;
        var hints = new HashSet<string>(System.StringComparer.OrdinalIgnoreCase);
        var done = new HashSet<string>(System.StringComparer.Ordinal);
        foreach (var f in files.OrderBy(f => f.FullName, System.StringComparer.Ordinal))
        {
            if (!done.Add(f.FullName) || !byName.TryGetValue(f.FullName, out var where)) continue;
            var location = where.Where.ToLocation();
            if (f.Error is not null)
            {
                spc.ReportDiagnostic(Diagnostic.Create(Diagnostics.InternalError, location, f.FullName, f.Error));
                continue;
            }
            var generatedNames = new HashSet<string>(f.Members.Select(NameQualifier.NameOf), System.StringComparer.Ordinal);
            if (generatedNames.Contains(f.ClassName))
            {
                spc.ReportDiagnostic(Diagnostic.Create(Diagnostics.NameClash, location, f.ClassName, f.ClassName));
                continue;
            }
            var clashes = where.UserMembers.Where(u => Clashes(u, f.Members, generatedNames)).ToArray();
            foreach (string clash in clashes) spc.ReportDiagnostic(Diagnostic.Create(Diagnostics.MemberClash, location, f.ClassName, clash));
            if (clashes.Length > 0) continue;

            string hint = f.FullName.Replace("@", "");
            for (int i = 2; !hints.Add(hint); i++) hint = f.FullName.Replace("@", "") + "_" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            spc.AddSource(hint + ".g.cs", f.Cpu);
            spc.AddSource(hint + ".Cuda.g.cs", f.Gpu);
        }
    }

    // Methods clash when their parameter types match (overloads are fine); any other member clashes by name.
    private static bool Clashes(string user, EquatableArray<string> generated, HashSet<string> generatedNames)
    {
        bool userIsMethod = user.IndexOf('(') >= 0;
        string name = NameQualifier.NameOf(user);
        if (!generatedNames.Contains(name)) return false;
        return !userIsMethod || generated.Any(g => g == user || (g.IndexOf('(') < 0 && NameQualifier.NameOf(g) == name));
    }

    /// <summary>A model's plan, or why planning failed (a bug: the parser admitted it).</summary>
    private sealed record PlannedModel(string FullName, ModelPlan? Plan, string? Error);

    /// <summary>The CPU rendering ({Model}.g.cs) and the GPU rendering ({Model}.Cuda.g.cs) of one plan, and the members they declare.</summary>
    private sealed record GeneratedFiles(string FullName, string ClassName, string Cpu, string Gpu, EquatableArray<string> Members, string? Error);
}
