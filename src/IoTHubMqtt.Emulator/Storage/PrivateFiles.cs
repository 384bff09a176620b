using System.Runtime.Versioning;
using System.Security.AccessControl;
using System.Security.Principal;

namespace IoTHubMqtt.Emulator.Storage;

/// <summary>
/// Files and folders only their owner can use: 0600 files and 0700 folders on Unix (set when created, so there is no
/// moment in which another user could open them), and on Windows an access list holding the current user alone, with
/// inheritance cut. Every file the emulator writes into its data path goes through here.
/// </summary>
internal static class PrivateFiles
{
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode FolderMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>
    /// Creates <paramref name="path"/> (and missing parents) private to the user; an existing folder is left as it is
    /// (it may be shared on purpose, e.g. a project folder): the files inside are private whatever it allows.
    /// </summary>
    public static void CreateFolder(string path)
    {
        if (Directory.Exists(path))
        {
            return;
        }

        var parent = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(parent) && !Directory.Exists(parent))
        {
            Directory.CreateDirectory(parent);
        }

        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            new DirectoryInfo(path).SetAccessControl(OwnerOnly<DirectorySecurity>());
        }
        else
        {
            Directory.CreateDirectory(path, FolderMode);
        }
    }

    /// <summary>Opens (creating when missing) a file that only the user may read or write.</summary>
    public static FileStream Open(string path, System.IO.FileMode mode, FileAccess access, FileShare share)
    {
        var options = new FileStreamOptions { Mode = mode, Access = access, Share = share };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = FileMode;
        }

        var stream = new FileStream(path, options);
        try
        {
            if (OperatingSystem.IsWindows())
            {
                stream.SetAccessControl(OwnerOnly<FileSecurity>()); // through the open handle: the file may be opened unshared
            }
            else
            {
                RestrictUnix(path);
            }
        }
        catch
        {
            stream.Dispose();
            throw;
        }

        return stream;
    }

    /// <summary>Writes a whole file that only the user may read or write.</summary>
    public static void WriteAllText(string path, string contents)
    {
        using var stream = Open(path, System.IO.FileMode.Create, FileAccess.Write, FileShare.None);
        using var writer = new StreamWriter(stream);
        writer.Write(contents);
    }

    /// <summary>Takes every right but the user's away from an existing file (created by an older version, or by SQLite).</summary>
    public static void Restrict(string path)
    {
        if (!File.Exists(path))
        {
            return;
        }

        if (OperatingSystem.IsWindows())
        {
            new FileInfo(path).SetAccessControl(OwnerOnly<FileSecurity>());
        }
        else
        {
            RestrictUnix(path);
        }
    }

    [UnsupportedOSPlatform("windows")]
    private static void RestrictUnix(string path)
    {
        if ((File.GetUnixFileMode(path) & ~FileMode) != 0)
        {
            File.SetUnixFileMode(path, FileMode);
        }
    }

    [SupportedOSPlatform("windows")]
    private static T OwnerOnly<T>()
        where T : FileSystemSecurity, new()
    {
        var security = new T();
        security.SetAccessRuleProtection(isProtected: true, preserveInheritance: false);
        var user = WindowsIdentity.GetCurrent().User ?? throw new UnauthorizedAccessException("The current Windows user has no security identifier.");
        security.AddAccessRule(new FileSystemAccessRule(user, FileSystemRights.FullControl,
            security is DirectorySecurity ? InheritanceFlags.ContainerInherit | InheritanceFlags.ObjectInherit : InheritanceFlags.None,
            PropagationFlags.None, AccessControlType.Allow));
        return security;
    }
}
