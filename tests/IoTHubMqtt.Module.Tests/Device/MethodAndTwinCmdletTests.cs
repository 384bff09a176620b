using System.Text.Json.Nodes;

namespace IoTHubMqtt.Module.Tests.Device;

public sealed class MethodAndTwinCmdletTests : DeviceCmdletTestBase
{
    [Fact]
    public async Task Method_ScriptHandler_ResultIsTheJsonResponse()
    {
        Ps.Invoke("Register-IoTHubMethod -Name setInterval -ScriptBlock { param($call) @{ interval = $call.Payload.seconds * 2; by = $call.Name } }");

        var call = Service.InvokeMethodAsync(DeviceId, "setInterval", new JsonObject { ["seconds"] = 5 });
        var waited = Ps.Invoke("Wait-IoTHubMethodCall -Timeout 20");
        var response = await call;

        Assert.Empty(waited.AllErrors);
        Assert.Equal(200, Assert.Single(waited.Output).Properties["Status"].Value);
        Assert.Equal(200, response["status"]!.GetValue<int>());
        Assert.Equal(10, response["payload"]!["interval"]!.GetValue<int>());
        Assert.Equal("setInterval", response["payload"]!["by"]!.GetValue<string>());
    }

    [Fact]
    public async Task Method_HandlerChoosesStatus_AndThrowingHandlerAnswers500WithoutStack()
    {
        Ps.Invoke("""
            Register-IoTHubMethod reject { @{ Status = 400; Payload = @{ error = 'bad seconds' } } }
            Register-IoTHubMethod boom { throw 'the sensor is on fire' }
            """);

        var rejected = Service.InvokeMethodAsync(DeviceId, "reject", null);
        var first = Ps.Invoke("Wait-IoTHubMethodCall -Name reject -Timeout 20");
        var boom = Service.InvokeMethodAsync(DeviceId, "boom", null);
        var second = Ps.Invoke("Wait-IoTHubMethodCall -Name boom -Timeout 20");

        Assert.Equal(400, (await rejected)["status"]!.GetValue<int>());
        Assert.Equal("bad seconds", (await rejected)["payload"]!["error"]!.GetValue<string>());
        var failed = await boom;
        Assert.Equal(500, failed["status"]!.GetValue<int>());
        Assert.Equal("the sensor is on fire", failed["payload"]!["message"]!.GetValue<string>());
        Assert.DoesNotContain(" at ", failed.ToJsonString(), StringComparison.Ordinal);
        Assert.Equal(500, Assert.Single(second.Output).Properties["Status"].Value);
        Assert.Empty(first.AllErrors);
    }

    [Fact]
    public async Task Method_Unregistered_IsAnswered501()
    {
        var response = await Service.InvokeMethodAsync(DeviceId, "notThere", null);

        Assert.Equal(501, response["status"]!.GetValue<int>());
    }

    [Fact]
    public void WaitMethodCall_Timeout_IsAnErrorAndCtrlCStopsIt()
    {
        Ps.Invoke("Register-IoTHubMethod ping { 'pong' }");

        var timedOut = Ps.Invoke("Wait-IoTHubMethodCall -Timeout 1");
        // The first call answered shows the cmdlet waiting for the second; Ctrl+C then ends a ten-minute wait.
        var (result, stopped) = Ps.InvokeAndStopAfterOutput("Wait-IoTHubMethodCall -Count 2 -Timeout 600", 1,
            () => Service.InvokeMethodAsync(DeviceId, "ping", null).GetAwaiter().GetResult());

        Assert.Equal("MethodCallWaitTimedOut,IoTHubMqtt.Commands.Device.WaitIoTHubMethodCallCommand", Assert.Single(timedOut.AllErrors).FullyQualifiedErrorId);
        Assert.True(stopped, "Ctrl+C did not stop the wait");
        Assert.Equal("ping", Assert.Single(result.Output).Properties["Name"].Value);
    }

    [Fact]
    public void Twin_UpdateReportedNestedAndDelete_VersionsGrowAndGetShowsIt()
    {
        var result = Ps.Invoke("""
            $a = Update-IoTHubTwin @{ firmware = '1.0.0'; sensor = @{ model = 'bme280'; ok = $true } }
            $b = Update-IoTHubTwin @{ sensor = @{ ok = $null } }
            $twin = Get-IoTHubTwin
            $a.ReportedVersion; $b.ReportedVersion; $twin.ReportedVersion; $twin.Reported.firmware; $twin.Reported.sensor.model; $null -eq $twin.Reported.sensor.ok
            """);

        Assert.Empty(result.AllErrors);
        var v = result.Output.Select(o => o.BaseObject).ToList();
        Assert.True((long)v[1] > (long)v[0]);
        Assert.Equal(v[1], v[2]);
        Assert.Equal("1.0.0", v[3]);
        Assert.Equal("bme280", v[4]);
        Assert.True((bool)v[5]);
    }

    [Fact]
    public async Task WaitDesired_ServicePatch_IsReturnedAndFilteredByName()
    {
        await Service.PatchDesiredAsync(DeviceId, new JsonObject { ["color"] = "red" });
        await Service.PatchDesiredAsync(DeviceId, new JsonObject { ["telemetryInterval"] = 15 });

        var result = Ps.Invoke("Wait-IoTHubDesiredProperty -Name telemetryInterval -Timeout 15");

        Assert.Empty(result.AllErrors);
        var change = Assert.Single(result.Output);
        Assert.Equal(15L, ((System.Management.Automation.PSObject)change.Properties["Patch"].Value).Properties["telemetryInterval"].Value);
    }

    [Fact]
    public void WaitDesired_NothingChanges_IsTimeoutError()
    {
        var result = Ps.Invoke("Wait-IoTHubDesiredProperty -Timeout 1");

        Assert.Equal("DesiredPropertyWaitTimedOut,IoTHubMqtt.Commands.Device.WaitIoTHubDesiredPropertyCommand", Assert.Single(result.AllErrors).FullyQualifiedErrorId);
    }

    [Fact]
    public void UpdateTwin_NotAnObject_IsInvalidArgument()
    {
        var result = Ps.Invoke("Update-IoTHubTwin '[1,2,3]'");

        Assert.Equal("JsonNotAnObject,IoTHubMqtt.Commands.Device.UpdateIoTHubTwinCommand", Assert.Single(result.AllErrors).FullyQualifiedErrorId);
    }
}
