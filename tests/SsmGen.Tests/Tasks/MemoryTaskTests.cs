using SsmGen.Tasks;
using SsmGen.Training;

namespace SsmGen.Tests.Tasks;

/// <summary>The memory tasks' generators: seeded, distinct, disjoint splits, and answers a solver recovers from the input alone.</summary>
public class MemoryTaskTests
{
    public static TheoryData<string> Tasks => new() { "copy", "copy-tight", "recall", "recall-long" };

    private static MemoryTask Make(string name) => name switch
    {
        "copy" => new SelectiveCopying(length: 40, dataTokens: 6, symbols: 8),
        "copy-tight" => new SelectiveCopying(length: 11, dataTokens: 4, symbols: 3),
        "recall" => new AssociativeRecall(length: 24, pairs: 6, queries: 8, keys: 16, values: 16),
        "recall-long" => new AssociativeRecall(length: 96, pairs: 4, queries: 4, keys: 4, values: 8),
        _ => throw new ArgumentException(name),
    };

    /// <summary>
    /// Reads the answers off a sequence using only the task's documented format — written apart from the generators:
    /// selective copying outputs, after the marker, the non-noise tokens before it in order; associative recall
    /// outputs, at each query, the value that followed that key in the pair section.
    /// </summary>
    private static int[] Solve(MemoryTask task, ReadOnlySpan<int> tokens)
    {
        var answers = new int[tokens.Length];
        Array.Fill(answers, Losses.Ignored);
        switch (task)
        {
            case SelectiveCopying c:
            {
                int marker = tokens.IndexOf(c.Marker);
                var data = new List<int>();
                for (int t = 0; t < marker; t++) if (tokens[t] != c.Noise) data.Add(tokens[t]);
                for (int i = 0; i < data.Count; i++) answers[marker + 1 + i] = data[i];
                Assert.All(tokens[(marker + 1)..].ToArray(), v => Assert.Equal(c.Blank, v));
                break;
            }
            case AssociativeRecall r:
            {
                var values = new Dictionary<int, int>();
                int t = 0;
                for (; t + 1 < tokens.Length && tokens[t] < r.Keys && tokens[t + 1] >= r.Keys && tokens[t + 1] < r.Noise; t += 2)
                    values[tokens[t]] = tokens[t + 1] - r.Keys;
                for (int q = tokens.Length - r.Queries; q < tokens.Length; q++) answers[q] = values[tokens[q]];
                break;
            }
        }
        return answers;
    }

    [Theory]
    [MemberData(nameof(Tasks))]
    public void AnswersAreRecoverableFromTheInputAlone(string name)
    {
        var task = Make(name);
        var (train, heldOut) = MemoryTasks.Generate(task, 200, 50, seed: 11);
        foreach (var set in new[] { train, heldOut })
            for (int i = 0; i < set.Count; i++)
            {
                var tokens = set.Sequence(i);
                Assert.All(tokens.ToArray(), v => Assert.InRange(v, 0, task.InputVocab - 1));
                var targets = set.Targets.AsSpan(i * task.Length, task.Length).ToArray();
                Assert.Equal(Solve(task, tokens), targets);
                Assert.Equal(task.Answers, targets.Count(t => t != Losses.Ignored));
                Assert.All(targets.Where(t => t != Losses.Ignored), t => Assert.InRange(t, 0, task.Classes - 1));
            }
    }

    [Theory]
    [MemberData(nameof(Tasks))]
    public void SetsAreSeededDistinctAndDisjoint(string name)
    {
        var task = Make(name);
        var (train, heldOut) = MemoryTasks.Generate(task, 300, 100, seed: 5);
        var (again, againHeldOut) = MemoryTasks.Generate(task, 300, 100, seed: 5);
        var (other, _) = MemoryTasks.Generate(task, 300, 100, seed: 6);
        Assert.Equal(train.Tokens, again.Tokens);
        Assert.Equal(heldOut.Targets, againHeldOut.Targets);
        Assert.NotEqual(train.Tokens, other.Tokens);
        var seen = new HashSet<string>();
        for (int i = 0; i < train.Count; i++) Assert.True(seen.Add(string.Join(",", train.Sequence(i).ToArray())), $"training sequence {i} repeats");
        for (int i = 0; i < heldOut.Count; i++) Assert.True(seen.Add(string.Join(",", heldOut.Sequence(i).ToArray())), $"held-out sequence {i} is also in training or repeats");
    }

    [Fact]
    public void TheDataTokensLandAnywhereInTheBody()
    {
        // every body position carries data in some sequence, and k tokens scattered at random rarely sit together
        var task = new SelectiveCopying(length: 30, dataTokens: 4, symbols: 8);
        var (train, _) = MemoryTasks.Generate(task, 2000, 0, seed: 3);
        var used = new int[task.Length];
        for (int i = 0; i < train.Count; i++)
            for (int t = 0; t < task.Length; t++) if (train.Sequence(i)[t] < task.Symbols) used[t]++;
        int body = task.Length - task.DataTokens - 1;
        Assert.All(used[..body], n => Assert.InRange(n, 2000 * 4 / body / 2, 2000 * 4 / body * 2));
    }

    [Fact]
    public void LongSequencesAndLargeVocabulariesAreDrawnToo()
    {
        // scratch beyond the stack limit (a 200,000-step body, 5,000 keys) goes to the heap; the solver still agrees
        foreach (var task in new MemoryTask[] { new SelectiveCopying(200_000, 6, 8), new AssociativeRecall(12_000, 3_000, 50, 5_000, 16) })
        {
            var (train, _) = MemoryTasks.Generate(task, 2, 0, seed: 4);
            for (int i = 0; i < train.Count; i++)
                Assert.Equal(Solve(task, train.Sequence(i)), train.Targets.AsSpan(i * task.Length, task.Length).ToArray());
        }
    }

    [Fact]
    public void ImpossibleConfigurationsAreRefusedByName()
    {
        Assert.Contains("cannot hold 5 data tokens", Assert.Throws<ArgumentOutOfRangeException>(() => new SelectiveCopying(10, 5, 4)).Message);
        Assert.Contains("at least 2 symbols", Assert.Throws<ArgumentOutOfRangeException>(() => new SelectiveCopying(10, 2, 1)).Message);
        Assert.Contains("distinct keys", Assert.Throws<ArgumentOutOfRangeException>(() => new AssociativeRecall(40, 8, 4, 6, 8)).Message);
        Assert.Contains("cannot hold 8 pairs", Assert.Throws<ArgumentOutOfRangeException>(() => new AssociativeRecall(18, 8, 4, 16, 8)).Message);
        // 3 symbols, 1 data token among 2 body positions: 6 distinct sequences, not 10
        Assert.Contains("distinct sequences", Assert.Throws<ArgumentException>(() => MemoryTasks.Generate(new SelectiveCopying(4, 1, 3), 8, 2, 1)).Message);
    }
}
