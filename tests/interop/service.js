'use strict';
// A service application written with the official Azure IoT Node.js service SDK (azure-iothub over AMQP), used as an
// interop peer by tests/IoTHubMqtt.Module.Tests/Interop.
// Usage: node service.js <serviceConnectionString> <deviceId> <body> <messageId> <propertyName=value>...
// The SDK dials amqps://{HostName} (port 5671 unless the name carries one), opens AMQP without SASL and authorizes with a
// CBS put-token whose audience is HostName: HostName=localhost:{AmqpPort} reaches an emulator on its ephemeral port.
// The emulator's CA must be trusted through the NODE_EXTRA_CA_CERTS environment variable (the SDK takes no CA option).
// Every event is one JSON line on stdout; it exits after sending (0) or on the first error (1).
const { Client } = require('azure-iothub');
// The Message class azure-iothub itself bundles (it does not re-export it).
const { Message } = require('azure-iothub/dist/common-core/message');

const [connectionString, deviceId, body, messageId, ...properties] = process.argv.slice(2);
if (!connectionString || !deviceId || body === undefined || !messageId) {
  process.stderr.write('usage: node service.js <serviceConnectionString> <deviceId> <body> <messageId> <name=value>...\n');
  process.exit(2);
}

const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const fail = (where, err) => {
  emit({ event: 'error', where, message: String((err && err.message) || err) });
  process.exit(1);
};
const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 1000).unref();

async function main() {
  const client = Client.fromConnectionString(connectionString);
  await client.open();
  emit({ event: 'connected' });

  const message = new Message(body);
  message.messageId = messageId;
  for (const property of properties) {
    const at = property.indexOf('=');
    message.properties.add(property.slice(0, at), property.slice(at + 1));
  }
  await client.send(deviceId, message);
  emit({ event: 'sent', messageId });

  await client.close();
  emit({ event: 'closed' });
  process.exit(0);
}

main().catch((err) => fail('service', err));
