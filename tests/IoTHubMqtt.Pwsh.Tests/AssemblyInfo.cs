// A task exception nobody observed fails the test that was running (IoTHubMqtt.Testing).
[assembly: IoTHubMqtt.Testing.FailOnUnobservedTaskExceptions]
