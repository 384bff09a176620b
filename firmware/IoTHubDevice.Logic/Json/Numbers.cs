namespace IoTHubDevice.Logic.Json
{
    /// <summary>Culture-independent number text on both platforms (nanoFramework's mscorlib is invariant; .NET is told to be).</summary>
    public static class Numbers
    {
        /// <summary>Parses an optionally negative decimal integer with no sign, space or overflow surprises.</summary>
        public static bool TryParseInt64(string text, out long value)
        {
            value = 0;
            if (text == null || text.Length == 0)
            {
                return false;
            }

            var negative = text[0] == '-';
            var start = negative ? 1 : 0;
            if (start == text.Length || text.Length - start > 19)
            {
                return false;
            }

            long result = 0;
            for (var i = start; i < text.Length; i++)
            {
                var c = text[i];
                if (c < '0' || c > '9')
                {
                    return false;
                }

                var next = (result * 10) + (c - '0');
                if (next < result)
                {
                    return false; // overflow
                }

                result = next;
            }

            value = negative ? -result : result;
            return true;
        }

        public static double ParseDouble(string text)
        {
#if NANOFRAMEWORK_1_0
            return double.Parse(text);
#else
            return double.Parse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture);
#endif
        }

        public static string FormatDouble(double value)
        {
            if (value >= -9.0e15 && value <= 9.0e15 && value == (double)(long)value)
            {
                return ((long)value).ToString();
            }
#if NANOFRAMEWORK_1_0
            return value.ToString();
#else
            return value.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
#endif
        }
    }
}
