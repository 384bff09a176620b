'use strict';
// A service application written with the official Azure IoT Node.js service SDK (azure-iothub Registry, over HTTPS),
// used as an interop peer for the emulator's bulk registry call and import/export jobs (tests/IoTHubMqtt.Emulator.Tests).
// Usage:
//   node registry-bulk.js bulk <serviceConnectionString> <httpsPort> <prefix> <count> <existingDeviceId>
//   node registry-bulk.js jobs <serviceConnectionString> <httpsPort> <containerSasUri>
// The SDK's HTTPS transport always dials port 443 of the hub's host name and takes no port option, so the Registry is
// built as fromConnectionString builds it (host and SAS from the connection string) with the SDK's own REST client given
// an https.Agent whose options carry the emulator's port (Node merges an agent's options into each connection's).
// The emulator's CA must be trusted through NODE_EXTRA_CA_CERTS.
// Every result is one JSON line on stdout; it exits 0 when done, 1 on the first error.
const { Registry } = require('azure-iothub');
// The SharedAccessSignature class azure-iothub itself signs with (Registry.fromConnectionString uses it).
const { SharedAccessSignature } = require('azure-iothub/dist/common-core/shared_access_signature');
const ConnectionString = require('azure-iothub/dist/connection_string');
const { RestApiClient } = require('azure-iothub/dist/common-http/rest_api_client');
const https = require('https');

const [command, connectionString, port, ...rest] = process.argv.slice(2);
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const fail = (where, err) => {
  emit({ event: 'error', where, message: String((err && err.message) || err), code: err && err.responseBody });
  process.exit(1);
};
const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 1000).unref();

function registry() {
  const cn = ConnectionString.parse(connectionString);
  const config = {
    host: cn.HostName,
    sharedAccessSignature: SharedAccessSignature.create(cn.HostName, cn.SharedAccessKeyName, cn.SharedAccessKey, Date.now()),
  };
  const rest = new RestApiClient(config, 'iothubmqtt-interop');
  const registry = new Registry(config, rest);
  // After the constructor, which gives the client its own keep-alive agent.
  rest.setOptions({ http: { agent: new https.Agent({ keepAlive: true, port: Number(port) }) } });
  return registry;
}

const result = (response) => response.responseBody;

async function bulk(prefix, count, existing) {
  const reg = registry();
  const devices = [];
  for (let i = 0; i < Number(count); i++) {
    devices.push({ deviceId: `${prefix}-${i}`, status: 'enabled' });
  }
  emit({ event: 'added', result: result(await reg.addDevices(devices.concat([{ deviceId: existing }]))) });
  emit({ event: 'updated', result: result(await reg.updateDevices(devices.map((d) => ({ deviceId: d.deviceId, status: 'disabled' })), true)) });
  const one = result(await reg.get(`${prefix}-0`));
  emit({ event: 'read', status: one.status, etag: one.etag });
  emit({ event: 'stale', result: result(await reg.updateDevices([{ deviceId: `${prefix}-0`, status: 'enabled', eTag: 'not-the-etag' }], false)) });
  emit({ event: 'removed', result: result(await reg.removeDevices(devices.concat([{ deviceId: `${prefix}-missing` }]), true)) });
}

async function waitFor(reg, jobId) {
  for (;;) {
    const job = await reg.getJob(jobId); // callbackToPromise: the job itself
    if (['completed', 'failed', 'cancelled'].includes(job.status)) {
      return job;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function jobs(containerSasUri) {
  const reg = registry();
  const exported = await reg.exportDevicesToBlob(containerSasUri, false);
  emit({ event: 'exportStarted', job: exported });
  emit({ event: 'exportDone', job: await waitFor(reg, exported.jobId) });
  const imported = await reg.importDevicesFromBlob(containerSasUri, containerSasUri);
  emit({ event: 'importStarted', job: imported });
  emit({ event: 'importDone', job: await waitFor(reg, imported.jobId) });
  const list = result(await reg.listJobs());
  emit({ event: 'listed', jobIds: list.map((j) => j.jobId) });
}

const run = command === 'bulk' ? bulk(rest[0], rest[1], rest[2]) : command === 'jobs' ? jobs(rest[0]) : Promise.reject(new Error(`unknown command ${command}`));
run.then(() => process.exit(0), (err) => fail(command, err));
