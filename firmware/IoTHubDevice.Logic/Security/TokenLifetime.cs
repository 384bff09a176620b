namespace IoTHubDevice.Logic.Security
{
    /// <summary>
    /// When to create and renew tokens: 24 h tokens, renewed once 85 % of the lifetime has passed (the SDKs renew with ~15 % left),
    /// so a clock that drifts or a reconnect that takes a while still has hours of margin before the hub closes the connection.
    /// </summary>
    public sealed class TokenLifetime
    {
        public const long DefaultLifetimeSeconds = 24 * 3600;
        public const int DefaultRenewPercent = 85;

        public TokenLifetime()
            : this(DefaultLifetimeSeconds, DefaultRenewPercent)
        {
        }

        public TokenLifetime(long lifetimeSeconds, int renewPercent)
        {
            if (lifetimeSeconds < 60)
            {
                throw new DeviceLogicException("TokenLifetimeTooShort", "A token must live at least 60 seconds.");
            }

            if (renewPercent < 10 || renewPercent > 95)
            {
                throw new DeviceLogicException("TokenRenewPercentOutOfRange", "Tokens are renewed after 10 to 95 percent of their lifetime.");
            }

            LifetimeSeconds = lifetimeSeconds;
            RenewPercent = renewPercent;
        }

        public long LifetimeSeconds { get; private set; }

        public int RenewPercent { get; private set; }

        /// <summary>Expiry of a token created at <paramref name="now"/> (Unix seconds).</summary>
        public long ExpiryFor(long now)
        {
            return now + LifetimeSeconds;
        }

        /// <summary>When a token created at <paramref name="now"/> should be replaced (Unix seconds).</summary>
        public long RenewAtFor(long now)
        {
            return now + (LifetimeSeconds * RenewPercent / 100);
        }
    }
}
