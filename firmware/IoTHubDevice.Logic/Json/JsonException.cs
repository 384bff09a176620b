using System;

namespace IoTHubDevice.Logic.Json
{
    /// <summary>Malformed JSON; <see cref="Position"/> is the character offset where reading stopped.</summary>
    public class JsonException : Exception
    {
        public JsonException(string message, int position)
            : base(message + " (at character " + position.ToString() + ")")
        {
            Position = position;
        }

        public int Position { get; private set; }
    }
}
