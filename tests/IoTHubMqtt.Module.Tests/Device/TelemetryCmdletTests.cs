using System.Management.Automation;

namespace IoTHubMqtt.Module.Tests.Device;

public sealed class TelemetryCmdletTests : DeviceCmdletTestBase
{
    [Fact]
    public async Task Send_PipelineOfMany_StreamsAndEveryMessageArrivesInOrder()
    {
        var result = Ps.Invoke("1..300 | ForEach-Object { \"m$_\" } | Send-IoTHubMessage -PassThru");

        Assert.Empty(result.AllErrors);
        Assert.Equal(300, result.Output.Count);
        Assert.All(result.Output, o => Assert.NotNull(o.Properties["AcknowledgedAt"].Value));
        var bodies = await Service.TelemetryBodiesAsync(DeviceId, 300, TimeSpan.FromSeconds(20));
        Assert.Equal(Enumerable.Range(1, 300).Select(i => $"m{i}"), bodies);
    }

    [Fact]
    public async Task Send_BurstOverTheHubsRate_EveryMessageIsAcknowledged_AndArrivesOnce()
    {
        // The hub takes five a second and closes the connection at the sixth, once it has acknowledged the five: each
        // connection carries what the rate allows, the rest goes on the next one after a short pause.
        var result = Ps.Invoke("$hub.DeviceOperationsPerSecond = 5; 1..40 | ForEach-Object { \"t$_\" } | Send-IoTHubMessage -PassThru");

        Assert.Empty(result.AllErrors);
        Assert.Equal(40, result.Output.Count);
        Assert.All(result.Output, o => Assert.NotNull(o.Properties["AcknowledgedAt"].Value));
        Assert.Equal(Enumerable.Range(1, 40).Select(i => $"t{i}"), await Service.TelemetryBodiesAsync(DeviceId, 40, TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task Send_StoppedWhileTheHubThrottles_EndsAtOnceAndTheConnectionStaysUsable()
    {
        // Three messages acknowledged at five a second: the stream is under way, held back by the hub (the rest would take hours).
        var (result, stopped) = Ps.InvokeAndStopAfterOutput("$hub.DeviceOperationsPerSecond = 5; 1..100000 | ForEach-Object { \"s$_\" } | Send-IoTHubMessage -PassThru", 3);

        Assert.True(stopped, "the pipeline did not stop");
        Assert.InRange(result.Output.Count, 3, 99_999);

        // The throttled connections had messages acknowledged, so the device's pause before reconnecting stayed short:
        // the next send goes on the first try.
        var after = Ps.Invoke("$hub.DeviceOperationsPerSecond = 0; Send-IoTHubMessage 'after the stop' -PassThru");
        Assert.Empty(after.AllErrors);
        Assert.Single(after.Output);
        Assert.Contains("after the stop", await Service.TelemetryBodiesAsync(DeviceId, 1, TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task Send_FromAFleet_EveryDeviceSendsEveryMessage_RecordsInOrderByDevice()
    {
        // Bodies large enough to be encoded into pooled buffers, each different, and one message in flight a device so the
        // others wait in the outboxes: a buffer given back while a device of the fleet still holds its message would be
        // rented for a later body and overwrite it.
        var result = Ps.Invoke("""
            $fleet = 'a', 'b', 'c' | ForEach-Object {
                Connect-IoTHub -ConnectionString $hub.CreateDevice($deviceId + '-' + $_).ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -MaxInFlight 1 }
            try {
                1..60 | ForEach-Object { "$_;" + ('x' * 5000) } | Send-IoTHubMessage -Connection $fleet -Count 60 -PassThru
            } finally { $fleet | Disconnect-IoTHub }
            """);

        Assert.Empty(result.AllErrors);
        string[] devices = [DeviceId + "-a", DeviceId + "-b", DeviceId + "-c"];
        Assert.Equal(180, result.Output.Count);
        Assert.Equal(Enumerable.Range(0, 180).Select(i => devices[i % 3]), result.Output.Select(o => (string)o.Properties["DeviceId"].Value));
        Assert.Equal(Enumerable.Range(0, 180).Select(i => $"{i / 3 + 1};"), result.Output.Select(o => ((string)o.Properties["Body"].Value).Split(';')[0] + ";"));
        Assert.Contains(result.Progress, p => p.Activity == "Send-IoTHubMessage" && p.StatusDescription.StartsWith("180 of 180 acknowledged", StringComparison.Ordinal));
        foreach (var device in devices)
        {
            var bodies = await Service.TelemetryBodiesAsync(device, 60, TimeSpan.FromSeconds(20));
            Assert.Equal(Enumerable.Range(1, 60).Select(i => $"{i};" + new string('x', 5000)), bodies);
        }
    }

    [Fact]
    public async Task Send_FromAFleetWithOneDeviceDisconnected_FailsThatDevicesMessagesOnly()
    {
        var result = Ps.Invoke("""
            $gone = Connect-IoTHub -ConnectionString $hub.CreateDevice($deviceId + '-gone').ConnectionString -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath
            $gone | Disconnect-IoTHub
            'one', 'two' | Send-IoTHubMessage -Connection $gone, $conn -PassThru
            """);

        Assert.Equal(2, result.AllErrors.Count());
        Assert.Equal([DeviceId, DeviceId], result.Output.Select(o => (string)o.Properties["DeviceId"].Value));
        Assert.Equal(["one", "two"], await Service.TelemetryBodiesAsync(DeviceId, 2, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Send_ArrayGivenAsBody_EachElementIsAMessage_WithProgressUpToTheTotal()
    {
        var result = Ps.Invoke("Send-IoTHubMessage -Body 'a', 'b', 'c' -PassThru");

        Assert.Empty(result.AllErrors);
        Assert.Equal(3, result.Output.Count);
        var progress = result.Progress.Where(p => p.Activity == "Send-IoTHubMessage").ToList();
        Assert.Contains(progress, p => p.StatusDescription.StartsWith("3 of 3 acknowledged", StringComparison.Ordinal) && p.PercentComplete == 100);
        Assert.Equal(ProgressRecordType.Completed, progress.Last().RecordType);
        Assert.Equal(["a", "b", "c"], await Service.TelemetryBodiesAsync(DeviceId, 3, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Send_PipelineWithCount_ShowsProgress_AndAStreamWithoutIt_ShowsNone()
    {
        var counted = Ps.Invoke("1..40 | ForEach-Object { \"c$_\" } | Send-IoTHubMessage -Count 40");
        var streamed = Ps.Invoke("1..40 | ForEach-Object { \"s$_\" } | Send-IoTHubMessage");

        Assert.Empty(counted.AllErrors);
        Assert.Empty(streamed.AllErrors);
        Assert.Contains(counted.Progress, p => p.Activity == "Send-IoTHubMessage" && p.StatusDescription.StartsWith("40 of 40 acknowledged", StringComparison.Ordinal));
        Assert.DoesNotContain(streamed.Progress, p => p.Activity == "Send-IoTHubMessage");
        Assert.Equal(80, (await Service.TelemetryBodiesAsync(DeviceId, 80, TimeSpan.FromSeconds(10))).Count);
    }

    [Fact]
    public async Task Send_BytesGivenAsBody_AreOneMessage()
    {
        var result = Ps.Invoke("Send-IoTHubMessage -Body ([byte[]](104, 105)) -PassThru");

        Assert.Empty(result.AllErrors);
        Assert.Equal("application/octet-stream", Assert.Single(result.Output).Properties["ContentType"].Value);
        Assert.Equal("hi", Assert.Single(await Service.TelemetryBodiesAsync(DeviceId, 1, TimeSpan.FromSeconds(10))));
    }

    [Fact]
    public async Task Send_HashtableWithProperties_IsJsonWithContentTypeAndProperties()
    {
        var result = Ps.Invoke("@{ temperature = 21.5; tags = @('a', 'b') } | Send-IoTHubMessage -Property @{ room = 'kitchen' } -MessageId m-7 -PassThru");

        Assert.Empty(result.AllErrors);
        var sent = Assert.Single(result.Output);
        Assert.Equal("application/json", sent.Properties["ContentType"].Value);
        Assert.Equal("m-7", sent.Properties["MessageId"].Value);
        var body = Assert.Single(await Service.TelemetryBodiesAsync(DeviceId, 1, TimeSpan.FromSeconds(10)));
        var json = System.Text.Json.Nodes.JsonNode.Parse(body)!;
        Assert.Equal(21.5, json["temperature"]!.GetValue<double>());
        Assert.Equal("b", json["tags"]![1]!.GetValue<string>());
    }

    [Fact]
    public async Task Send_OneOffConnectionString_ConnectsSendsAndDisconnects()
    {
        // Another device: a second connection of the same device would take the device over from $conn, as on a real hub.
        var result = Ps.Invoke("$other = 'other-' + $deviceId; $otherCs = $hub.CreateDevice($other).ConnectionString; " +
            "Send-IoTHubMessage 'one-off' -ConnectionString $otherCs -Port $hub.MqttTlsPort -CaCertificatePath $hub.CaCertificatePath -PassThru; $conn.State");

        Assert.Empty(result.AllErrors);
        Assert.Equal(2, result.Output.Count);
        Assert.Equal("Connected", result.Output[1].BaseObject);
        Assert.Contains("one-off", await Service.TelemetryBodiesAsync("other-" + DeviceId, 1, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void Send_TooLargeAmongGood_IsAnErrorForThatMessageOnly()
    {
        var result = Ps.Invoke("'a', ('x' * 300000), 'b' | Send-IoTHubMessage -PassThru");

        Assert.Equal(2, result.Output.Count);
        Assert.Equal("MessageTooLarge,IoTHubMqtt.Commands.Device.SendIoTHubMessageCommand", Assert.Single(result.AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public void Send_ReservedPropertyName_IsInvalidArgument()
    {
        var result = Ps.Invoke("Send-IoTHubMessage 'x' -Property @{ '$.mid' = 'sneaky' }");

        Assert.Equal("InvalidArgument,IoTHubMqtt.Commands.Device.SendIoTHubMessageCommand", Assert.Single(result.AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public void Send_WhatIf_SendsNothing()
    {
        var result = Ps.Invoke("Send-IoTHubMessage 'not sent' -WhatIf -PassThru");

        Assert.Empty(result.Output);
        Assert.Empty(result.AllErrors);
    }
}
