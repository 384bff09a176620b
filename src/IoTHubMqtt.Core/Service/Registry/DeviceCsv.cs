using System.Text;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Errors;

namespace IoTHubMqtt.Core.Service.Registry;

/// <summary>One row of a device CSV: its line, and the device or why the row is not one.</summary>
public sealed record DeviceCsvRow(int Line, DeviceInput? Device, IoTHubMqttException? Error);

/// <summary>
/// Reads a device CSV (RFC 4180: a header line, comma-separated fields, double quotes around fields that hold commas,
/// quotes or line breaks) as it streams. Columns, in any order and case: DeviceId (or Id, SerialNumber), Status,
/// AuthenticationType, PrimaryKey, SecondaryKey, PrimaryThumbprint, SecondaryThumbprint, Tags (JSON), ETag; others are ignored.
/// A row with the wrong number of fields is an error naming its line; the others go on.
/// </summary>
public static class DeviceCsv
{
    public static IEnumerable<DeviceCsvRow> Read(TextReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var line = 1;
        var header = ReadRecord(reader, ref line);
        if (header is null)
        {
            throw new IoTHubMqttException(ErrorIds.CsvEmpty, "The CSV is empty.", "Give a header line (DeviceId,…) and one device a line.");
        }

        var columns = header.Fields.Select(h => h.Trim().Trim('\uFEFF')).ToArray();
        int Column(params string[] names) => Array.FindIndex(columns, c => names.Any(n => n.Equals(c, StringComparison.OrdinalIgnoreCase)));
        var id = Column("DeviceId", "Id", "SerialNumber");
        if (id < 0)
        {
            throw new IoTHubMqttException(ErrorIds.CsvNoDeviceIdColumn, "The CSV has no DeviceId (or Id, SerialNumber) column.", "Add a DeviceId column to the header line.");
        }

        var status = Column("Status");
        var auth = Column("AuthenticationType");
        var primary = Column("PrimaryKey");
        var secondary = Column("SecondaryKey");
        var thumb = Column("PrimaryThumbprint");
        var thumb2 = Column("SecondaryThumbprint");
        var tags = Column("Tags", "Tag");
        var etag = Column("ETag");
        while (ReadRecord(reader, ref line) is { } record)
        {
            if (record.Fields.Count == 1 && record.Fields[0].Trim().Length == 0)
            {
                continue; // a blank line
            }

            if (record.Fields.Count != columns.Length)
            {
                yield return new DeviceCsvRow(record.Line, null, new IoTHubMqttException(ErrorIds.CsvRowMalformed,
                    $"CSV line {record.Line}: {record.Fields.Count} fields where the header has {columns.Length}.", "Quote fields that hold commas; give every row the header's columns.", $"line {record.Line}"));
                continue;
            }

            string? Field(int index) => index < 0 ? null : record.Fields[index];
            yield return new DeviceCsvRow(record.Line, new DeviceInput
            {
                DeviceId = Field(id),
                Status = Field(status),
                AuthenticationType = Field(auth),
                PrimaryKey = Field(primary),
                SecondaryKey = Field(secondary),
                PrimaryThumbprint = Field(thumb),
                SecondaryThumbprint = Field(thumb2),
                Tags = Field(tags) is { } t ? JsonValue.Create(t) : null,
                ETag = Field(etag),
            }, null);
        }
    }

    private sealed record Record(int Line, List<string> Fields);

    /// <summary>One record (which may span lines inside quotes), or null at the end.</summary>
    private static Record? ReadRecord(TextReader reader, ref int line)
    {
        var first = reader.Peek();
        if (first < 0)
        {
            return null;
        }

        var start = line;
        var fields = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        while (true)
        {
            var c = reader.Read();
            if (c < 0)
            {
                fields.Add(field.ToString());
                return new Record(start, fields);
            }

            if (quoted)
            {
                if (c == '"')
                {
                    if (reader.Peek() == '"')
                    {
                        reader.Read();
                        field.Append('"');
                    }
                    else
                    {
                        quoted = false;
                    }
                }
                else
                {
                    if (c == '\n')
                    {
                        line++;
                    }

                    field.Append((char)c);
                }

                continue;
            }

            switch (c)
            {
                case '"' when field.ToString().Trim().Length == 0:
                    field.Clear();
                    quoted = true;
                    break;
                case ',':
                    fields.Add(field.ToString());
                    field.Clear();
                    break;
                case '\r':
                    break;
                case '\n':
                    line++;
                    fields.Add(field.ToString());
                    return new Record(start, fields);
                default:
                    field.Append((char)c);
                    break;
            }
        }
    }
}
