'use strict';
// A back end written with the official Azure Event Hubs client for JavaScript (@azure/event-hubs), used as an interop
// peer by the tests: it reads a hub's built-in (Event Hub-compatible) endpoint with nothing but an Event Hub-compatible
// connection string, as Azure Functions, Stream Analytics or a hand-written processor would.
// The emulator's CA must be trusted through the NODE_EXTRA_CA_CERTS environment variable.
// Every result is one JSON line on stdout; the process exits 0 when done and 1 on the first error.
//
// Usage:
//   node eventhubs.js properties <eventHubConnectionString>
//       the entity's and every partition's properties
//   node eventhubs.js read <eventHubConnectionString> <consumerGroup> <partitionId> <positionJson> <count> [ownerLevel]
//       <count> events of one partition from a start position ({"offset":"-1"}, {"offset":"@latest"},
//       {"sequenceNumber":5,"isInclusive":true}, {"enqueuedOn":<ms>}); prints {"event":"ready"} once the receiver is
//       attached and the events once <count> arrived
//   node eventhubs.js checkpoint <eventHubConnectionString> <consumerGroup> <storageConnectionString> <container> <count>
//       <count> events of every partition through the client's processor with its blob checkpoint store
//       (@azure/eventhubs-checkpointstore-blob), a checkpoint after every event; resumes where the store says
//   node eventhubs.js builtin <iotHubConnectionString> <amqpPort>
//       what Microsoft's "read device-to-cloud messages" sample does to turn an IoT Hub connection string into an Event
//       Hub-compatible one: a SASL PLAIN login as {policy}@sas.root.{hub} with an IoT Hub SAS token, a receiver on
//       amqps://{host}/messages/events/$management, and the redirect the hub answers with
const crypto = require('crypto');
const { EventHubConsumerClient } = require('@azure/event-hubs');

const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const fail = (where, err) => {
  emit({ event: 'error', where, name: String((err && (err.code || err.name)) || ''), message: String((err && err.message) || err) });
  process.exit(1);
};
const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 1000).unref();

const [command, ...args] = process.argv.slice(2);

function describe(event) {
  const body = event.body;
  return {
    body: Buffer.isBuffer(body) || body instanceof Uint8Array ? Buffer.from(body).toString('utf8') : typeof body === 'string' ? body : JSON.stringify(body),
    properties: event.properties || {},
    systemProperties: Object.fromEntries(Object.entries(event.systemProperties || {}).map(([k, v]) => [k, v instanceof Date ? v.getTime() : v])),
    sequenceNumber: event.sequenceNumber,
    offset: event.offset,
    enqueuedTimeUtc: event.enqueuedTimeUtc instanceof Date ? event.enqueuedTimeUtc.getTime() : event.enqueuedTimeUtc,
    messageId: event.messageId,
    correlationId: event.correlationId,
    contentType: event.contentType,
  };
}

async function properties([connectionString]) {
  const client = new EventHubConsumerClient('$Default', connectionString);
  try {
    const hub = await client.getEventHubProperties();
    const partitions = [];
    for (const id of hub.partitionIds) {
      const p = await client.getPartitionProperties(id);
      partitions.push({ ...p, lastEnqueuedOnUtc: p.lastEnqueuedOnUtc instanceof Date ? p.lastEnqueuedOnUtc.getTime() : p.lastEnqueuedOnUtc });
    }
    emit({ event: 'properties', name: hub.name, createdOn: hub.createdOn.getTime(), partitionIds: hub.partitionIds, partitions });
  } finally {
    await client.close();
  }
}

async function read([connectionString, consumerGroup, partitionId, positionJson, countText, ownerLevel]) {
  const count = Number(countText);
  const position = JSON.parse(positionJson);
  const client = new EventHubConsumerClient(consumerGroup, connectionString);
  const events = [];
  await new Promise((resolve, reject) => {
    const subscription = client.subscribe(partitionId, {
      processInitialize: async () => emit({ event: 'ready' }),
      processEvents: async (received) => {
        for (const e of received) events.push(describe(e));
        if (events.length >= count) {
          await subscription.close();
          resolve();
        }
      },
      processError: async (err) => {
        await subscription.close();
        reject(err);
      },
    }, { startPosition: position, maxBatchSize: 50, maxWaitTimeInSeconds: 1, ...(ownerLevel ? { ownerLevel: Number(ownerLevel) } : {}) });
  });
  await client.close();
  emit({ event: 'events', events });
}

async function checkpoint([connectionString, consumerGroup, storageConnectionString, container, countText]) {
  const { ContainerClient } = require('@azure/storage-blob');
  const { BlobCheckpointStore } = require('@azure/eventhubs-checkpointstore-blob');
  const count = Number(countText);
  const containerClient = new ContainerClient(storageConnectionString, container);
  await containerClient.createIfNotExists();
  const store = new BlobCheckpointStore(containerClient);
  const client = new EventHubConsumerClient(consumerGroup, connectionString, store, { loadBalancingOptions: { updateIntervalInMs: 500 } });
  const events = [];
  await new Promise((resolve, reject) => {
    let done = false;
    const subscription = client.subscribe({
      processEvents: async (received, context) => {
        for (const e of received) {
          if (done) return;
          events.push({ ...describe(e), partitionId: context.partitionId });
          await context.updateCheckpoint(e);
          if (events.length >= count) {
            done = true;
            await subscription.close();
            resolve();
            return;
          }
        }
      },
      processError: async (err) => {
        if (!done) reject(err);
      },
    }, { maxBatchSize: 50, maxWaitTimeInSeconds: 1, startPosition: { offset: '-1' } });
  });
  await client.close();
  emit({ event: 'events', events });
}

async function builtin([iotHubConnectionString, amqpPort]) {
  const rhea = require('rhea');
  const parts = Object.fromEntries(iotHubConnectionString.split(';').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
  const host = parts.HostName;
  const hubName = host.split('.')[0];
  // An IoT Hub SAS token: HMAC-SHA256 keyed with the base64-decoded policy key over the URL-encoded resource and expiry.
  const expiry = Math.ceil(Date.now() / 1000) + 300;
  const resource = encodeURIComponent(`${host}/messages/events`);
  const signature = crypto.createHmac('sha256', Buffer.from(parts.SharedAccessKey, 'base64')).update(`${resource}\n${expiry}`).digest('base64');
  const token = `SharedAccessSignature sr=${resource}&sig=${encodeURIComponent(signature)}&se=${expiry}&skn=${parts.SharedAccessKeyName}`;
  const container = rhea.create_container();
  const address = await new Promise((resolve, reject) => {
    const connection = container.connect({
      transport: 'tls', host, hostname: host, port: Number(amqpPort), reconnect: false,
      username: `${parts.SharedAccessKeyName}@sas.root.${hubName}`, password: token,
    });
    connection.on('connection_error', (context) => reject(context.connection.error || new Error('connection error')));
    connection.on('disconnected', (context) => reject(context.error || new Error('disconnected')));
    const receiver = connection.open_receiver({ source: { address: `amqps://${host}/messages/events/$management` } });
    receiver.on('receiver_error', (context) => {
      const error = context.receiver.error;
      connection.close();
      if (error && error.condition === 'amqp:link:redirect') {
        resolve(error.info);
      } else {
        reject(error || new Error('receiver error'));
      }
    });
    // A refused attach is an attach without a source followed by a detach that carries the error (receiver_error);
    // a link the hub kept open would deliver instead.
    receiver.on('message', () => {
      connection.close();
      reject(new Error('the hub opened the link instead of redirecting'));
    });
  });
  const [, entity] = /^amqps:\/\/[^/]+\/([^/]+)\//.exec(address.address) || [];
  const eventHubConnectionString = `Endpoint=sb://${address.hostname}:${address.port}/;EntityPath=${entity};SharedAccessKeyName=${parts.SharedAccessKeyName};SharedAccessKey=${parts.SharedAccessKey}`;
  emit({ event: 'redirect', hostname: address.hostname, port: address.port, address: address.address, entity });
  await properties([eventHubConnectionString]);
}

const commands = { properties, read, checkpoint, builtin };
if (!commands[command]) {
  process.stderr.write('usage: node eventhubs.js properties|read|checkpoint|builtin ...\n');
  process.exit(2);
}
commands[command](args).then(() => process.exit(0), (err) => fail(command, err));
