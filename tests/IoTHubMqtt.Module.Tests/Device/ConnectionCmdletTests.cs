using System.Management.Automation;

namespace IoTHubMqtt.Module.Tests.Device;

public sealed class ConnectionCmdletTests : DeviceCmdletTestBase
{
    [Fact]
    public void Connect_ReturnsAConnectedObject_ShowingNoSecret()
    {
        var result = Ps.Invoke("$conn; $conn.ToString()");

        var connection = result.Output[0];
        Assert.Equal("Connected", connection.Properties["State"].Value);
        Assert.Equal(DeviceId, connection.Properties["DeviceId"].Value);
        Assert.NotNull(connection.Properties["TokenExpiresAt"].Value);
        var table = Ps.Render("$conn");
        Assert.Contains(DeviceId, table, StringComparison.Ordinal);
        Assert.DoesNotContain(Key, table + result.AllText(), StringComparison.Ordinal);
        Assert.DoesNotContain("SharedAccessSignature", table + result.AllText(), StringComparison.Ordinal);
    }

    [Fact]
    public void Connect_Verbose_LogsNoSecret()
    {
        var result = Ps.Invoke("$otherCs = $hub.CreateDevice('verbose-' + $deviceId).ConnectionString; " +
            "Connect-IoTHub -ConnectionString $otherCs -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -NoDefault -Verbose | Disconnect-IoTHub -Verbose -Confirm:$false");

        Assert.Empty(result.AllErrors);
        Assert.NotEmpty(result.Verbose);
        var otherKey = ((string)Ps.GetVariable("otherCs")!).Split("SharedAccessKey=")[1];
        Assert.DoesNotContain(otherKey, result.AllText(), StringComparison.Ordinal);
        Assert.DoesNotContain("sig=", result.AllText(), StringComparison.Ordinal);
    }

    [Fact]
    public void Connect_VerboseAndDebug_ShowTheClientsLogByLevel()
    {
        var result = Ps.Invoke("$otherCs = $hub.CreateDevice('levels-' + $deviceId).ConnectionString; " +
            "$c = Connect-IoTHub -ConnectionString $otherCs -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -NoDefault -Verbose -Debug; " +
            "$quiet = Connect-IoTHub -ConnectionString $otherCs -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -NoDefault; " +
            "$c, $quiet | Disconnect-IoTHub -Confirm:$false");

        Assert.Empty(result.AllErrors);

        // Lifecycle lines (Info and up) are verbose records; detail lines (Verbose) are debug records; neither without asking.
        Assert.Single(result.Verbose, v => v.Message.StartsWith("[Session] Connecting to", StringComparison.Ordinal));
        Assert.Single(result.Verbose, v => v.Message.StartsWith("[Session] Connected;", StringComparison.Ordinal));
        Assert.Single(result.Debug, d => d.Message.StartsWith("[Session] Subscribed to", StringComparison.Ordinal));
        Assert.DoesNotContain(result.Verbose, v => v.Message.StartsWith("[Session] Subscribed", StringComparison.Ordinal));
    }

    [Fact]
    public void Connect_WrongKey_IsUnauthorizedErrorWithTheFix()
    {
        var result = Ps.Invoke("Connect-IoTHub -HostName $hub.HostName -DeviceId $deviceId -Key ([Convert]::ToBase64String([byte[]]::new(32))) -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -Timeout 10");

        var error = Assert.Single(result.AllErrors);
        Assert.Equal("IoTHubUnauthorized,IoTHubMqtt.Commands.Device.ConnectIoTHubCommand", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.AuthenticationError, error.CategoryInfo.Category);
        Assert.Contains("clock", error.ErrorDetails.RecommendedAction, StringComparison.Ordinal);
    }

    [Fact]
    public void Connect_WithoutTheEmulatorCa_IsTlsError()
    {
        var result = Ps.Invoke("Connect-IoTHub -ConnectionString $cs -Port $hub.MqttTlsPort -Timeout 10 -NoDefault");

        Assert.Equal("TlsAuthenticationFailed,IoTHubMqtt.Commands.Device.ConnectIoTHubCommand", Assert.Single(result.AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public void Connect_PolicyConnectionString_IsClearError()
    {
        var result = Ps.Invoke("Connect-IoTHub -ConnectionString $hub.OwnerConnectionString -NoDefault");

        var error = Assert.Single(result.AllErrors);
        Assert.Equal("ConnectionStringNotDevice,IoTHubMqtt.Commands.Device.ConnectIoTHubCommand", error.FullyQualifiedErrorId);
        Assert.DoesNotContain("SharedAccessKey=", result.AllText(), StringComparison.Ordinal);
    }

    [Fact]
    public void Disconnect_ThenSend_IsConnectionClosedError()
    {
        var result = Ps.Invoke("Disconnect-IoTHub -Confirm:$false; Send-IoTHubMessage 'late' -Connection $conn");

        Assert.Equal("ConnectionClosed,IoTHubMqtt.Commands.Device.SendIoTHubMessageCommand", Assert.Single(result.AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public void DeviceCmdlet_WithNoConnectionAnywhere_IsNoConnectionError()
    {
        using var fresh = new Harness.PowerShellSession();

        var result = fresh.Invoke("Get-IoTHubTwin");

        Assert.Equal("NoConnection,IoTHubMqtt.Commands.Device.GetIoTHubTwinCommand", Assert.Single(result.AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public void HubGone_DeviceCmdlet_FailsWithNotConnectedWithinItsTimeout()
    {
        // The wait's length is tested on a fake clock in the core (SessionTimingTests); here, what the user sees.
        var result = Ps.Invoke("$short = Connect-IoTHub -ConnectionString $cs -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -Timeout 1 -NoDefault; $hub | Stop-IoTHubEmulator -Confirm:$false; " +
            // The device has seen the hub go (a request already on its way when it went times out instead: TwinRequestTimedOut).
            "$guard = [Diagnostics.Stopwatch]::StartNew(); while ($short.IsConnected -and $guard.Elapsed.TotalMinutes -lt 2) { Start-Sleep -Milliseconds 20 }; " +
            "Get-IoTHubTwin -Connection $short");

        var error = Assert.Single(result.AllErrors);
        Assert.Equal("NotConnected,IoTHubMqtt.Commands.Device.GetIoTHubTwinCommand", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ConnectionError, error.CategoryInfo.Category);
        Assert.Contains("disconnected for more than 1 s", error.Exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Disconnect_WhatIf_KeepsTheConnection()
    {
        var result = Ps.Invoke("Disconnect-IoTHub -WhatIf; $conn.State");

        Assert.Equal("Connected", result.Output.Last().BaseObject);
    }
}
