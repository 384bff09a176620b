'use strict';
// The official Azure IoT Node.js device SDK (MQTT transport) as a sender in the telemetry benchmark
// (tests/IoTHubMqtt.Benchmarks, `telemetry`). Usage: node telemetry-sender.js <devicesFile> <port> <caPemPath> <window>
// The devices file holds one "deviceId<TAB>connectionString" line a device. Every device connects, then "READY" is
// printed; each stdin line "RUN size devices messagesPerDevice" sends that many text messages from each of the first
// `devices` devices with `window` sends outstanding a device, and prints "RESULT seconds cpuSeconds acknowledged"
// (this process's clock and CPU time, from the first send to the last acknowledgement). Closing stdin ends it.
const fs = require('fs');
const readline = require('readline');
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');

const [devicesFile, port, caPath, windowText] = process.argv.slice(2);
if (!devicesFile || !port || !caPath || !windowText) {
  process.stderr.write('usage: node telemetry-sender.js <devicesFile> <port> <caPemPath> <window>\n');
  process.exit(2);
}

const window = Number(windowText);
const ca = fs.readFileSync(caPath, 'utf8');
const connectionStrings = fs.readFileSync(devicesFile, 'utf8').split('\n').filter(Boolean).map((line) => line.split('\t')[1]);

async function send(client, body, count) {
  let started = 0;
  let acknowledged = 0;
  const lane = async () => {
    while (started < count) {
      started++;
      const message = new Message(body);
      message.contentType = 'text/plain';
      message.contentEncoding = 'utf-8';
      try {
        await client.sendEvent(message);
        acknowledged++;
      } catch (err) {
        process.stderr.write(`sendEvent failed: ${err && err.message}\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, count) }, lane));
  return acknowledged;
}

async function main() {
  const clients = [];
  for (const cs of connectionStrings) {
    const host = /HostName=([^;]+)/.exec(cs)[1];
    const client = Client.fromConnectionString(`${cs};GatewayHostName=${host}:${port}`, Mqtt);
    await client.setOptions({ ca });
    await client.open();
    clients.push(client);
  }

  const sdk = require('azure-iot-device/package.json').version;
  process.stdout.write(`READY node-${process.version}-azure-iot-device-${sdk}\n`);
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [command, size, devices, perDevice] = line.split(' ');
    if (command !== 'RUN') continue;
    const body = 'x'.repeat(Number(size));
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    const counts = await Promise.all(clients.slice(0, Number(devices)).map((client) => send(client, body, Number(perDevice))));
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const used = process.cpuUsage(cpu);
    process.stdout.write(`RESULT ${seconds} ${(used.user + used.system) / 1e6} ${counts.reduce((a, b) => a + b, 0)}\n`);
  }

  await Promise.all(clients.map((client) => client.close().catch(() => {})));
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`telemetry-sender: ${(err && err.stack) || err}\n`);
  process.exit(1);
});
