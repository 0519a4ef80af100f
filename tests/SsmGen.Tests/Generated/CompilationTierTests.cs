using System.Reflection;

namespace SsmGen.Tests.Generated;

/// <summary>
/// The methods a pass calls once (a block's forward and backward, the passes over all blocks) are compiled optimized at
/// their first call: tiered, they were recompiled on a background thread some 60 steps into a run, taking a core from
/// the parallel passes while it ran (docs/benchmarks.md, issue 24).
/// </summary>
public class CompilationTierTests
{
    [Theory]
    [InlineData(typeof(SeqClassifier))]
    [InlineData(typeof(AllKinds))]
    public void PassMethodsAreOptimizedAtTheirFirstCall(Type model)
    {
        const BindingFlags all = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
        var methods = model.GetMethods(all).Where(m => m.DeclaringType == model).ToList();
        var passes = methods.Where(m => m.Name is "RunLayers" or "Backward"
            || (m.Name.StartsWith("Layer", StringComparison.Ordinal) && (m.Name.EndsWith("Forward", StringComparison.Ordinal) || m.Name.EndsWith("Backward", StringComparison.Ordinal)))).ToList();
        var forward = methods.Where(m => m.Name == "Forward").ToList();
        Assert.NotEmpty(forward);
        Assert.True(passes.Count >= 4, $"found only {string.Join(", ", passes.Select(m => m.Name))}");
        // the Forward overload for the other kind of input only throws: it stays tiered
        Assert.Contains(forward, m => Optimized(m));
        foreach (var m in passes) Assert.True(Optimized(m), $"{model.Name}.{m.Name} is not marked AggressiveOptimization");
    }

    private static bool Optimized(MethodInfo m) => (m.MethodImplementationFlags & MethodImplAttributes.AggressiveOptimization) != 0;
}
