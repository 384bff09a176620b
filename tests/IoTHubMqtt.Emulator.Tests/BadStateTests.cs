using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Testing;
using Microsoft.Data.Sqlite;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>
/// Whatever is wrong with the files in a data path — a damaged, cut-off, foreign or newer database, one the user may not
/// write, a CA whose key is damaged or missing — the emulator stops with a designed error that names the file and says
/// how to fix it, and changes nothing: no raw SQLite text, no silently replaced CA.
/// </summary>
public sealed class BadStateTests : IDisposable
{
    private readonly string dataPath = Path.Combine(Path.GetTempPath(), "iothubmqtt-bad-" + Guid.NewGuid().ToString("N")[..10]);

    private string Database => Path.Combine(dataPath, "emulator.db");

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(dataPath, true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public void CorruptDatabase_IsEmulatorDataCorrupt_NamingTheFile_AndLeftAsItWas()
    {
        Directory.CreateDirectory(dataPath);
        var garbage = new byte[64 * 1024];
        new Random(7).NextBytes(garbage);
        File.WriteAllBytes(Database, garbage);

        var error = StartFails();

        Assert.Equal("EmulatorDataCorrupt", error.ErrorId);
        AssertNamesTheFileAndTheFix(error, Database);
        Assert.Equal(garbage, File.ReadAllBytes(Database));
    }

    [Fact]
    public async Task TruncatedDatabase_IsEmulatorDataCorrupt()
    {
        await using (var hub = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; }))
        {
            for (var i = 0; i < 300; i++)
            {
                hub.Emulator.CreateDevice($"cut-{i}");
            }
        }

        SqliteConnection.ClearAllPools();
        var whole = File.ReadAllBytes(Database);
        Assert.True(whole.Length > 64 * 1024, $"the database is only {whole.Length} bytes");
        File.WriteAllBytes(Database, whole[..(whole.Length / 2)]);

        var error = StartFails();

        Assert.Equal("EmulatorDataCorrupt", error.ErrorId);
        AssertNamesTheFileAndTheFix(error, Database);
    }

    [Fact]
    public async Task DatabaseRowThatIsNotTheEmulatorsJson_IsEmulatorDataCorrupt_NamingTheRow()
    {
        await using (var hub = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; }))
        {
            hub.Emulator.CreateDevice("mangled");
        }

        Sql("UPDATE devices SET doc = '{\"id\":\"mangled\",\"etag\":42' WHERE id = 'mangled'");

        var error = StartFails();

        Assert.Equal("EmulatorDataCorrupt", error.ErrorId);
        AssertNamesTheFileAndTheFix(error, Database);
        Assert.Contains("mangled", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DatabaseOfAnotherApplication_IsEmulatorDataSchemaUnknown_AndLeftAsItWas()
    {
        Directory.CreateDirectory(dataPath);
        Sql("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers(name) VALUES ('Ada');");
        var before = File.ReadAllBytes(Database);

        var error = StartFails();

        Assert.Equal("EmulatorDataSchemaUnknown", error.ErrorId);
        AssertNamesTheFileAndTheFix(error, Database);
        Assert.Contains("customers", error.Message, StringComparison.Ordinal);
        SqliteConnection.ClearAllPools();
        Assert.Equal(before, File.ReadAllBytes(Database));
    }

    [Fact]
    public void DatabaseWithTheEmulatorsTableNamesButOtherColumns_IsEmulatorDataSchemaUnknown()
    {
        Directory.CreateDirectory(dataPath);
        Sql("CREATE TABLE devices (id INTEGER PRIMARY KEY, serial TEXT);");

        var error = StartFails();

        Assert.Equal("EmulatorDataSchemaUnknown", error.ErrorId);
        Assert.Contains("devices", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DatabaseOfANewerVersion_IsEmulatorDataSchemaUnknown_SayingSo()
    {
        await using (EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; }))
        {
        }

        Sql("PRAGMA user_version = 99;");

        var error = StartFails();

        Assert.Equal("EmulatorDataSchemaUnknown", error.ErrorId);
        Assert.Contains("newer", error.Message, StringComparison.Ordinal);
        AssertNamesTheFileAndTheFix(error, Database);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task ReadOnlyDatabase_IsEmulatorDataReadOnly_NamingTheFile()
    {
        var ownerKey = SharedAccessKeys.Generate();
        await using (EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; o.OwnerKey = ownerKey; }))
        {
        }

        SqliteConnection.ClearAllPools();
        Assert.SkipWhen(OperatingSystem.IsWindows(), "file modes; on Windows the access list decides");
        if (!Environment.IsPrivilegedProcess)
        {
            File.SetUnixFileMode(Database, UnixFileMode.UserRead);
            var error = StartFails();
            Assert.Equal("EmulatorDataReadOnly", error.ErrorId);
            AssertNamesTheFileAndTheFix(error, Database);
            return;
        }

        // File modes do not bind root: run the standalone emulator as an unprivileged user on a data path it owns,
        // holding a database it may only read.
        var setpriv = ExternalProcess.Require("setpriv", "util-linux");
        const int Nobody = 65534;
        foreach (var entry in Directory.GetFileSystemEntries(dataPath).Append(dataPath))
        {
            File.SetUnixFileMode(entry, File.GetUnixFileMode(entry) | UnixFileMode.OtherRead | (Directory.Exists(entry) ? UnixFileMode.OtherExecute : 0));
        }

        await RunAsync("chown", "-R", $"{Nobody}:{Nobody}", dataPath);
        await RunAsync("chown", "0:0", Database);
        File.SetUnixFileMode(Database, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var home = Path.Combine(dataPath, "home");
        Directory.CreateDirectory(home);
        await RunAsync("chown", $"{Nobody}:{Nobody}", home);
        var dotnet = Environment.ProcessPath!.EndsWith("dotnet", StringComparison.Ordinal) ? Environment.ProcessPath : "/usr/bin/dotnet";
        using var child = ExternalProcess.Start(setpriv,
            new Dictionary<string, string> { ["HOME"] = home, ["DOTNET_CLI_HOME"] = home, ["IOTHUB_EMULATOR_OWNER_KEY"] = ownerKey },
            $"--reuid={Nobody}", $"--regid={Nobody}", "--clear-groups", "--", dotnet, Path.Combine(AppContext.BaseDirectory, "IoTHubMqtt.Emulator.dll"),
            "--ephemeral-ports", "--persist", "--data-path", dataPath);
        var (exitCode, _, stderr) = await child.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(1, exitCode);
        Assert.StartsWith("EmulatorDataReadOnly: ", stderr.Trim(), StringComparison.Ordinal);
        Assert.Contains(Database, stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("SQLite Error", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CorruptCaKey_IsEmulatorCaInvalid_AndTheCaIsNotReplaced_UnlessAskedFor()
    {
        await using (EmulatorFixture.Start(o => o.DataPath = dataPath))
        {
        }

        var caPath = Path.Combine(dataPath, "ca.pem");
        var keyPath = Path.Combine(dataPath, "ca.key.pem");
        var ca = File.ReadAllText(caPath);
        File.WriteAllText(keyPath, "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n");

        var error = StartFails(persist: false);

        Assert.Equal("EmulatorCaInvalid", error.ErrorId);
        AssertNamesTheFileAndTheFix(error, keyPath);
        Assert.Equal(ca, File.ReadAllText(caPath)); // clients holding ca.pem still trust the hub once the key is restored

        // Asked for: a new CA.
        await using var renewed = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.ReplaceCertificateAuthority = true; });
        Assert.NotEqual(ca, File.ReadAllText(caPath));
        Assert.Contains(renewed.Log, line => line.Contains("new CA", StringComparison.Ordinal));
    }

    [Fact]
    public async Task MissingCaKey_IsEmulatorCaInvalid()
    {
        await using (EmulatorFixture.Start(o => o.DataPath = dataPath))
        {
        }

        var keyPath = Path.Combine(dataPath, "ca.key.pem");
        File.Delete(keyPath);

        var error = StartFails(persist: false);

        Assert.Equal("EmulatorCaInvalid", error.ErrorId);
        AssertNamesTheFileAndTheFix(error, keyPath);
        Assert.False(File.Exists(keyPath));
    }

    [Fact]
    public void ExpiredCa_IsEmulatorCaExpired()
    {
        Directory.CreateDirectory(dataPath);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=Old Emulator CA", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var expired = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddYears(-6), DateTimeOffset.UtcNow.AddDays(-1));
        File.WriteAllText(Path.Combine(dataPath, "ca.pem"), expired.ExportCertificatePem());
        File.WriteAllText(Path.Combine(dataPath, "ca.key.pem"), key.ExportPkcs8PrivateKeyPem());

        var error = StartFails(persist: false);

        Assert.Equal("EmulatorCaExpired", error.ErrorId);
        AssertNamesTheFileAndTheFix(error, Path.Combine(dataPath, "ca.pem"));
    }

    [Fact]
    public async Task DatabaseLockedByAnotherProgramWhileRunning_AnswersErrors_AndAcknowledgesNothing()
    {
        await using var hub = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; o.StoreBusyTimeout = TimeSpan.FromSeconds(1); });
        await using var device = await hub.ConnectNewDeviceAsync("locked-out");
        var id = device.DeviceId;
        Assert.True((await device.PublishAsync($"devices/{id}/messages/events/", "stored")).IsSuccess);

        // A SQLite browser holding a write transaction on the file.
        await using (var browser = new SqliteConnection($"Data Source={Database};Pooling=False"))
        {
            await browser.OpenAsync();
            await using (var begin = browser.CreateCommand())
            {
                begin.CommandText = "BEGIN EXCLUSIVE";
                await begin.ExecuteNonQueryAsync();
            }

            var create = await hub.Service.SendAsync(HttpMethod.Put, "devices/not-stored", new System.Text.Json.Nodes.JsonObject { ["deviceId"] = "not-stored" });
            Assert.Equal(System.Net.HttpStatusCode.InternalServerError, create.Status);
            Assert.Equal(500001, create.Json!["errorCode"]!.GetValue<int>());
            Assert.Contains("EmulatorDataPathInUse", create.Json["Message"]!.GetValue<string>(), StringComparison.Ordinal);

            await Assert.ThrowsAnyAsync<Exception>(() => device.PublishAsync($"devices/{id}/messages/events/", "not stored").WaitAsync(TimeSpan.FromSeconds(30)));
            await device.Disconnected.WaitAsync(TimeSpan.FromSeconds(30));
        }

        Assert.Contains(hub.Log, line => line.Contains("EmulatorDataPathInUse", StringComparison.Ordinal) && line.Contains(Database, StringComparison.Ordinal));
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await hub.Service.SendAsync(HttpMethod.Get, "devices/not-stored")).Status);
        var stored = await hub.Service.SendAsync(HttpMethod.Get, $"$emulator/messages/events?deviceId={id}&from=0");
        Assert.Single(stored.Json!["messages"]!.AsArray());

        // The lock gone, the hub goes on.
        Assert.Equal(System.Net.HttpStatusCode.OK, (await hub.Service.SendAsync(HttpMethod.Put, "devices/stored-later", new System.Text.Json.Nodes.JsonObject { ["deviceId"] = "stored-later" })).Status);
    }

    private IoTHubMqttException StartFails(bool persist = true)
    {
        var error = Assert.Throws<IoTHubMqttException>(() => EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = persist; }));
        Assert.DoesNotContain("SQLite Error", error.Message, StringComparison.Ordinal);
        return error;
    }

    private static void AssertNamesTheFileAndTheFix(IoTHubMqttException error, string path)
    {
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.False(string.IsNullOrWhiteSpace(error.RecommendedAction), $"{error.ErrorId} has no recommended action.");
        Assert.Equal(path, error.Target);
    }

    private void Sql(string sql)
    {
        using var connection = new SqliteConnection($"Data Source={Database};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static async Task RunAsync(string tool, params string[] arguments)
    {
        var (exitCode, _, error) = await ExternalProcess.RunAsync(tool, TimeSpan.FromSeconds(30), arguments);
        Assert.True(exitCode == 0, $"{tool} {string.Join(' ', arguments)}: {error}");
    }
}
