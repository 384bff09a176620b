'use strict';
// A device written with the official Azure IoT Node.js SDK (MQTT transport), used as an interop peer by
// tests/IoTHubMqtt.Module.Tests/Interop. Usage: node device.js <connectionString> <caPemPath>
// The connection string may carry GatewayHostName=host:port to reach an emulator on a non-default port.
// Every event is one JSON line on stdout; it stops on SIGTERM/SIGINT or when the process that started it is gone.
const fs = require('fs');
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');

const [connectionString, caPath] = process.argv.slice(2);
if (!connectionString || !caPath) {
  process.stderr.write('usage: node device.js <connectionString> <caPemPath>\n');
  process.exit(2);
}

const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const fail = (where, err) => {
  emit({ event: 'error', where, message: String((err && err.message) || err) });
  process.exit(1);
};

const client = Client.fromConnectionString(connectionString, Mqtt);
let closing = false;
const stop = () => {
  if (closing) return;
  closing = true;
  client.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) stop(); }, 1000).unref();

client.on('error', (err) => emit({ event: 'error', where: 'client', message: String(err && err.message) }));
client.on('disconnect', () => { if (!closing) emit({ event: 'disconnected' }); });

client.on('message', (msg) => {
  const properties = {};
  for (let i = 0; i < msg.properties.count(); i++) {
    const p = msg.properties.getItem(i);
    properties[p.key] = p.value;
  }
  emit({ event: 'c2d', body: msg.getData().toString('utf8'), messageId: msg.messageId, properties });
  client.complete(msg, (err) => { if (err) emit({ event: 'error', where: 'complete', message: err.message }); });
});

client.onDeviceMethod('echo', (request, response) => {
  emit({ event: 'method', name: request.methodName, payload: request.payload });
  response.send(200, request.payload, (err) => { if (err) emit({ event: 'error', where: 'method', message: err.message }); });
});

async function main() {
  await client.setOptions({ ca: fs.readFileSync(caPath, 'utf8') });
  await client.open();
  emit({ event: 'connected' });

  const twin = await client.getTwin();
  twin.on('properties.desired', (patch) => emit({ event: 'desired', patch }));
  await new Promise((resolve, reject) =>
    twin.properties.reported.update({ sdk: 'azure-iot-device', interop: { language: 'node' } }, (err) => (err ? reject(err) : resolve())));
  emit({ event: 'reported' });

  const message = new Message(JSON.stringify({ from: 'node', temperature: 21.5 }));
  message.properties.add('origin', 'node-sdk');
  message.contentType = 'application/json';
  message.contentEncoding = 'utf-8';
  await client.sendEvent(message);
  emit({ event: 'sent' });
}

main().catch((err) => fail('startup', err));
