using System.Collections;

namespace IoTHubDevice.Logic.Json
{
    /// <summary>A JSON array; items are the same value kinds as <see cref="JsonObject"/> members.</summary>
    public sealed class JsonArray
    {
        private readonly ArrayList items = new ArrayList();

        public int Count
        {
            get { return items.Count; }
        }

        public object this[int index]
        {
            get { return items[index]; }
        }

        public void Add(object value)
        {
            items.Add(value);
        }

        public override string ToString()
        {
            return JsonWriter.Serialize(this);
        }
    }
}
