using System.Text;

namespace IoTHubDevice.Logic.Json
{
    /// <summary>
    /// A small recursive-descent JSON reader (RFC 8259): objects, arrays, strings with escapes (incl. \uXXXX and surrogate pairs),
    /// numbers (long when integral and in range, otherwise double), true, false, null. Depth is limited.
    /// </summary>
    public sealed class JsonReader
    {
        /// <summary>IoT Hub allows twin depth 10; a little headroom for method payloads.</summary>
        public const int MaxDepth = 32;

        private readonly string text;
        private int position;

        private JsonReader(string text)
        {
            this.text = text;
        }

        /// <summary>Parses a whole document; throws <see cref="JsonException"/> on malformed input or trailing text.</summary>
        public static object Parse(string text)
        {
            if (text == null)
            {
                throw new JsonException("No JSON text", 0);
            }

            var reader = new JsonReader(text);
            reader.SkipWhiteSpace();
            var value = reader.ReadValue(0);
            reader.SkipWhiteSpace();
            if (reader.position != text.Length)
            {
                throw new JsonException("Unexpected text after the JSON value", reader.position);
            }

            return value;
        }

        /// <summary>Parses UTF-8 bytes.</summary>
        public static object Parse(byte[] utf8)
        {
            if (utf8 == null || utf8.Length == 0)
            {
                throw new JsonException("No JSON text", 0);
            }

            return Parse(new string(Encoding.UTF8.GetChars(utf8)));
        }

        private object ReadValue(int depth)
        {
            if (depth > MaxDepth)
            {
                throw new JsonException("JSON is nested too deeply", position);
            }

            if (position >= text.Length)
            {
                throw new JsonException("Unexpected end of JSON", position);
            }

            var c = text[position];
            switch (c)
            {
                case '{':
                    return ReadObject(depth);
                case '[':
                    return ReadArray(depth);
                case '"':
                    return ReadString();
                case 't':
                    ExpectWord("true");
                    return true;
                case 'f':
                    ExpectWord("false");
                    return false;
                case 'n':
                    ExpectWord("null");
                    return null;
                default:
                    if (c == '-' || (c >= '0' && c <= '9'))
                    {
                        return ReadNumber();
                    }

                    throw new JsonException("Unexpected character '" + c + "'", position);
            }
        }

        private JsonObject ReadObject(int depth)
        {
            var result = new JsonObject();
            position++; // {
            SkipWhiteSpace();
            if (Peek() == '}')
            {
                position++;
                return result;
            }

            while (true)
            {
                SkipWhiteSpace();
                if (Peek() != '"')
                {
                    throw new JsonException("Expected a member name", position);
                }

                var name = ReadString();
                SkipWhiteSpace();
                Expect(':');
                SkipWhiteSpace();
                result.Set(name, ReadValue(depth + 1));
                SkipWhiteSpace();
                var next = Peek();
                position++;
                if (next == '}')
                {
                    return result;
                }

                if (next != ',')
                {
                    throw new JsonException("Expected ',' or '}'", position - 1);
                }
            }
        }

        private JsonArray ReadArray(int depth)
        {
            var result = new JsonArray();
            position++; // [
            SkipWhiteSpace();
            if (Peek() == ']')
            {
                position++;
                return result;
            }

            while (true)
            {
                SkipWhiteSpace();
                result.Add(ReadValue(depth + 1));
                SkipWhiteSpace();
                var next = Peek();
                position++;
                if (next == ']')
                {
                    return result;
                }

                if (next != ',')
                {
                    throw new JsonException("Expected ',' or ']'", position - 1);
                }
            }
        }

        private string ReadString()
        {
            position++; // opening quote
            var sb = new StringBuilder();
            while (true)
            {
                if (position >= text.Length)
                {
                    throw new JsonException("Unterminated string", position);
                }

                var c = text[position++];
                if (c == '"')
                {
                    return sb.ToString();
                }

                if (c < ' ')
                {
                    throw new JsonException("Control character in string", position - 1);
                }

                if (c != '\\')
                {
                    sb.Append(c);
                    continue;
                }

                if (position >= text.Length)
                {
                    throw new JsonException("Unterminated escape", position);
                }

                var e = text[position++];
                switch (e)
                {
                    case '"': sb.Append('"'); break;
                    case '\\': sb.Append('\\'); break;
                    case '/': sb.Append('/'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'n': sb.Append('\n'); break;
                    case 'r': sb.Append('\r'); break;
                    case 't': sb.Append('\t'); break;
                    case 'u': sb.Append(ReadHex4()); break;
                    default:
                        throw new JsonException("Invalid escape '\\" + e + "'", position - 2);
                }
            }
        }

        private char ReadHex4()
        {
            if (position + 4 > text.Length)
            {
                throw new JsonException("Truncated \\u escape", position);
            }

            var value = 0;
            for (var i = 0; i < 4; i++)
            {
                var digit = HexDigit(text[position + i]);
                if (digit < 0)
                {
                    throw new JsonException("Invalid \\u escape", position);
                }

                value = (value << 4) | digit;
            }

            position += 4;
            return (char)value;
        }

        internal static int HexDigit(char c)
        {
            if (c >= '0' && c <= '9')
            {
                return c - '0';
            }

            if (c >= 'a' && c <= 'f')
            {
                return c - 'a' + 10;
            }

            if (c >= 'A' && c <= 'F')
            {
                return c - 'A' + 10;
            }

            return -1;
        }

        private object ReadNumber()
        {
            var start = position;
            var integral = true;
            if (Peek() == '-')
            {
                position++;
            }

            var digitsStart = position;
            while (position < text.Length && IsDigit(text[position]))
            {
                position++;
            }

            if (position == digitsStart)
            {
                throw new JsonException("Invalid number", start);
            }

            if (text[digitsStart] == '0' && position - digitsStart > 1)
            {
                throw new JsonException("Leading zeros are not allowed", start);
            }

            if (Peek() == '.')
            {
                integral = false;
                position++;
                var fractionStart = position;
                while (position < text.Length && IsDigit(text[position]))
                {
                    position++;
                }

                if (position == fractionStart)
                {
                    throw new JsonException("Invalid number", start);
                }
            }

            var p = Peek();
            if (p == 'e' || p == 'E')
            {
                integral = false;
                position++;
                if (Peek() == '+' || Peek() == '-')
                {
                    position++;
                }

                var exponentStart = position;
                while (position < text.Length && IsDigit(text[position]))
                {
                    position++;
                }

                if (position == exponentStart)
                {
                    throw new JsonException("Invalid number", start);
                }
            }

            var token = text.Substring(start, position - start);
            long integer;
            if (integral && Numbers.TryParseInt64(token, out integer))
            {
                return integer;
            }

            return Numbers.ParseDouble(token);
        }

        private static bool IsDigit(char c)
        {
            return c >= '0' && c <= '9';
        }

        private void ExpectWord(string word)
        {
            if (position + word.Length > text.Length || text.Substring(position, word.Length) != word)
            {
                throw new JsonException("Invalid literal", position);
            }

            position += word.Length;
        }

        private void Expect(char c)
        {
            if (Peek() != c)
            {
                throw new JsonException("Expected '" + c + "'", position);
            }

            position++;
        }

        private char Peek()
        {
            return position < text.Length ? text[position] : '\0';
        }

        private void SkipWhiteSpace()
        {
            while (position < text.Length)
            {
                var c = text[position];
                if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
                {
                    return;
                }

                position++;
            }
        }
    }
}
