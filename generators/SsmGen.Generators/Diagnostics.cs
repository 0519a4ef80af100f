using Microsoft.CodeAnalysis;

namespace SsmGen.Generators;

/// <summary>Every problem the generator reports: one descriptor each, the message says what to change.</summary>
internal static class Diagnostics
{
    private const string Category = "SsmGen";

    private static DiagnosticDescriptor Error(string id, string title, string message) =>
        new(id, title, message, Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor NotPartial = Error("SSMG0001",
        "Model class must be partial", "Model class '{0}' must be declared 'partial' so SsmGen can add the generated members");
    public static readonly DiagnosticDescriptor GenericOrNested = Error("SSMG0002",
        "Model class must be top-level and non-generic", "Model class '{0}' must be a top-level, non-generic class; move it out of '{1}' or remove its type parameters");
    public static readonly DiagnosticDescriptor BadStateSize = Error("SSMG0003",
        "S4D state size must be positive and even", "[S4DLayer] N = {0} is invalid; use a positive even state size such as 64");
    public static readonly DiagnosticDescriptor UnknownInit = Error("SSMG0004",
        "Unknown S4D initialization", "[S4DLayer] Init = {0} is not an S4DInit; use Lin, Inv, Real, LegS or Random");
    public static readonly DiagnosticDescriptor UnknownDiscretization = Error("SSMG0005",
        "Unknown discretization", "[S4DLayer] Discretization = {0} is not a Discretization; use Zoh or Bilinear");
    public static readonly DiagnosticDescriptor NonPositiveSize = Error("SSMG0006",
        "Model size must be positive", "[{0}] {1} = {2} must be positive");
    public static readonly DiagnosticDescriptor LayerWithoutModel = Error("SSMG0007",
        "Layer attribute without [SsmModel]", "Class '{0}' has layer attributes but no [SsmModel]; add [SsmModel(...)] to declare the model");
    public static readonly DiagnosticDescriptor InputOrVocab = Error("SSMG0008",
        "Conflicting input options", "[SsmModel] sets {0}; set exactly one of Input (real features) and Vocab (token ids), each positive");
    public static readonly DiagnosticDescriptor NoLayers = Error("SSMG0009",
        "Model has no layers", "Model class '{0}' declares no layers; add at least one layer attribute such as [S4DLayer] or [MambaLayer]");
    public static readonly DiagnosticDescriptor BadDropout = Error("SSMG0010",
        "Dropout out of range", "[{0}] Dropout = {1} must be in [0, 1)");
    public static readonly DiagnosticDescriptor BadRepeat = Error("SSMG0011",
        "Repeat must be positive", "[{0}] Repeat = {1} must be at least 1");
    public static readonly DiagnosticDescriptor UnknownPooling = Error("SSMG0012",
        "Unknown pooling", "[SsmModel] Pooling = {0} is not a Pooling; use Mean, Last or None");
    public static readonly DiagnosticDescriptor BadDtRange = Error("SSMG0013",
        "Invalid Δ range", "[{0}] needs {3} <= DtMin <= DtMax <= {4} (beyond, the float discretization overflows or underflows), got DtMin = {1} and DtMax = {2}");
    public static readonly DiagnosticDescriptor NotAClass = Error("SSMG0014",
        "Model must be a non-static class", "[SsmModel] on '{0}' is not supported; declare the model as a non-static partial class");

    public static readonly DiagnosticDescriptor TooLarge = Error("SSMG0015",
        "Model too large", "{0} = {1} exceeds the supported maximum of {2}");
    public static readonly DiagnosticDescriptor FileLocal = Error("SSMG0016",
        "File-local model class", "Model class '{0}' is file-local; the generated code lives in another file, so declare it without the 'file' modifier");

    public static readonly DiagnosticDescriptor UnknownNorm = Error("SSMG0017",
        "Unknown norm", "[{0}] Norm = {1} is not a NormKind; use LayerNorm or RmsNorm");

    public static readonly DiagnosticDescriptor BadHeads = Error("SSMG0018",
        "Invalid number of attention heads", "[AttentionLayer] Heads = {0} must divide DModel = {1} with an even head size (rotary positions rotate pairs)");
    public static readonly DiagnosticDescriptor UnknownNonlinearity = Error("SSMG0019",
        "Unknown nonlinearity", "[RnnLayer] Nonlinearity = {0} is not a Nonlinearity; use Tanh or Relu");

    public static readonly DiagnosticDescriptor LanguageVersionTooLow = Error("SSMG0020",
        "C# 13 or later required", "Model '{0}' needs C# 13 or later for its generated code (it uses params collections); this project compiles C# {1}: set <LangVersion>13</LangVersion> or later, or target net9.0 or later");
    public static readonly DiagnosticDescriptor NameClash = Error("SSMG0021",
        "Model class named like a generated member", "Model class '{0}' has the name of a member SsmGen generates in it ({1}); rename the class");
    public static readonly DiagnosticDescriptor MemberClash = Error("SSMG0022",
        "Member clashes with a generated member", "Model '{0}' declares or inherits '{1}', which SsmGen generates; rename or remove it");
    public static readonly DiagnosticDescriptor PrimaryConstructor = Error("SSMG0023",
        "Model class has a primary constructor", "Model class '{0}' has a primary constructor; SsmGen generates the model's constructor, so remove the parameter list");
    public static readonly DiagnosticDescriptor UnsupportedBase = Error("SSMG0024",
        "Unsupported base class", "Model class '{0}' derives from '{1}', which {2}");
    public static readonly DiagnosticDescriptor VarIsAType = Error("SSMG0025",
        "A type named 'var' is in scope", "A type named 'var' is in scope of model '{0}', and the generated code declares implicitly typed locals; rename that type");
    public static readonly DiagnosticDescriptor NotTheRuntime = Error("SSMG0026",
        "[SsmModel] is not SsmGen's attribute", "The [SsmModel] on '{0}' is not the attribute of the SsmGen runtime assembly (or the runtime is not referenced); reference the SsmGen package and remove any other SsmGen.SsmModelAttribute");
    public static readonly DiagnosticDescriptor RootNamespaceHidden = Error("SSMG0027",
        "A global type hides a namespace the generated code uses", "A type named '{1}' in the global namespace hides the {1} namespace that the generated code of model '{0}' uses; rename that type or move it into a namespace");
    public static readonly DiagnosticDescriptor UnknownEigenvalues = Error("SSMG0028",
        "Unknown eigenvalue range", "[MambaLayer] Eigenvalues = {0} is not a MambaEigenvalues; use Positive or PositiveAndNegative");
    public static readonly DiagnosticDescriptor BadHeadSize = Error("SSMG0029",
        "Heads do not divide the width", "[DeltaLayer] Heads = {0} does not divide DModel = {1}; give HeadSize");
    public static readonly DiagnosticDescriptor BadS4Setting = Error("SSMG0030",
        "Invalid S4 layer setting", "[S4Layer] {0} = {1} is invalid; {2}");
    public static readonly DiagnosticDescriptor UnchainedConstructor = Error("SSMG0031",
        "Model constructor does not call the generated one", "A constructor of model '{0}' does not call this(maxBatch, maxLength, ...); the generated constructor allocates the model's parameters and buffers, so chain to it");
    public static readonly DiagnosticDescriptor InternalError = Error("SSMG0099",
        "SsmGen failed on a model", "SsmGen could not generate model '{0}' ({1}); this is a bug in SsmGen, please report it with the declaration");

    private static readonly DiagnosticDescriptor[] All =
    {
        NotPartial, GenericOrNested, BadStateSize, UnknownInit, UnknownDiscretization, NonPositiveSize, LayerWithoutModel,
        InputOrVocab, NoLayers, BadDropout, BadRepeat, UnknownPooling, BadDtRange, NotAClass, TooLarge, FileLocal, UnknownNorm, BadHeads, UnknownNonlinearity,
        LanguageVersionTooLow, NameClash, MemberClash, PrimaryConstructor, UnsupportedBase, VarIsAType, NotTheRuntime, RootNamespaceHidden, UnknownEigenvalues, BadHeadSize, BadS4Setting, UnchainedConstructor, InternalError,
    };

    public static DiagnosticDescriptor ById(string id) => All.First(d => d.Id == id);
}
