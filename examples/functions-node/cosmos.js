'use strict';
// A few Cosmos DB REST calls with Node's standard library (no SDK), for trying the example.
// The account is local.settings.json's CosmosDBConnection (or that environment variable).
//
//   node cosmos.js setup          creates the database `shop` and its container `orders`
//                                 (partition key /customerId): the container the functions
//                                 watch. The host checks it exists; it creates the lease,
//                                 view and dead-letter containers itself. Existing ones stay.
//   node cosmos.js upsert ORDER   writes an order, e.g.
//                                 '{"id": "o1", "customerId": "c1", "status": "shipped", "total": 30}'
//   node cosmos.js list CONTAINER prints a container's documents of shop, one JSON line each
//                                 (e.g. view, deadletter)

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const https = require('https');

const DATABASE = 'shop';
const ORDERS = { id: 'orders', partitionKey: { paths: ['/customerId'], kind: 'Hash', version: 2 } };

function account() {
  let connection = process.env.CosmosDBConnection;
  if (!connection) {
    connection = JSON.parse(fs.readFileSync('local.settings.json', 'utf8')).Values.CosmosDBConnection;
  }
  const parts = Object.fromEntries(connection.split(';').filter(Boolean).map((part) => {
    const at = part.indexOf('=');
    return [part.slice(0, at), part.slice(at + 1)];
  }));
  return { endpoint: new URL(parts.AccountEndpoint), key: Buffer.from(parts.AccountKey, 'base64') };
}

const { endpoint, key } = account();

// One REST call, signed with the master key: { status, headers, body }.
function request(verb, resourceType, resourceLink, path, { body, headers = {} } = {}) {
  const date = new Date().toUTCString();
  const text = `${verb.toLowerCase()}\n${resourceType}\n${resourceLink}\n${date.toLowerCase()}\n\n`;
  const signature = crypto.createHmac('sha256', key).update(text).digest('base64');
  const payload = body === undefined ? '' : JSON.stringify(body);
  const client = endpoint.protocol === 'https:' ? https : http;
  const local = ['localhost', '127.0.0.1', '[::1]'].includes(endpoint.hostname);
  return new Promise((resolve, reject) => {
    const call = client.request(new URL(path, endpoint), {
      method: verb,
      headers: {
        authorization: encodeURIComponent(`type=master&ver=1.0&sig=${signature}`),
        'x-ms-date': date,
        'x-ms-version': '2018-12-31',
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(payload),
        ...headers,
      },
      // `tributary serve` makes a self-signed certificate for localhost.
      rejectUnauthorized: !local,
    }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => { text += chunk; });
      response.on('end', () => resolve({ status: response.statusCode, headers: response.headers, body: text }));
    });
    call.on('error', reject);
    call.end(payload);
  });
}

function failed(what, response) {
  return new Error(`${what} at ${endpoint.origin}: HTTP ${response.status} ${response.body}`);
}

async function create(what, resourceType, parentLink, body) {
  const response = await request('POST', resourceType, parentLink, `${parentLink ? `/${parentLink}` : ''}/${resourceType}`, { body });
  if (response.status === 201) {
    console.log(`created ${what}`);
  } else if (response.status === 409) {
    console.log(`${what} exists`);
  } else {
    throw failed(`creating ${what}`, response);
  }
}

const commands = {
  async setup() {
    await create(`database ${DATABASE}`, 'dbs', '', { id: DATABASE });
    await create(`container ${DATABASE}/${ORDERS.id}`, 'colls', `dbs/${DATABASE}`, ORDERS);
  },

  async upsert(json) {
    const order = JSON.parse(json);
    const link = `dbs/${DATABASE}/colls/${ORDERS.id}`;
    const response = await request('POST', 'docs', link, `/${link}/docs`, {
      body: order,
      headers: {
        'x-ms-documentdb-is-upsert': 'True',
        'x-ms-documentdb-partitionkey': JSON.stringify([order.customerId]),
      },
    });
    if (response.status !== 200 && response.status !== 201) {
      throw failed(`writing order ${order.id}`, response);
    }
    console.log(`wrote order ${order.id}`);
  },

  async list(container) {
    const link = `dbs/${DATABASE}/colls/${container}`;
    let continuation;
    do {
      const response = await request('GET', 'docs', link, `/${link}/docs`, {
        headers: continuation ? { 'x-ms-continuation': continuation } : {},
      });
      if (response.status !== 200) {
        throw failed(`reading ${DATABASE}/${container}`, response);
      }
      for (const document of JSON.parse(response.body).Documents) {
        for (const system of ['_rid', '_self', '_etag', '_attachments', '_lsn']) {
          delete document[system];
        }
        console.log(JSON.stringify(document));
      }
      continuation = response.headers['x-ms-continuation'];
    } while (continuation);
  },
};

const [command, ...args] = process.argv.slice(2);
if (!commands[command] || args.length !== commands[command].length) {
  console.error('usage: node cosmos.js setup | upsert ORDER_JSON | list CONTAINER');
  process.exit(2);
}
commands[command](...args).catch((error) => {
  console.error(error.message);
  process.exit(1);
});
