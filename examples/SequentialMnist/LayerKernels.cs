using SsmGen.Reference;

namespace SsmGen.Examples.Mnist;

/// <summary>
/// The convolution kernel K (H, <paramref name="length"/>) of an S4D or S4 layer, computed by the double reference
/// from the model's parameters; null for a layer of another kind.
/// </summary>
public static class LayerKernels
{
    public static double[]? Of(ISsmModel model, int layer, int length)
    {
        int h = model.Config.DModel;
        var p = model.Parameters.ToArray().Select(v => (double)v).ToArray();
        var table = model.ParameterTable.ToDictionary(t => t.Name);
        Span<double> Get(string name) => table.TryGetValue($"layers.{layer}.mixer.{name}", out var t) ? p.AsSpan(t.Offset, t.Length) : Span<double>.Empty;
        return model.Config.Layers[layer] switch
        {
            S4DLayerConfig l => new S4DReference<double>(h, l.N, l.Discretization)
                .Kernel(new S4DReference<double>.Params(Get("log_dt"), Get("log_A_real"), Get("A_imag"), Get("B"), Get("C"), Get("D")), length),
            S4LayerConfig l => new S4Reference<double>(h, l.N, l.KernelLength)
                .Kernel(new S4Reference<double>.Params(Get("log_dt"), Get("log_A_real"), Get("A_imag"), Get("P"), Get("B"), Get("C"), Get("D")), length),
            _ => null,
        };
    }
}
