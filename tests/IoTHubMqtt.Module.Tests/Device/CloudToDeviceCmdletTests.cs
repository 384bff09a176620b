namespace IoTHubMqtt.Module.Tests.Device;

public sealed class CloudToDeviceCmdletTests : DeviceCmdletTestBase
{
    [Fact]
    public async Task Receive_TwoMessages_WithPropertiesInOrder_AndCompletesThem()
    {
        await Service.SendCloudToDeviceAsync(DeviceId, "first", "c-1", new Dictionary<string, string> { ["kind"] = "cmd" });
        await Service.SendCloudToDeviceAsync(DeviceId, "{\"on\":true}", "c-2");

        var result = Ps.Invoke("Receive-IoTHubMessage -Count 2 -Timeout 15");

        Assert.Empty(result.AllErrors);
        Assert.Equal(["c-1", "c-2"], result.Output.Select(o => (string)o.Properties["MessageId"].Value));
        Assert.Equal("first", result.Output[0].Properties["Body"].Value);
        Assert.Equal("cmd", ((System.Collections.Hashtable)result.Output[0].Properties["Properties"].Value)["kind"]);
        var on = (System.Management.Automation.PSObject)result.Output[1].Properties["BodyObject"].Value;
        Assert.True((bool)on.Properties["on"].Value);

        var again = Ps.Invoke("Disconnect-IoTHub -Confirm:$false; $conn = Connect-IoTHub -ConnectionString $cs -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath; Receive-IoTHubMessage -Timeout 2");
        Assert.Empty(again.AllErrors);
        Assert.DoesNotContain(again.Output, o => o.BaseObject.GetType().Name == "IoTHubReceivedMessage");
    }

    [Fact]
    public async Task Receive_NoComplete_MessageIsDeliveredAgainAfterReconnect()
    {
        await Service.SendCloudToDeviceAsync(DeviceId, "again", "c-9");

        var first = Ps.Invoke("Receive-IoTHubMessage -Timeout 15 -NoComplete");
        var second = Ps.Invoke("Disconnect-IoTHub -Confirm:$false; $conn = Connect-IoTHub -ConnectionString $cs -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath; Receive-IoTHubMessage -Timeout 15");

        Assert.Equal("c-9", Assert.Single(first.Output).Properties["MessageId"].Value);
        Assert.Equal("c-9", second.Output.Last().Properties["MessageId"].Value);
    }

    [Fact]
    public void Receive_NothingWithinTimeout_ReturnsNothingAndNoError()
    {
        var result = Ps.Invoke("Receive-IoTHubMessage -Timeout 1");

        Assert.Empty(result.Output);
        Assert.Empty(result.AllErrors);
    }

    [Fact]
    public void Receive_CtrlCWhileWaitingForTheNextMessage_StopsLongBeforeTheTimeout()
    {
        // The first message out shows the cmdlet waiting for the second; Ctrl+C then ends a ten-minute wait.
        var (result, stopped) = Ps.InvokeAndStopAfterOutput("Receive-IoTHubMessage -Count 2 -Timeout 600", 1,
            () => Service.SendCloudToDeviceAsync(DeviceId, "first", "c2d-stop").GetAwaiter().GetResult());

        Assert.True(stopped, "Ctrl+C did not stop the wait");
        Assert.Equal("first", Assert.Single(result.Output).Properties["Body"].Value);
    }
}
