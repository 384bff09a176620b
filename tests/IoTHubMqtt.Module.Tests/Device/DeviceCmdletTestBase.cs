using IoTHubMqtt.Module.Tests.Harness;

namespace IoTHubMqtt.Module.Tests.Device;

/// <summary>A PowerShell session with an emulator ($hub), a registered device ($cs, $deviceId, $key) and its connection ($conn).</summary>
public abstract class DeviceCmdletTestBase : IDisposable
{
    protected DeviceCmdletTestBase()
    {
        Ps = new PowerShellSession();
        var setup = Ps.Invoke("""
            $hub = Start-IoTHubEmulator
            $deviceId = 'dev-' + [guid]::NewGuid().ToString('N').Substring(0, 8)
            $cs = $hub.CreateDevice($deviceId).ConnectionString
            $key = ($cs -split 'SharedAccessKey=')[1]
            $conn = Connect-IoTHub -ConnectionString $cs -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath
            $deviceId
            """);
        Assert.True(setup.AllErrors.Count() == 0, string.Join("; ", setup.AllErrors));
        DeviceId = (string)setup.Output.Last().BaseObject;
        Key = (string)Ps.GetVariable("key")!;
        Service = HubService.For(Ps);
    }

    protected PowerShellSession Ps { get; }

    protected HubService Service { get; }

    protected string DeviceId { get; }

    protected string Key { get; }

    public void Dispose()
    {
        Ps.Invoke("Get-Variable conn -ValueOnly -ErrorAction SilentlyContinue | Disconnect-IoTHub -Confirm:$false; $hub | Stop-IoTHubEmulator -Confirm:$false");
        Service.Dispose();
        Ps.Dispose();
        GC.SuppressFinalize(this);
    }
}
