using System.Collections.Immutable;
using System.Globalization;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using static SsmGen.Generators.Layers.LayerArgs;

namespace SsmGen.Generators;

/// <summary>Symbols → <see cref="ModelSpec"/> plus diagnostics. Never throws on user input.</summary>
internal static class Parser
{
    public const string ModelAttribute = "SsmGen.SsmModelAttribute";
    /// <summary>Every layer attribute; the first one a class carries reports a missing [SsmModel].</summary>
    public static readonly string[] LayerAttributeNames = LayerKinds.Attributes;

    // Defaults of the attribute properties every kind shares; a test checks them against the runtime attribute.
    private const int DefaultRepeat = 1;
    private const double DefaultDtMin = 1e-3, DefaultDtMax = 1e-1;
    private const int PoolingCount = 3;
    // Limits: offsets are int.
    private const int MaxWidth = 1 << 16, MaxRepeat = 1024, MaxLayers = 1024;
    private const long MaxParameters = int.MaxValue / 4;
    // Δ beyond these overflows or underflows the float discretization (Δ·A, Δ·B·x) of either kind.
    internal const double MinDt = 1e-20, MaxDt = 1e4;

    public static ParseResult Parse(GeneratorAttributeSyntaxContext ctx, CancellationToken ct)
    {
        try
        {
            return ParseModel(ctx, ct);
        }
        catch (System.Exception e) when (e is not System.OperationCanceledException)
        {
            // A bug here must cost one diagnostic, never the whole compilation's generated code (CS8785).
            var where = ((TypeDeclarationSyntax)ctx.TargetNode).Identifier.GetLocation();
            return new ParseResult(null, EquatableArray.From(new[] { DiagnosticInfo.Create(Diagnostics.InternalError, where, ctx.TargetSymbol.Name, e.GetType().Name + ": " + e.Message) }), null);
        }
    }

    private static ParseResult ParseModel(GeneratorAttributeSyntaxContext ctx, CancellationToken ct)
    {
        var diags = new List<DiagnosticInfo>();
        var symbol = (INamedTypeSymbol)ctx.TargetSymbol;
        var node = (TypeDeclarationSyntax)ctx.TargetNode;
        var where = node.Identifier.GetLocation();
        string name = symbol.Name;

        // [SsmModel] on several partial parts: the compiler reports the duplicate (CS0579); the first part speaks for the class.
        if (!IsFirstModelAttribute(symbol, ctx.Attributes[0])) return new ParseResult(null, default, null);
        var runtime = ctx.SemanticModel.Compilation.GetTypeByMetadataName("SsmGen.ISsmModel");
        if (runtime is null || !SymbolEqualityComparer.Default.Equals(runtime.ContainingAssembly, ctx.Attributes[0].AttributeClass?.ContainingAssembly))
            return Fail(Diagnostics.NotTheRuntime, where, name);
        if (symbol.TypeKind != TypeKind.Class || symbol.IsStatic)
            return Fail(Diagnostics.NotAClass, where, name);
        var version = ((CSharpParseOptions)node.SyntaxTree.Options).LanguageVersion;
        if (version < LanguageVersion.CSharp13)
            diags.Add(DiagnosticInfo.Create(Diagnostics.LanguageVersionTooLow, where, name, version.ToDisplayString()));
        foreach (var part in symbol.DeclaringSyntaxReferences.Select(r => r.GetSyntax(ct)).OfType<TypeDeclarationSyntax>())
        {
            if (part.ParameterList is not null)
                diags.Add(DiagnosticInfo.Create(Diagnostics.PrimaryConstructor, part.Identifier.GetLocation(), name));
            // A constructor of the user's that does not reach the generated one leaves every buffer null.
            foreach (var ctor in part.Members.OfType<ConstructorDeclarationSyntax>())
                if (!ctor.Modifiers.Any(SyntaxKind.StaticKeyword) && ctor.Initializer?.Kind() != SyntaxKind.ThisConstructorInitializer)
                    diags.Add(DiagnosticInfo.Create(Diagnostics.UnchainedConstructor, ctor.Identifier.GetLocation(), name));
        }
        // (A global type named SsmGen would hide the attribute itself: the user's code cannot compile then.)
        if (!ctx.SemanticModel.Compilation.GlobalNamespace.GetTypeMembers("System").IsEmpty)
            diags.Add(DiagnosticInfo.Create(Diagnostics.RootNamespaceHidden, where, name, "System"));
        if (ctx.SemanticModel.LookupNamespacesAndTypes(node.Identifier.SpanStart, name: "var").Length > 0)
            diags.Add(DiagnosticInfo.Create(Diagnostics.VarIsAType, where, name));
        if (BaseTypeProblem(symbol, runtime) is string problem)
            diags.Add(DiagnosticInfo.Create(Diagnostics.UnsupportedBase, where, name, symbol.BaseType!.ToDisplayString(), problem));
        if (!node.Modifiers.Any(SyntaxKind.PartialKeyword))
            diags.Add(DiagnosticInfo.Create(Diagnostics.NotPartial, where, name));
        if (symbol.ContainingType is not null)
            diags.Add(DiagnosticInfo.Create(Diagnostics.GenericOrNested, where, name, symbol.ContainingType.Name));
        else if (symbol.IsGenericType)
            diags.Add(DiagnosticInfo.Create(Diagnostics.GenericOrNested, where, name, "its type parameters"));
        if (node.Modifiers.Any(SyntaxKind.FileKeyword))
            diags.Add(DiagnosticInfo.Create(Diagnostics.FileLocal, where, name));

        var model = ctx.Attributes[0];
        var modelWhere = model.ApplicationSyntaxReference?.GetSyntax(ct).GetLocation() ?? where;
        var args = Named(model);
        int input = Int(args, "Input", 0), vocab = Int(args, "Vocab", 0);
        int dModel = Int(args, "DModel", 0), output = Int(args, "Output", 0), pooling = Int(args, "Pooling", 0);
        if (input < 0) diags.Add(DiagnosticInfo.Create(Diagnostics.NonPositiveSize, modelWhere, "SsmModel", "Input", Text(input)));
        if (vocab < 0) diags.Add(DiagnosticInfo.Create(Diagnostics.NonPositiveSize, modelWhere, "SsmModel", "Vocab", Text(vocab)));
        if (input > 0 && vocab > 0) diags.Add(DiagnosticInfo.Create(Diagnostics.InputOrVocab, modelWhere, "both Input and Vocab"));
        if (input == 0 && vocab == 0) diags.Add(DiagnosticInfo.Create(Diagnostics.InputOrVocab, modelWhere, "neither Input nor Vocab"));
        if (dModel <= 0) diags.Add(DiagnosticInfo.Create(Diagnostics.NonPositiveSize, modelWhere, "SsmModel", "DModel", Text(dModel)));
        if (output <= 0) diags.Add(DiagnosticInfo.Create(Diagnostics.NonPositiveSize, modelWhere, "SsmModel", "Output", Text(output)));
        if (pooling < 0 || pooling >= PoolingCount) diags.Add(DiagnosticInfo.Create(Diagnostics.UnknownPooling, modelWhere, Text(pooling)));
        foreach (var (key, value, max) in new[] { ("Input", input, 1 << 20), ("Vocab", vocab, 1 << 24), ("DModel", dModel, MaxWidth), ("Output", output, 1 << 24) })
            if (value > max) diags.Add(DiagnosticInfo.Create(Diagnostics.TooLarge, modelWhere, key, Text(value), Text(max)));

        var layers = new List<LayerSpec>();
        foreach (var attr in LayerAttributes(symbol))
        {
            ct.ThrowIfCancellationRequested();
            var at = attr.ApplicationSyntaxReference?.GetSyntax(ct).GetLocation() ?? where;
            var a = Named(attr);
            string fullName = attr.AttributeClass?.ToDisplayString() ?? "";
            string kind = fullName.Substring("SsmGen.".Length, fullName.Length - "SsmGen.".Length - "Attribute".Length);
            var layerKind = LayerKinds.ByAttribute(fullName)!; // LayerAttributes yields only registered attributes
            // A size given positionally ([RnnLayer(64)], [IdsLayer(16)], [AttentionLayer(4)]) counts like the named property.
            // (the property, when also named, is applied after the constructor and wins, as at run time)
            if (layerKind.PositionalProperty is string positional && attr.ConstructorArguments.Length == 1 && attr.ConstructorArguments[0].Value is int && !a.ContainsKey(positional))
                a[positional] = attr.ConstructorArguments[0];
            int repeat = Int(a, "Repeat", DefaultRepeat);
            double dtMin = Double(a, "DtMin", DefaultDtMin), dtMax = Double(a, "DtMax", DefaultDtMax);
            int before = diags.Count;
            if (repeat < 1) diags.Add(DiagnosticInfo.Create(Diagnostics.BadRepeat, at, kind, Text(repeat)));
            if (repeat > MaxRepeat) diags.Add(DiagnosticInfo.Create(Diagnostics.TooLarge, at, "Repeat", Text(repeat), Text(MaxRepeat)));
            if (!(dtMin >= MinDt && dtMin <= dtMax && dtMax <= MaxDt)) diags.Add(DiagnosticInfo.Create(Diagnostics.BadDtRange, at, kind, Text(dtMin), Text(dtMax), Text(MinDt), Text(MaxDt)));
            var layer = layerKind.Parse(new LayerArgs(a, at, diags, dModel, dtMin, dtMax));
            if (diags.Count != before || layer is null) continue;
            for (int r = 0; r < repeat; r++) layers.Add(layer);
        }
        if (!LayerAttributes(symbol).Any()) diags.Add(DiagnosticInfo.Create(Diagnostics.NoLayers, where, name));
        if (layers.Count > MaxLayers) diags.Add(DiagnosticInfo.Create(Diagnostics.TooLarge, where, "the number of layers", Text(layers.Count), Text(MaxLayers)));
        else if (diags.Count == 0 && ParameterCount(input, vocab, dModel, output, layers) is var count && count > MaxParameters)
            diags.Add(DiagnosticInfo.Create(Diagnostics.TooLarge, where, "the parameter count", count.ToString(CultureInfo.InvariantCulture), MaxParameters.ToString(CultureInfo.InvariantCulture)));

        if (diags.Count > 0) return new ParseResult(null, EquatableArray.From(diags), null);
        string ns = symbol.ContainingNamespace.IsGlobalNamespace ? "" : string.Join(".", symbol.ContainingNamespace.ToDisplayString().Split('.').Select(Escape));
        string access = symbol.DeclaredAccessibility == Accessibility.Public ? "public" : "internal";
        var spec = new ModelSpec(ns, Escape(name), symbol.IsRecord ? "record class" : "class", access, input, vocab, dModel, output, pooling, EquatableArray.From(layers));
        return new ParseResult(spec, default, new ModelContext(Hints.FullName(spec), DeclaredMembers(symbol), SourceSpot.Of(where)));

        ParseResult Fail(DiagnosticDescriptor d, Location l, params string[] a) =>
            new(null, EquatableArray.From(new[] { DiagnosticInfo.Create(d, l, a) }), null);
    }

    private static bool IsFirstModelAttribute(INamedTypeSymbol symbol, AttributeData here)
    {
        var first = symbol.GetAttributes()
            .Where(a => a.AttributeClass?.ToDisplayString() == ModelAttribute && a.ApplicationSyntaxReference is not null)
            .OrderBy(a => a.ApplicationSyntaxReference!.SyntaxTree.FilePath, System.StringComparer.Ordinal)
            .ThenBy(a => a.ApplicationSyntaxReference!.Span.Start)
            .FirstOrDefault();
        return first is null || here.ApplicationSyntaxReference is not { } r
            || (r.SyntaxTree == first.ApplicationSyntaxReference!.SyntaxTree && r.Span == first.ApplicationSyntaxReference.Span);
    }

    /// <summary>Why the model cannot derive from its base class, or null when it can.</summary>
    private static string? BaseTypeProblem(INamedTypeSymbol symbol, INamedTypeSymbol runtime)
    {
        var b = symbol.BaseType;
        if (b is null || b.SpecialType == SpecialType.System_Object) return null;
        if (b.AllInterfaces.Contains(runtime, SymbolEqualityComparer.Default) || b.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == ModelAttribute))
            return "is a model itself; compose models as fields instead";
        bool hasParameterless = b.InstanceConstructors.Any(c => c.DeclaredAccessibility is not Accessibility.Private && c.Parameters.All(p => p.IsOptional || p.IsParams));
        return hasParameterless ? null : "has no accessible parameterless constructor for the generated constructor to call";
    }

    /// <summary>Members the user's class declares or inherits (not from object), as <see cref="NameQualifier.Signature"/> strings.</summary>
    private static EquatableArray<string> DeclaredMembers(INamedTypeSymbol symbol)
    {
        var names = new SortedSet<string>(System.StringComparer.Ordinal);
        foreach (var m in symbol.GetMembers())
            if (!m.IsImplicitlyDeclared && m is not INamedTypeSymbol { IsImplicitlyDeclared: true }) names.Add(NameQualifier.Signature(m));
        foreach (var m in symbol.GetTypeMembers()) names.Add(m.Name);
        for (var b = symbol.BaseType; b is not null && b.SpecialType != SpecialType.System_Object; b = b.BaseType)
            foreach (var m in b.GetMembers())
                if (m.DeclaredAccessibility is not Accessibility.Private && !m.IsImplicitlyDeclared && m is not IMethodSymbol { MethodKind: MethodKind.Constructor or MethodKind.StaticConstructor })
                    names.Add(NameQualifier.Signature(m));
        return EquatableArray.From(names.ToArray());
    }

    /// <summary>The model's parameter count from the kinds' tensor tables, in long arithmetic before int offsets exist.</summary>
    private static long ParameterCount(int input, int vocab, int dModel, int output, List<LayerSpec> layers) =>
        TensorTable.Build(input, vocab, dModel, output, layers.Select(l => l.Tensors(dModel)).ToArray()).Sum(e => e.Tensor.Length);

    /// <summary>Layer attributes ([S4DLayer], [MambaLayer], [RnnLayer], [IdsLayer], [AttentionLayer]) in source order (file, then position), so the stack order is stable.</summary>
    public static IEnumerable<AttributeData> LayerAttributes(INamedTypeSymbol symbol) =>
        symbol.GetAttributes()
            .Where(a => System.Array.IndexOf(LayerAttributeNames, a.AttributeClass?.ToDisplayString()) >= 0)
            .OrderBy(a => a.ApplicationSyntaxReference?.SyntaxTree.FilePath, System.StringComparer.Ordinal)
            .ThenBy(a => a.ApplicationSyntaxReference?.Span.Start ?? 0);

    /// <summary>For layer attributes on a class without [SsmModel]: the diagnostic (once per class), else nothing.</summary>
    public static ParseResult ParseOrphanLayers(GeneratorAttributeSyntaxContext ctx, CancellationToken ct)
    {
        try
        {
            return Orphans(ctx);
        }
        catch (System.Exception e) when (e is not System.OperationCanceledException)
        {
            var where = ((TypeDeclarationSyntax)ctx.TargetNode).Identifier.GetLocation();
            return new ParseResult(null, EquatableArray.From(new[] { DiagnosticInfo.Create(Diagnostics.InternalError, where, ctx.TargetSymbol.Name, e.GetType().Name + ": " + e.Message) }), null);
        }
    }

    private static ParseResult Orphans(GeneratorAttributeSyntaxContext ctx)
    {
        var symbol = (INamedTypeSymbol)ctx.TargetSymbol;
        bool hasModel = symbol.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == ModelAttribute);
        // A class with several layer kinds is reported once, by the pipeline of the first kind in LayerAttributeNames.
        string here = ctx.Attributes[0].AttributeClass?.ToDisplayString() ?? "";
        var kinds = symbol.GetAttributes().Select(a => a.AttributeClass?.ToDisplayString()).ToList();
        bool reportedElsewhere = LayerAttributeNames.TakeWhile(n => n != here).Any(kinds.Contains);
        if (hasModel || reportedElsewhere) return new ParseResult(null, default, null);
        var where = ((TypeDeclarationSyntax)ctx.TargetNode).Identifier.GetLocation();
        return new ParseResult(null, EquatableArray.From(new[] { DiagnosticInfo.Create(Diagnostics.LayerWithoutModel, where, symbol.Name) }), null);
    }

    /// <summary>An identifier as C# source: keywords and contextual keywords (var, record, …) get an '@'.</summary>
    private static string Escape(string id) =>
        SyntaxFacts.GetKeywordKind(id) != SyntaxKind.None || SyntaxFacts.GetContextualKeywordKind(id) != SyntaxKind.None ? "@" + id : id;

    private static Dictionary<string, TypedConstant> Named(AttributeData a)
    {
        var d = new Dictionary<string, TypedConstant>();
        foreach (var kv in a.NamedArguments) d[kv.Key] = kv.Value;
        return d;
    }
}
