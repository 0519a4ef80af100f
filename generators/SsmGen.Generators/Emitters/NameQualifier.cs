using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace SsmGen.Generators.Emitters;

/// <summary>
/// Makes emitted code independent of the user's names. The emitters write types by their short names, which read
/// like hand-written code; but the generated class lives in the user's namespace, where a type or namespace of the
/// same name (a user's own <c>Complex</c>, <c>namespace Acme.System</c>) wins over any using directive. So the
/// emitted text is parsed, its using directives rooted at <c>global::</c>, and every reference to a known type rewritten as
/// <c>global::Namespace.Type</c> — by syntax, so declarations, member names and comments keep their text.
/// </summary>
internal static class NameQualifier
{
    // Every type the emitters name, by namespace: the shells' here, each layer kind's from the kind. A generated source
    // that names a type missing from both fails to compile in the tests (they build the output with no usings in scope).
    private static readonly Dictionary<string, string> Namespaces = Build(Layers.LayerKinds.All.SelectMany(k => k.RuntimeTypes).Concat(new[]
    {
        ("System", "Math MathF Array Span ReadOnlySpan Memory IDisposable GC BitConverter Buffer MemoryExtensions ArgumentException ArgumentNullException ArgumentOutOfRangeException InvalidOperationException ObjectDisposedException NotSupportedException IndexOutOfRangeException OverflowException FormatException Exception Func Action Int32 Single Double Half Environment MidpointRounding Enum"),
        ("System.Collections.Generic", "IReadOnlyList IList List Dictionary IEnumerable"),
        ("System.Numerics", "Complex Vector BitOperations"),
        ("System.Numerics.Tensors", "TensorPrimitives"),
        ("System.Runtime.Intrinsics", "Vector128 Vector256 Vector512"),
        ("System.Runtime.Intrinsics.X86", "Avx Avx2 Fma Avx512F"),
        ("System.Runtime.CompilerServices", "MethodImpl MethodImplOptions Unsafe SkipLocalsInit"),
        ("System.Runtime.InteropServices", "MemoryMarshal CollectionsMarshal"),
        ("System.Threading", "Interlocked Volatile Thread"),
        ("System.Threading.Tasks", "Parallel"),
        ("SsmGen", "Initialization OptimizerGroup Pooling Rng NormKind SsmState ParameterInfo ModelConfig LayerConfig ISsmModel ModelUse WeightFormat"),
        ("SsmGen.Numerics", "BlockKernels Stability Gemm FastMath Workspace CompactWeights AlignedBuffer ChannelParallel"),
        ("SsmGen.Cuda", "GpuModelRunner ComputeDevice Dim3"),
        ("SsmGen.Distributed", "SequenceParallel"),
        ("SsmGen.Training", "IDeviceTrainingStep StepResult AdamW"),
    }));

    private static Dictionary<string, string> Build(IEnumerable<(string Namespace, string Names)> groups)
    {
        var map = new Dictionary<string, string>(System.StringComparer.Ordinal);
        foreach (var (ns, names) in groups)
            foreach (string name in names.Split(' '))
                map[name] = ns;
        return map;
    }

    /// <summary>
    /// The emitted text with every known type fully qualified and its namespace usings rooted at global::, and the
    /// members it declares in the model class. (The emitters name the model itself fully qualified: a model may be
    /// called Rng or Pooling.)
    /// </summary>
    public static (string Code, string[] Members) Qualify(string code)
    {
        var tree = CSharpSyntaxTree.ParseText(code, new CSharpParseOptions(LanguageVersion.Latest));
        var root = (CompilationUnitSyntax)tree.GetRoot();
        // Aliases go (their targets are qualified in place); namespace usings stay, rooted at global::, for the
        // extension methods they bring (array.AsSpan()).
        var usings = root.Usings.Where(u => u.Alias is null && u.Name is not null)
            .Select(u => u.WithName(SyntaxFactory.ParseName("global::" + u.Name!.ToString())));
        root = root.WithUsings(SyntaxFactory.List(usings));
        root = (CompilationUnitSyntax)new Rewriter().Visit(root);
        return (root.ToFullString(), Members(root).ToArray());
    }

    /// <summary>
    /// The members a generated source declares in the model class, as signatures that compare with
    /// <see cref="Signature(ISymbol)"/>: <c>Name</c> for fields, properties, events and nested types, <c>Name(T1,T2)</c>
    /// for methods and <c>.ctor(T1)</c> for constructors, each type written as <c>global::</c>-qualified text.
    /// </summary>
    private static IEnumerable<string> Members(CompilationUnitSyntax root)
    {
        var model = root.DescendantNodes().OfType<TypeDeclarationSyntax>().FirstOrDefault(t => t.Parent is BaseNamespaceDeclarationSyntax or CompilationUnitSyntax);
        if (model is null) yield break;
        foreach (var member in model.Members)
        {
            switch (member)
            {
                case MethodDeclarationSyntax { ExplicitInterfaceSpecifier: null } m:
                    yield return $"{m.Identifier.ValueText}({Parameters(m.ParameterList)})"; break;
                case ConstructorDeclarationSyntax c:
                    yield return $".ctor({Parameters(c.ParameterList)})"; break;
                case BaseFieldDeclarationSyntax f:
                    foreach (var v in f.Declaration.Variables) yield return v.Identifier.ValueText;
                    break;
                case PropertyDeclarationSyntax { ExplicitInterfaceSpecifier: null } p:
                    yield return p.Identifier.ValueText; break;
                case BaseTypeDeclarationSyntax t:
                    yield return t.Identifier.ValueText; break;
                case DelegateDeclarationSyntax d:
                    yield return d.Identifier.ValueText; break;
            }
        }
    }

    /// <summary>The name generated members are compared by: methods by name and parameter types, the rest by name.</summary>
    public static string Signature(ISymbol member) => member switch
    {
        IMethodSymbol { MethodKind: MethodKind.Constructor } c => $".ctor({string.Join(",", c.Parameters.Select(Type))})",
        IMethodSymbol m => $"{m.Name}({string.Join(",", m.Parameters.Select(Type))})",
        _ => member.Name,
    };

    /// <summary>The simple name of a signature: "Forward(int)" → "Forward".</summary>
    public static string NameOf(string signature) => signature.IndexOf('(') is var i and >= 0 ? signature.Substring(0, i) : signature;

    private static string Type(IParameterSymbol p) => Normalize(p.Type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat));

    private static string Parameters(ParameterListSyntax list) => string.Join(",", list.Parameters.Select(p => Normalize(p.Type?.ToString() ?? "")));

    // Spaces may differ between display strings and source text, and a nullable annotation does not make an overload.
    private static string Normalize(string type) => new string(type.Where(c => !char.IsWhiteSpace(c) && c != '?').ToArray());

    private sealed class Rewriter : CSharpSyntaxRewriter
    {
        public override SyntaxNode? VisitIdentifierName(IdentifierNameSyntax node)
        {
            string name = node.Identifier.ValueText;
            // Namespaces the emitters spell out (System.Runtime…, SsmGen.Training…) start from the global namespace.
            if (name is "System" or "SsmGen" && IsTypeReferencePosition(node) && node.Parent is QualifiedNameSyntax or MemberAccessExpressionSyntax)
                return SyntaxFactory.AliasQualifiedName(SyntaxFactory.IdentifierName(SyntaxFactory.Token(SyntaxKind.GlobalKeyword)), node.WithoutTrivia()).WithTriviaFrom(node);
            return Qualified(node, name) ?? node;
        }

        public override SyntaxNode? VisitGenericName(GenericNameSyntax node)
        {
            var visited = (GenericNameSyntax)base.VisitGenericName(node)!;
            return Qualified(node, node.Identifier.ValueText, visited) ?? visited;
        }

        // nameof(x) becomes "x": a user's namespace or type called nameof would otherwise capture the call.
        public override SyntaxNode? VisitInvocationExpression(InvocationExpressionSyntax node)
        {
            if (node.Expression is IdentifierNameSyntax { Identifier.ValueText: "nameof" } && node.ArgumentList.Arguments.Count == 1
                && node.ArgumentList.Arguments[0].Expression is SimpleNameSyntax or MemberAccessExpressionSyntax)
            {
                var argument = node.ArgumentList.Arguments[0].Expression;
                string name = argument is MemberAccessExpressionSyntax m ? m.Name.Identifier.ValueText : ((SimpleNameSyntax)argument).Identifier.ValueText;
                return SyntaxFactory.LiteralExpression(SyntaxKind.StringLiteralExpression, SyntaxFactory.Literal(name)).WithTriviaFrom(node);
            }
            return base.VisitInvocationExpression(node);
        }

        // The namespace line names the user's namespace; it is not a reference to qualify.
        public override SyntaxNode? VisitFileScopedNamespaceDeclaration(FileScopedNamespaceDeclarationSyntax node) =>
            node.WithMembers(VisitList(node.Members));

        public override SyntaxNode? VisitNamespaceDeclaration(NamespaceDeclarationSyntax node) =>
            node.WithMembers(VisitList(node.Members));

        /// <summary>The fully qualified replacement of a reference to a known type, or null where the name is not one.</summary>
        private static SyntaxNode? Qualified(SimpleNameSyntax original, string name, SimpleNameSyntax? visited = null)
        {
            if (!Namespaces.TryGetValue(name, out string? ns) || !IsTypeReferencePosition(original)) return null;
            var simple = (visited ?? original).WithoutTrivia();
            var qualified = SyntaxFactory.QualifiedName(SyntaxFactory.ParseName("global::" + ns), simple);
            return qualified.WithTriviaFrom(original);
        }

        // Skips the right of a dot (x.Name, A.B), the names of named arguments and object initializers, and
        // anything already qualified; a name on its own or left of a dot is a reference looked up in scope.
        private static bool IsTypeReferencePosition(SimpleNameSyntax node) => node.Parent switch
        {
            QualifiedNameSyntax q => q.Left == node,
            MemberAccessExpressionSyntax m => m.Expression == node,
            AliasQualifiedNameSyntax => false,
            NameColonSyntax or NameEqualsSyntax => false,
            MemberBindingExpressionSyntax => false,
            _ => true,
        };
    }
}
