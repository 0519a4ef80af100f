namespace SsmGen;

/// <summary>The elementwise nonlinearity f of a simple recurrent layer h_t = f(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh).</summary>
public enum Nonlinearity
{
    /// <summary>f(s) = tanh(s) (PyTorch nn.RNN's default).</summary>
    Tanh = 0,
    /// <summary>f(s) = max(s, 0).</summary>
    Relu = 1,
}

/// <summary>
/// A simple nonlinear RNN block, the state-tracking baseline of "The Illusion of State in State-Space Models":
/// pre-LayerNorm, h_t = f(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh), out_proj Hidden→H, residual.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class RnnLayerAttribute : Attribute
{
    public RnnLayerAttribute() { }
    /// <param name="hidden">Hidden state size.</param>
    public RnnLayerAttribute(int hidden) => Hidden = hidden;
    /// <summary>Hidden state size (a compile-time constant); 0 means DModel.</summary>
    public int Hidden { get; set; }
    /// <summary>The elementwise nonlinearity f.</summary>
    public Nonlinearity Nonlinearity { get; set; } = Nonlinearity.Tanh;
    /// <summary>How many consecutive copies of this block to stack.</summary>
    public int Repeat { get; set; } = 1;
}
