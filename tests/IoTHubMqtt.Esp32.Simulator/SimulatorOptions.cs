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

public sealed record SimulatorFault(SimulatorFaultKind Kind, byte Opcode, int Occurrence, TimeSpan Delay = default);

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
