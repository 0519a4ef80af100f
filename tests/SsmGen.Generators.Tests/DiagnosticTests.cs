using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Testing;
using Microsoft.CodeAnalysis.Testing;

namespace SsmGen.Generators.Tests;

/// <summary>Every invalid declaration is a compiler diagnostic at the right place, never a generator exception.</summary>
public class DiagnosticTests
{
    private static async Task Verify(string source, params DiagnosticResult[] expected)
    {
        var test = new CSharpSourceGeneratorTest<SsmModelGenerator, DefaultVerifier>
        {
            ReferenceAssemblies = GeneratorHarness.Offline,
            TestState = { Sources = { "using SsmGen;\n" + source } },
        };
        test.TestState.AdditionalReferences.AddRange(GeneratorHarness.References);
        test.TestState.ExpectedDiagnostics.AddRange(expected);
        await test.RunAsync();
    }

    private static DiagnosticResult Diag(string id) => new DiagnosticResult(id, DiagnosticSeverity.Error);

    [Fact]
    public Task NonPartialClass() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [S4DLayer(N = 4)]
        public class {|#0:M|} { }
        """, Diag("SSMG0001").WithLocation(0).WithArguments("M"));

    [Fact]
    public Task NestedClass() => Verify("""
        public partial class Outer
        {
            [SsmModel(Input = 1, DModel = 8, Output = 2)]
            [S4DLayer(N = 4)]
            public partial class {|#0:M|} { }
        }
        """, Diag("SSMG0002").WithLocation(0).WithArguments("M", "Outer"));

    [Fact]
    public Task GenericClass() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [S4DLayer(N = 4)]
        public partial class {|#0:M|}<T> { }
        """, Diag("SSMG0002").WithLocation(0).WithArguments("M", "its type parameters"));

    [Theory]
    [InlineData("5")]
    [InlineData("0")]
    [InlineData("-2")]
    public Task OddOrNonPositiveStateSize(string n) => Verify($$"""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [{|#0:S4DLayer(N = {{n}})|}]
        public partial class M { }
        """, Diag("SSMG0003").WithLocation(0).WithArguments(n));

    [Fact]
    public Task UnknownInit() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [{|#0:S4DLayer(N = 4, Init = (S4DInit)42)|}]
        public partial class M { }
        """, Diag("SSMG0004").WithLocation(0).WithArguments("42"));

    [Fact]
    public Task UnknownDiscretization() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [{|#0:S4DLayer(N = 4, Discretization = (Discretization)7)|}]
        public partial class M { }
        """, Diag("SSMG0005").WithLocation(0).WithArguments("7"));

    [Fact]
    public Task NeitherInputNorVocab() => Verify("""
        [{|#0:SsmModel(DModel = 8, Output = 2)|}]
        [S4DLayer(N = 4)]
        public partial class M { }
        """, Diag("SSMG0008").WithLocation(0).WithArguments("neither Input nor Vocab"));

    [Fact]
    public Task NonPositiveSizes() => Verify("""
        [{|#0:SsmModel(Input = -1, DModel = 0, Output = 0)|}]
        [S4DLayer(N = 4)]
        public partial class M { }
        """,
        Diag("SSMG0006").WithLocation(0).WithArguments("SsmModel", "Input", "-1"),
        Diag("SSMG0006").WithLocation(0).WithArguments("SsmModel", "DModel", "0"),
        Diag("SSMG0006").WithLocation(0).WithArguments("SsmModel", "Output", "0"));

    [Fact]
    public Task LayersWithoutModel() => Verify("""
        [S4DLayer(N = 4)]
        public partial class {|#0:M|} { }
        """, Diag("SSMG0007").WithLocation(0).WithArguments("M"));

    [Fact]
    public Task BothInputAndVocab() => Verify("""
        [{|#0:SsmModel(Input = 2, Vocab = 10, DModel = 8, Output = 2)|}]
        [S4DLayer(N = 4)]
        public partial class M { }
        """, Diag("SSMG0008").WithLocation(0).WithArguments("both Input and Vocab"));

    [Fact]
    public Task NoLayers() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        public partial class {|#0:M|} { }
        """, Diag("SSMG0009").WithLocation(0).WithArguments("M"));

    [Fact]
    public Task DropoutOutOfRange() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [{|#0:S4DLayer(N = 4, Dropout = 1.0)|}]
        public partial class M { }
        """, Diag("SSMG0010").WithLocation(0).WithArguments("S4DLayer", "1"));

    [Fact]
    public Task RepeatZero() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [{|#0:S4DLayer(N = 4, Repeat = 0)|}]
        public partial class M { }
        """, Diag("SSMG0011").WithLocation(0).WithArguments("S4DLayer", "0"));

    [Fact]
    public Task UnknownPooling() => Verify("""
        [{|#0:SsmModel(Input = 1, DModel = 8, Output = 2, Pooling = (Pooling)9)|}]
        [S4DLayer(N = 4)]
        public partial class M { }
        """, Diag("SSMG0012").WithLocation(0).WithArguments("9"));

    [Fact]
    public Task InvertedDtRange() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [{|#0:S4DLayer(N = 4, DtMin = 0.1, DtMax = 0.01)|}]
        public partial class M { }
        """, Diag("SSMG0013").WithLocation(0).WithArguments("S4DLayer", "0.1", "0.01", "1E-20", "10000"));

    [Fact]
    public Task StaticClass() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [S4DLayer(N = 4)]
        public static partial class {|#0:M|} { }
        """, Diag("SSMG0014").WithLocation(0).WithArguments("M"));

    [Fact]
    public Task FileLocalClass() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [S4DLayer(N = 4)]
        file partial class {|#0:M|} { }
        """, Diag("SSMG0016").WithLocation(0).WithArguments("M"));

    [Fact]
    public Task SizesBeyondTheLimits() => Verify("""
        [{|#0:SsmModel(Input = 1, DModel = 100000, Output = 2)|}]
        [{|#1:S4DLayer(N = 1024, Repeat = 5000)|}]
        public partial class M { }
        """,
        Diag("SSMG0015").WithLocation(0).WithArguments("DModel", "100000", "65536"),
        Diag("SSMG0015").WithLocation(1).WithArguments("N", "1024", "512"),
        Diag("SSMG0015").WithLocation(1).WithArguments("Repeat", "5000", "1024"));

    [Fact]
    public Task TooManyParameters() => Verify("""
        [SsmModel(Input = 1, DModel = 65536, Output = 2)]
        [S4DLayer(N = 512, Repeat = 1)]
        public partial class {|#0:M|} { }
        """, Diag("SSMG0015").WithLocation(0).WithArguments("the parameter count", "8657829890", "536870911"));

    [Fact]
    public Task InfiniteDtMax() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [{|#0:S4DLayer(N = 4, DtMax = double.PositiveInfinity)|}]
        public partial class M { }
        """, Diag("SSMG0013").WithLocation(0).WithArguments("S4DLayer", "0.001", "Infinity", "1E-20", "10000"));

    [Fact]
    public Task MambaNonPositiveSizes() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [{|#0:MambaLayer(N = 0, Expand = -1, ConvWidth = 0, DtRank = -2)|}]
        public partial class M { }
        """,
        Diag("SSMG0006").WithLocation(0).WithArguments("MambaLayer", "N", "0"),
        Diag("SSMG0006").WithLocation(0).WithArguments("MambaLayer", "Expand", "-1"),
        Diag("SSMG0006").WithLocation(0).WithArguments("MambaLayer", "ConvWidth", "0"),
        Diag("SSMG0006").WithLocation(0).WithArguments("MambaLayer", "DtRank (or 0 for auto)", "-2"));

    [Fact]
    public Task DeltaHeadsNotDividingTheWidth() => Verify("""
        [SsmModel(Input = 1, DModel = 10, Output = 2)]
        [{|#0:DeltaLayer(Heads = 4)|}]
        [{|#1:DeltaLayer(Heads = 0, HouseholderSteps = 9, ConvWidth = -1)|}]
        public partial class M { }
        """,
        Diag("SSMG0029").WithLocation(0).WithArguments("4", "10"),
        Diag("SSMG0006").WithLocation(1).WithArguments("DeltaLayer", "Heads", "0"),
        Diag("SSMG0006").WithLocation(1).WithArguments("DeltaLayer", "ConvWidth", "-1"),
        Diag("SSMG0015").WithLocation(1).WithArguments("HouseholderSteps", "9", "8"));

    [Fact]
    public Task S4BadSettings() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [{|#0:S4Layer(N = 3, KernelLength = 100, Measure = (S4Measure)2)|}]
        public partial class M { }
        """,
        Diag("SSMG0030").WithLocation(0).WithArguments("N", "3", "use a positive even state size such as 64"),
        Diag("SSMG0030").WithLocation(0).WithArguments("KernelLength", "100", "use a power of two at least as long as the longest sequence, such as 1024"),
        Diag("SSMG0030").WithLocation(0).WithArguments("Measure", "2", "use S4Measure.LegS"));

    [Fact]
    public Task MambaUnknownEigenvalues() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [{|#0:MambaLayer(Eigenvalues = (MambaEigenvalues)2)|}]
        public partial class M { }
        """, Diag("SSMG0028").WithLocation(0).WithArguments("2"));

    [Fact]
    public Task MambaUnknownNorm() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [{|#0:MambaLayer(Norm = (NormKind)5)|}]
        public partial class M { }
        """, Diag("SSMG0017").WithLocation(0).WithArguments("MambaLayer", "5"));

    [Fact]
    public Task MambaSizesBeyondTheLimits() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [{|#0:MambaLayer(N = 128, Expand = 32, ConvWidth = 100)|}]
        public partial class M { }
        """,
        Diag("SSMG0015").WithLocation(0).WithArguments("N", "128", "64"),
        Diag("SSMG0015").WithLocation(0).WithArguments("Expand", "32", "16"),
        Diag("SSMG0015").WithLocation(0).WithArguments("ConvWidth", "100", "64"));

    [Fact]
    public Task MambaDtRangeAndRepeat() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [{|#0:MambaLayer(DtMin = 0, Repeat = 0)|}]
        public partial class M { }
        """,
        Diag("SSMG0011").WithLocation(0).WithArguments("MambaLayer", "0"),
        Diag("SSMG0013").WithLocation(0).WithArguments("MambaLayer", "0", "0.1", "1E-20", "10000"));

    [Fact]
    public Task MixedLayersWithoutModelReportOnce() => Verify("""
        [S4DLayer(N = 4)]
        [MambaLayer]
        public partial class {|#0:M|} { }
        """, Diag("SSMG0007").WithLocation(0).WithArguments("M"));

    [Fact]
    public Task MambaLayersWithoutModel() => Verify("""
        [MambaLayer]
        public partial class {|#0:M|} { }
        """, Diag("SSMG0007").WithLocation(0).WithArguments("M"));

    [Fact]
    public Task AttentionHeadsMustDivideWithAnEvenHeadSize() => Verify("""
        [SsmModel(Input = 1, DModel = 12, Output = 2)]
        [{|#0:AttentionLayer(5)|}]
        [{|#1:AttentionLayer(Heads = 4)|}]
        [{|#2:AttentionLayer(Heads = 0, MlpRatio = 0)|}]
        public partial class M { }
        """,
        Diag("SSMG0018").WithLocation(0).WithArguments("5", "12"),
        Diag("SSMG0018").WithLocation(1).WithArguments("4", "12"),
        Diag("SSMG0006").WithLocation(2).WithArguments("AttentionLayer", "Heads", "0"),
        Diag("SSMG0006").WithLocation(2).WithArguments("AttentionLayer", "MlpRatio", "0"));

    [Fact]
    public Task RnnUnknownNonlinearityAndNegativeHidden() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [{|#0:RnnLayer(Hidden = -3, Nonlinearity = (Nonlinearity)7)|}]
        public partial class M { }
        """,
        Diag("SSMG0006").WithLocation(0).WithArguments("RnnLayer", "Hidden (or 0 for DModel)", "-3"),
        Diag("SSMG0019").WithLocation(0).WithArguments("7"));

    [Fact]
    public Task IdsStateSizeLimits() => Verify("""
        [SsmModel(Input = 1, DModel = 8, Output = 2)]
        [{|#0:IdsLayer(0)|}]
        [{|#1:IdsLayer(N = 300)|}]
        public partial class M { }
        """,
        Diag("SSMG0006").WithLocation(0).WithArguments("IdsLayer", "N", "0"),
        Diag("SSMG0015").WithLocation(1).WithArguments("N", "300", "256"));

    [Fact]
    public Task EveryLayerKindWithoutModelReportsOnce() => Verify("""
        [RnnLayer(4)]
        [IdsLayer(4)]
        [AttentionLayer(2)]
        public partial class {|#0:M|} { }
        """, Diag("SSMG0007").WithLocation(0).WithArguments("M"));
}
