using System;

namespace IoTHubDevice.Logic.Device
{
    /// <summary>
    /// Exponential backoff with jitter and a cap: attempt n waits between half and all of min(cap, initial * 2^n), so a fleet that
    /// lost its network does not reconnect in lockstep.
    /// </summary>
    public sealed class Backoff
    {
        private readonly Random random;
        private int failures;

        public Backoff(long initialMilliseconds, long maxMilliseconds, Random random)
        {
            if (initialMilliseconds <= 0 || maxMilliseconds < initialMilliseconds)
            {
                throw new DeviceLogicException("BackoffInvalid", "The backoff needs 0 < initial <= max.");
            }

            InitialMilliseconds = initialMilliseconds;
            MaxMilliseconds = maxMilliseconds;
            this.random = random;
        }

        public long InitialMilliseconds { get; private set; }

        public long MaxMilliseconds { get; private set; }

        /// <summary>Failures since the last <see cref="Reset"/>.</summary>
        public int Failures
        {
            get { return failures; }
        }

        /// <summary>Records a failure and returns how long to wait before the next attempt.</summary>
        public long NextDelayMilliseconds()
        {
            var ceiling = InitialMilliseconds;
            for (var i = 0; i < failures && ceiling < MaxMilliseconds; i++)
            {
                ceiling *= 2;
            }

            if (ceiling > MaxMilliseconds)
            {
                ceiling = MaxMilliseconds;
            }

            failures++;
            var half = ceiling / 2;
            var span = (int)(ceiling - half);
            return half + random.Next(span + 1);
        }

        public void Reset()
        {
            failures = 0;
        }
    }
}
