'use strict';
// The official Azure IoT Node.js service SDK's registry and twin calls (azure-iothub Registry, Twin over HTTPS), used as
// an interop peer by tests/IoTHubMqtt.Emulator.Tests. Usage: node registry.js <serviceConnectionString> <httpsPort> <deviceId>
// The SDK dials https://{HostName} on port 443 and signs its SAS tokens for HostName; only the port is redirected here
// (to the emulator's HTTPS port), the requests themselves are the SDK's own. The emulator's CA comes in through
// NODE_EXTRA_CA_CERTS. Every step prints one JSON line on stdout; the first failure prints an error line and exits 1.
const https = require('https');
const { Registry } = require('azure-iothub');

const [connectionString, port, deviceId] = process.argv.slice(2);
if (!connectionString || !port || !deviceId) {
  process.stderr.write('usage: node registry.js <serviceConnectionString> <httpsPort> <deviceId>\n');
  process.exit(2);
}

const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const request = https.request;
https.request = (options, callback) => request({ ...options, port: Number(port) }, callback);
const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 1000).unref();

async function main() {
  const registry = Registry.fromConnectionString(connectionString);

  // create() with only a deviceId: the SDK sends symmetricKey { primaryKey: '', secondaryKey: '' }.
  const created = (await registry.create({ deviceId })).responseBody;
  emit({ event: 'created', deviceId: created.deviceId, status: created.status, etag: created.etag, authentication: created.authentication });

  // update() sends If-Match: "*" (quoted), and again empty keys (it normalizes authentication the same way).
  const updated = (await registry.update({ deviceId, status: 'disabled', statusReason: 'maintenance' })).responseBody;
  emit({ event: 'updated', status: updated.status, statusReason: updated.statusReason, authentication: updated.authentication });

  const twin = (await registry.getTwin(deviceId)).responseBody;
  emit({ event: 'twin', etag: twin.etag, properties: twin.properties, tags: twin.tags });

  // updateTwin() with the etag '*' sends If-Match: "*".
  const patched = (await registry.updateTwin(deviceId, { tags: { room: '12' }, properties: { desired: { interval: 30, mode: { eco: true } } } }, '*')).responseBody;
  emit({ event: 'twinPatched', properties: patched.properties, tags: patched.tags });

  // Twin.update() sends the twin's own etag, quoted.
  const fetched = (await registry.getTwin(deviceId)).responseBody;
  const again = (await fetched.update({ properties: { desired: { interval: 60 } } })).result;
  emit({ event: 'twinUpdated', properties: again.properties });

  // delete() sends If-Match: "*".
  await registry.delete(deviceId);
  emit({ event: 'deleted' });
  try {
    await registry.get(deviceId);
    emit({ event: 'error', where: 'get after delete', message: 'the device is still there' });
    process.exit(1);
  } catch (err) {
    emit({ event: 'gone', name: err.name });
  }
  process.exit(0);
}

main().catch((err) => {
  emit({ event: 'error', where: 'registry', name: err && err.name, message: String((err && err.message) || err), body: err && err.responseBody });
  process.exit(1);
});
