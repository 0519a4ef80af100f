namespace SsmGen;

/// <summary>
/// A transformer block, the attention baseline of "The Illusion of State in State-Space Models": pre-LayerNorm,
/// causal multi-head self-attention with rotary positions, residual; pre-LayerNorm, MLP (H → MlpRatio·H, GELU, → H),
/// residual. Its step keeps a key/value cache of up to the model's maxLength positions.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class AttentionLayerAttribute : Attribute
{
    public AttentionLayerAttribute() { }
    /// <param name="heads">Number of heads; must divide DModel with an even head size.</param>
    public AttentionLayerAttribute(int heads) => Heads = heads;
    /// <summary>Number of heads; must divide DModel with an even head size.</summary>
    public int Heads { get; set; } = 4;
    /// <summary>Width of the MLP as a multiple of DModel.</summary>
    public int MlpRatio { get; set; } = 4;
    /// <summary>How many consecutive copies of this block to stack.</summary>
    public int Repeat { get; set; } = 1;
}
