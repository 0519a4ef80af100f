using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace SsmGen.Generators.Model;

// Values the pipeline passes between steps: plain equatable records, never symbols or syntax, so an
// unrelated edit leaves every step cached.

/// <summary>One block as declared; each kind's record lives in its folder under Layers/ (enums kept as their integer values).</summary>
internal abstract record LayerSpec
{
    /// <summary>The block's tensors after its pre-norm: the kind's table, shared with the runtime.</summary>
    public abstract BlockTensors Tensors(long dModel);
}

/// <summary>A parsed, valid model declaration.</summary>
internal sealed record ModelSpec(
    string Namespace,
    string ClassName,
    string Keyword,
    string Accessibility,
    int Input,
    int Vocab,
    int DModel,
    int Output,
    int Pooling,
    EquatableArray<LayerSpec> Layers);

/// <summary>A diagnostic with its location kept as plain data.</summary>
internal sealed record DiagnosticInfo(string Id, string FilePath, TextSpan Span, LinePositionSpan LineSpan, EquatableArray<string> Args)
{
    public static DiagnosticInfo Create(DiagnosticDescriptor d, Location? location, params string[] args)
    {
        var loc = location ?? Location.None;
        return new DiagnosticInfo(d.Id, loc.SourceTree?.FilePath ?? "", loc.SourceSpan, loc.GetLineSpan().Span, EquatableArray.From(args));
    }

    public Diagnostic ToDiagnostic()
    {
        var loc = FilePath.Length == 0 ? Location.None : Location.Create(FilePath, Span, LineSpan);
        return Diagnostic.Create(Diagnostics.ById(Id), loc, System.Linq.Enumerable.ToArray(System.Linq.Enumerable.Cast<object>(Args.Items)));
    }
}

/// <summary>What parsing one declaration gives: a spec when valid, its diagnostics, and what the output step checks against.</summary>
internal sealed record ParseResult(ModelSpec? Spec, EquatableArray<DiagnosticInfo> Diagnostics, ModelContext? Context);

/// <summary>
/// A valid model's surroundings, kept apart from its spec so that editing the user's own members re-runs only the
/// last step: the members the class declares or inherits (as signatures) and where to report a clash with generated ones.
/// </summary>
internal sealed record ModelContext(string FullName, EquatableArray<string> UserMembers, SourceSpot Where);

/// <summary>A diagnostic location as plain values (a Location would hold the syntax tree).</summary>
internal sealed record SourceSpot(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
{
    public static SourceSpot Of(Location l) => new(l.SourceTree?.FilePath ?? "", l.SourceSpan, l.GetLineSpan().Span);
    public Location ToLocation() => FilePath.Length == 0 ? Location.None : Location.Create(FilePath, Span, LineSpan);
}

/// <summary>The names a model's generated files are known by.</summary>
internal static class Hints
{
    /// <summary>Namespace-qualified class name as written in C# ("Acme.@class.Model").</summary>
    public static string FullName(ModelSpec s) => (s.Namespace.Length == 0 ? "" : s.Namespace + ".") + s.ClassName;
}
