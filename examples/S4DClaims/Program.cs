using System.Globalization;
using SsmGen.Examples;
using SsmGen.Examples.S4DClaims;

const string Usage = """
    S4DClaims: the claims of "On the Parameterization and Initialization of Diagonal State Space Models", measured.

      dotnet run -c Release --project examples/S4DClaims -- theorem3 [options]
        The S4D-LegS basis (the normal part of HiPPO-LegS with B/2) against S4-LegS's (the full matrix) as N grows,
        both discretized by the bilinear rule with the same step: the relative distance of their first basis
        functions over the window, its rate in N, a CSV and two plots.
          --sizes LIST      state sizes N (default 16,32,64,128,256,512)
          --dt X            step Δ (default 0.01)
          --length L        steps compared (default 1000, so t = l·Δ runs to 10)
          --functions K     basis functions compared, the first K of each (default 8)
          --out DIR         where the CSV and plots go (default docs/s4d-claims)

      dotnet run -c Release --project examples/S4DClaims -- ablations [options]
        psMNIST with every S4D initialization (Lin, Inv, LegS, Real, Random) × discretization (ZOH, bilinear) × B
        trained or fixed at 1, on 2 blocks (H = 64, N = 64); one JSON line per run (a stopped sweep resumes), and a
        table of means and ranges over the seeds.
          --epochs E        epochs per run (default 3)
          --seeds LIST      seeds (default 1,2)
          --train-limit N   train on the first N training digits only
          --out DIR         runs.jsonl and table.md (default docs/s4d-claims/ablations-psmnist)
          --data DIR        MNIST cache (default .cache/mnist)

      dotnet run -c Release --project examples/S4DClaims -- ablations-listops [options]
        ListOps at a size this machine trains in minutes: every init (ZOH, trained B), and Lin with bilinear and with
        B fixed, on the quick stack reading tokens; one JSON line per run (resumable), the same table as psMNIST's.
          --epochs E        epochs per run (default 10)
          --seeds LIST      seeds (default 1,2,3)
          --train N         training expressions (default 10000; 1,000 more are held out)
          --min-length A, --max-length B   expressions of A + 1 to B − 1 tokens (default 15, 128)
          --out DIR         runs.jsonl and table.md (default docs/s4d-claims/ablations-listops)

      dotnet run -c Release --project examples/S4DClaims -- kernels [options]
        The first layer's kernels of the Lin, Inv and LegS inits (ZOH, trained B) at initialization and after an
        ablation run on psMNIST (the same recipe; the first seed given), plotted side by side.
          --epochs E, --seeds LIST, --train-limit N, --data DIR   as for ablations
          --out DIR         learned-kernels.png and .md (default docs/s4d-claims)
    """;

if (args.Length == 0 || args[0] is not ("theorem3" or "ablations" or "ablations-listops" or "kernels"))
{
    bool help = args.Length > 0 && args[0] is "--help" or "-h";
    (help ? Console.Out : Console.Error).WriteLine(Usage);
    return help ? 0 : 2;
}
return args[0] switch
{
    "theorem3" => RunTheorem3(args[1..]),
    "ablations" => RunAblations(args[1..], kernels: false),
    "ablations-listops" => RunListOpsAblations(args[1..]),
    _ => RunAblations(args[1..], kernels: true),
};

int RunTheorem3(string[] rest)
{
    var options = new Theorem3.Options();
    var outcome = CommandLine.Read(rest, Console.Out, Console.Error, Usage, (name, next) =>
    {
        switch (name)
        {
            case "--sizes":
                var sizes = next()?.Split(',').Select(s => int.TryParse(s, out int v) && v >= 2 && v % 2 == 0 ? v : -1).ToArray();
                if (sizes is null || sizes.Length == 0 || sizes.Contains(-1)) return false;
                options = options with { Sizes = sizes };
                return true;
            case "--dt":
                if (!double.TryParse(next(), CultureInfo.InvariantCulture, out double dt) || !(dt > 0)) return false;
                options = options with { Dt = dt };
                return true;
            case "--length":
                if (!int.TryParse(next(), out int length) || length < 2) return false;
                options = options with { Length = length };
                return true;
            case "--functions":
                if (!int.TryParse(next(), out int k) || k < 1) return false;
                options = options with { Functions = k };
                return true;
            case "--out":
                if (DirectoryArgument(next()) is not string dir) return false;
                options = options with { OutDir = dir };
                return true;
            default:
                return false;
        }
    });
    if (outcome != CommandLineOutcome.Run) return outcome == CommandLineOutcome.Help ? 0 : 2;
    if (options.Functions > options.Sizes.Min())
    {
        Console.Error.WriteLine($"--functions {options.Functions} exceeds the smallest N ({options.Sizes.Min()}).");
        return 2;
    }
    Theorem3.Run(options);
    return 0;
}

int RunAblations(string[] rest, bool kernels)
{
    var options = kernels ? new Ablations.Options { OutDir = Path.Combine("docs", "s4d-claims") } : new Ablations.Options();
    var outcome = CommandLine.Read(rest, Console.Out, Console.Error, Usage, (name, next) =>
    {
        switch (name)
        {
            case "--epochs":
                if (!int.TryParse(next(), out int e) || e < 1) return false;
                options = options with { Epochs = e };
                return true;
            case "--seeds":
                if (Seeds(next()) is not ulong[] seeds) return false;
                options = options with { Seeds = seeds };
                return true;
            case "--train-limit":
                if (!int.TryParse(next(), out int limit) || limit < options.Batch) return false;
                options = options with { TrainLimit = limit };
                return true;
            case "--out":
            case "--data":
                if (DirectoryArgument(next()) is not string dir) return false;
                options = name == "--out" ? options with { OutDir = dir } : options with { DataDir = dir };
                return true;
            default:
                return false;
        }
    });
    if (outcome != CommandLineOutcome.Run) return outcome == CommandLineOutcome.Help ? 0 : 2;
    return kernels ? LearnedKernels.Execute(options) : Ablations.Execute(options);
}

int RunListOpsAblations(string[] rest)
{
    var options = new ListOpsAblations.Options();
    var outcome = CommandLine.Read(rest, Console.Out, Console.Error, Usage, (name, next) =>
    {
        int Int() => int.TryParse(next(), out int v) ? v : -1;
        switch (name)
        {
            case "--epochs": { int e = Int(); options = options with { Epochs = e }; return e >= 1; }
            case "--train": { int t = Int(); options = options with { Train = t }; return t >= options.Batch; }
            case "--min-length": { int a = Int(); options = options with { MinLength = a }; return a >= 0; }
            case "--max-length": { int b = Int(); options = options with { MaxLength = b }; return b is > 2 and <= 4096; }
            case "--out":
                if (DirectoryArgument(next()) is not string dir) return false;
                options = options with { OutDir = dir };
                return true;
            case "--seeds":
                var seeds = Seeds(next());
                if (seeds is not null) options = options with { Seeds = seeds };
                return seeds is not null;
            default:
                return false;
        }
    });
    if (outcome != CommandLineOutcome.Run) return outcome == CommandLineOutcome.Help ? 0 : 2;
    if (options.MaxLength <= options.MinLength + 1)
    {
        Console.Error.WriteLine("--max-length must exceed --min-length + 1.");
        return 2;
    }
    return ListOpsAblations.Execute(options);
}

// Distinct positive seeds, comma-separated; null when the list is not one.
static ulong[]? Seeds(string? list)
{
    var seeds = list?.Split(',').Select(s => ulong.TryParse(s, out ulong v) ? v : 0).ToArray();
    return seeds is null || seeds.Length == 0 || seeds.Contains(0UL) || seeds.Distinct().Count() != seeds.Length ? null : seeds;
}

// A directory argument; null when it is missing or blank.
static string? DirectoryArgument(string? dir) => string.IsNullOrWhiteSpace(dir) ? null : dir;
