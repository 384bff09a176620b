namespace IoTHubDevice.Logic.Device
{
    /// <summary>Where the app writes what it does (Debug output on the board, a test's list on .NET). Never given a secret.</summary>
    public interface ILog
    {
        void Info(string message);

        void Warning(string message);
    }
}
