using IoTHubDevice.Logic.Json;

namespace IoTHubDevice.Logic.Mqtt
{
    /// <summary>
    /// IoT Hub and DPS MQTT topics for a device.
    /// See https://learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub and
    /// https://learn.microsoft.com/azure/iot-dps/iot-dps-mqtt-support
    /// </summary>
    public static class IoTHubTopics
    {
        public const string ApiVersion = "2021-04-12";
        public const string DpsApiVersion = "2019-03-31";
        public const string MethodsSubscription = "$iothub/methods/POST/#";
        public const string TwinResponseSubscription = "$iothub/twin/res/#";
        public const string DesiredSubscription = "$iothub/twin/PATCH/properties/desired/#";
        public const string DpsResponseSubscription = "$dps/registrations/res/#";

        private const string MethodPrefix = "$iothub/methods/POST/";
        private const string TwinResponsePrefix = "$iothub/twin/res/";
        private const string DesiredPrefix = "$iothub/twin/PATCH/properties/desired/";
        private const string DpsResponsePrefix = "$dps/registrations/res/";

        public static string Username(string hostName, string deviceId)
        {
            return hostName + "/" + deviceId + "/?api-version=" + ApiVersion;
        }

        public static string DpsUsername(string idScope, string registrationId)
        {
            return idScope + "/registrations/" + registrationId + "/api-version=" + DpsApiVersion;
        }

        public static string Telemetry(string deviceId, PropertyBag properties)
        {
            var bag = properties == null ? string.Empty : properties.ToString();
            return "devices/" + deviceId + "/messages/events/" + bag;
        }

        public static string CloudToDeviceSubscription(string deviceId)
        {
            return "devices/" + deviceId + "/messages/devicebound/#";
        }

        public static string MethodResponse(int status, string requestId)
        {
            return "$iothub/methods/res/" + status.ToString() + "/?$rid=" + requestId;
        }

        public static string TwinGet(string requestId)
        {
            return "$iothub/twin/GET/?$rid=" + requestId;
        }

        public static string ReportedPatch(string requestId)
        {
            return "$iothub/twin/PATCH/properties/reported/?$rid=" + requestId;
        }

        public static string DpsRegister(string requestId)
        {
            return "$dps/registrations/PUT/iotdps-register/?$rid=" + requestId;
        }

        public static string DpsOperationStatus(string requestId, string operationId)
        {
            return "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=" + requestId + "&operationId=" + operationId;
        }

        /// <summary>Takes an incoming topic apart; unknown topics come back as <see cref="TopicKind.Unknown"/>.</summary>
        public static IncomingTopic Parse(string deviceId, string topic)
        {
            if (topic == null)
            {
                return new IncomingTopic(TopicKind.Unknown);
            }

            var c2dPrefix = "devices/" + deviceId + "/messages/devicebound/";
            if (deviceId != null && topic.StartsWith(c2dPrefix))
            {
                var result = new IncomingTopic(TopicKind.CloudToDevice);
                result.Properties = PropertyBag.Parse(topic.Substring(c2dPrefix.Length));
                return result;
            }

            if (topic.StartsWith(MethodPrefix))
            {
                // $iothub/methods/POST/{method}/?$rid={rid}
                var rest = topic.Substring(MethodPrefix.Length);
                var slash = rest.IndexOf("/?");
                if (slash <= 0)
                {
                    return new IncomingTopic(TopicKind.Unknown);
                }

                var result = new IncomingTopic(TopicKind.MethodRequest);
                result.MethodName = rest.Substring(0, slash);
                result.Properties = PropertyBag.Parse(rest.Substring(slash + 2));
                result.RequestId = result.Properties["$rid"];
                return result.RequestId == null ? new IncomingTopic(TopicKind.Unknown) : result;
            }

            if (topic.StartsWith(TwinResponsePrefix))
            {
                return ParseResponse(TopicKind.TwinResponse, topic.Substring(TwinResponsePrefix.Length));
            }

            if (topic.StartsWith(DpsResponsePrefix))
            {
                return ParseResponse(TopicKind.DpsResponse, topic.Substring(DpsResponsePrefix.Length));
            }

            if (topic.StartsWith(DesiredPrefix))
            {
                var rest = topic.Substring(DesiredPrefix.Length);
                var result = new IncomingTopic(TopicKind.DesiredPropertiesPatch);
                result.Properties = PropertyBag.Parse(rest.StartsWith("?") ? rest.Substring(1) : rest);
                long version;
                if (Numbers.TryParseInt64(result.Properties["$version"], out version))
                {
                    result.Version = version;
                }

                return result;
            }

            return new IncomingTopic(TopicKind.Unknown);
        }

        // {status}/?$rid={rid}[&$version={v}][&retry-after={s}]
        private static IncomingTopic ParseResponse(TopicKind kind, string rest)
        {
            var slash = rest.IndexOf('/');
            long status;
            if (slash <= 0 || !Numbers.TryParseInt64(rest.Substring(0, slash), out status))
            {
                return new IncomingTopic(TopicKind.Unknown);
            }

            var result = new IncomingTopic(kind);
            result.Status = (int)status;
            var query = rest.Substring(slash + 1);
            if (query.StartsWith("?"))
            {
                query = query.Substring(1);
            }

            result.Properties = PropertyBag.Parse(query);
            result.RequestId = result.Properties["$rid"];
            long number;
            if (Numbers.TryParseInt64(result.Properties["$version"], out number))
            {
                result.Version = number;
            }

            if (Numbers.TryParseInt64(result.Properties["retry-after"], out number))
            {
                result.RetryAfterSeconds = (int)number;
            }

            return result;
        }
    }
}
