namespace IoTHubMqtt.Emulator.Transport;

/// <summary>
/// Follows MQTT framing across reads and throws <see cref="IOException"/> (the connection ends, nothing is answered) on an
/// oversized or malformed remaining length, and on what MQTT 3.1.1 requires a server to close the connection for, before
/// MQTTnet decodes it (MQTTnet turns malformed UTF-8 into U+FFFD and lets wildcards through): a UTF-8 string in CONNECT,
/// PUBLISH, SUBSCRIBE or UNSUBSCRIBE that is ill-formed, encodes a surrogate or holds U+0000 (§1.5.3 [MQTT-1.5.3-1],
/// [MQTT-1.5.3-2]), a PUBLISH topic name that is empty or has a wildcard (§4.7.1 [MQTT-3.3.2-2], §4.7.3 [MQTT-4.7.3-1]),
/// and a topic filter that misplaces one (§4.7.1 [MQTT-4.7.1-2], [MQTT-4.7.1-3]).
/// Only the strings are looked at: a PUBLISH payload passes through uncopied.
/// </summary>
internal sealed class MqttFrameGuard(int maxRemainingLength, Action<string>? onViolation = null)
{
    private static readonly System.Text.UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private State state = State.Type;
    private int type;
    private int length;
    private int multiplier;
    private int lengthBytes;
    private int remaining;

    // The start of the current packet's body that is being collected (CONNECT, SUBSCRIBE and UNSUBSCRIBE whole; PUBLISH up
    // to the end of its topic), rented only while a packet is being read.
    private byte[]? collected;
    private int collectedCount;
    private int wanted;

    /// <summary>The client id of the CONNECT seen on this connection, for messages.</summary>
    public string? ClientId { get; private set; }

    /// <summary>Names the device by <paramref name="clientId"/> (equal to what its CONNECT carried: the same string, not a copy).</summary>
    public void NameDevice(string clientId) => ClientId = clientId;

    private enum State
    {
        Type,
        Length,
        Body,
    }

    public void Inspect(ReadOnlySpan<byte> data)
    {
        var i = 0;
        while (i < data.Length)
        {
            switch (state)
            {
                case State.Type:
                    type = data[i] >> 4;
                    state = State.Length;
                    length = 0;
                    multiplier = 1;
                    lengthBytes = 0;
                    i++;
                    break;
                case State.Length:
                    var b = data[i++];
                    length += (b & 0x7F) * multiplier;
                    multiplier *= 128;
                    lengthBytes++;
                    if (length > maxRemainingLength)
                    {
                        throw new IOException($"An MQTT packet of {length} bytes is larger than the {maxRemainingLength} allowed.");
                    }

                    if ((b & 0x80) == 0)
                    {
                        remaining = length;
                        StartBody();
                        state = remaining == 0 ? State.Type : State.Body;
                    }
                    else if (lengthBytes == 4)
                    {
                        throw new IOException("An MQTT packet has a malformed remaining length.");
                    }

                    break;
                default:
                    var skip = Math.Min(remaining, data.Length - i);
                    for (var taken = 0; wanted > collectedCount && taken < skip;)
                    {
                        var take = Math.Min(skip - taken, wanted - collectedCount);
                        Collect(data.Slice(i + taken, take)); // may learn it wants more (a PUBLISH's topic length)
                        taken += take;
                    }

                    i += skip;
                    remaining -= skip;
                    if (remaining == 0)
                    {
                        EndBody();
                        state = State.Type;
                    }

                    break;
            }
        }
    }

    private void StartBody()
    {
        collectedCount = 0;
        wanted = type switch
        {
            1 or 8 or 10 => length, // CONNECT, SUBSCRIBE, UNSUBSCRIBE: small, read whole
            3 => Math.Min(2, length), // PUBLISH: the topic's length first
            _ => 0,
        };
        if (remaining == 0)
        {
            EndBody();
        }
    }

    private void Collect(ReadOnlySpan<byte> bytes)
    {
        if (collected is null || collected.Length < wanted)
        {
            var larger = System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Max(wanted, 64));
            collected?.AsSpan(0, collectedCount).CopyTo(larger);
            Release();
            collected = larger;
        }

        bytes.CopyTo(collected.AsSpan(collectedCount));
        collectedCount += bytes.Length;
        if (type == 3 && collectedCount == 2 && wanted == 2)
        {
            wanted = Math.Min(length, 2 + ((collected[0] << 8) | collected[1]));
        }

        if (collectedCount == wanted && type == 3 && wanted > 2)
        {
            Check(collected.AsSpan(0, collectedCount));
            Release();
            wanted = 0;
        }
    }

    private void EndBody()
    {
        if (wanted > 0 && collectedCount == wanted)
        {
            Check(collected is null ? [] : collected.AsSpan(0, collectedCount));
        }

        Release();
        wanted = 0;
        collectedCount = 0;
    }

    private void Release()
    {
        if (collected is not null)
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(collected);
            collected = null;
        }
    }

    private void Check(ReadOnlySpan<byte> body)
    {
        switch (type)
        {
            case 1:
                CheckConnect(body);
                break;
            case 3:
                if (TryString(body, 0, out var topic, out _) is { } error)
                {
                    Violation($"its PUBLISH topic name {error}", "§1.5.3");
                }

                if (topic.Length == 0)
                {
                    Violation("its PUBLISH topic name is empty", "§4.7.3");
                }

                if (topic.AsSpan().IndexOfAny('+', '#') >= 0)
                {
                    Violation("its PUBLISH topic name has a wildcard ('+' or '#')", "§4.7.1");
                }

                break;
            default: // SUBSCRIBE (filter + QoS byte)*, UNSUBSCRIBE filter*; both after a packet id
                for (var at = 2; at + 2 <= body.Length;)
                {
                    if (TryString(body, at, out var filter, out var next) is { } bad)
                    {
                        Violation($"a topic filter {bad}", "§1.5.3");
                    }

                    if (!IsValidFilter(filter))
                    {
                        Violation("a topic filter is empty or misplaces a wildcard", "§4.7.1");
                    }

                    at = next + (type == 8 ? 1 : 0);
                }

                break;
        }
    }

    private void CheckConnect(ReadOnlySpan<byte> body)
    {
        // Protocol name, level, flags, keep-alive; then client id, [will topic, will message], [user name], [password].
        if (TryString(body, 0, out _, out var at) is not null || at + 4 > body.Length)
        {
            return; // not a CONNECT MQTTnet will accept anyway
        }

        var flags = body[at + 1];
        at += 4;
        if (TryString(body, at, out var clientId, out at) is { } badClientId)
        {
            Violation($"its CONNECT client id {badClientId}", "§1.5.3");
        }

        ClientId = clientId;
        if ((flags & 0x04) != 0)
        {
            if (TryString(body, at, out _, out at) is { } badWillTopic)
            {
                Violation($"its CONNECT will topic {badWillTopic}", "§1.5.3");
            }

            at = SkipBinary(body, at);
        }

        if ((flags & 0x80) != 0 && TryString(body, at, out _, out _) is { } badUserName)
        {
            Violation($"its CONNECT user name {badUserName}", "§1.5.3");
        }
    }

    // Reads an MQTT UTF-8 string at 'at'; returns why it is malformed, or null. A string cut off by the packet's end is
    // left to MQTTnet to refuse.
    private static string? TryString(ReadOnlySpan<byte> body, int at, out string value, out int next)
    {
        value = "";
        next = body.Length + 1;
        if (at < 0 || at + 2 > body.Length)
        {
            return null;
        }

        var size = (body[at] << 8) | body[at + 1];
        if (at + 2 + size > body.Length)
        {
            return null;
        }

        next = at + 2 + size;
        try
        {
            value = StrictUtf8.GetString(body.Slice(at + 2, size));
        }
        catch (System.Text.DecoderFallbackException)
        {
            return "is not well-formed UTF-8 (or encodes a surrogate)";
        }

        return value.Contains('\0', StringComparison.Ordinal) ? "holds U+0000" : null;
    }

    private static int SkipBinary(ReadOnlySpan<byte> body, int at) =>
        at + 2 <= body.Length ? at + 2 + ((body[at] << 8) | body[at + 1]) : body.Length + 1;

    private static bool IsValidFilter(string filter)
    {
        if (filter.Length == 0)
        {
            return false;
        }

        var levels = filter.Split('/');
        for (var i = 0; i < levels.Length; i++)
        {
            var level = levels[i];
            if ((level.Contains('#', StringComparison.Ordinal) && (level != "#" || i != levels.Length - 1)) ||
                (level.Contains('+', StringComparison.Ordinal) && level != "+"))
            {
                return false;
            }
        }

        return true;
    }

    private void Violation(string what, string section)
    {
        var message = $"{(ClientId is { Length: > 0 } id ? $"Device '{id}'" : "A client")}: {what} (MQTT 3.1.1 {section}); closing the connection.";
        onViolation?.Invoke(message);
        Release();
        throw new IOException(message);
    }
}
