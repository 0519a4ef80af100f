namespace SsmGen.Generators.Tests;

/// <summary>
/// The generated C# and CUDA of one small model per layer kind, kept under Snapshots/: a change to an emitter shows
/// as a reviewable diff of what users compile. A mismatch writes the new text beside the snapshot
/// (*.received.txt) and fails; SSMGEN_UPDATE_SNAPSHOTS=1 accepts it.
/// </summary>
public class SnapshotTests
{
    public static TheoryData<string, string> Models => new()
    {
        { "S4D", "[SsmModel(Input = 2, DModel = 4, Output = 3)] [S4DLayer(N = 4, TrainB = true, Dropout = 0.1)] [S4DLayer(N = 6, Init = S4DInit.Inv, Discretization = Discretization.Bilinear)]" },
        { "Mamba", "[SsmModel(Vocab = 7, DModel = 4, Output = 7, Pooling = Pooling.None)] [MambaLayer(N = 4, Expand = 2, ConvWidth = 3, Norm = NormKind.LayerNorm)]" },
        { "SignedMamba", "[SsmModel(Vocab = 7, DModel = 4, Output = 7, Pooling = Pooling.None)] [MambaLayer(N = 4, Expand = 2, ConvWidth = 3, Eigenvalues = MambaEigenvalues.PositiveAndNegative)]" },
        { "Rnn", "[SsmModel(Input = 2, DModel = 4, Output = 3, Pooling = Pooling.Last)] [RnnLayer(6, Nonlinearity = Nonlinearity.Relu)]" },
        { "Ids", "[SsmModel(Vocab = 5, DModel = 4, Output = 5, Pooling = Pooling.None)] [IdsLayer(3)]" },
        { "Delta", "[SsmModel(Vocab = 5, DModel = 4, Output = 5, Pooling = Pooling.None)] [DeltaLayer(Heads = 2, HouseholderSteps = 2)]" },
        { "Attention", "[SsmModel(Vocab = 5, DModel = 8, Output = 5, Pooling = Pooling.None)] [AttentionLayer(Heads = 2, MlpRatio = 2)]" },
        { "S4", "[SsmModel(Input = 2, DModel = 4, Output = 3)] [S4Layer(N = 4, KernelLength = 64, Dropout = 0.1)]" },
    };

    [Theory]
    [MemberData(nameof(Models))]
    public void GeneratedCodeMatchesItsSnapshot(string kind, string attributes)
    {
        var (_, diagnostics, run) = GeneratorHarness.Run($"using SsmGen;\nnamespace Snapshots;\n{attributes}\npublic partial class {kind}Model {{ }}\n");
        Assert.Empty(diagnostics);
        var mismatches = new List<string>();
        foreach (var tree in run.GeneratedTrees)
        {
            string file = Path.GetFileName(tree.FilePath).Replace("Snapshots.", "");   // e.g. S4DModel.g.cs
            Compare(file + ".txt", tree.ToString(), mismatches);
        }
        Assert.True(mismatches.Count == 0, "generated code differs from its snapshot (review the *.received.txt files; SSMGEN_UPDATE_SNAPSHOTS=1 accepts them): " + string.Join(", ", mismatches));
    }

    private static void Compare(string name, string actual, List<string> mismatches)
    {
        string path = Path.Combine(SnapshotDirectory(), name);
        string received = Path.ChangeExtension(path, ".received.txt");
        actual = actual.Replace("\r\n", "\n");
        if (Environment.GetEnvironmentVariable("SSMGEN_UPDATE_SNAPSHOTS") == "1")
        {
            File.WriteAllText(path, actual);
            File.Delete(received);
            return;
        }
        if (File.Exists(path) && File.ReadAllText(path).Replace("\r\n", "\n") == actual)
        {
            File.Delete(received);
            return;
        }
        File.WriteAllText(received, actual);
        mismatches.Add(name);
    }

    // Found from the test binary (tests/SsmGen.Generators.Tests/bin/...) upwards, not from [CallerFilePath]: CI builds
    // with ContinuousIntegrationBuild, which maps source paths to /_/ and would send the comparison to a folder that
    // does not exist.
    private static string SnapshotDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "SsmGen.Generators.Tests.csproj")))
                return Path.Combine(dir.FullName, "Snapshots");
        throw new DirectoryNotFoundException("no SsmGen.Generators.Tests.csproj above " + AppContext.BaseDirectory);
    }
}
