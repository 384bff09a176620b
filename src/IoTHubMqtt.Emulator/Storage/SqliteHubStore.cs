using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using IoTHubMqtt.Emulator.Hub;
using Microsoft.Data.Sqlite;

namespace IoTHubMqtt.Emulator.Storage;

/// <summary>
/// SQLite persistence (<c>{DataPath}/emulator.db</c>, WAL): devices with keys and twins, undelivered C2D messages,
/// retained telemetry and settings. Every write commits before it returns, so a killed emulator loses nothing it acknowledged.
/// </summary>
internal sealed class SqliteHubStore : IHubStore
{
    private readonly SqliteConnection connection;
    private readonly object gate = new();

    public SqliteHubStore(string path)
    {
        // Created private before SQLite opens it: SQLite gives its -wal and -shm files the database file's mode.
        PrivateFiles.Open(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite).Dispose();
        PrivateFiles.Restrict(path + "-wal");
        PrivateFiles.Restrict(path + "-shm");
        connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        connection.Open();
        Execute("""
            PRAGMA journal_mode=WAL;
            PRAGMA synchronous=NORMAL;
            CREATE TABLE IF NOT EXISTS devices (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS c2d (seq INTEGER PRIMARY KEY, device TEXT NOT NULL, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS telemetry (seq INTEGER PRIMARY KEY, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS feedback (seq INTEGER PRIMARY KEY, doc TEXT NOT NULL);
            """);
    }

    public IEnumerable<DeviceIdentity> LoadDevices() => Query("SELECT doc FROM devices", ReadDevice);

    public void SaveDevice(DeviceIdentity device) =>
        Execute("INSERT INTO devices(id, doc) VALUES($a, $b) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc", device.Key, WriteDevice(device));

    public void DeleteDevice(string deviceId)
    {
        Execute("DELETE FROM devices WHERE id = $a", deviceId);
        Execute("DELETE FROM c2d WHERE device = $a", deviceId);
    }

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
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            Bind(command, args);
            command.ExecuteNonQuery();
        }
    }

    private List<T> Query<T>(string sql, Func<SqliteDataReader, T> read, params object?[] args)
    {
        lock (gate)
        {
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            Bind(command, args);
            using var reader = command.ExecuteReader();
            var list = new List<T>();
            while (reader.Read())
            {
                list.Add(read(reader));
            }

            return list;
        }
    }

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
