using System.Management.Automation;
using IoTHubMqtt.Core.Esp32;
using IoTHubMqtt.Infrastructure;

namespace IoTHubMqtt.Commands.Esp32;

/// <summary>
/// <para type="synopsis">Reads bytes from an ESP32's flash into a file (or as a byte array), checked by MD5.</para>
/// </summary>
[Cmdlet(VerbsCommunications.Read, "Esp32Flash")]
[OutputType(typeof(FileInfo), typeof(byte[]))]
public sealed class ReadEsp32FlashCommand : Esp32Cmdlet
{
    /// <summary>Flash offset to start at (e.g. 0x8000).</summary>
    [Parameter(Mandatory = true)]
    public object Offset { get; set; } = 0;

    /// <summary>Number of bytes to read.</summary>
    [Parameter(Mandatory = true)]
    public object Length { get; set; } = 0;

    /// <summary>File to write; without it the bytes are written to the pipeline as one byte[].</summary>
    [Parameter]
    public string? Path { get; set; }

    protected override void ProcessRecord()
    {
        uint offset = 0, length = 0;
        Terminating(() =>
        {
            offset = Esp32RegionSpec.ParseOffset(Offset is PSObject o ? o.BaseObject : Offset);
            length = Esp32RegionSpec.ParseOffset(Length is PSObject l ? l.BaseObject : Length);
        });

        try
        {
            var data = Run(async token =>
            {
                await using var flasher = await Esp32Flasher.ConnectAsync(Port, Options("Read-Esp32Flash"), token).ConfigureAwait(false);
                var bytes = await flasher.ReadFlashAsync(offset, length, token).ConfigureAwait(false);
                await flasher.HardResetAsync(token).ConfigureAwait(false);
                return bytes;
            });
            WriteProgress(new ProgressRecord(0x3532, "Read-Esp32Flash", "Done") { RecordType = ProgressRecordType.Completed });
            if (Path is null)
            {
                WriteObject(data, enumerateCollection: false);
                return;
            }

            var full = GetUnresolvedProviderPathFromPSPath(Path);
            File.WriteAllBytes(full, data);
            WriteObject(new FileInfo(full));
        }
        catch (Exception ex) when (ErrorMapper.IsMappable(ex))
        {
            ThrowTerminatingError(ex, Port);
        }
    }
}
