using System.Management.Automation;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace IoTHubMqtt.Infrastructure;

/// <summary>
/// Loads the module's private dependencies (IoTHubMqtt.Core, MQTTnet, …) from <c>dependencies/</c> into an
/// isolated <see cref="AssemblyLoadContext"/>, so the module imports beside other modules that carry other
/// versions of the same libraries. Only assemblies named <c>IoTHubMqtt.*</c> are handed to the default context;
/// everything they need is then resolved inside the private context.
/// See https://learn.microsoft.com/powershell/scripting/dev-cross-plat/resolving-dependency-conflicts
/// </summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer
{
    private static readonly string DependencyDirectory =
        Path.Combine(Path.GetDirectoryName(typeof(ModuleInitializer).Assembly.Location) ?? ".", "dependencies");

    private static readonly Lazy<DependencyLoadContext> Context = new(() => new DependencyLoadContext(DependencyDirectory));
    private static int registered;

    public void OnImport() => Register();

    /// <summary>Idempotent; also called from the cmdlet base class so a cmdlet works before OnImport has run.</summary>
    internal static void Register()
    {
        if (Interlocked.Exchange(ref registered, 1) == 0)
        {
            AssemblyLoadContext.Default.Resolving += ResolveFromDefault;
        }
    }

    private static Assembly? ResolveFromDefault(AssemblyLoadContext defaultContext, AssemblyName name)
    {
        if (name.Name is null || !name.Name.StartsWith("IoTHubMqtt.", StringComparison.Ordinal))
        {
            return null;
        }

        return File.Exists(Path.Combine(DependencyDirectory, name.Name + ".dll")) ? Context.Value.LoadFromAssemblyName(name) : null;
    }

    private sealed class DependencyLoadContext(string directory) : AssemblyLoadContext("IoTHubMqtt", isCollectible: false)
    {
        /// <summary>The process's platform assemblies (the runtime and the host's own) by name: path.</summary>
        private static readonly Lazy<Dictionary<string, string>> Platform = new(() =>
            ((AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") as string) ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
                .GroupBy(Path.GetFileNameWithoutExtension, StringComparer.OrdinalIgnoreCase)
                .ToDictionary(g => g.Key!, g => g.First(), StringComparer.OrdinalIgnoreCase));

        protected override Assembly? Load(AssemblyName assemblyName)
        {
            // An assembly the runtime or host already provides at the version asked for (System.Text.Json,
            // System.Diagnostics.DiagnosticSource under a newer PowerShell) comes from there, so that its types are the
            // same ones the cmdlets and PowerShell see; a private copy only when the platform's is older or missing.
            if (ProvidedByPlatform(assemblyName))
            {
                return null;
            }

            var path = FindManaged(assemblyName.Name + ".dll");
            return path is null ? null : LoadFromAssemblyPath(path);
        }

        private static bool ProvidedByPlatform(AssemblyName wanted)
        {
            if (wanted.Name is null || !Platform.Value.TryGetValue(wanted.Name, out var path))
            {
                return false;
            }

            try
            {
                return AssemblyName.GetAssemblyName(path).Version >= (wanted.Version ?? new Version(0, 0));
            }
            catch (Exception ex) when (ex is IOException or BadImageFormatException or UnauthorizedAccessException)
            {
                return false;
            }
        }

        protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
        {
            foreach (var candidate in NativeNames(unmanagedDllName))
            {
                foreach (var rid in RuntimeIds())
                {
                    var path = Path.Combine(directory, "runtimes", rid, "native", candidate);
                    if (File.Exists(path))
                    {
                        return LoadUnmanagedDllFromPath(path);
                    }
                }
            }

            return IntPtr.Zero;
        }

        private string? FindManaged(string fileName)
        {
            // Runtime-specific builds first (System.IO.Ports has unix and win implementations), then the plain one.
            foreach (var rid in RuntimeIds())
            {
                var libRoot = Path.Combine(directory, "runtimes", rid, "lib");
                if (Directory.Exists(libRoot))
                {
                    foreach (var tfm in Directory.GetDirectories(libRoot).OrderByDescending(d => d, StringComparer.Ordinal))
                    {
                        var path = Path.Combine(tfm, fileName);
                        if (File.Exists(path))
                        {
                            return path;
                        }
                    }
                }
            }

            var plain = Path.Combine(directory, fileName);
            return File.Exists(plain) ? plain : null;
        }

        private static IEnumerable<string> RuntimeIds()
        {
            var arch = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
            if (OperatingSystem.IsWindows())
            {
                yield return $"win-{arch}";
                yield return "win";
            }
            else if (OperatingSystem.IsMacOS())
            {
                yield return $"osx-{arch}";
                yield return "osx";
                yield return "unix";
            }
            else
            {
                yield return $"linux-{arch}";
                yield return "linux";
                yield return "unix";
            }
        }

        private static IEnumerable<string> NativeNames(string name)
        {
            yield return name;
            if (OperatingSystem.IsWindows())
            {
                yield return name + ".dll";
            }
            else
            {
                var prefix = name.StartsWith("lib", StringComparison.Ordinal) ? name : "lib" + name;
                yield return prefix + (OperatingSystem.IsMacOS() ? ".dylib" : ".so");
            }
        }
    }
}
