namespace MQTTnet;

/// <summary>Same name as MQTTnet 5's factory, different shape: using this one by mistake would fail loudly.</summary>
public sealed class MqttClientFactory
{
    public static string Version => "4.3.7 stand-in";
}
