using System.Globalization;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace SsmGen.Generators.Tests;

/// <summary>
/// A seeded fuzzer over model declarations. For every compilation: the generator never throws; the generated code
/// compiles without errors or warnings whenever the user's code alone has none; every model gets its code or an
/// SSMG diagnostic, and every declaration broken on purpose gets the diagnostic for what was broken.
/// Four families: valid declarations drawn from the README's rules; one rule broken; hostile names (keywords,
/// generated member names, runtime type names, case twins, clashing members, base classes); and shadowing, where the
/// user declares types named like every identifier the generated code uses.
/// SSMGEN_FUZZ_DECLARATIONS (default 240, split across the families) and SSMGEN_FUZZ_SEED (default 18) set the run.
/// </summary>
public class DeclarationFuzzTests
{
    private const int ModelsPerCompilation = 4;
    private static readonly int Declarations = int.TryParse(Environment.GetEnvironmentVariable("SSMGEN_FUZZ_DECLARATIONS"), out int n) && n > 0 ? n : 240;
    private static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable("SSMGEN_FUZZ_SEED"), out int s) ? s : 18;
    private static int Compilations => Math.Max(1, Declarations / 4 / ModelsPerCompilation);

    // HashCode.Combine is seeded per process, so a case's seed is mixed by hand: the same SSMGEN_FUZZ_SEED gives the
    // same declarations in every run.
    private static int CaseSeed(int family, int compilation) => unchecked((Seed * 1_000_003 + family) * 7_919 + compilation);

    [Fact]
    public void ValidDeclarationsCompileCleanly()
    {
        for (int c = 0; c < Compilations; c++)
        {
            var r = new Random(CaseSeed(1, c));
            var models = Enumerable.Range(0, ModelsPerCompilation).Select(i => RandomModel(r, $"Valid{i}")).ToArray();
            string source = Render(models, $"Fuzz.Valid{c}");
            var result = Generate(source);
            Assert.True(result.SsmgErrors.Length == 0, Failure(c, source, result.SsmgErrors.Select(d => d.ToString())));
            Assert.True(result.OutputProblems.Length == 0, Failure(c, source, result.OutputProblems));
            Assert.Equal(2 * models.Length, result.Run.GeneratedTrees.Length);
        }
    }

    [Fact]
    public void EveryBrokenRuleIsReported()
    {
        for (int c = 0; c < Compilations; c++)
        {
            var r = new Random(CaseSeed(2, c));
            var models = Enumerable.Range(0, ModelsPerCompilation).Select(i => RandomModel(r, $"Model{i}")).ToArray();
            var expected = new List<(string Model, string Id)>();
            foreach (int i in Enumerable.Range(0, ModelsPerCompilation).Where(_ => r.Next(2) == 0).DefaultIfEmpty(0))
                expected.Add((models[i].Name, Break(r, models[i])));
            string source = Render(models, $"Fuzz.Broken{c}");
            var result = Generate(source);
            foreach (var (model, id) in expected)
                Assert.True(result.GeneratorDiagnostics.Any(d => d.Id == id), Failure(c, source, [$"{model}: expected {id}", .. result.GeneratorDiagnostics.Select(d => d.ToString())]));
            // The models left intact still compile cleanly beside the broken ones.
            Assert.True(result.OutputProblems.Length == 0 || !result.UserCodeIsClean, Failure(c, source, result.OutputProblems));
        }
    }

    [Fact]
    public void HostileNamesNeverBreakTheBuild()
    {
        int checkedCases = 0;
        var voided = new List<string>();
        for (int c = 0; c < Compilations; c++)
        {
            var r = new Random(CaseSeed(3, c));
            var models = new List<ModelDecl>();
            for (int i = 0; i < ModelsPerCompilation; i++)
            {
                string name = HostileName(r);
                while (models.Any(x => x.Name.TrimStart('@') == name.TrimStart('@'))) name = HostileName(r);
                var m = RandomModel(r, name);
                if (r.Next(3) == 0) m.Members.Add(Pick(r, HostileMembers));
                if (r.Next(8) == 0) m.PrimaryConstructor = "(int size)";
                // A base model must be constructible without arguments, and a type named System as a base only warns.
                var bases = models.Where(x => x.PrimaryConstructor.Length == 0 && !x.Members.Any(y => y.StartsWith("public M0(", StringComparison.Ordinal)) && x.Name is not ("System" or "SsmGen")).Select(x => x.Name).Prepend("PlainBase").ToArray();
                if (r.Next(6) == 0) m.Base = Pick(r, bases.Take(2).ToArray());
                models.Add(m);
            }
            string ns = string.Join(".", Enumerable.Range(0, r.Next(0, 3)).Select(_ => HostileName(r)));
            // A model named like one of SsmGen's enums hides it from the attributes, so those are spelled from global::.
            bool hidesAnEnum = models.Any(x => x.Name == "Pooling") || ns.Split('.').Contains("Pooling");
            string source = Render(models, ns, "public class PlainBase { }", qualified: hidesAnEnum);
            var result = Generate(source);
            // Every model gets its two files or a diagnostic; the generated code never breaks code that compiled.
            int modelsWithCode = result.Run.GeneratedTrees.Length / 2;
            Assert.True(modelsWithCode + result.SsmgErrors.Select(d => d.Location.SourceSpan.Start).Distinct().Count() >= models.Select(m => m.Name).Distinct().Count() || !result.UserCodeIsClean,
                Failure(c, source, result.GeneratorDiagnostics.Select(d => d.ToString())));
            if (!result.UserCodeIsClean) { voided.Add(result.UserProblem); continue; }
            checkedCases++;
            // Code that compiled may stop compiling only with an SSMG error saying why (a class deriving from a model).
            Assert.True(result.OutputProblems.Length == 0 || result.SsmgErrors.Length > 0, Failure(c, source, result.OutputProblems));
        }
        Assert.True(checkedCases >= Compilations / 2, $"only {checkedCases} of {Compilations} hostile compilations were valid C# on their own:\n{string.Join("\n", voided.Take(5))}");
    }

    [Fact]
    public void ShadowingEveryGeneratedNameChangesNothing()
    {
        var names = GeneratedIdentifiers();
        int checkedCases = 0;
        for (int c = 0; c < Compilations; c++)
        {
            var r = new Random(CaseSeed(4, c));
            var models = Enumerable.Range(0, ModelsPerCompilation).Select(i => RandomModel(r, $"Shadowed{i}", allKinds: i == 0)).ToArray();
            // Each name at most once per namespace: in the model's namespace, its parent or the global namespace.
            var local = new StringBuilder();
            var parent = new StringBuilder();
            var global = new StringBuilder();
            foreach (var (name, generic) in names.OrderBy(_ => r.Next()).Take(names.Count * 2 / 3))
            {
                // A keyword among them (a launcher parameter named @out) is declared as a verbatim identifier.
                string id = Microsoft.CodeAnalysis.CSharp.SyntaxFacts.GetKeywordKind(name) == Microsoft.CodeAnalysis.CSharp.SyntaxKind.None ? name : "@" + name;
                string type = generic ? $"public class {id}<T> {{ }} " : $"public class {id} {{ }} ";
                // A global type named like a root namespace (System, SsmGen) would break the user's code as well.
                int where = name is "System" or "SsmGen" ? r.Next(2) : r.Next(3);
                (where switch { 0 => local, 1 => parent, _ => global }).Append(type);
            }
            string source = Render(models, $"Shadow{c}.Inner", local.ToString(), qualified: true) + $"\nnamespace Shadow{c} {{ {parent} }}\n{global}";
            var result = Generate(source);
            if (!result.UserCodeIsClean) continue;
            checkedCases++;
            Assert.True(result.SsmgErrors.Length == 0, Failure(c, source, result.SsmgErrors.Select(d => d.ToString())));
            Assert.True(result.OutputProblems.Length == 0, Failure(c, source, result.OutputProblems));
        }
        Assert.True(checkedCases >= Compilations / 2, $"only {checkedCases} of {Compilations} shadowing compilations were valid C# on their own");
    }

    // ---- declarations ----

    private sealed class ModelDecl
    {
        public string Name = "";
        public Dictionary<string, string> Model = new();
        public List<(string Kind, string? Positional, Dictionary<string, string> Args)> Layers = new();
        public string Modifiers = "public partial";
        public string Keyword = "class";
        public string PrimaryConstructor = "";
        public string? Base;
        public List<string> Members = new();
        public bool Nested;
    }

    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
    private static T Pick<T>(Random r, IReadOnlyList<T> items) => items[r.Next(items.Count)];

    /// <summary>A declaration within the README's rules: small sizes, every option sometimes set, sometimes left to its default.</summary>
    private static ModelDecl RandomModel(Random r, string name, bool allKinds = false)
    {
        var m = new ModelDecl { Name = name };
        int d = 2 * r.Next(1, 9);
        if (r.Next(2) == 0) m.Model["Input"] = r.Next(1, 6).ToString(CultureInfo.InvariantCulture);
        else m.Model["Vocab"] = r.Next(2, 40).ToString(CultureInfo.InvariantCulture);
        m.Model["DModel"] = d.ToString(CultureInfo.InvariantCulture);
        m.Model["Output"] = r.Next(1, 7).ToString(CultureInfo.InvariantCulture);
        if (r.Next(2) == 0) m.Model["Pooling"] = "Pooling." + Pick(r, ["Mean", "Last", "None"]);
        var kinds = allKinds ? ["S4D", "Mamba", "Rnn", "Ids", "Attention", "Delta", "S4"] : Enumerable.Range(0, r.Next(1, 4)).Select(_ => Pick(r, ["S4D", "Mamba", "Rnn", "Ids", "Attention", "Delta", "S4"])).ToArray();
        foreach (string kind in kinds)
        {
            var a = new Dictionary<string, string>();
            string? positional = null;
            void Maybe(string key, string value) { if (r.Next(3) != 0) a[key] = value; }
            string dtMin = F(Math.Round(Math.Pow(10, -5 + 4 * r.NextDouble()), 6) + 1e-6);
            switch (kind)
            {
                case "S4D":
                    Maybe("N", (2 * r.Next(1, r.Next(4) == 0 ? 40 : 9)).ToString(CultureInfo.InvariantCulture));
                    Maybe("Init", "S4DInit." + Pick(r, ["Lin", "Inv", "Real", "LegS", "Random"]));
                    Maybe("Discretization", "Discretization." + Pick(r, ["Zoh", "Bilinear"]));
                    Maybe("TrainB", r.Next(2) == 0 ? "true" : "false");
                    Maybe("Dropout", F(Math.Round(r.NextDouble() * 0.5, 2)));
                    if (r.Next(3) == 0) { a["DtMin"] = dtMin; a["DtMax"] = F(double.Parse(dtMin, CultureInfo.InvariantCulture) * (1 + 50 * r.NextDouble())); }
                    break;
                case "Mamba":
                    Maybe("N", r.Next(1, 17).ToString(CultureInfo.InvariantCulture));
                    Maybe("Expand", r.Next(1, 4).ToString(CultureInfo.InvariantCulture));
                    Maybe("ConvWidth", r.Next(1, 6).ToString(CultureInfo.InvariantCulture));
                    Maybe("DtRank", r.Next(0, 4).ToString(CultureInfo.InvariantCulture));
                    Maybe("Norm", "NormKind." + Pick(r, ["LayerNorm", "RmsNorm"]));
                    Maybe("Eigenvalues", "MambaEigenvalues." + Pick(r, ["Positive", "PositiveAndNegative"]));
                    if (r.Next(3) == 0) { a["DtMin"] = dtMin; a["DtMax"] = F(double.Parse(dtMin, CultureInfo.InvariantCulture) * (1 + 50 * r.NextDouble())); }
                    break;
                case "Rnn":
                    if (r.Next(2) == 0) positional = r.Next(1, 17).ToString(CultureInfo.InvariantCulture); else Maybe("Hidden", r.Next(0, 17).ToString(CultureInfo.InvariantCulture));
                    Maybe("Nonlinearity", "Nonlinearity." + Pick(r, ["Tanh", "Relu"]));
                    break;
                case "Ids":
                    if (r.Next(2) == 0) positional = r.Next(1, 7).ToString(CultureInfo.InvariantCulture); else Maybe("N", r.Next(1, 7).ToString(CultureInfo.InvariantCulture));
                    break;
                case "Attention":
                    var heads = Enumerable.Range(1, d).Where(h => d % h == 0 && d / h % 2 == 0).ToArray();
                    a["Heads"] = Pick(r, heads).ToString(CultureInfo.InvariantCulture);
                    Maybe("MlpRatio", r.Next(1, 4).ToString(CultureInfo.InvariantCulture));
                    break;
                case "S4":
                    Maybe("N", (2 * r.Next(1, 9)).ToString(CultureInfo.InvariantCulture));
                    Maybe("KernelLength", Pick(r, ["64", "256", "1024"]));
                    Maybe("Measure", "S4Measure.LegS");
                    Maybe("Dropout", F(Math.Round(r.NextDouble() * 0.5, 2)));
                    if (r.Next(3) == 0) { a["DtMin"] = dtMin; a["DtMax"] = F(double.Parse(dtMin, CultureInfo.InvariantCulture) * (1 + 50 * r.NextDouble())); }
                    break;
                case "Delta":
                    // heads dividing DModel, or a head size of its own
                    if (r.Next(2) == 0) a["Heads"] = Pick(r, Enumerable.Range(1, d).Where(h => d % h == 0).ToArray()).ToString(CultureInfo.InvariantCulture);
                    else { a["Heads"] = r.Next(1, 4).ToString(CultureInfo.InvariantCulture); a["HeadSize"] = r.Next(1, 6).ToString(CultureInfo.InvariantCulture); }
                    Maybe("HouseholderSteps", r.Next(1, 4).ToString(CultureInfo.InvariantCulture));
                    Maybe("Gate", r.Next(2) == 0 ? "true" : "false");
                    Maybe("NegativeEigenvalues", r.Next(2) == 0 ? "true" : "false");
                    Maybe("ConvWidth", r.Next(1, 5).ToString(CultureInfo.InvariantCulture));
                    break;
            }
            if (r.Next(6) == 0) a["Repeat"] = "2";
            m.Layers.Add((kind, positional, a));
        }
        return m;
    }

    /// <summary>Breaks one rule of a valid declaration; returns the diagnostic it must get.</summary>
    private static string Break(Random r, ModelDecl m)
    {
        var layer = m.Layers[r.Next(m.Layers.Count)];
        switch (r.Next(25))
        {
            case 0: m.Modifiers = "public"; return "SSMG0001";
            case 1: m.Nested = true; return "SSMG0002";
            case 2: m.Layers.Add(("S4D", null, new() { ["N"] = Pick(r, ["3", "0", "-2"]) })); return "SSMG0003";
            case 3: m.Layers.Add(("S4D", null, new() { ["Init"] = "(S4DInit)" + r.Next(5, 99) })); return "SSMG0004";
            case 4: m.Layers.Add(("S4D", null, new() { ["Discretization"] = "(Discretization)" + r.Next(2, 9) })); return "SSMG0005";
            case 5: m.Model["Output"] = Pick(r, ["0", "-1"]); return "SSMG0006";
            case 6: m.Layers.Add(("Mamba", null, new() { [Pick(r, ["N", "Expand", "ConvWidth"])] = "0" })); return "SSMG0006";
            case 7: m.Model["Input"] = "1"; m.Model["Vocab"] = "4"; return "SSMG0008";
            case 8: m.Model.Remove("Input"); m.Model.Remove("Vocab"); return "SSMG0008";
            case 9: m.Layers.Clear(); return "SSMG0009";
            case 10: m.Layers.Add(("S4D", null, new() { ["Dropout"] = Pick(r, ["1.0", "-0.1", "2.5"]) })); return "SSMG0010";
            case 11: layer.Args["Repeat"] = Pick(r, ["0", "-3"]); return "SSMG0011";
            case 12: m.Model["Pooling"] = "(Pooling)" + r.Next(3, 9); return "SSMG0012";
            case 13: m.Layers.Add((Pick(r, ["S4D", "Mamba"]), null, Pick(r, new Dictionary<string, string>[] { new() { ["DtMin"] = "0.1", ["DtMax"] = "0.01" }, new() { ["DtMax"] = "1e30" }, new() { ["DtMin"] = "0" }, new() { ["DtMax"] = "double.PositiveInfinity" } }))); return "SSMG0013";
            case 14: m.Keyword = "struct"; return "SSMG0014";
            case 15: m.Model["DModel"] = "70000"; return "SSMG0015";
            case 16: m.Layers.Add(("S4D", null, new() { ["N"] = "514" })); return "SSMG0015";
            case 17: m.Modifiers = "file partial"; return "SSMG0016";
            case 18: m.Layers.Add(("Mamba", null, new() { ["Norm"] = "(NormKind)" + r.Next(2, 9) })); return "SSMG0017";
            case 19: m.Layers.Add(("Rnn", null, new() { ["Nonlinearity"] = "(Nonlinearity)" + r.Next(2, 9) })); return "SSMG0019";
            case 20: m.PrimaryConstructor = "(int size)"; return "SSMG0023";
            case 21: m.Layers.Add(("Mamba", null, new() { ["Eigenvalues"] = "(MambaEigenvalues)" + r.Next(2, 9) })); return "SSMG0028";
            case 22: m.Layers.Add(("S4", null, Pick(r, new Dictionary<string, string>[] { new() { ["N"] = Pick(r, ["3", "0", "-4"]) }, new() { ["KernelLength"] = Pick(r, ["100", "0", "1"]) }, new() { ["Measure"] = "(S4Measure)" + r.Next(1, 9) } }))); return "SSMG0030";
            case 23: m.Members.Add(Pick(r, ["public M0(string note) { }", "public M0() : base() { }"])); return "SSMG0031";
            default: m.Members.Add(Pick(r, ["public void Dispose() { }", "public int Forward;", "private float[] _p = [];"])); return "SSMG0022";
        }
    }

    private static readonly string[] HostileMembers =
    [
        "public void Dispose() { }", "public int Forward;", "public void Forward(string note) { }", "public int Helper => 1;",
        "public override string ToString() => \"model\";", "private readonly int _p;", "public static int Config;", "public void Step() { }",
        "public const int H = 1;", "public class GpuPath { }", "public M0(string note) { }",
    ];

    private static readonly string[] HostileNames =
    [
        "M", "m", "var", "record", "async", "await", "dynamic", "nameof", "value", "global", "partial", "@class", "@int", "@event",
        "Forward", "Backward", "Step", "Config", "H", "Parameters", "Dispose", "GpuPath", "Math", "Complex", "Span", "Array", "Rng",
        "Pooling", "Stability", "Gemm", "System", "SsmGen", "ComputeDevice", "Dim3", "Model", "model", "MODEL", "Ssm", "ISsmModel",
    ];

    private static string HostileName(Random r) => Pick(r, HostileNames);

    /// <summary>C# for the declarations; <paramref name="qualified"/> spells SsmGen's names from global:: (the user's own types may shadow them).</summary>
    private static string Render(IEnumerable<ModelDecl> models, string ns, string extra = "", bool qualified = false)
    {
        string root = qualified ? "global::SsmGen." : "";
        string Value(string v) => qualified && System.Text.RegularExpressions.Regex.IsMatch(v, @"^(Pooling|S4DInit|Discretization|NormKind|Nonlinearity|MambaEigenvalues|S4Measure)\.") ? root + v : v;
        var sb = new StringBuilder();
        sb.AppendLine("#pragma warning disable CS8981, CS8860, CS9113, CS0169, CS0414, CS0649, CS0067");
        sb.AppendLine("using SsmGen;");
        if (ns.Length > 0) sb.AppendLine($"namespace {ns}").AppendLine("{");
        sb.AppendLine(extra);
        foreach (var m in models)
        {
            if (m.Nested) sb.AppendLine($"public partial class Outer{m.Name.TrimStart('@')} {{");
            sb.AppendLine($"[{root}SsmModel({string.Join(", ", m.Model.Select(kv => $"{kv.Key} = {Value(kv.Value)}"))})]");
            foreach (var (kind, positional, args) in m.Layers)
            {
                var parts = (positional is null ? [] : new[] { positional }).Concat(args.Select(kv => $"{kv.Key} = {Value(kv.Value)}"));
                sb.AppendLine($"[{root}{kind}Layer({string.Join(", ", parts)})]");
            }
            string baseList = m.Base is null ? "" : " : " + m.Base;
            string members = string.Join(" ", m.Members.Select(x => x.Replace("M0(", m.Name + "(")));
            sb.AppendLine($"{m.Modifiers} {m.Keyword} {m.Name}{m.PrimaryConstructor}{baseList} {{ {members} }}");
            if (m.Nested) sb.AppendLine("}");
        }
        if (ns.Length > 0) sb.AppendLine("}");
        return sb.ToString();
    }

    // ---- running ----

    private sealed record Outcome(GeneratorDriverRunResult Run, Diagnostic[] GeneratorDiagnostics, Diagnostic[] SsmgErrors, string[] OutputProblems, bool UserCodeIsClean, string UserProblem);

    private static Outcome Generate(string source)
    {
        var user = GeneratorHarness.Compile(source);
        var userProblems = user.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToArray();
        bool clean = userProblems.Length == 0;
        var driver = GeneratorHarness.Driver().RunGeneratorsAndUpdateCompilation(user, out var output, out var genDiags);
        var run = driver.GetRunResult();
        Assert.All(run.Results, r => Assert.Null(r.Exception));
        Assert.DoesNotContain(genDiags, d => d.Id == "CS8785");
        var problems = clean
            ? output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).Select(HostileDeclarationTests.Describe).ToArray()
            : [];
        return new Outcome(run, genDiags.ToArray(), genDiags.Where(d => d.Id.StartsWith("SSMG", StringComparison.Ordinal) && d.Severity == DiagnosticSeverity.Error).ToArray(), problems, clean, clean ? "" : HostileDeclarationTests.Describe(userProblems[0]));
    }

    private static string Failure(int compilation, string source, IEnumerable<string> problems) =>
        $"seed {Seed}, compilation {compilation}:\n{string.Join("\n", problems.Take(8))}\n--- source ---\n{source}";

    /// <summary>Every identifier the generated code of an all-kinds model uses, and whether it is used with type arguments.</summary>
    private static List<(string Name, bool Generic)> GeneratedIdentifiers()
    {
        var m = RandomModel(new Random(Seed), "Reference", allKinds: true);
        var run = GeneratorHarness.Run(Render([m], "Probe")).Run;
        var found = new HashSet<(string, bool)>();
        foreach (var tree in run.GeneratedTrees)
            foreach (var name in tree.GetRoot().DescendantNodes().OfType<SimpleNameSyntax>())
                found.Add((name.Identifier.ValueText, name is GenericNameSyntax));
        found.RemoveWhere(x => x.Item1 is "var" or "Reference" or "nameof" or "global" || x.Item1.StartsWith("Shadowed", StringComparison.Ordinal));
        return found.OrderBy(x => x.Item1, StringComparer.Ordinal).ThenBy(x => x.Item2).ToList();
    }
}
