using System.Collections;
using System.Text;
using IoTHubDevice.Logic.Security;

namespace IoTHubDevice.Logic.Mqtt
{
    /// <summary>
    /// The URL-encoded <c>k1=v1&amp;k2=v2</c> property bag at the end of telemetry and C2D topics. System properties start with
    /// <c>$.</c> (<c>$.mid</c>, <c>$.cid</c>, <c>$.ct</c>, <c>$.ce</c>…); the '$' may arrive as %24. Names keep their order.
    /// </summary>
    public sealed class PropertyBag
    {
        private readonly ArrayList names = new ArrayList();
        private readonly Hashtable values = new Hashtable();

        public int Count
        {
            get { return names.Count; }
        }

        public string[] Names
        {
            get
            {
                var result = new string[names.Count];
                for (var i = 0; i < result.Length; i++)
                {
                    result[i] = (string)names[i];
                }

                return result;
            }
        }

        /// <summary>The value, or null when absent; a property given without '=' has the empty string.</summary>
        public string this[string name]
        {
            get { return values.Contains(name) ? (string)values[name] : null; }
            set { Set(name, value); }
        }

        public void Set(string name, string value)
        {
            if (!values.Contains(name))
            {
                names.Add(name);
            }

            values[name] = value == null ? string.Empty : value;
        }

        public bool Contains(string name)
        {
            return values.Contains(name);
        }

        public static PropertyBag Parse(string encoded)
        {
            var bag = new PropertyBag();
            if (encoded == null || encoded.Length == 0)
            {
                return bag;
            }

            var pairs = encoded.Split('&');
            for (var i = 0; i < pairs.Length; i++)
            {
                if (pairs[i].Length == 0)
                {
                    continue;
                }

                var eq = pairs[i].IndexOf('=');
                if (eq < 0)
                {
                    bag.Set(UrlEncoding.Decode(pairs[i]), string.Empty);
                }
                else
                {
                    bag.Set(UrlEncoding.Decode(pairs[i].Substring(0, eq)), UrlEncoding.Decode(pairs[i].Substring(eq + 1)));
                }
            }

            return bag;
        }

        /// <summary>The encoded form; system property names keep their literal '$.'.</summary>
        public override string ToString()
        {
            var sb = new StringBuilder();
            for (var i = 0; i < names.Count; i++)
            {
                var name = (string)names[i];
                if (i > 0)
                {
                    sb.Append('&');
                }

                sb.Append(name.Length > 2 && name[0] == '$' && name[1] == '.' ? "$." + UrlEncoding.Encode(name.Substring(2)) : UrlEncoding.Encode(name));
                sb.Append('=');
                sb.Append(UrlEncoding.Encode((string)values[name]));
            }

            return sb.ToString();
        }
    }
}
