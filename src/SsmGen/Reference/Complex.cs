using System.Numerics;

namespace SsmGen.Reference;

/// <summary>A plain complex number over any IEEE float type, for the reference S4D.</summary>
public readonly record struct Complex<T>(T Re, T Im) where T : IFloatingPointIeee754<T>
{
    public static Complex<T> operator +(Complex<T> a, Complex<T> b) => new(a.Re + b.Re, a.Im + b.Im);
    public static Complex<T> operator -(Complex<T> a, Complex<T> b) => new(a.Re - b.Re, a.Im - b.Im);
    public static Complex<T> operator -(Complex<T> a) => new(-a.Re, -a.Im);
    public static Complex<T> operator *(Complex<T> a, Complex<T> b) => new(a.Re * b.Re - a.Im * b.Im, a.Re * b.Im + a.Im * b.Re);
    public static Complex<T> operator *(T s, Complex<T> a) => new(s * a.Re, s * a.Im);
    public static Complex<T> operator /(Complex<T> a, Complex<T> b)
    {
        T d = b.Re * b.Re + b.Im * b.Im;
        return new((a.Re * b.Re + a.Im * b.Im) / d, (a.Im * b.Re - a.Re * b.Im) / d);
    }
    public static Complex<T> Real(T x) => new(x, T.Zero);
    public static Complex<T> One => new(T.One, T.Zero);
    public Complex<T> Conj => new(Re, -Im);
    public static Complex<T> Exp(Complex<T> z)
    {
        T m = T.Exp(z.Re);
        return new(m * T.Cos(z.Im), m * T.Sin(z.Im));
    }
}
