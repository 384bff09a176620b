using System.Collections;

namespace IoTHubDevice.Logic.Json
{
    /// <summary>
    /// A JSON object that keeps its members in insertion order. Values are <see cref="JsonObject"/>, <see cref="JsonArray"/>,
    /// string, long, double, bool or null; <see cref="Contains"/> tells an explicit null (a twin patch deleting a property)
    /// from a missing member.
    /// </summary>
    public sealed class JsonObject
    {
        private readonly ArrayList names = new ArrayList();
        private readonly Hashtable values = new Hashtable();

        public int Count
        {
            get { return names.Count; }
        }

        /// <summary>Member names in order.</summary>
        public string[] Names
        {
            get
            {
                var result = new string[names.Count];
                for (var i = 0; i < names.Count; i++)
                {
                    result[i] = (string)names[i];
                }

                return result;
            }
        }

        public bool Contains(string name)
        {
            return values.Contains(name);
        }

        /// <summary>The member's value, or null when it is missing or null.</summary>
        public object this[string name]
        {
            get { return values.Contains(name) ? values[name] : null; }
            set { Set(name, value); }
        }

        public void Set(string name, object value)
        {
            if (!values.Contains(name))
            {
                names.Add(name);
            }

            values[name] = value;
        }

        public bool Remove(string name)
        {
            if (!values.Contains(name))
            {
                return false;
            }

            values.Remove(name);
            names.Remove(name);
            return true;
        }

        public JsonObject GetObject(string name)
        {
            return this[name] as JsonObject;
        }

        public string GetString(string name)
        {
            return this[name] as string;
        }

        /// <summary>Reads an integral number member; false when it is missing, not a number or not integral.</summary>
        public bool TryGetInteger(string name, out long value)
        {
            return JsonValue.TryGetInteger(this[name], out value);
        }

        public override string ToString()
        {
            return JsonWriter.Serialize(this);
        }
    }
}
