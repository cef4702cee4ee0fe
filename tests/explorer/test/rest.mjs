// A small signed client of the REST API for the browser tests: the writes "behind the page's
// back" (a concurrent edit, a change for the live feed) go through it, as any other client's
// would. It signs as the SDKs do (HMAC-SHA256 of verb, resource type, link and date).

import { createHmac } from "node:crypto";
import http from "node:http";
import https from "node:https";

/** Longest a REST call may take. */
const REQUEST_TIMEOUT_MS = 10_000;

export class Rest {
  constructor(endpoint, key) {
    this.url = new URL(endpoint);
    this.key = Buffer.from(key, "base64");
    this.transport = this.url.protocol === "https:" ? https : http;
    // The server's certificate is self-signed.
    this.agent = new this.transport.Agent({ keepAlive: false, rejectUnauthorized: false });
  }

  /** Sends a request; resolves `{ status, headers, body }` (body parsed as JSON when there is one). */
  send(method, segments, { headers = {}, body } = {}) {
    const n = segments.length;
    // An offer is addressed by its resource id, signed as the bare id in lower case.
    const [type, link] =
      n === 2 && segments[0] === "offers"
        ? ["offers", segments[1].toLowerCase()]
        : n % 2 === 1
          ? [segments[n - 1], segments.slice(0, -1).join("/")]
          : [segments[n - 2], segments.join("/")];
    const date = new Date().toUTCString();
    const payload = `${method.toLowerCase()}\n${type.toLowerCase()}\n${link}\n${date.toLowerCase()}\n\n`;
    const signature = createHmac("sha256", this.key).update(payload).digest("base64");
    const text = body === undefined ? undefined : JSON.stringify(body);
    const options = {
      method,
      host: this.url.hostname,
      port: this.url.port,
      path: `/${segments.map(encodeURIComponent).join("/")}`,
      agent: this.agent,
      timeout: REQUEST_TIMEOUT_MS,
      headers: {
        authorization: encodeURIComponent(`type=master&ver=1.0&sig=${signature}`),
        "x-ms-date": date,
        "x-ms-version": "2020-07-15",
        ...(text === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(text) }),
        ...headers,
      },
    };
    return new Promise((resolve, reject) => {
      const request = this.transport.request(options, (response) => {
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("end", () => {
          const raw = Buffer.concat(chunks).toString("utf8");
          resolve({ status: response.statusCode, headers: response.headers, body: raw === "" ? null : JSON.parse(raw) });
        });
        response.on("error", reject);
      });
      request.on("timeout", () => request.destroy(new Error(`${method} ${options.path} timed out`)));
      request.on("error", reject);
      if (text !== undefined) {
        request.write(text);
      }
      request.end();
    });
  }

  /** Creates or replaces an item (upsert) in partition `pk` of a container partitioned on /pk. */
  async upsert(database, container, item) {
    const response = await this.send("POST", ["dbs", database, "colls", container, "docs"], {
      headers: {
        "x-ms-documentdb-is-upsert": "true",
        "x-ms-documentdb-partitionkey": JSON.stringify([item.pk]),
      },
      body: item,
    });
    if (response.status !== 200 && response.status !== 201) {
      throw new Error(`upsert of ${item.id} answered ${response.status}: ${JSON.stringify(response.body)}`);
    }
    return response.body;
  }

  /**
   * Replaces a container's manual throughput, as the SDKs do: its offer read from `/offers`
   * and sent back changed. Past 10,000 RU/s per feed range, the server splits ranges.
   */
  async replaceThroughput(database, container, throughput) {
    const rid = (await this.send("GET", ["dbs", database, "colls", container])).body._rid;
    const offer = (await this.send("GET", ["offers"])).body.Offers.find((o) => o.offerResourceId === rid);
    if (!offer) {
      throw new Error(`container ${container} has no offer of its own`);
    }
    const response = await this.send("PUT", ["offers", offer.id], {
      body: { ...offer, content: { ...offer.content, offerThroughput: throughput } },
    });
    if (response.status !== 200) {
      throw new Error(`the offer replace answered ${response.status}: ${JSON.stringify(response.body)}`);
    }
  }

  async deleteDatabase(database) {
    return this.send("DELETE", ["dbs", database]);
  }
}
