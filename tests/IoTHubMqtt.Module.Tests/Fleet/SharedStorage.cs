using IoTHubMqtt.Testing;

[assembly: AssemblyFixture(typeof(IoTHubMqtt.Module.Tests.Fleet.SharedStorage))]

namespace IoTHubMqtt.Module.Tests.Fleet;

/// <summary>
/// One Azurite blob service for the whole test run, with its connection string in AZURE_STORAGE_CONNECTION_STRING (the
/// variable the Azure CLI and SDKs read), which the import and export help examples use as a user's script would.
/// </summary>
public sealed class SharedStorage : IDisposable
{
    public const string Variable = "AZURE_STORAGE_CONNECTION_STRING";

    public SharedStorage()
    {
        Azurite = new AzuriteFixture();
        if (Azurite.Missing is null)
        {
            Environment.SetEnvironmentVariable(Variable, Azurite.ConnectionString);
        }
    }

    public AzuriteFixture Azurite { get; }

    public void Dispose()
    {
        Environment.SetEnvironmentVariable(Variable, null);
        Azurite.Dispose();
    }
}
