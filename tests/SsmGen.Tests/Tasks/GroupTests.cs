using SsmGen.Tasks;

namespace SsmGen.Tests.Tasks;

/// <summary>The groups of the word problems: axioms, orders, solvability (derived series), and the data sets.</summary>
public class GroupTests
{
    public static TheoryData<string, int> Orders => new()
    {
        { "Z60", 60 }, { "A4xZ5", 60 }, { "A5", 60 }, { "S5", 120 }, { "S3", 6 }, { "A4", 12 }, { "Z2×Z3×S3", 36 }, { "Z1", 1 },
    };

    [Theory]
    [MemberData(nameof(Orders))]
    public void GroupAxiomsHoldAndTheOrderIsRight(string name, int order)
    {
        var g = FiniteGroup.Parse(name);
        Assert.Equal(order, g.Order);
        Assert.Equal(order, g.Labels.Distinct().Count());
        for (int a = 0; a < order; a++)
        {
            Assert.Equal(a, g.Multiply(g.Identity, a));
            Assert.Equal(a, g.Multiply(a, g.Identity));
            Assert.Equal(g.Identity, g.Multiply(a, g.Inverse(a)));
            Assert.Equal(g.Identity, g.Multiply(g.Inverse(a), a));
            // each row is a permutation of the elements (closure and cancellation)
            var row = new bool[order];
            for (int b = 0; b < order; b++)
            {
                int ab = g.Multiply(a, b);
                Assert.InRange(ab, 0, order - 1);
                Assert.False(row[ab], $"{name}: row {a} repeats {ab}");
                row[ab] = true;
                for (int c = 0; c < order; c++)
                    Assert.Equal(g.Multiply(ab, c), g.Multiply(a, g.Multiply(b, c)));
            }
        }
    }

    [Fact]
    public void PermutationProductsFollowComposition()
    {
        // independent oracle: compose the labels' one-line permutations by hand, (g·h)(i) = g(h(i))
        var s4 = FiniteGroup.Symmetric(4);
        int[] Perm(int e) => s4.Labels[e].Trim('(', ')').Split(' ').Select(int.Parse).ToArray();
        for (int a = 0; a < s4.Order; a++)
            for (int b = 0; b < s4.Order; b++)
            {
                int[] pa = Perm(a), pb = Perm(b);
                Assert.Equal(Enumerable.Range(0, 4).Select(i => pa[pb[i]]), Perm(s4.Multiply(a, b)));
            }
        Assert.Equal("(0 1 2 3)", s4.Labels[0]);
    }

    [Fact]
    public void SolvabilityFollowsTheDerivedSeries()
    {
        Assert.Equal([60], FiniteGroup.Parse("A5").DerivedSeriesOrders());      // perfect: A5′ = A5
        Assert.False(FiniteGroup.Parse("A5").IsSolvable);
        Assert.Equal([120, 60], FiniteGroup.Parse("S5").DerivedSeriesOrders()); // S5′ = A5, then stuck
        Assert.False(FiniteGroup.Parse("S5").IsSolvable);
        Assert.Equal([60, 4, 1], FiniteGroup.Parse("A4xZ5").DerivedSeriesOrders()); // (A4×Z5)′ = V4, V4′ = 1
        Assert.True(FiniteGroup.Parse("A4×Z5").IsSolvable);
        Assert.False(FiniteGroup.Parse("A4xZ5").IsAbelian);
        Assert.Equal([60, 1], FiniteGroup.Parse("Z60").DerivedSeriesOrders());
        Assert.True(FiniteGroup.Parse("Z60").IsAbelian);
    }

    [Theory]
    [InlineData("Q8")]
    [InlineData("Zx")]
    [InlineData("S9")]
    [InlineData("")]
    public void UnknownNamesThrowNamingThePart(string name)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => FiniteGroup.Parse(name));
        if (name.Length > 0 && name != "S9") Assert.Contains(name, e.Message);
    }

    [Fact]
    public void WordProblemsAreSeededDistinctAndDisjoint()
    {
        var g = FiniteGroup.Parse("Z60");
        var (train, val) = WordProblems.Generate(g, 6, 2000, 500, seed: 3);
        var (train2, _) = WordProblems.Generate(g, 6, 2000, 500, seed: 3);
        Assert.Equal(train.Tokens, train2.Tokens);
        var trainSet = Enumerable.Range(0, train.Count).Select(i => string.Join(",", train.Sequence(i).ToArray())).ToHashSet();
        Assert.Equal(2000, trainSet.Count);
        for (int i = 0; i < val.Count; i++) Assert.DoesNotContain(string.Join(",", val.Sequence(i).ToArray()), trainSet);
        // targets: prefix sums mod 60, computed independently
        for (int i = 0; i < train.Count; i++)
        {
            int sum = 0;
            for (int t = 0; t < 6; t++) { sum = (sum + train.Tokens[i * 6 + t]) % 60; Assert.Equal(sum, train.Targets[i * 6 + t]); }
        }
    }

    [Fact]
    public void ShortLengthsUseMostOfAllSequencesWithoutRepeats()
    {
        var g = FiniteGroup.Parse("A5");
        var (train, val) = WordProblems.Generate(g, 2, 3000, 600, seed: 1); // 3,600 = all of them
        var all = Enumerable.Range(0, train.Count).Select(i => train.Tokens[2 * i] * 60 + train.Tokens[2 * i + 1])
            .Concat(Enumerable.Range(0, val.Count).Select(i => val.Tokens[2 * i] * 60 + val.Tokens[2 * i + 1])).ToHashSet();
        Assert.Equal(3600, all.Count);
        Assert.Throws<ArgumentException>(() => WordProblems.Generate(g, 2, 3600, 1, seed: 1));
    }

    [Fact]
    public void TheTrainingStreamNeverYieldsAHeldOutWord()
    {
        var g = FiniteGroup.Parse("S3");
        var (_, heldOut) = WordProblems.Generate(g, 3, 0, 100, seed: 2); // 100 of the 216 words
        var held = Enumerable.Range(0, heldOut.Count).Select(i => string.Join(",", heldOut.Sequence(i).ToArray())).ToHashSet();
        var stream = new WordProblemStream(g, 3, heldOut, seed: 5);
        var again = new WordProblemStream(g, 3, heldOut, seed: 5);
        var tokens = new int[3]; var targets = new int[3]; var t2 = new int[3]; var y2 = new int[3];
        var seen = new HashSet<string>();
        for (int i = 0; i < 5000; i++)
        {
            stream.Next(tokens, targets);
            again.Next(t2, y2);
            Assert.Equal(tokens, t2);                               // seeded: reproducible
            string key = string.Join(",", tokens);
            Assert.DoesNotContain(key, held);
            seen.Add(key);
            Assert.Equal(g.Multiply(g.Multiply(tokens[0], tokens[1]), tokens[2]), targets[2]);
        }
        Assert.Equal(216 - 100, seen.Count);                          // every other word turns up
    }

    [Fact]
    public void AStreamRefusesAMismatchedOrExhaustiveHeldOutSet()
    {
        var g = FiniteGroup.Parse("Z3");
        var (_, all) = WordProblems.Generate(g, 2, 0, 9, seed: 1);        // every word of length 2
        Assert.Contains("nothing is left", Assert.Throws<ArgumentException>(() => new WordProblemStream(g, 2, all, 1)).Message);
        var (_, some) = WordProblems.Generate(g, 3, 0, 5, seed: 1);
        Assert.Contains("length 3", Assert.Throws<ArgumentException>(() => new WordProblemStream(g, 2, some, 1)).Message);
    }
}
