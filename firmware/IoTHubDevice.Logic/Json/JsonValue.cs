namespace IoTHubDevice.Logic.Json
{
    /// <summary>Helpers over parsed JSON values.</summary>
    public static class JsonValue
    {
        /// <summary>True for a long, or a double with no fractional part in the long range.</summary>
        public static bool TryGetInteger(object value, out long result)
        {
            result = 0;
            if (value is long)
            {
                result = (long)value;
                return true;
            }

            if (value is double)
            {
                var d = (double)value;
                if (d >= -9.0e18 && d <= 9.0e18 && d == (double)(long)d)
                {
                    result = (long)d;
                    return true;
                }
            }

            return false;
        }
    }
}
