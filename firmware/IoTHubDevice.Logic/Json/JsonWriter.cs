using System;
using System.Text;

namespace IoTHubDevice.Logic.Json
{
    /// <summary>Writes JSON values (the kinds <see cref="JsonReader"/> produces, plus int) compactly.</summary>
    public static class JsonWriter
    {
        public static string Serialize(object value)
        {
            var sb = new StringBuilder();
            Write(sb, value);
            return sb.ToString();
        }

        public static byte[] SerializeToUtf8(object value)
        {
            return Encoding.UTF8.GetBytes(Serialize(value));
        }

        private static void Write(StringBuilder sb, object value)
        {
            if (value == null)
            {
                sb.Append("null");
                return;
            }

            var s = value as string;
            if (s != null)
            {
                WriteString(sb, s);
                return;
            }

            if (value is bool)
            {
                sb.Append((bool)value ? "true" : "false");
                return;
            }

            if (value is long)
            {
                sb.Append(((long)value).ToString());
                return;
            }

            if (value is int)
            {
                sb.Append(((int)value).ToString());
                return;
            }

            if (value is double)
            {
                sb.Append(Numbers.FormatDouble((double)value));
                return;
            }

            var obj = value as JsonObject;
            if (obj != null)
            {
                sb.Append('{');
                var names = obj.Names;
                for (var i = 0; i < names.Length; i++)
                {
                    if (i > 0)
                    {
                        sb.Append(',');
                    }

                    WriteString(sb, names[i]);
                    sb.Append(':');
                    Write(sb, obj[names[i]]);
                }

                sb.Append('}');
                return;
            }

            var array = value as JsonArray;
            if (array != null)
            {
                sb.Append('[');
                for (var i = 0; i < array.Count; i++)
                {
                    if (i > 0)
                    {
                        sb.Append(',');
                    }

                    Write(sb, array[i]);
                }

                sb.Append(']');
                return;
            }

            throw new ArgumentException("Cannot write a value of type " + value.GetType().Name + " as JSON");
        }

        private static void WriteString(StringBuilder sb, string s)
        {
            sb.Append('"');
            for (var i = 0; i < s.Length; i++)
            {
                var c = s[i];
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    case '\b': sb.Append("\\b"); break;
                    case '\f': sb.Append("\\f"); break;
                    default:
                        if (c < ' ')
                        {
                            sb.Append("\\u00");
                            sb.Append(HexChars[(c >> 4) & 0xF]);
                            sb.Append(HexChars[c & 0xF]);
                        }
                        else
                        {
                            sb.Append(c);
                        }

                        break;
                }
            }

            sb.Append('"');
        }

        private const string HexChars = "0123456789abcdef";
    }
}
