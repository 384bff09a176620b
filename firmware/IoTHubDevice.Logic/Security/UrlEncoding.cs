using System.Text;

namespace IoTHubDevice.Logic.Security
{
    /// <summary>
    /// Form URL encoding as System.Net.WebUtility does it (space as '+', unreserved <c>A-Z a-z 0-9 - _ . ! * ( )</c>, UTF-8 bytes
    /// as upper-case %XX), so tokens match those the module creates. nanoFramework's mscorlib has no URL encoder.
    /// </summary>
    public static class UrlEncoding
    {
        private const string Hex = "0123456789ABCDEF";

        public static string Encode(string value)
        {
            if (value == null)
            {
                return null;
            }

            var bytes = Encoding.UTF8.GetBytes(value);
            var sb = new StringBuilder();
            for (var i = 0; i < bytes.Length; i++)
            {
                var b = bytes[i];
                var c = (char)b;
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '!' || c == '*' || c == '(' || c == ')')
                {
                    sb.Append(c);
                }
                else if (c == ' ')
                {
                    sb.Append('+');
                }
                else
                {
                    sb.Append('%');
                    sb.Append(Hex[b >> 4]);
                    sb.Append(Hex[b & 0xF]);
                }
            }

            return sb.ToString();
        }

        /// <summary>Decodes %XX (UTF-8) and '+'; a malformed escape is kept as text.</summary>
        public static string Decode(string value)
        {
            if (value == null)
            {
                return null;
            }

            if (value.IndexOf('%') < 0 && value.IndexOf('+') < 0)
            {
                return value;
            }

            var bytes = new byte[value.Length * 3];
            var count = 0;
            for (var i = 0; i < value.Length; i++)
            {
                var c = value[i];
                if (c == '+')
                {
                    bytes[count++] = (byte)' ';
                    continue;
                }

                if (c == '%' && i + 2 < value.Length)
                {
                    var hi = Json.JsonReader.HexDigit(value[i + 1]);
                    var lo = Json.JsonReader.HexDigit(value[i + 2]);
                    if (hi >= 0 && lo >= 0)
                    {
                        bytes[count++] = (byte)((hi << 4) | lo);
                        i += 2;
                        continue;
                    }
                }

                var chunk = Encoding.UTF8.GetBytes(c.ToString());
                for (var k = 0; k < chunk.Length; k++)
                {
                    bytes[count++] = chunk[k];
                }
            }

            return new string(Encoding.UTF8.GetChars(bytes, 0, count));
        }
    }
}
