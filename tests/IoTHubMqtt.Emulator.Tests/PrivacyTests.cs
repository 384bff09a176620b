using System.Globalization;
using System.Net;
using System.Text;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>
/// The data path holds the owner key, every device key and the CA key: its folder is created 0700 and every file 0600
/// (SQLite's WAL and shared-memory files included), and the standalone emulator takes no secret on its command line.
/// </summary>
public sealed class PrivacyTests : IDisposable
{
    private const string OwnerKeyVariable = "IOTHUB_EMULATOR_OWNER_KEY";
    private readonly string root = Path.Combine(Path.GetTempPath(), "iothubmqtt-private-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(root, true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task DataPath_IsCreatedPrivate_WithEveryFilePrivate()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "Unix modes; on Windows the folder gets an access list holding the current user only.");
        var dataPath = Path.Combine(root, "hub");
        await using (var hub = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; }))
        {
            // Write something so the WAL and shared-memory files exist.
            hub.CreateDevice("secretive");
            AssertPrivate(dataPath);
        }

        AssertPrivate(dataPath);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task TemporaryDataPath_IsPrivateToo()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "Unix modes.");
        await using var hub = new EmulatorFixture();
        AssertPrivate(hub.Emulator.DataPath);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task DatabaseLeftWorldReadable_IsMadePrivateWhenOpened()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "Unix modes.");
        var dataPath = Path.Combine(root, "old");
        await using (EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; }))
        {
        }

        foreach (var file in Directory.GetFiles(dataPath))
        {
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }

        await using var hub = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; });
        hub.CreateDevice();
        AssertPrivate(dataPath, folderToo: false);
    }

    [Fact]
    public async Task Standalone_TakesTheOwnerKeyFromAFileOrTheEnvironment_NeverFromItsCommandLine()
    {
        var ownerKey = SharedAccessKeys.Generate();

        // On the command line a secret is visible to every user (ps, /proc/*/cmdline): refused, with the way to pass it.
        using (var refused = ChildEmulator.Launch(new Dictionary<string, string>(), "--ephemeral-ports", "--data-path", Path.Combine(root, "a"), "--owner-key", ownerKey))
        {
            var (exitCode, _, error) = await refused.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(2, exitCode);
            Assert.Contains("--owner-key-file", error, StringComparison.Ordinal);
            Assert.Contains(OwnerKeyVariable, error, StringComparison.Ordinal);
            Assert.DoesNotContain(ownerKey, error, StringComparison.Ordinal);
        }

        // From a file: the process's command line names the file only.
        var keyFile = Path.Combine(root, "owner.key");
        Directory.CreateDirectory(root);
        await File.WriteAllTextAsync(keyFile, ownerKey + "\n");
        var dataPath = Path.Combine(root, "b");
        using (var fromFile = await ChildEmulator.StartAsync(dataPath, new ChildEmulator.OwnerKeySource(keyFile, null), ownerKey))
        {
            Assert.Equal(HttpStatusCode.OK, await ListDevicesAsync(fromFile));
            if (OperatingSystem.IsLinux())
            {
                var commandLine = Encoding.UTF8.GetString(await File.ReadAllBytesAsync($"/proc/{fromFile.Pid.ToString(CultureInfo.InvariantCulture)}/cmdline"));
                Assert.DoesNotContain(ownerKey, commandLine, StringComparison.Ordinal);
                Assert.Contains(keyFile, commandLine, StringComparison.Ordinal);
            }

            var secretFile = Path.Combine(dataPath, "owner-connection-string.txt");
            Assert.Contains(ownerKey, await File.ReadAllTextAsync(secretFile), StringComparison.Ordinal);
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(secretFile));
            }
        }

        // From the environment.
        using (var fromEnvironment = await ChildEmulator.StartAsync(Path.Combine(root, "c"), new ChildEmulator.OwnerKeySource(null, ownerKey), ownerKey))
        {
            Assert.Equal(HttpStatusCode.OK, await ListDevicesAsync(fromEnvironment));
        }
    }

    [Fact]
    public async Task Standalone_RefusesTheCertificatePasswordOnItsCommandLine()
    {
        using var refused = ChildEmulator.Launch(new Dictionary<string, string>(), "--ephemeral-ports", "--data-path", Path.Combine(root, "d"),
            "--certificate", Path.Combine(root, "server.pfx"), "--certificate-password", "hunter2");
        var (exitCode, _, error) = await refused.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(2, exitCode);
        Assert.Contains("--certificate-password-file", error, StringComparison.Ordinal);
        Assert.Contains("IOTHUB_EMULATOR_CERTIFICATE_PASSWORD", error, StringComparison.Ordinal);
    }

    private static async Task<HttpStatusCode> ListDevicesAsync(ChildEmulator emulator)
    {
        using var service = emulator.Service();
        return (await service.SendAsync(HttpMethod.Get, "devices")).Status;
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static void AssertPrivate(string dataPath, bool folderToo = true)
    {
        if (folderToo)
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dataPath));
        }

        var files = Directory.GetFiles(dataPath);
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            Assert.True(File.GetUnixFileMode(file) == (UnixFileMode.UserRead | UnixFileMode.UserWrite),
                $"{Path.GetFileName(file)} is {File.GetUnixFileMode(file)}, not private to the user.");
        }
    }
}
