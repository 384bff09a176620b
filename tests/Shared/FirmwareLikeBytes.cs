namespace IoTHubMqtt.Esp32.Simulator;

/// <summary>Deterministic images for the tests and the flash benchmark.</summary>
public static class FirmwareLikeBytes
{
    /// <summary>Bytes that compress like firmware (zlib-9 to about 55-60 %): skewed instruction-like words, noise and zero runs.</summary>
    public static byte[] Create(int length, int seed)
    {
        var random = new Random(seed);
        var data = new byte[length];
        var vocabulary = Enumerable.Range(0, 4096).Select(_ => { var w = new byte[4]; random.NextBytes(w); return w; }).ToArray();
        var i = 0;
        while (i < length)
        {
            var kind = random.NextDouble();
            if (kind < 0.5)
            {
                var w = vocabulary[Math.Min(4095, (int)(random.NextDouble() * random.NextDouble() * 4096))];
                for (var k = 0; k < 4 && i < length; k++)
                {
                    data[i++] = w[k];
                }
            }
            else if (kind < 0.9)
            {
                data[i++] = (byte)random.Next(256);
            }
            else
            {
                var run = random.Next(4, 17);
                for (var k = 0; k < run && i < length; k++)
                {
                    data[i++] = 0;
                }
            }
        }

        return data;
    }
}
