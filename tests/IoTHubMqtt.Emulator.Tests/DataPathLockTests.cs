using System.Globalization;
using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Emulator.Tests;

/// <summary>A data path belongs to the emulator that opened it until that one stops or dies; a second one is refused, naming the holder.</summary>
public sealed class DataPathLockTests : IDisposable
{
    private readonly string dataPath = Path.Combine(Path.GetTempPath(), "iothubmqtt-lock-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(dataPath, true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task SecondEmulatorInTheSameProcess_IsRefusedWithTheHolder_AndGetsThePathOnceTheFirstStops()
    {
        var first = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; });
        try
        {
            var refused = Assert.Throws<IoTHubMqttException>(() => EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; }));
            Assert.Equal("EmulatorDataPathInUse", refused.ErrorId);
            Assert.Equal(IoTHubErrorKind.ResourceBusy, refused.Kind);
            Assert.Contains(Environment.ProcessId.ToString(CultureInfo.InvariantCulture), refused.Message, StringComparison.Ordinal);
            Assert.Contains(Environment.MachineName, refused.Message, StringComparison.Ordinal);
            Assert.Contains(Path.GetFullPath(dataPath), refused.Message, StringComparison.Ordinal);
            Assert.False(string.IsNullOrEmpty(refused.RecommendedAction));

            // Certificates only (no database) lock the folder too: the CA key lives there.
            Assert.Equal("EmulatorDataPathInUse", Assert.Throws<IoTHubMqttException>(() => EmulatorFixture.Start(o => o.DataPath = dataPath)).ErrorId);
        }
        finally
        {
            await first.DisposeAsync();
        }

        await using var second = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; });
        Assert.True(second.Emulator.IsRunning);
    }

    [Fact]
    public async Task PathHeldByAnotherProcess_IsRefusedNamingItsProcess_AndIsFreeOnceThatProcessIsKilled()
    {
        var ownerKey = SharedAccessKeys.Generate();
        using (var child = await ChildEmulator.StartAsync(dataPath, ownerKey))
        {
            var refused = Assert.Throws<IoTHubMqttException>(() => EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; }));
            Assert.Equal("EmulatorDataPathInUse", refused.ErrorId);
            Assert.Contains($"process {child.Pid.ToString(CultureInfo.InvariantCulture)}", refused.Message, StringComparison.Ordinal);

            // The standalone emulator says the same and exits with an error instead of sharing the folder.
            using var second = ChildEmulator.Launch(new Dictionary<string, string> { [ChildEmulator.OwnerKeyVariable] = ownerKey }, "--ephemeral-ports", "--persist", "--data-path", dataPath);
            var (exitCode, _, error) = await second.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(1, exitCode);
            Assert.Contains("EmulatorDataPathInUse", error, StringComparison.Ordinal);
            Assert.Contains($"process {child.Pid.ToString(CultureInfo.InvariantCulture)}", error, StringComparison.Ordinal);
            child.Kill(); // SIGKILL: the operating system releases the lock
        }

        await using var after = EmulatorFixture.Start(o => { o.DataPath = dataPath; o.Persist = true; });
        Assert.True(after.Emulator.IsRunning);
    }
}
