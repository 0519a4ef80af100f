namespace SsmGen.Tests.Reference;

/// <summary>Small dense matrices, written out plainly, for expectations computed the long way.</summary>
internal static class Dense
{
    /// <summary>The n × n identity times <paramref name="scale"/>.</summary>
    public static double[,] Identity(int n, double scale = 1)
    {
        var m = new double[n, n];
        for (int i = 0; i < n; i++) m[i, i] = scale;
        return m;
    }

    /// <summary>a·b for square matrices.</summary>
    public static double[,] Multiply(double[,] a, double[,] b)
    {
        int n = a.GetLength(0);
        var c = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                for (int k = 0; k < n; k++) c[i, j] += a[i, k] * b[k, j];
        return c;
    }
}
