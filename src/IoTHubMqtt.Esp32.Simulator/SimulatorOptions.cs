namespace IoTHubMqtt.Esp32.Simulator;

/// <summary>What can go wrong, deterministically: the Nth occurrence (1-based) of a command.</summary>
public enum SimulatorFaultKind
{
    /// <summary>The request is processed but no response is sent (a lost response).</summary>
    DropResponse,

    /// <summary>A byte of the response is flipped on the wire.</summary>
    CorruptResponse,

    /// <summary>The response is sent after <see cref="SimulatorFault.Delay"/> (past the host's timeout).</summary>
    DelayResponse,

    /// <summary>A byte of the request is lost on the wire; the loader ignores the malformed packet.</summary>
    DropRequestByte,

    /// <summary>The connection drops when the command arrives (a cable pulled, a board that resets).</summary>
    Disconnect,

    /// <summary>A FLASH_DEFL/FLASH write session acknowledges every block but writes nothing (Occurrence 0 = every session).</summary>
    SilentWriteFailure,
}

public sealed record SimulatorFault(SimulatorFaultKind Kind, byte Opcode, int Occurrence, TimeSpan Delay = default)
{
    private static readonly Dictionary<string, byte> Commands = new(StringComparer.OrdinalIgnoreCase)
    {
        ["FLASH_BEGIN"] = 0x02, ["FLASH_DATA"] = 0x03, ["FLASH_END"] = 0x04, ["MEM_BEGIN"] = 0x05, ["MEM_END"] = 0x06,
        ["MEM_DATA"] = 0x07, ["SYNC"] = 0x08, ["WRITE_REG"] = 0x09, ["READ_REG"] = 0x0A, ["SPI_SET_PARAMS"] = 0x0B,
        ["SPI_ATTACH"] = 0x0D, ["CHANGE_BAUDRATE"] = 0x0F, ["FLASH_DEFL_BEGIN"] = 0x10, ["FLASH_DEFL_DATA"] = 0x11,
        ["FLASH_DEFL_END"] = 0x12, ["SPI_FLASH_MD5"] = 0x13, ["GET_SECURITY_INFO"] = 0x14, ["ERASE_FLASH"] = 0xD0,
        ["ERASE_REGION"] = 0xD1, ["READ_FLASH"] = 0xD2, ["RUN_USER_CODE"] = 0xD3,
    };

    /// <summary>
    /// A command's opcode from its name in the serial-protocol documentation (FLASH_DEFL_DATA), the same in PascalCase
    /// (FlashDeflData), or a number ("0x11", "17").
    /// </summary>
    public static byte OpcodeOf(string command)
    {
        ArgumentException.ThrowIfNullOrEmpty(command);
        var text = command.Trim();
        if (text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) && byte.TryParse(text.AsSpan(2), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out var hex))
        {
            return hex;
        }

        if (byte.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var number))
        {
            return number;
        }

        var snake = string.Concat(text.Select((c, i) => i > 0 && char.IsUpper(c) && !char.IsUpper(text[i - 1]) && text[i - 1] != '_' ? "_" + c : c.ToString()));
        return Commands.TryGetValue(text, out var op) || Commands.TryGetValue(snake, out op)
            ? op
            : throw new ArgumentException($"'{command}' is not a loader command; use one of {string.Join(", ", Commands.Keys)} or a number.", nameof(command));
    }
}

public sealed class SimulatorOptions
{
    public SimulatedChipType Chip { get; set; } = SimulatedChipType.Esp32;

    /// <summary>Flash size; the JEDEC id's capacity byte follows it.</summary>
    public int FlashSize { get; set; } = 4 * 1024 * 1024;

    public byte[] Mac { get; set; } = [0x24, 0x0A, 0xC4, 0x12, 0x34, 0x56];

    /// <summary>The JEDEC id the flash answers to RDID; null = a Winbond W25Q whose capacity byte follows <see cref="FlashSize"/>.</summary>
    public uint? FlashJedecId { get; set; }

    /// <summary>Register values the chip starts with, e.g. eFuse words that hold the chip revision (unset registers read 0).</summary>
    public Dictionary<uint, uint> Registers { get; } = [];

    /// <summary>Throttle both directions to the current baud rate (10 bits a byte), as a UART would.</summary>
    public bool LimitRate { get; set; }

    /// <summary>
    /// True: every connection finds the chip waiting in its serial loader (as with BOOT held). False: the chip runs its
    /// application until the host resets it into the loader with DTR/RTS (only possible over RFC 2217).
    /// </summary>
    public bool StartInBootloader { get; set; } = true;

    /// <summary>The first N SYNC requests get no answer (a board that needs a few tries).</summary>
    public int IgnoreFirstSyncs { get; set; }

    public List<SimulatorFault> Faults { get; } = [];
}

public enum SimulatedBootMode
{
    Download,
    Application,
}
