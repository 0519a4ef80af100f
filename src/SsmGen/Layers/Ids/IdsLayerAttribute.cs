namespace SsmGen;

/// <summary>
/// An input-dependent transition SSM block (IDS4 of "The Illusion of State in State-Space Models"): pre-LayerNorm,
/// h_t = A(x_t) h_{t−1} + B x_t with A(x_t) a dense N×N matrix linear in x_t (identity plus noise/√N at init),
/// the readout C h_t + c, residual.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class IdsLayerAttribute : Attribute
{
    public IdsLayerAttribute() { }
    /// <param name="n">State size.</param>
    public IdsLayerAttribute(int n) => N = n;
    /// <summary>State size N (a compile-time constant).</summary>
    public int N { get; set; } = 16;
    /// <summary>How many consecutive copies of this block to stack.</summary>
    public int Repeat { get; set; } = 1;
}
