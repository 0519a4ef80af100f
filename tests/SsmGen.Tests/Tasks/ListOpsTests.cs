using SsmGen.Tasks;
using Xunit.Abstractions;

namespace SsmGen.Tests.Tasks;

/// <summary>ListOps data: every label against an independent parser, the length window, distinct splits, seeding.</summary>
public class ListOpsTests(ITestOutputHelper output)
{
    private static int[] Parse(string text) => text.Split(' ').Select(w => w switch
    {
        "[MAX" => ListOps.Max,
        "[MIN" => ListOps.Min,
        "[MED" => ListOps.Median,
        "[SM" => ListOps.SumMod,
        "]" => ListOps.Close,
        _ => ListOps.FirstDigit + int.Parse(w),
    }).ToArray();

    [Theory]
    [InlineData("[MAX 2 9 [MIN 4 7 ] 0 ]", 9)]
    [InlineData("[MED 1 2 3 4 ]", 2)]          // the mean of the middle two, 2.5, truncated
    [InlineData("[MED 9 1 5 ]", 5)]
    [InlineData("[SM 5 6 7 ]", 8)]
    [InlineData("[MIN [SM 9 9 ] [MAX 3 1 ] ]", 3)]
    [InlineData("7", 7)]
    public void TheEvaluatorFollowsTheTaskDefinition(string text, int value)
    {
        Assert.Equal(value, ListOps.Evaluate(Parse(text)));
        Assert.Equal(text, ListOps.ToText(Parse(text)));
    }

    [Theory]
    [InlineData("[MAX 2 9")]        // never closed
    [InlineData("[MAX 2 ]")]        // one argument
    [InlineData("] 3")]
    [InlineData("[MAX 2 3 ] 4")]    // tokens after the end
    public void AMalformedExpressionIsRefused(string text) => Assert.Throws<FormatException>(() => ListOps.Evaluate(Parse(text)));

    [Fact]
    public void EveryLabelIsTheExpressionsValueAndTheSplitsShareNothing()
    {
        var options = new ListOpsOptions(MinLength: 20, MaxLength: 200);
        var (train, validation, test) = ListOps.Generate(options, 2000, 300, 300, seed: 4);
        var all = train.Concat(validation).Concat(test).ToArray();
        Assert.Equal(2600, all.Length);
        Assert.All(all, e =>
        {
            Assert.InRange(e.Tokens.Length, options.MinLength + 1, options.MaxLength - 1);
            Assert.Equal(ListOps.Evaluate(e.Tokens), e.Label);
        });
        Assert.Equal(all.Length, all.Select(e => ListOps.ToText(e.Tokens)).Distinct().Count());
        var classes = all.GroupBy(e => e.Label).ToDictionary(g => g.Key, g => g.Count());
        output.WriteLine($"classes: {string.Join(", ", Enumerable.Range(0, 10).Select(c => $"{c}: {classes.GetValueOrDefault(c)}"))}; mean length {all.Average(e => e.Tokens.Length):F0}");
        Assert.Equal(10, classes.Count);
        // the same seed gives the same sets; another seed other ones
        var again = ListOps.Generate(options, 2000, 300, 300, seed: 4).Train;
        Assert.True(train.Zip(again).All(p => p.First.Tokens.SequenceEqual(p.Second.Tokens) && p.First.Label == p.Second.Label));
        var other = ListOps.Generate(options, 200, 0, 0, seed: 5).Train;
        Assert.NotEqual(ListOps.ToText(train[0].Tokens), ListOps.ToText(other[0].Tokens));
    }

    [Fact]
    public void PaddingGoesInFrontSoTheExpressionEndsOnTheLastStep()
    {
        int[] tokens = Parse("[SM 5 6 7 ]");
        var padded = new int[8];
        ListOps.PadLeft(tokens, padded, 8);
        Assert.Equal(new[] { ListOps.Pad, ListOps.Pad, ListOps.Pad }, padded[..3]);
        Assert.Equal(8, ListOps.Evaluate(padded));
        Assert.Throws<ArgumentException>(() => ListOps.PadLeft(tokens, new int[4], 4));
    }

    [Fact]
    public void ImpossibleRequestsAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ListOps.Generate(new ListOpsOptions(MinLength: 10, MaxLength: 11), 1, 0, 0, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => ListOps.Generate(new ListOpsOptions(MaxArguments: 1), 1, 0, 0, 1));
        // one-token expressions: only 10 exist
        var e = Assert.Throws<InvalidOperationException>(() => ListOps.Generate(new ListOpsOptions(MinLength: 0, MaxLength: 2), 11, 0, 0, 1));
        Assert.Contains("distinct expressions", e.Message);
    }
}
