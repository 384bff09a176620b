namespace IoTHubMqtt.Core.Esp32.Transport;

/// <summary>Turns a -Port string into a port: <c>socket://host:port</c>, <c>rfc2217://host:port</c>, or a serial port name.</summary>
public static class Esp32PortFactory
{
    public static async Task<IEsp32Port> OpenAsync(string port, int baudRate = 115200, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(port);
        if (port.Contains("://", StringComparison.Ordinal))
        {
            var (scheme, host, number) = ParseUrl(port);
            return scheme switch
            {
                "socket" => await TcpPort.ConnectAsync(port, host, number, cancellationToken).ConfigureAwait(false),
                "rfc2217" => await Rfc2217Port.ConnectAsync(port, host, number, baudRate, cancellationToken).ConfigureAwait(false),
                _ => throw Esp32Errors.InvalidPort(port, $"unknown scheme '{scheme}'."),
            };
        }

        return SerialPortTransport.Open(port, baudRate);
    }

    /// <summary>Splits scheme://host:port; IPv6 hosts in brackets.</summary>
    public static (string Scheme, string Host, int Port) ParseUrl(string port)
    {
        if (!Uri.TryCreate(port, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw Esp32Errors.InvalidPort(port, "expected scheme://host:port.");
        }

        if (uri.Port is <= 0 or > 65535)
        {
            throw Esp32Errors.InvalidPort(port, "a TCP port number is required.");
        }

        return (uri.Scheme.ToLowerInvariant(), uri.Host.Trim('[', ']'), uri.Port);
    }
}
