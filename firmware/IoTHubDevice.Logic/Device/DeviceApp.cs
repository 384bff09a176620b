using System;
using System.Collections;
using System.Text;
using IoTHubDevice.Logic.Configuration;
using IoTHubDevice.Logic.Json;
using IoTHubDevice.Logic.Mqtt;
using IoTHubDevice.Logic.Security;

namespace IoTHubDevice.Logic.Device
{
    /// <summary>
    /// The device app without the board: provision (DPS, when configured), connect, subscribe, read the twin, apply desired
    /// properties, report its own, send telemetry on schedule, answer direct methods, take C2D messages, renew its token and
    /// reconnect with backoff. Driven by <see cref="Tick"/> from one loop; incoming messages are queued by the transport's
    /// thread and handled in the next tick, so all protocol work happens on the loop thread.
    /// </summary>
    public sealed class DeviceApp
    {
        /// <summary>Keep-alive sent in CONNECT (the hub allows up to 1177 s).</summary>
        public const int KeepAliveSeconds = 300;

        /// <summary>How long to wait for the twin before reporting and starting telemetry anyway.</summary>
        public const long TwinTimeoutMilliseconds = 10000;

        /// <summary>How long a DPS registration may take before it counts as a failed attempt.</summary>
        public const long ProvisioningTimeoutMilliseconds = 120000;

        /// <summary>How long a reported-properties update may stay unanswered before it is sent again.</summary>
        public const long ReportedTimeoutMilliseconds = 15000;

        public const int MaxBlinkCount = 20;
        public const int MaxRebootDelaySeconds = 300;

        private readonly DeviceConfiguration config;
        private readonly IMqttTransport transport;
        private readonly IHmacSha256 hmac;
        private readonly IClock clock;
        private readonly IDeviceHardware hardware;
        private readonly ILog log;
        private readonly TokenLifetime lifetime;
        private readonly Backoff backoff;
        private readonly object sync = new object();
        private readonly object queueLock = new object();
        private readonly ArrayList incoming = new ArrayList();
        private readonly JsonObject pendingReported = new JsonObject();

        private string hubHostName;
        private string connectHostName;
        private string deviceId;
        private string deviceKey;
        private long nextAttemptAt;
        private long renewAt;
        private long nextTelemetryAt;
        private long twinRequestedAt;
        private string twinGetRequestId;
        private bool twinApplied;
        private string reportedRequestId;
        private JsonObject reportedInFlight;
        private long reportedSentAt;
        private long reportedRetryAt;
        private long rebootAt;
        private int requestCounter;
        private long sequence;
        private bool waitingForTimeLogged;
        private string dpsOperationId;
        private long dpsPollAt;
        private long dpsDeadline;

        public DeviceApp(DeviceConfiguration configuration, IMqttTransport transport, IHmacSha256 hmac, IClock clock, IDeviceHardware hardware, ILog log, string firmwareVersion, Random random)
        {
            if (configuration == null || transport == null || hmac == null || clock == null || hardware == null || log == null || random == null)
            {
                throw new ArgumentNullException();
            }

            config = configuration;
            this.transport = transport;
            this.hmac = hmac;
            this.clock = clock;
            this.hardware = hardware;
            this.log = log;
            FirmwareVersion = firmwareVersion == null ? "0.0.0" : firmwareVersion;
            lifetime = new TokenLifetime();
            backoff = new Backoff(1000, 300000, random);
            TelemetryIntervalSeconds = configuration.TelemetryIntervalSeconds;
            DesiredVersion = -1;
            if (!configuration.UsesDps)
            {
                hubHostName = configuration.ConnectionString.HostName;
                connectHostName = configuration.ConnectionString.ConnectHostName;
                deviceId = configuration.ConnectionString.DeviceId;
                deviceKey = configuration.ConnectionString.SharedAccessKey;
            }

            transport.MessageReceived += OnMessageReceived;
            State = DeviceState.Disconnected;
        }

        public string FirmwareVersion { get; private set; }

        public DeviceState State { get; private set; }

        /// <summary>The hub the device uses (from the connection string or assigned by DPS), or null before provisioning.</summary>
        public string HubHostName
        {
            get { return hubHostName; }
        }

        public string DeviceId
        {
            get { return deviceId; }
        }

        public int TelemetryIntervalSeconds { get; private set; }

        /// <summary>$version of the last desired properties applied, -1 before the twin was read.</summary>
        public long DesiredVersion { get; private set; }

        /// <summary>Unix expiry of the token of the current connection.</summary>
        public long TokenExpiry { get; private set; }

        public int ConnectCount { get; private set; }

        public long TelemetrySent
        {
            get { return sequence; }
        }

        public int CloudMessagesReceived { get; private set; }

        /// <summary>Milliseconds of uptime at which the next connection attempt is made.</summary>
        public long NextAttemptAt
        {
            get { return nextAttemptAt; }
        }

        /// <summary>Failed attempts since the last successful connection.</summary>
        public int ConsecutiveFailures
        {
            get { return backoff.Failures; }
        }

        /// <summary>Builds telemetry bodies; the default sends uptime and RSSI.</summary>
        public TelemetryProvider Telemetry { get; set; }

        /// <summary>Optional handler for cloud-to-device messages.</summary>
        public CloudMessageHandler CloudMessage { get; set; }

        /// <summary>Runs one step of the app: call it every 50-200 ms.</summary>
        public void Tick()
        {
            lock (sync)
            {
                var up = clock.UptimeMilliseconds;
                if (State == DeviceState.Rebooting)
                {
                    if (up >= rebootAt)
                    {
                        log.Info("Rebooting now.");
                        rebootAt = long.MaxValue;
                        transport.Disconnect();
                        hardware.Reboot();
                    }

                    return;
                }

                if (!DeviceTime.IsPlausible(clock.UnixTimeSeconds))
                {
                    if (!waitingForTimeLogged)
                    {
                        log.Info("Waiting for the clock (SNTP) before connecting: tokens need the real time.");
                        waitingForTimeLogged = true;
                    }

                    State = DeviceState.WaitingForTime;
                    return;
                }

                if (State == DeviceState.WaitingForTime)
                {
                    State = DeviceState.Disconnected;
                }

                if ((State == DeviceState.Connected || State == DeviceState.Provisioning) && !transport.IsConnected)
                {
                    ConnectionLost(State == DeviceState.Connected ? "The connection to the hub was lost." : "The connection to DPS was lost.");
                }

                ProcessIncoming(up);
                if (State == DeviceState.Rebooting)
                {
                    return;
                }

                if (State == DeviceState.Disconnected)
                {
                    if (up >= nextAttemptAt)
                    {
                        if (hubHostName == null)
                        {
                            StartProvisioning(up);
                        }
                        else
                        {
                            ConnectToHub(up);
                        }
                    }

                    return;
                }

                if (State == DeviceState.Provisioning)
                {
                    ProvisioningStep(up);
                    return;
                }

                ConnectedStep(up);
            }
        }

        private void ConnectedStep(long up)
        {
            if (clock.UnixTimeSeconds >= renewAt)
            {
                log.Info("Renewing the SAS token: reconnecting with a new one.");
                transport.Disconnect();
                ConnectToHub(up);
                if (State != DeviceState.Connected)
                {
                    return;
                }
            }

            if (!twinApplied && up - twinRequestedAt >= TwinTimeoutMilliseconds)
            {
                log.Warning("No twin response; reporting properties and starting telemetry anyway.");
                TwinDone(up);
            }

            if (reportedRequestId != null && up - reportedSentAt >= ReportedTimeoutMilliseconds)
            {
                log.Warning("No answer to the reported-properties update; sending it again.");
                RequeueReported();
                reportedRequestId = null;
            }

            if (twinApplied && pendingReported.Count > 0 && reportedRequestId == null && up >= reportedRetryAt)
            {
                SendReported();
            }

            if (twinApplied && up >= nextTelemetryAt)
            {
                SendTelemetry();
                nextTelemetryAt = up + (TelemetryIntervalSeconds * 1000L);
            }
        }

        private void ConnectToHub(long up)
        {
            var now = clock.UnixTimeSeconds;
            var key = DeviceConnectionString.KeyBytes(deviceKey, "DeviceKeyNotBase64", "The device key is not valid base64.");
            var expiry = lifetime.ExpiryFor(now);
            var token = SharedAccessSignature.Create(hmac, hubHostName + "/devices/" + deviceId, key, expiry, null);
            log.Info("Connecting to " + connectHostName + " as " + deviceId + ".");
            var code = transport.Connect(connectHostName, config.Port, config.CaCertificatePem, deviceId, IoTHubTopics.Username(hubHostName, deviceId), token, false, KeepAliveSeconds);
            if (code != 0)
            {
                Failed(up, "Connecting to the hub failed (" + DescribeConnectResult(code) + ").");
                return;
            }

            var topics = new string[] { IoTHubTopics.CloudToDeviceSubscription(deviceId), IoTHubTopics.MethodsSubscription, IoTHubTopics.TwinResponseSubscription, IoTHubTopics.DesiredSubscription };
            if (!transport.Subscribe(topics))
            {
                transport.Disconnect();
                Failed(up, "The hub refused a subscription.");
                return;
            }

            backoff.Reset();
            ConnectCount++;
            TokenExpiry = expiry;
            renewAt = lifetime.RenewAtFor(now);
            State = DeviceState.Connected;
            log.Info("Connected; token valid until " + expiry.ToString() + " (Unix), renewal at " + renewAt.ToString() + ".");

            // Read the whole twin on every connection: desired properties may have changed while the device was away.
            twinApplied = false;
            RequeueReported();
            reportedRequestId = null;
            twinGetRequestId = NextRequestId();
            twinRequestedAt = up;
            if (!transport.Publish(IoTHubTopics.TwinGet(twinGetRequestId), new byte[0], 0))
            {
                ConnectionLost("Requesting the twin failed.");
            }
        }

        private void StartProvisioning(long up)
        {
            var now = clock.UnixTimeSeconds;
            var key = DeviceConnectionString.KeyBytes(config.DpsSymmetricKey, "ConfigurationSymmetricKeyNotBase64", "'dps.symmetricKey' is not valid base64.");
            var registrationId = config.DpsRegistrationId;
            var token = SharedAccessSignature.Create(hmac, config.DpsIdScope + "/registrations/" + registrationId, key, lifetime.ExpiryFor(now), "registration");
            log.Info("Registering '" + registrationId + "' with DPS at " + config.DpsGlobalEndpoint + ".");
            var code = transport.Connect(config.DpsGlobalEndpoint, config.Port, config.CaCertificatePem, registrationId, IoTHubTopics.DpsUsername(config.DpsIdScope, registrationId), token, true, KeepAliveSeconds);
            if (code != 0)
            {
                Failed(up, "Connecting to DPS failed (" + DescribeConnectResult(code) + ").");
                return;
            }

            if (!transport.Subscribe(new string[] { IoTHubTopics.DpsResponseSubscription }))
            {
                transport.Disconnect();
                Failed(up, "DPS refused the subscription.");
                return;
            }

            State = DeviceState.Provisioning;
            dpsOperationId = null;
            dpsPollAt = long.MaxValue;
            dpsDeadline = up + ProvisioningTimeoutMilliseconds;
            var body = new JsonObject();
            body.Set("registrationId", registrationId);
            if (!transport.Publish(IoTHubTopics.DpsRegister(NextRequestId()), JsonWriter.SerializeToUtf8(body), 1))
            {
                transport.Disconnect();
                Failed(up, "Sending the DPS registration failed.");
            }
        }

        private void ProvisioningStep(long up)
        {
            if (up >= dpsDeadline)
            {
                transport.Disconnect();
                Failed(up, "DPS did not assign a hub in time.");
                return;
            }

            if (dpsOperationId != null && up >= dpsPollAt)
            {
                dpsPollAt = long.MaxValue;
                if (!transport.Publish(IoTHubTopics.DpsOperationStatus(NextRequestId(), dpsOperationId), new byte[0], 1))
                {
                    transport.Disconnect();
                    Failed(up, "Polling DPS failed.");
                }
            }
        }

        private void HandleDpsResponse(long up, IncomingTopic topic, byte[] payload)
        {
            if (State != DeviceState.Provisioning)
            {
                return;
            }

            JsonObject body = null;
            try
            {
                body = JsonReader.Parse(payload) as JsonObject;
            }
            catch (JsonException)
            {
                body = null;
            }

            if (topic.Status == 429 || (topic.Status >= 500 && topic.Status < 600))
            {
                transport.Disconnect();
                Failed(up, "DPS answered " + topic.Status.ToString() + "; retrying later.");
                return;
            }

            if (topic.Status >= 400 || body == null)
            {
                transport.Disconnect();
                Failed(up, "DPS refused the registration (status " + topic.Status.ToString() + ").");
                return;
            }

            var status = body.GetString("status");
            var operationId = body.GetString("operationId");
            if (operationId != null)
            {
                dpsOperationId = operationId;
            }

            if (status == "assigned")
            {
                var state = body.GetObject("registrationState");
                var hub = state == null ? null : state.GetString("assignedHub");
                var id = state == null ? null : state.GetString("deviceId");
                if (hub == null || id == null)
                {
                    transport.Disconnect();
                    Failed(up, "DPS answered 'assigned' without a hub or device id.");
                    return;
                }

                transport.Disconnect();
                hubHostName = hub;
                connectHostName = hub;
                deviceId = id;
                deviceKey = config.DpsSymmetricKey;
                log.Info("DPS assigned hub " + hub + ", device " + id + ".");
                State = DeviceState.Disconnected;
                backoff.Reset();
                nextAttemptAt = up;
                return;
            }

            if (status == "assigning" || topic.Status == 202)
            {
                var retry = topic.RetryAfterSeconds > 0 ? topic.RetryAfterSeconds : 3;
                dpsPollAt = up + (retry * 1000L);
                return;
            }

            transport.Disconnect();
            Failed(up, "DPS registration ended with status '" + (status == null ? "unknown" : status) + "'.");
        }

        private void OnMessageReceived(string topic, byte[] payload)
        {
            lock (queueLock)
            {
                incoming.Add(new object[] { topic, payload == null ? new byte[0] : payload });
            }
        }

        private void ProcessIncoming(long up)
        {
            object[] items;
            lock (queueLock)
            {
                items = incoming.ToArray();
                incoming.Clear();
            }

            for (var i = 0; i < items.Length; i++)
            {
                var pair = (object[])items[i];
                var topic = IoTHubTopics.Parse(deviceId, (string)pair[0]);
                var payload = (byte[])pair[1];
                switch (topic.Kind)
                {
                    case TopicKind.CloudToDevice:
                        CloudMessagesReceived++;
                        log.Info("Cloud-to-device message: " + payload.Length.ToString() + " bytes.");
                        if (CloudMessage != null)
                        {
                            try
                            {
                                CloudMessage(payload, topic.Properties);
                            }
                            catch (Exception ex)
                            {
                                log.Warning("The cloud-to-device handler failed: " + ex.Message);
                            }
                        }

                        break;
                    case TopicKind.MethodRequest:
                        HandleMethod(up, topic, payload);
                        break;
                    case TopicKind.TwinResponse:
                        HandleTwinResponse(up, topic, payload);
                        break;
                    case TopicKind.DesiredPropertiesPatch:
                        HandleDesiredPatch(topic, payload);
                        break;
                    case TopicKind.DpsResponse:
                        HandleDpsResponse(up, topic, payload);
                        break;
                    default:
                        log.Warning("Ignoring a message on an unexpected topic.");
                        break;
                }

                if (State == DeviceState.Rebooting)
                {
                    return;
                }
            }
        }

        private void HandleMethod(long up, IncomingTopic topic, byte[] payload)
        {
            object request = null;
            var hasPayload = payload.Length > 0;
            if (hasPayload)
            {
                try
                {
                    request = JsonReader.Parse(payload);
                }
                catch (JsonException)
                {
                    Respond(topic.RequestId, 400, Message("The payload of '" + topic.MethodName + "' is not valid JSON."));
                    return;
                }
            }

            log.Info("Direct method '" + topic.MethodName + "'.");
            switch (topic.MethodName)
            {
                case "reboot":
                    OnReboot(up, topic.RequestId, request);
                    break;
                case "blink":
                    OnBlink(topic.RequestId, request);
                    break;
                case "setInterval":
                    OnSetInterval(up, topic.RequestId, request);
                    break;
                default:
                    Respond(topic.RequestId, 404, Message("The device has no method '" + topic.MethodName + "'."));
                    break;
            }
        }

        private void OnReboot(long up, string requestId, object request)
        {
            long delay = 2;
            var args = request as JsonObject;
            if (request != null && (args == null || (args.Contains("delaySeconds") && (!args.TryGetInteger("delaySeconds", out delay) || delay < 0 || delay > MaxRebootDelaySeconds))))
            {
                Respond(requestId, 400, Message("reboot takes {\"delaySeconds\": 0-" + MaxRebootDelaySeconds.ToString() + "} or no payload."));
                return;
            }

            var result = new JsonObject();
            result.Set("rebooting", true);
            result.Set("delaySeconds", delay);
            Respond(requestId, 200, result);
            rebootAt = up + (delay * 1000);
            State = DeviceState.Rebooting;
        }

        private void OnBlink(string requestId, object request)
        {
            long count = 3;
            var args = request as JsonObject;
            if (request != null && (args == null || (args.Contains("count") && (!args.TryGetInteger("count", out count) || count < 1 || count > MaxBlinkCount))))
            {
                Respond(requestId, 400, Message("blink takes {\"count\": 1-" + MaxBlinkCount.ToString() + "} or no payload."));
                return;
            }

            hardware.Blink((int)count);
            var result = new JsonObject();
            result.Set("blinked", count);
            Respond(requestId, 200, result);
        }

        private void OnSetInterval(long up, string requestId, object request)
        {
            long seconds;
            var args = request as JsonObject;
            var ok = args != null ? args.TryGetInteger("seconds", out seconds) : JsonValue.TryGetInteger(request, out seconds);
            if (!ok || !DeviceConfiguration.IsValidTelemetryInterval(seconds))
            {
                Respond(requestId, 400, Message("setInterval takes a number of seconds from " + DeviceConfiguration.MinTelemetryIntervalSeconds.ToString() + " to " + DeviceConfiguration.MaxTelemetryIntervalSeconds.ToString() + ", e.g. {\"seconds\": 30}."));
                return;
            }

            SetInterval(up, (int)seconds);
            var result = new JsonObject();
            result.Set("telemetryInterval", seconds);
            Respond(requestId, 200, result);
        }

        private void SetInterval(long up, int seconds)
        {
            if (seconds != TelemetryIntervalSeconds)
            {
                log.Info("Telemetry interval is now " + seconds.ToString() + " s.");
            }

            TelemetryIntervalSeconds = seconds;
            nextTelemetryAt = up + (seconds * 1000L);
            pendingReported.Set("telemetryInterval", seconds);
        }

        private void HandleTwinResponse(long up, IncomingTopic topic, byte[] payload)
        {
            if (topic.RequestId != null && topic.RequestId == twinGetRequestId)
            {
                twinGetRequestId = null;
                if (topic.Status == 200)
                {
                    JsonObject twin = null;
                    try
                    {
                        twin = JsonReader.Parse(payload) as JsonObject;
                    }
                    catch (JsonException)
                    {
                        twin = null;
                    }

                    var desired = twin == null ? null : twin.GetObject("desired");
                    if (desired != null)
                    {
                        long version;
                        if (!desired.TryGetInteger("$version", out version))
                        {
                            version = -1;
                        }

                        // A patch that arrived while the GET was on its way may be newer than this document: keep it.
                        if (version < 0 || version >= DesiredVersion)
                        {
                            DesiredVersion = version < 0 ? DesiredVersion : version;
                            ApplyDesired(up, desired);
                        }
                    }
                    else
                    {
                        log.Warning("The twin response has no desired section.");
                    }
                }
                else
                {
                    log.Warning("Reading the twin failed with status " + topic.Status.ToString() + ".");
                }

                TwinDone(up);
                return;
            }

            if (topic.RequestId != null && topic.RequestId == reportedRequestId)
            {
                reportedRequestId = null;
                if (topic.Status == 204 || topic.Status == 200)
                {
                    reportedInFlight = null;
                    return;
                }

                log.Warning("Updating reported properties failed with status " + topic.Status.ToString() + "; retrying.");
                RequeueReported();
                reportedRetryAt = up + (backoff.InitialMilliseconds * 5);
            }
        }

        private void TwinDone(long up)
        {
            if (twinApplied)
            {
                return;
            }

            twinApplied = true;
            pendingReported.Set("firmwareVersion", FirmwareVersion);
            pendingReported.Set("uptime", up / 1000);
            pendingReported.Set("resetReason", hardware.ResetReason);
            var rssi = hardware.Rssi;
            pendingReported.Set("rssi", rssi == 0 ? null : (object)(long)rssi);
            pendingReported.Set("telemetryInterval", TelemetryIntervalSeconds);
            SendReported();
            nextTelemetryAt = up;
        }

        private void HandleDesiredPatch(IncomingTopic topic, byte[] payload)
        {
            if (topic.Version >= 0 && topic.Version <= DesiredVersion)
            {
                log.Info("Ignoring desired properties version " + topic.Version.ToString() + " (already at " + DesiredVersion.ToString() + ").");
                return;
            }

            JsonObject patch = null;
            try
            {
                patch = JsonReader.Parse(payload) as JsonObject;
            }
            catch (JsonException)
            {
                patch = null;
            }

            if (patch == null)
            {
                log.Warning("Ignoring a desired-properties patch that is not a JSON object.");
                return;
            }

            if (topic.Version >= 0)
            {
                DesiredVersion = topic.Version;
            }

            ApplyDesired(clock.UptimeMilliseconds, patch);
        }

        private void ApplyDesired(long up, JsonObject desired)
        {
            if (!desired.Contains("telemetryInterval"))
            {
                return;
            }

            var value = desired["telemetryInterval"];
            if (value == null)
            {
                // Deleted from desired: fall back to the configured interval.
                SetInterval(up, config.TelemetryIntervalSeconds);
                return;
            }

            long seconds;
            if (JsonValue.TryGetInteger(value, out seconds) && DeviceConfiguration.IsValidTelemetryInterval(seconds))
            {
                SetInterval(up, (int)seconds);
                return;
            }

            log.Warning("Desired telemetryInterval is not a whole number of seconds from 1 to 86400; keeping " + TelemetryIntervalSeconds.ToString() + " s.");
            pendingReported.Set("telemetryInterval", TelemetryIntervalSeconds);
        }

        private void SendReported()
        {
            if (pendingReported.Count == 0 || State != DeviceState.Connected)
            {
                return;
            }

            reportedRequestId = NextRequestId();
            reportedSentAt = clock.UptimeMilliseconds;
            var body = JsonWriter.SerializeToUtf8(pendingReported);
            reportedInFlight = new JsonObject();
            var names = pendingReported.Names;
            for (var i = 0; i < names.Length; i++)
            {
                reportedInFlight.Set(names[i], pendingReported[names[i]]);
                pendingReported.Remove(names[i]);
            }

            if (!transport.Publish(IoTHubTopics.ReportedPatch(reportedRequestId), body, 0))
            {
                ConnectionLost("Sending reported properties failed.");
            }
        }

        // Puts an unacknowledged update back, unless a newer value for the same property is already waiting.
        private void RequeueReported()
        {
            if (reportedInFlight == null)
            {
                return;
            }

            var names = reportedInFlight.Names;
            for (var i = 0; i < names.Length; i++)
            {
                if (!pendingReported.Contains(names[i]))
                {
                    pendingReported.Set(names[i], reportedInFlight[names[i]]);
                }
            }

            reportedInFlight = null;
        }

        private void SendTelemetry()
        {
            var number = sequence + 1;
            JsonObject body = Telemetry != null ? Telemetry(number) : null;
            if (body == null)
            {
                body = new JsonObject();
                body.Set("uptime", clock.UptimeMilliseconds / 1000);
                var rssi = hardware.Rssi;
                body.Set("rssi", rssi == 0 ? null : (object)(long)rssi);
            }

            var properties = new PropertyBag();
            properties.Set("$.ct", "application/json");
            properties.Set("$.ce", "utf-8");
            properties.Set("$.mid", deviceId + "-" + number.ToString());
            if (!transport.Publish(IoTHubTopics.Telemetry(deviceId, properties), JsonWriter.SerializeToUtf8(body), 1))
            {
                ConnectionLost("Sending telemetry failed.");
                return;
            }

            sequence = number;
        }

        private void Respond(string requestId, int status, JsonObject body)
        {
            if (!transport.Publish(IoTHubTopics.MethodResponse(status, requestId), JsonWriter.SerializeToUtf8(body), 0))
            {
                ConnectionLost("Answering a direct method failed.");
            }
        }

        private static JsonObject Message(string text)
        {
            var result = new JsonObject();
            result.Set("message", text);
            return result;
        }

        private void ConnectionLost(string why)
        {
            transport.Disconnect();
            Failed(clock.UptimeMilliseconds, why);
        }

        private void Failed(long up, string why)
        {
            var delay = backoff.NextDelayMilliseconds();
            nextAttemptAt = up + delay;
            State = DeviceState.Disconnected;
            log.Warning(why + " Next attempt in " + delay.ToString() + " ms (failure " + backoff.Failures.ToString() + ").");
        }

        private string NextRequestId()
        {
            requestCounter++;
            return requestCounter.ToString();
        }

        private static string DescribeConnectResult(int code)
        {
            switch (code)
            {
                case -1: return "network or TLS error";
                case 1: return "unacceptable protocol version";
                case 2: return "identifier rejected";
                case 3: return "server unavailable";
                case 4: return "bad user name or password";
                case 5: return "not authorized";
                default: return "CONNACK " + code.ToString();
            }
        }

        internal static string Utf8(byte[] bytes)
        {
            return new string(Encoding.UTF8.GetChars(bytes));
        }
    }
}
