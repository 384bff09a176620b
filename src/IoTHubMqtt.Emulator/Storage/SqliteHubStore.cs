using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using IoTHubMqtt.Core.Errors;
using IoTHubMqtt.Emulator.Hub;
using Microsoft.Data.Sqlite;

namespace IoTHubMqtt.Emulator.Storage;

/// <summary>
/// SQLite persistence (<c>{DataPath}/emulator.db</c>, WAL): devices with keys and twins, undelivered C2D messages,
/// retained telemetry and settings. Every write commits before it returns, so a killed emulator loses nothing it acknowledged.
/// </summary>
internal sealed class SqliteHubStore : IHubStore
{
    /// <summary>The database's <c>PRAGMA application_id</c>: ASCII 'IHMQ', marks the file as this emulator's.</summary>
    public const int ApplicationId = 0x49484D51;

    /// <summary>The layout this version writes and reads (<c>PRAGMA user_version</c>).</summary>
    public const int SchemaVersion = 1;

    // The tables of schema 1 and their columns; a file from before the schema was stamped has a subset of them.
    private static readonly Dictionary<string, string[]> Tables = new(StringComparer.Ordinal)
    {
        ["devices"] = ["id", "doc"],
        ["c2d"] = ["seq", "device", "doc"],
        ["telemetry"] = ["seq", "doc"],
        ["settings"] = ["name", "value"],
        ["feedback"] = ["seq", "doc"],
    };

    private readonly SqliteConnection connection;
    private readonly object gate = new();
    private readonly string path;

    /// <summary>
    /// Opens (or creates) the database. A file that is damaged, belongs to something else, was written by a newer
    /// version or cannot be written is a designed error (<see cref="IoTHubMqttException"/> naming the file and the fix),
    /// and such a file is not changed.
    /// </summary>
    public SqliteHubStore(string path, TimeSpan? busyTimeout = null)
    {
        this.path = path;
        var existed = File.Exists(path);
        try
        {
            if (existed)
            {
                new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite).Dispose(); // writable?
            }
            else
            {
                // Created private before SQLite opens it: SQLite gives its -wal and -shm files the database file's mode.
                PrivateFiles.Open(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.ReadWrite).Dispose();
            }
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            throw ReadOnly(path, ex.Message, ex);
        }

        connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Pooling = false,
            Mode = SqliteOpenMode.ReadWrite,
            DefaultTimeout = (int)Math.Max(1, (busyTimeout ?? TimeSpan.FromSeconds(5)).TotalSeconds),
        }.ToString());
        try
        {
            connection.Open();
            Prepare(existed);
        }
        catch (SqliteException ex)
        {
            connection.Dispose();
            throw Classify(ex);
        }
        catch
        {
            connection.Dispose();
            throw;
        }

        PrivateFiles.Restrict(path);
        PrivateFiles.Restrict(path + "-wal");
        PrivateFiles.Restrict(path + "-shm");
    }

    // Reads before it writes: a file that is not this emulator's is refused untouched.
    private void Prepare(bool existed)
    {
        var applicationId = Scalar("PRAGMA application_id");
        var version = Scalar("PRAGMA user_version");
        var found = Query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name", r => r.GetString(0));
        if (applicationId != 0 && applicationId != ApplicationId)
        {
            throw SchemaUnknown(path, $"it belongs to another program (SQLite application id 0x{applicationId:X8})", newer: false);
        }

        if (version > SchemaVersion)
        {
            throw SchemaUnknown(path, $"it was written by a newer version of IoTHubMqtt (database schema {version}; this version reads schema {SchemaVersion} and older)", newer: true);
        }

        foreach (var table in found)
        {
            if (!Tables.TryGetValue(table, out var expected))
            {
                throw SchemaUnknown(path, $"it has tables this emulator does not use ({string.Join(", ", found.Where(t => !Tables.ContainsKey(t)))})", newer: false);
            }

            var columns = Query($"SELECT name FROM pragma_table_info('{table}')", r => r.GetString(0));
            if (!columns.SequenceEqual(expected))
            {
                throw SchemaUnknown(path, $"its table '{table}' has the columns ({string.Join(", ", columns)}) instead of ({string.Join(", ", expected)})", newer: false);
            }
        }

        if (existed && Query("PRAGMA quick_check", r => r.GetString(0)) is var problems && problems is not ["ok"])
        {
            throw Corrupt(path, $"SQLite's check finds damage ({problems.FirstOrDefault()})", null);
        }

        Execute($"""
            PRAGMA journal_mode=WAL;
            PRAGMA synchronous=NORMAL;
            BEGIN;
            CREATE TABLE IF NOT EXISTS devices (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS c2d (seq INTEGER PRIMARY KEY, device TEXT NOT NULL, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS telemetry (seq INTEGER PRIMARY KEY, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS feedback (seq INTEGER PRIMARY KEY, doc TEXT NOT NULL);
            PRAGMA application_id = {ApplicationId.ToString(CultureInfo.InvariantCulture)};
            PRAGMA user_version = {SchemaVersion.ToString(CultureInfo.InvariantCulture)};
            COMMIT;
            """);
    }

    public string? Location => path;

    public IEnumerable<DeviceIdentity> LoadDevices() => Query("SELECT doc FROM devices", ReadDevice);

    public void SaveDevice(DeviceIdentity device) =>
        Execute("INSERT INTO devices(id, doc) VALUES($a, $b) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc", device.Key, WriteDevice(device));

    public void DeleteDevice(string deviceId) =>
        Execute("BEGIN; DELETE FROM devices WHERE id = $a; DELETE FROM c2d WHERE device = $a; COMMIT;", deviceId);

    public IEnumerable<CloudToDeviceMessage> LoadCloudToDevice() => Query("SELECT doc FROM c2d ORDER BY seq", ReadMessage);

    public void SaveCloudToDevice(CloudToDeviceMessage message) =>
        Execute("INSERT INTO c2d(seq, device, doc) VALUES($a, $b, $c) ON CONFLICT(seq) DO UPDATE SET doc = excluded.doc",
            message.SequenceNumber, message.DeviceId, WriteMessage(message));

    public void DeleteCloudToDevice(long sequenceNumber) => Execute("DELETE FROM c2d WHERE seq = $a", sequenceNumber);

    public IEnumerable<TelemetryMessage> LoadTelemetry() => Query("SELECT doc FROM telemetry ORDER BY seq", ReadTelemetry);

    public void AppendTelemetry(TelemetryMessage message) =>
        Execute("INSERT OR REPLACE INTO telemetry(seq, doc) VALUES($a, $b)", message.SequenceNumber, WriteTelemetry(message));

    public void PruneTelemetry(long beforeSequence) => Execute("DELETE FROM telemetry WHERE seq < $a", beforeSequence);

    public IEnumerable<CloudToDeviceFeedback> LoadFeedback() => Query("SELECT doc FROM feedback ORDER BY seq", ReadFeedback);

    public void SaveFeedback(CloudToDeviceFeedback record) =>
        Execute("INSERT OR REPLACE INTO feedback(seq, doc) VALUES($a, $b)", record.SequenceNumber, new JsonObject
        {
            ["seq"] = record.SequenceNumber,
            ["mid"] = record.OriginalMessageId,
            ["device"] = record.DeviceId,
            ["status"] = record.StatusCode,
            ["enq"] = T(record.EnqueuedTimeUtc),
        }.ToJsonString());

    public void DeleteFeedback(long sequenceNumber) => Execute("DELETE FROM feedback WHERE seq = $a", sequenceNumber);

    public string? GetSetting(string name) => Query("SELECT value FROM settings WHERE name = $a", r => r.GetString(0), name).FirstOrDefault();

    public void SetSetting(string name, string value) =>
        Execute("INSERT INTO settings(name, value) VALUES($a, $b) ON CONFLICT(name) DO UPDATE SET value = excluded.value", name, value);

    public void Dispose()
    {
        lock (gate)
        {
            connection.Dispose();
        }
    }

    private void Execute(string sql, params object?[] args)
    {
        lock (gate)
        {
            try
            {
                using var command = connection.CreateCommand();
                command.CommandText = sql;
                Bind(command, args);
                command.ExecuteNonQuery();
            }
            catch (SqliteException ex)
            {
                RollBack();
                throw Classify(ex);
            }
        }
    }

    private long Scalar(string sql)
    {
        lock (gate)
        {
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
        }
    }

    /// <summary>Runs a query; a row that does not read back (<paramref name="read"/> throws) is damage, named by <paramref name="what"/>.</summary>
    private List<T> Query<T>(string sql, Func<SqliteDataReader, T> read, params object?[] args)
    {
        lock (gate)
        {
            try
            {
                using var command = connection.CreateCommand();
                command.CommandText = sql;
                Bind(command, args);
                using var reader = command.ExecuteReader();
                var list = new List<T>();
                while (reader.Read())
                {
                    try
                    {
                        list.Add(read(reader));
                    }
                    catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException or ArgumentException or NullReferenceException or KeyNotFoundException or OverflowException)
                    {
                        var table = sql.Split(" FROM ", 2, StringSplitOptions.None) is [_, var rest] ? rest.Split(' ')[0] : "?";
                        throw Corrupt(path, $"a row of its '{table}' table is not what the emulator wrote ({Excerpt(reader)})", ex);
                    }
                }

                return list;
            }
            catch (SqliteException ex)
            {
                throw Classify(ex);
            }
        }
    }

    private void RollBack()
    {
        if (!connection.State.HasFlag(System.Data.ConnectionState.Open))
        {
            return;
        }

        try
        {
            using var rollback = connection.CreateCommand();
            rollback.CommandText = "ROLLBACK";
            rollback.ExecuteNonQuery();
        }
        catch (SqliteException)
        {
            // no transaction was open
        }
    }

    private static string Excerpt(SqliteDataReader reader)
    {
        var text = reader.IsDBNull(0) ? "null" : reader.GetValue(0)?.ToString() ?? "";
        return text.Length <= 60 ? text : text[..60] + "…";
    }

    /// <summary>A SQLite failure as the designed error a user can act on (never SQLite's own text alone).</summary>
    private IoTHubMqttException Classify(SqliteException ex) => (ex.SqliteErrorCode & 0xFF) switch
    {
        11 => Corrupt(path, "SQLite finds damaged pages in it (the file was cut off or overwritten)", ex),          // SQLITE_CORRUPT
        26 => Corrupt(path, "it is not a SQLite database (the file is damaged, or is something else)", ex),           // SQLITE_NOTADB
        8 => ReadOnly(path, "it is read-only for this user", ex),                                                      // SQLITE_READONLY
        14 => ReadOnly(path, "it cannot be opened for writing (check the file's and its folder's permissions)", ex),  // SQLITE_CANTOPEN
        23 => ReadOnly(path, "this user may not use it", ex),                                                          // SQLITE_AUTH
        5 or 6 => new IoTHubMqttException(ErrorIds.EmulatorDataPathInUse,                       // SQLITE_BUSY / LOCKED
            $"The emulator's database '{path}' is locked by another program.", "Close the program that has it open (a SQLite browser or a backup tool), then try again.", path, ex),
        13 => WriteFailed(path, "the disk is full", ex),                                                               // SQLITE_FULL
        _ => WriteFailed(path, $"SQLite error {ex.SqliteErrorCode.ToString(CultureInfo.InvariantCulture)}", ex),
    };

    internal static IoTHubMqttException Corrupt(string path, string detail, Exception? inner) => new(
        ErrorIds.EmulatorDataCorrupt, $"The emulator's database '{path}' is damaged: {detail}.",
        $"Move '{Path.GetFileName(path)}' (with its -wal and -shm files) out of '{Path.GetDirectoryName(path)}' to start with an empty hub, or put back a copy of it; the devices, keys and messages in a damaged database cannot be read.",
        path, inner);

    private static IoTHubMqttException SchemaUnknown(string path, string detail, bool newer) => new(
        ErrorIds.EmulatorDataSchemaUnknown, $"'{path}' is not a database this emulator can use: {detail}.",
        newer
            ? "Run the newer version of IoTHubMqtt on this data path, or pass another -DataPath to this one."
            : "Give the emulator a -DataPath of its own (this file may belong to another program), or move the file away to start with an empty hub.",
        path);

    private static IoTHubMqttException ReadOnly(string path, string detail, Exception? inner) => new(
        ErrorIds.EmulatorDataReadOnly, $"The emulator cannot write its database '{path}': {detail}.",
        "Make the file, its -wal and -shm files and its folder writable by the user running the emulator, or pass another -DataPath.", path, inner);

    private static IoTHubMqttException WriteFailed(string path, string detail, Exception? inner) => new(
        ErrorIds.EmulatorDataWriteFailed, $"The emulator could not write its database '{path}': {detail}.",
        "Free space on its disk and check the disk; what could not be written was answered with an error, not acknowledged.", path, inner);

    private static void Bind(SqliteCommand command, object?[] args)
    {
        for (var i = 0; i < args.Length; i++)
        {
            command.Parameters.AddWithValue("$" + (char)('a' + i), args[i] ?? DBNull.Value);
        }
    }

    private static string T(DateTime t) => t.ToString("O", CultureInfo.InvariantCulture);

    private static DateTime P(JsonNode? n) => DateTime.Parse(n!.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);

    private static string WriteDevice(DeviceIdentity d) => new JsonObject
    {
        ["id"] = d.DeviceId,
        ["mid"] = d.ModuleId,
        ["gen"] = d.GenerationId,
        ["etag"] = d.ETag,
        ["enabled"] = d.Enabled,
        ["reason"] = d.StatusReason,
        ["auth"] = d.AuthType.ToString(),
        ["pk"] = d.PrimaryKey,
        ["sk"] = d.SecondaryKey,
        ["pt"] = d.PrimaryThumbprint,
        ["st"] = d.SecondaryThumbprint,
        ["statusTime"] = T(d.StatusUpdatedTime),
        ["desired"] = d.Desired.DeepClone(),
        ["reported"] = d.Reported.DeepClone(),
        ["tags"] = d.Tags.DeepClone(),
        ["dv"] = d.DesiredVersion,
        ["rv"] = d.ReportedVersion,
        ["tv"] = d.TwinVersion,
        ["tetag"] = d.TwinETag,
        ["dmeta"] = d.DesiredMetadata.DeepClone(),
        ["rmeta"] = d.ReportedMetadata.DeepClone(),
    }.ToJsonString();

    private static DeviceIdentity ReadDevice(SqliteDataReader reader)
    {
        var o = JsonNode.Parse(reader.GetString(0))!.AsObject();
        return new DeviceIdentity
        {
            DeviceId = o["id"]!.GetValue<string>(),
            ModuleId = o["mid"]?.GetValue<string>(),
            GenerationId = o["gen"]!.GetValue<string>(),
            ETag = o["etag"]!.GetValue<string>(),
            Enabled = o["enabled"]!.GetValue<bool>(),
            StatusReason = o["reason"]?.GetValue<string>(),
            AuthType = Enum.Parse<DeviceAuthType>(o["auth"]!.GetValue<string>()),
            PrimaryKey = o["pk"]?.GetValue<string>(),
            SecondaryKey = o["sk"]?.GetValue<string>(),
            PrimaryThumbprint = o["pt"]?.GetValue<string>(),
            SecondaryThumbprint = o["st"]?.GetValue<string>(),
            StatusUpdatedTime = P(o["statusTime"]),
            Desired = o["desired"]!.DeepClone().AsObject(),
            Reported = o["reported"]!.DeepClone().AsObject(),
            Tags = o["tags"]!.DeepClone().AsObject(),
            DesiredVersion = o["dv"]!.GetValue<long>(),
            ReportedVersion = o["rv"]!.GetValue<long>(),
            TwinVersion = o["tv"]!.GetValue<long>(),
            TwinETag = o["tetag"]!.GetValue<string>(),
            DesiredMetadata = o["dmeta"]?.DeepClone().AsObject() ?? TwinMetadata.Empty(), // rows written before metadata was kept
            ReportedMetadata = o["rmeta"]?.DeepClone().AsObject() ?? TwinMetadata.Empty(),
        };
    }

    private static string WriteMessage(CloudToDeviceMessage m) => new JsonObject
    {
        ["seq"] = m.SequenceNumber,
        ["device"] = m.DeviceId,
        ["mid"] = m.MessageId,
        ["body"] = Convert.ToBase64String(m.Body),
        ["props"] = new JsonObject(m.Properties.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
        ["cid"] = m.CorrelationId,
        ["uid"] = m.UserId,
        ["ct"] = m.ContentType,
        ["ce"] = m.ContentEncoding,
        ["ack"] = m.Ack,
        ["enq"] = T(m.EnqueuedTimeUtc),
        ["exp"] = T(m.ExpiryTimeUtc),
        ["expSet"] = m.ExpirySetByService,
        ["dc"] = m.DeliveryCount,
    }.ToJsonString();

    private static CloudToDeviceMessage ReadMessage(SqliteDataReader reader)
    {
        var o = JsonNode.Parse(reader.GetString(0))!.AsObject();
        return new CloudToDeviceMessage
        {
            SequenceNumber = o["seq"]!.GetValue<long>(),
            DeviceId = o["device"]!.GetValue<string>(),
            MessageId = o["mid"]!.GetValue<string>(),
            Body = Convert.FromBase64String(o["body"]!.GetValue<string>()),
            Properties = o["props"]!.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>(), StringComparer.Ordinal),
            CorrelationId = o["cid"]?.GetValue<string>(),
            UserId = o["uid"]?.GetValue<string>(),
            ContentType = o["ct"]?.GetValue<string>(),
            ContentEncoding = o["ce"]?.GetValue<string>(),
            Ack = o["ack"]?.GetValue<string>(),
            EnqueuedTimeUtc = P(o["enq"]),
            ExpiryTimeUtc = P(o["exp"]),
            ExpirySetByService = o["expSet"]?.GetValue<bool>() ?? false,
            DeliveryCount = o["dc"]!.GetValue<int>(),
        };
    }

    private static CloudToDeviceFeedback ReadFeedback(SqliteDataReader reader)
    {
        var o = JsonNode.Parse(reader.GetString(0))!.AsObject();
        return new CloudToDeviceFeedback(o["seq"]!.GetValue<long>(), o["mid"]!.GetValue<string>(), o["device"]!.GetValue<string>(), o["status"]!.GetValue<string>(), P(o["enq"]));
    }

    private static string WriteTelemetry(TelemetryMessage m) => JsonSerializer.Serialize(new JsonObject
    {
        ["seq"] = m.SequenceNumber,
        ["pseq"] = m.PartitionSequenceNumber,
        ["device"] = m.DeviceId,
        ["module"] = m.ModuleId,
        ["enq"] = T(m.EnqueuedTimeUtc),
        ["body"] = Convert.ToBase64String(m.Body),
        ["props"] = new JsonObject(m.Properties.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
        ["sys"] = new JsonObject(m.SystemProperties.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
    });

    private static TelemetryMessage ReadTelemetry(SqliteDataReader reader)
    {
        var o = JsonNode.Parse(reader.GetString(0))!.AsObject();
        return new TelemetryMessage
        {
            SequenceNumber = o["seq"]!.GetValue<long>(),
            PartitionSequenceNumber = o["pseq"]?.GetValue<long>() ?? 0,
            DeviceId = o["device"]!.GetValue<string>(),
            ModuleId = o["module"]?.GetValue<string>(),
            EnqueuedTimeUtc = P(o["enq"]),
            Body = Convert.FromBase64String(o["body"]!.GetValue<string>()),
            Properties = o["props"]!.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>(), StringComparer.Ordinal),
            SystemProperties = o["sys"]!.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>(), StringComparer.Ordinal),
        };
    }
}
