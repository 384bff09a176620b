namespace IoTHubDevice.Logic.Mqtt
{
    /// <summary>An incoming topic taken apart (see <see cref="IoTHubTopics.Parse"/>).</summary>
    public sealed class IncomingTopic
    {
        internal IncomingTopic(TopicKind kind)
        {
            Kind = kind;
            Properties = new PropertyBag();
            Status = -1;
            Version = -1;
            RetryAfterSeconds = -1;
        }

        public TopicKind Kind { get; internal set; }

        /// <summary>Direct method name (MethodRequest).</summary>
        public string MethodName { get; internal set; }

        /// <summary>The $rid of a method request, twin or DPS response.</summary>
        public string RequestId { get; internal set; }

        /// <summary>HTTP-like status of a twin or DPS response, else -1.</summary>
        public int Status { get; internal set; }

        /// <summary>$version of a desired patch or reported-patch response, else -1.</summary>
        public long Version { get; internal set; }

        /// <summary>retry-after of a DPS response, else -1.</summary>
        public int RetryAfterSeconds { get; internal set; }

        /// <summary>C2D property bag, or the query of a response topic.</summary>
        public PropertyBag Properties { get; internal set; }
    }
}
