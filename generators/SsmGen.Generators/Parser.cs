using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using SsmGen.Generators.Emitters;
using SsmGen.Generators.Model;

namespace SsmGen.Generators;

/// <summary>Symbols → <see cref="ModelSpec"/> plus diagnostics. Never throws on user input.</summary>
internal static class Parser
{
    public const string ModelAttribute = "SsmGen.SsmModelAttribute";
    public const string S4DAttribute = "SsmGen.S4DLayerAttribute";
    public const string MambaAttribute = "SsmGen.MambaLayerAttribute";
    public const string RnnAttribute = "SsmGen.RnnLayerAttribute";
    public const string IdsAttribute = "SsmGen.IdsLayerAttribute";
    public const string AttentionAttribute = "SsmGen.AttentionLayerAttribute";
    /// <summary>Every layer attribute; the first one a class carries reports a missing [SsmModel].</summary>
    public static readonly string[] LayerAttributeNames = { S4DAttribute, MambaAttribute, RnnAttribute, IdsAttribute, AttentionAttribute };

    // Defaults of the attribute properties; a test checks them against the runtime attribute.
    private const int DefaultN = 64, DefaultRepeat = 1, DefaultMambaN = 16, DefaultExpand = 2, DefaultConvWidth = 4, DefaultMambaNorm = 1;
    private const double DefaultDtMin = 1e-3, DefaultDtMax = 1e-1;
    private const int InitCount = 5, DiscretizationCount = 2, PoolingCount = 3, NormCount = 2;
    // Limits: the generated code keeps N/2 modes in registers and offsets in int.
    private const int MaxN = 512, MaxWidth = 1 << 16, MaxRepeat = 1024, MaxLayers = 1024;
    // The Mamba scan keeps N state registers per 16 channels; the conv keeps ConvWidth taps.
    private const int MaxMambaN = 64, MaxExpand = 16, MaxConvWidth = 64, MaxIdsN = 256, MaxMlpRatio = 64, NonlinearityCount = 2;
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
            if (part.ParameterList is not null)
                diags.Add(DiagnosticInfo.Create(Diagnostics.PrimaryConstructor, part.Identifier.GetLocation(), name));
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
        long count = (vocab > 0 ? (long)vocab * dModel : (long)dModel * input + dModel) + 2L * dModel + (long)output * dModel + output;
        foreach (var attr in LayerAttributes(symbol))
        {
            ct.ThrowIfCancellationRequested();
            var at = attr.ApplicationSyntaxReference?.GetSyntax(ct).GetLocation() ?? where;
            var a = Named(attr);
            string fullName = attr.AttributeClass?.ToDisplayString() ?? "";
            string kind = fullName.Substring("SsmGen.".Length, fullName.Length - "SsmGen.".Length - "Attribute".Length);
            // A size given positionally ([RnnLayer(64)], [IdsLayer(16)], [AttentionLayer(4)]) counts like the named property.
            // (the property, when also named, is applied after the constructor and wins, as at run time)
            string positionalKey = fullName == RnnAttribute ? "Hidden" : fullName == IdsAttribute ? "N" : "Heads";
            if (attr.ConstructorArguments.Length == 1 && attr.ConstructorArguments[0].Value is int && !a.ContainsKey(positionalKey))
                a[positionalKey] = attr.ConstructorArguments[0];
            int repeat = Int(a, "Repeat", DefaultRepeat);
            double dtMin = Double(a, "DtMin", DefaultDtMin), dtMax = Double(a, "DtMax", DefaultDtMax);
            int before = diags.Count;
            if (repeat < 1) diags.Add(DiagnosticInfo.Create(Diagnostics.BadRepeat, at, kind, Text(repeat)));
            if (repeat > MaxRepeat) diags.Add(DiagnosticInfo.Create(Diagnostics.TooLarge, at, "Repeat", Text(repeat), Text(MaxRepeat)));
            if (!(dtMin >= MinDt && dtMin <= dtMax && dtMax <= MaxDt)) diags.Add(DiagnosticInfo.Create(Diagnostics.BadDtRange, at, kind, Text(dtMin), Text(dtMax), Text(MinDt), Text(MaxDt)));
            LayerSpec? layer = fullName switch
            {
                MambaAttribute => ParseMamba(a, at, dModel, dtMin, dtMax, diags, ref count, repeat),
                RnnAttribute => ParseRnn(a, at, dModel, diags, ref count, repeat),
                IdsAttribute => ParseIds(a, at, dModel, diags, ref count, repeat),
                AttentionAttribute => ParseAttention(a, at, dModel, diags, ref count, repeat),
                _ => ParseS4D(a, at, dModel, dtMin, dtMax, diags, ref count, repeat),
            };
            if (diags.Count != before || layer is null) continue;
            for (int r = 0; r < repeat; r++) layers.Add(layer);
        }
        if (!LayerAttributes(symbol).Any()) diags.Add(DiagnosticInfo.Create(Diagnostics.NoLayers, where, name));
        if (layers.Count > MaxLayers) diags.Add(DiagnosticInfo.Create(Diagnostics.TooLarge, where, "the number of layers", Text(layers.Count), Text(MaxLayers)));
        else if (diags.Count == 0 && count > MaxParameters)
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

    private static S4DLayerSpec? ParseS4D(Dictionary<string, TypedConstant> a, Location at, long h, double dtMin, double dtMax, List<DiagnosticInfo> diags, ref long count, int repeat)
    {
        int n = Int(a, "N", DefaultN), init = Int(a, "Init", 0), disc = Int(a, "Discretization", 0);
        double dropout = Double(a, "Dropout", 0);
        bool trainB = a.TryGetValue("TrainB", out var tb) && tb.Value is true;
        if (n <= 0 || n % 2 != 0) diags.Add(DiagnosticInfo.Create(Diagnostics.BadStateSize, at, Text(n)));
        if (init < 0 || init >= InitCount) diags.Add(DiagnosticInfo.Create(Diagnostics.UnknownInit, at, Text(init)));
        if (disc < 0 || disc >= DiscretizationCount) diags.Add(DiagnosticInfo.Create(Diagnostics.UnknownDiscretization, at, Text(disc)));
        if (!(dropout >= 0 && dropout < 1)) diags.Add(DiagnosticInfo.Create(Diagnostics.BadDropout, at, "S4DLayer", Text(dropout)));
        if (n > MaxN) diags.Add(DiagnosticInfo.Create(Diagnostics.TooLarge, at, "N", Text(n), Text(MaxN)));
        // norm, log Δ, A (re, im), B, C, D, output linear (2H·H + 2H), in long arithmetic before int offsets exist
        count += System.Math.Max(1, repeat) * (2 * h + h + h * System.Math.Max(n, 0) + (trainB ? h * n : 0) + h * n + h + 2 * h * h + 2 * h);
        return new S4DLayerSpec(n, init, disc, trainB, dropout, dtMin, dtMax);
    }

    private static MambaLayerSpec? ParseMamba(Dictionary<string, TypedConstant> a, Location at, int dModel, double dtMin, double dtMax, List<DiagnosticInfo> diags, ref long count, int repeat)
    {
        int n = Int(a, "N", DefaultMambaN), expand = Int(a, "Expand", DefaultExpand), width = Int(a, "ConvWidth", DefaultConvWidth);
        int rank = Int(a, "DtRank", 0), norm = Int(a, "Norm", DefaultMambaNorm);
        foreach (var (key, value) in new[] { ("N", n), ("Expand", expand), ("ConvWidth", width) })
            if (value <= 0) diags.Add(DiagnosticInfo.Create(Diagnostics.NonPositiveSize, at, "MambaLayer", key, Text(value)));
        if (rank < 0) diags.Add(DiagnosticInfo.Create(Diagnostics.NonPositiveSize, at, "MambaLayer", "DtRank (or 0 for auto)", Text(rank)));
        if (norm < 0 || norm >= NormCount) diags.Add(DiagnosticInfo.Create(Diagnostics.UnknownNorm, at, "MambaLayer", Text(norm)));
        foreach (var (key, value, max) in new[] { ("N", n, MaxMambaN), ("Expand", expand, MaxExpand), ("ConvWidth", width, MaxConvWidth), ("DtRank", rank, MaxWidth) })
            if (value > max) diags.Add(DiagnosticInfo.Create(Diagnostics.TooLarge, at, key, Text(value), Text(max)));
        if (rank == 0) rank = (dModel + 15) / 16;
        long h = dModel, e = (long)System.Math.Max(expand, 0) * h;
        // norm, in_proj, conv (weight, bias), x_proj, dt_proj (weight, bias), A_log, D, out_proj
        count += System.Math.Max(1, repeat) * (2 * h + 2 * e * h + e * System.Math.Max(width, 0) + e + (rank + 2L * System.Math.Max(n, 0)) * e + e * rank + e + e * System.Math.Max(n, 0) + e + h * e);
        return new MambaLayerSpec(n, expand, width, rank, norm, dtMin, dtMax);
    }

    private static RnnLayerSpec ParseRnn(Dictionary<string, TypedConstant> a, Location at, int dModel, List<DiagnosticInfo> diags, ref long count, int repeat)
    {
        int hidden = Int(a, "Hidden", 0), nonlinearity = Int(a, "Nonlinearity", 0);
        if (hidden < 0) diags.Add(DiagnosticInfo.Create(Diagnostics.NonPositiveSize, at, "RnnLayer", "Hidden (or 0 for DModel)", Text(hidden)));
        if (hidden > MaxWidth) diags.Add(DiagnosticInfo.Create(Diagnostics.TooLarge, at, "Hidden", Text(hidden), Text(MaxWidth)));
        if (nonlinearity < 0 || nonlinearity >= NonlinearityCount) diags.Add(DiagnosticInfo.Create(Diagnostics.UnknownNonlinearity, at, Text(nonlinearity)));
        if (hidden == 0) hidden = dModel;
        long h = dModel, hd = System.Math.Max(hidden, 0);
        // norm, W_ih, W_hh, two biases, out_proj (weight, bias)
        count += System.Math.Max(1, repeat) * (2 * h + hd * h + hd * hd + 2 * hd + h * hd + h);
        return new RnnLayerSpec(hidden, nonlinearity);
    }

    private static IdsLayerSpec ParseIds(Dictionary<string, TypedConstant> a, Location at, int dModel, List<DiagnosticInfo> diags, ref long count, int repeat)
    {
        int n = Int(a, "N", 16);
        if (n <= 0) diags.Add(DiagnosticInfo.Create(Diagnostics.NonPositiveSize, at, "IdsLayer", "N", Text(n)));
        if (n > MaxIdsN) diags.Add(DiagnosticInfo.Create(Diagnostics.TooLarge, at, "N", Text(n), Text(MaxIdsN)));
        long h = dModel, nn = System.Math.Max(n, 0);
        // norm, A (weight, bias), B, C (weight, bias)
        count += System.Math.Max(1, repeat) * (2 * h + nn * nn * h + nn * nn + nn * h + h * nn + h);
        return new IdsLayerSpec(n);
    }

    private static AttentionLayerSpec ParseAttention(Dictionary<string, TypedConstant> a, Location at, int dModel, List<DiagnosticInfo> diags, ref long count, int repeat)
    {
        int heads = Int(a, "Heads", 4), ratio = Int(a, "MlpRatio", 4);
        if (heads <= 0) diags.Add(DiagnosticInfo.Create(Diagnostics.NonPositiveSize, at, "AttentionLayer", "Heads", Text(heads)));
        else if (dModel > 0 && (dModel % heads != 0 || dModel / heads % 2 != 0))
            diags.Add(DiagnosticInfo.Create(Diagnostics.BadHeads, at, Text(heads), Text(dModel)));
        if (ratio <= 0) diags.Add(DiagnosticInfo.Create(Diagnostics.NonPositiveSize, at, "AttentionLayer", "MlpRatio", Text(ratio)));
        if (ratio > MaxMlpRatio) diags.Add(DiagnosticInfo.Create(Diagnostics.TooLarge, at, "MlpRatio", Text(ratio), Text(MaxMlpRatio)));
        long h = dModel, m = System.Math.Max(ratio, 0) * h;
        // two norms, in_proj (3H·H + 3H), out_proj (H·H + H), fc1 (m·H + m), fc2 (H·m + H)
        count += System.Math.Max(1, repeat) * (4 * h + 3 * h * h + 3 * h + h * h + h + 2 * m * h + m + h);
        return new AttentionLayerSpec(heads, ratio);
    }

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

    // Values of the wrong type exist only in code the compiler already rejects; they read as the default.
    private static int Int(Dictionary<string, TypedConstant> a, string key, int fallback) =>
        a.TryGetValue(key, out var v) && v.Value is int i ? i : fallback;

    private static double Double(Dictionary<string, TypedConstant> a, string key, double fallback) =>
        a.TryGetValue(key, out var v) ? v.Value switch { double d => d, float f => f, int i => i, _ => fallback } : fallback;

    private static string Text(int v) => v.ToString(CultureInfo.InvariantCulture);
    private static string Text(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
