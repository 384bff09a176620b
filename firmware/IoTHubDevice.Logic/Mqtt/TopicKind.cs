namespace IoTHubDevice.Logic.Mqtt
{
    /// <summary>What an incoming publish is.</summary>
    public enum TopicKind
    {
        Unknown = 0,
        CloudToDevice = 1,
        MethodRequest = 2,
        TwinResponse = 3,
        DesiredPropertiesPatch = 4,
        DpsResponse = 5,
    }
}
