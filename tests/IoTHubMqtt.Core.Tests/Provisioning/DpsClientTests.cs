using IoTHubMqtt.Core.Connection;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Core.Provisioning;
using IoTHubMqtt.Core.Tests.Mqtt;
using IoTHubMqtt.Testing;

namespace IoTHubMqtt.Core.Tests.Provisioning;

/// <summary>DPS registration over MQTT/TLS against the emulator's DPS endpoint.</summary>
public sealed class DpsClientTests(EmulatorFixture hub) : IClassFixture<EmulatorFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private DpsRegistrationOptions Options(string registrationId, string? groupKey = null, string? symmetricKey = null, string? idScope = null) => new()
    {
        IdScope = idScope ?? hub.Emulator.IdScope,
        RegistrationId = registrationId,
        GroupKey = groupKey,
        SymmetricKey = symmetricKey,
        ProvisioningHost = "localhost",
        Port = hub.Emulator.DpsPort,
        CaCertificatePath = hub.Emulator.CaCertificatePath,
        Timeout = TimeSpan.FromSeconds(20),
    };

    [Fact]
    public async Task Register_WithGroupKey_IsAssigned_AndTheConnectionStringConnects()
    {
        var groupKey = hub.Emulator.AddEnrollmentGroup("group-a");
        var id = "dps-" + Guid.NewGuid().ToString("N")[..8];

        var result = await DpsClient.RegisterAsync(Options(id, groupKey: groupKey), Ct);

        Assert.True(result.IsAssigned);
        Assert.Equal("localhost", result.AssignedHub);
        Assert.Equal(id, result.DeviceId);
        Assert.Equal(SharedAccessKeys.DeriveDeviceKey(groupKey, id), result.DeviceKey);
        Assert.DoesNotContain(result.DeviceKey, result.ToString(), StringComparison.Ordinal);
        var parsed = IoTHubConnectionString.Parse(result.ConnectionString);
        await using var device = HubProbe.NewClient(hub.Emulator, parsed.DeviceId!, parsed.SharedAccessKey!);
        await device.ConnectAsync(Ct);
    }

    [Fact]
    public async Task Register_Again_IsReprovisionedToTheSameDevice()
    {
        var groupKey = hub.Emulator.AddEnrollmentGroup("group-b");
        var id = "again-" + Guid.NewGuid().ToString("N")[..8];

        await DpsClient.RegisterAsync(Options(id, groupKey: groupKey), Ct);
        var second = await DpsClient.RegisterAsync(Options(id, groupKey: groupKey), Ct);

        Assert.True(second.IsAssigned);
        Assert.Equal(id, second.DeviceId);
        Assert.Equal("reprovisionedToInitialAssignment", second.Substatus);
    }

    [Fact]
    public async Task Register_WithIndividualEnrollmentKey_IsAssignedToItsDeviceId()
    {
        var id = "ind-" + Guid.NewGuid().ToString("N")[..8];
        var key = hub.Emulator.AddIndividualEnrollment(id, deviceId: "device-of-" + id);

        var result = await DpsClient.RegisterAsync(Options(id, symmetricKey: key), Ct);

        Assert.Equal("device-of-" + id, result.DeviceId);
        Assert.Equal(key, result.DeviceKey);
    }

    [Fact]
    public async Task Register_WithWrongKey_IsProvisioningUnauthorized()
    {
        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => DpsClient.RegisterAsync(Options("nobody-" + Guid.NewGuid().ToString("N")[..6], groupKey: SharedAccessKeys.Generate(64)), Ct));
        Assert.Equal("ProvisioningUnauthorized", error.ErrorId);
        Assert.Equal(IoTHubErrorKind.Unauthorized, error.Kind);
    }

    [Theory]
    [InlineData("Upper-Case", "InvalidRegistrationId")]
    [InlineData("has space", "InvalidRegistrationId")]
    public async Task Register_WithBadRegistrationId_FailsBeforeConnecting(string registrationId, string errorId)
    {
        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => DpsClient.RegisterAsync(Options(registrationId, groupKey: SharedAccessKeys.Generate()), Ct));
        Assert.Equal(errorId, error.ErrorId);
    }

    [Fact]
    public async Task Register_WithBothOrNoKey_IsProvisioningKeyRequired()
    {
        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => DpsClient.RegisterAsync(Options("x1"), Ct));
        Assert.Equal("ProvisioningKeyRequired", error.ErrorId);
    }

    [Fact]
    public async Task Register_WithoutTheEmulatorCa_IsTlsAuthenticationFailed()
    {
        var options = Options("tls-" + Guid.NewGuid().ToString("N")[..6], groupKey: SharedAccessKeys.Generate());
        var untrusted = new DpsRegistrationOptions
        {
            IdScope = options.IdScope, RegistrationId = options.RegistrationId, GroupKey = options.GroupKey,
            ProvisioningHost = "localhost", Port = options.Port, UseSystemTrustStore = false, Timeout = TimeSpan.FromSeconds(10),
        };
        var error = await Assert.ThrowsAsync<IoTHubMqttException>(() => DpsClient.RegisterAsync(untrusted, Ct));
        Assert.Equal("TlsAuthenticationFailed", error.ErrorId);
    }
}
