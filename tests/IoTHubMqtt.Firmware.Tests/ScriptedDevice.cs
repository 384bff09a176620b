using System.Text;
using IoTHubDevice.Logic.Device;
using IoTHubDevice.Logic.Mqtt;

namespace IoTHubMqtt.Firmware.Tests;

/// <summary>A scripted MQTT transport: records what the device sends, answers CONNECT from a queue, delivers what a test pushes.</summary>
internal sealed class ScriptedTransport : IMqttTransport
{
    public event MqttMessageHandler? MessageReceived;

    public Queue<int> ConnectResults { get; } = new();

    public List<(string Host, int Port, string ClientId, string Username, string Password, bool CleanSession)> Connects { get; } = [];

    public List<string> Subscriptions { get; } = [];

    public List<(string Topic, string Body, int Qos)> Published { get; } = [];

    public bool IsConnected { get; set; }

    public int Disconnects { get; private set; }

    public int Connect(string host, int port, string caCertificatePem, string clientId, string username, string password, bool cleanSession, int keepAliveSeconds)
    {
        Connects.Add((host, port, clientId, username, password, cleanSession));
        var result = ConnectResults.Count > 0 ? ConnectResults.Dequeue() : 0;
        IsConnected = result == 0;
        return result;
    }

    public bool Subscribe(string[] topics)
    {
        Subscriptions.AddRange(topics);
        return true;
    }

    public bool Publish(string topic, byte[] payload, int qos)
    {
        Published.Add((topic, Encoding.UTF8.GetString(payload), qos));
        return IsConnected;
    }

    public void Disconnect()
    {
        Disconnects++;
        IsConnected = false;
    }

    public void Deliver(string topic, string body) => MessageReceived?.Invoke(topic, Encoding.UTF8.GetBytes(body));

    public (string Topic, string Body, int Qos) Last(string prefix) => Published.Last(p => p.Topic.StartsWith(prefix, StringComparison.Ordinal));
}

internal sealed class ManualClock : IClock
{
    public long UnixTimeSeconds { get; set; } = 1_780_000_000;

    public long UptimeMilliseconds { get; set; }

    public void Advance(long milliseconds)
    {
        UptimeMilliseconds += milliseconds;
        UnixTimeSeconds += milliseconds / 1000;
    }
}

internal sealed class RecordingHardware : IDeviceHardware
{
    public List<int> Blinks { get; } = [];

    public int Reboots { get; private set; }

    public string ResetReason => "powerOn";

    public int Rssi { get; set; } = -61;

    public void Blink(int count) => Blinks.Add(count);

    public void Reboot() => Reboots++;
}

internal sealed class ListLog : ILog
{
    public List<string> Lines { get; } = [];

    public void Info(string message) => Lines.Add("info: " + message);

    public void Warning(string message) => Lines.Add("warn: " + message);
}
