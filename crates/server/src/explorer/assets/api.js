// The Explorer's client of the Cosmos DB REST API: every request is signed here, in the
// browser, with the account key, exactly as the SDKs sign theirs (crates/wire/src/auth.rs):
//
//   authorization = encodeURIComponent("type=master&ver=1.0&sig=" + base64(HMAC-SHA256(key,
//     lower(verb) + "\n" + lower(resourceType) + "\n" + resourceLink + "\n" + lower(x-ms-date) + "\n\n")))
//
// where the resource link is the path of names, not URL-encoded. The key never leaves the
// page; the server sees only signatures.

/** The Cosmos DB emulator's published key (public knowledge; protects nothing). */
export const EMULATOR_KEY =
  "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

const API_VERSION = "2020-07-15";

/** An error answer of the server: its status, code, sub-status and message. */
export class ApiError extends Error {
  constructor(status, code, message, substatus) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.substatus = substatus;
  }
}

/** Decodes standard base64 into bytes. */
function base64ToBytes(text) {
  const binary = atob(text.trim());
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) {
    bytes[i] = binary.charCodeAt(i);
  }
  return bytes;
}

function bytesToBase64(buffer) {
  let binary = "";
  for (const byte of new Uint8Array(buffer)) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary);
}

/** JSON text with every non-ASCII character escaped, as a header value must be. */
function asciiJson(value) {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** The value at a partition key path (`/a/b`) of a document; `undefined` when absent. */
function valueAtPath(document, path) {
  let value = document;
  for (const raw of path.split("/").slice(1)) {
    const name = raw.replace(/^"(.*)"$/, "$1");
    if (value === null || typeof value !== "object" || !(name in value)) {
      return undefined;
    }
    value = value[name];
  }
  return value;
}

/**
 * The partition key header value of a document in a container: one component per path,
 * `{}` for a missing one (the "undefined" key), as the SDKs send it.
 */
export function partitionKeyOf(container, document) {
  const paths = container.partitionKey?.paths ?? [];
  return paths.map((path) => {
    const value = valueAtPath(document, path);
    return value === undefined ? {} : value;
  });
}

/** A signed client of one account. */
export class Client {
  /** `key` is the base64 master key; `origin` the server's (the page's own by default). */
  constructor(key, origin = window.location.origin) {
    if (!window.isSecureContext || !crypto.subtle) {
      throw new Error(
        "This page needs a secure context to sign requests (browsers give WebCrypto only to HTTPS pages and to http://localhost): open it over HTTPS.",
      );
    }
    this.origin = origin;
    this.keyPromise = crypto.subtle.importKey(
      "raw",
      base64ToBytes(key),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
  }

  /** The signature headers for a request of `verb` on a resource type and link. */
  async signedHeaders(verb, resourceType, resourceLink) {
    const date = new Date().toUTCString();
    const payload = `${verb.toLowerCase()}\n${resourceType.toLowerCase()}\n${resourceLink}\n${date.toLowerCase()}\n\n`;
    const key = await this.keyPromise;
    const signature = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(payload));
    const token = `type=master&ver=1.0&sig=${bytesToBase64(signature)}`;
    return {
      authorization: encodeURIComponent(token),
      "x-ms-date": date,
      "x-ms-version": API_VERSION,
    };
  }

  /**
   * Sends one request. `segments` are the resource path's names (`["dbs", "db1", "colls"]`);
   * the signed type and link follow from them as the server rebuilds them. Answers
   * `{ status, headers, body }` (body parsed as JSON, or null); throws `ApiError` for 4xx/5xx.
   */
  async request(method, segments, { headers = {}, body, signal } = {}) {
    const { resourceType, resourceLink } = addressOf(segments);
    const signed = await this.signedHeaders(method, resourceType, resourceLink);
    const path = `/${segments.map(encodeURIComponent).join("/")}`;
    const response = await fetch(this.origin + path, {
      method,
      headers: { accept: "application/json", ...signed, ...headers },
      body,
      signal,
      cache: "no-store",
    });
    const text = await response.text();
    const parsed = parseJson(text);
    if (!response.ok && response.status !== 304) {
      throw errorOf(response, parsed, text);
    }
    return { status: response.status, headers: response.headers, body: parsed };
  }

  /** Checks the key against the server (reads the account). */
  account() {
    return this.request("GET", []);
  }

  async databases() {
    return (await this.request("GET", ["dbs"])).body.Databases;
  }

  createDatabase(id) {
    return this.request("POST", ["dbs"], jsonBody({ id }));
  }

  async containers(database) {
    return (await this.request("GET", ["dbs", database, "colls"])).body.DocumentCollections;
  }

  /** A container with per-range statistics (`statistics`: id, documentCount, sizeInKB). */
  async container(database, container) {
    const response = await this.request("GET", ["dbs", database, "colls", container], {
      headers: { "x-ms-documentdb-populatepartitionstatistics": "true" },
    });
    return response.body;
  }

  createContainer(database, definition, throughput) {
    const options = jsonBody(definition);
    if (throughput) {
      options.headers["x-ms-offer-throughput"] = String(throughput);
    }
    return this.request("POST", ["dbs", database, "colls"], options);
  }

  async partitionKeyRanges(database, container) {
    const response = await this.request("GET", ["dbs", database, "colls", container, "pkranges"]);
    return response.body.PartitionKeyRanges;
  }

  /** The offer (throughput) of a resource id, if it has its own. */
  async offerOf(resourceRid) {
    const offers = (await this.request("GET", ["offers"])).body.Offers;
    return offers.find((offer) => offer.offerResourceId === resourceRid) ?? null;
  }

  /** One page of a container's items: `{ items, continuation }`. */
  async itemsPage(database, container, { continuation, pageSize = 50 } = {}) {
    const headers = { "x-ms-max-item-count": String(pageSize) };
    if (continuation) {
      headers["x-ms-continuation"] = continuation;
    }
    const response = await this.request("GET", ["dbs", database, "colls", container, "docs"], { headers });
    return {
      items: response.body.Documents,
      continuation: response.headers.get("x-ms-continuation"),
      charge: response.headers.get("x-ms-request-charge"),
    };
  }

  async readItem(database, container, id, partitionKey) {
    const response = await this.request("GET", ["dbs", database, "colls", container, "docs", id], {
      headers: { "x-ms-documentdb-partitionkey": asciiJson(partitionKey) },
    });
    return response.body;
  }

  createItem(database, container, document, partitionKey) {
    const options = jsonBody(document);
    options.headers["x-ms-documentdb-partitionkey"] = asciiJson(partitionKey);
    return this.request("POST", ["dbs", database, "colls", container, "docs"], options);
  }

  /** Replaces an item only if it is still at `etag` (else a 412 `ApiError`). */
  replaceItem(database, container, id, document, partitionKey, etag) {
    const options = jsonBody(document);
    options.headers["x-ms-documentdb-partitionkey"] = asciiJson(partitionKey);
    options.headers["if-match"] = etag;
    return this.request("PUT", ["dbs", database, "colls", container, "docs", id], options);
  }

  deleteItem(database, container, id, partitionKey, etag) {
    const headers = { "x-ms-documentdb-partitionkey": asciiJson(partitionKey) };
    if (etag) {
      headers["if-match"] = etag;
    }
    return this.request("DELETE", ["dbs", database, "colls", container, "docs", id], { headers });
  }

  /**
   * One page of a query, sent as a plain client (no SDK capabilities), so the server
   * answers it whole across partitions: `{ results, continuation, charge, metrics }`.
   */
  async queryPage(database, container, query, { continuation, pageSize = 100 } = {}) {
    const headers = {
      "content-type": "application/query+json",
      "x-ms-documentdb-isquery": "true",
      "x-ms-documentdb-query-enablecrosspartition": "true",
      "x-ms-documentdb-populatequerymetrics": "true",
      "x-ms-max-item-count": String(pageSize),
    };
    if (continuation) {
      headers["x-ms-continuation"] = continuation;
    }
    const response = await this.request("POST", ["dbs", database, "colls", container, "docs"], {
      headers,
      body: JSON.stringify({ query, parameters: [] }),
    });
    return {
      results: response.body.Documents,
      continuation: response.headers.get("x-ms-continuation"),
      charge: response.headers.get("x-ms-request-charge"),
      metrics: response.headers.get("x-ms-documentdb-query-metrics"),
    };
  }

  /**
   * Every document a query returns, following continuations, up to `limit` documents:
   * `{ documents, truncated }` (`truncated` when more were left).
   */
  async queryAll(database, container, query, parameters = [], limit = 5_000) {
    const documents = [];
    let continuation = null;
    do {
      const headers = {
        "content-type": "application/query+json",
        "x-ms-documentdb-isquery": "true",
        "x-ms-documentdb-query-enablecrosspartition": "true",
        "x-ms-max-item-count": String(Math.min(1_000, limit - documents.length)),
      };
      if (continuation) {
        headers["x-ms-continuation"] = continuation;
      }
      const response = await this.request("POST", ["dbs", database, "colls", container, "docs"], {
        headers,
        body: JSON.stringify({ query, parameters }),
      });
      documents.push(...response.body.Documents);
      continuation = response.headers.get("x-ms-continuation");
    } while (continuation && documents.length < limit);
    return { documents, truncated: Boolean(continuation) };
  }

  /**
   * One page of a container's change feed, read as the change feed processor reads a lease
   * (crates/client's change feed request): `A-IM`, the range id, the EPK sub-range when the
   * lease covers part of the range, `If-None-Match` with the continuation (or
   * `If-Modified-Since` for a start time). Answers `{ changes, etag }`; no changes on a 304.
   */
  async changeFeedPage(database, container, { rangeId, epk, continuation, modifiedSince, allVersions, maxItems }) {
    const headers = {
      "a-im": allVersions ? "Full-Fidelity Feed" : "Incremental Feed",
      "x-ms-max-item-count": String(maxItems),
      "x-ms-documentdb-partitionkeyrangeid": rangeId,
    };
    if (allVersions) {
      headers["x-ms-cosmos-changefeed-wire-format-version"] = "2021-09-15";
    }
    if (epk) {
      headers["x-ms-start-epk"] = epk.min;
      headers["x-ms-end-epk"] = epk.max;
      headers["x-ms-read-key-type"] = "EffectivePartitionKeyRange";
    }
    if (continuation) {
      headers["if-none-match"] = continuation;
    } else if (modifiedSince) {
      headers["if-modified-since"] = modifiedSince;
    }
    const response = await this.request("GET", ["dbs", database, "colls", container, "docs"], { headers });
    return {
      changes: response.status === 304 ? [] : (response.body?.Documents ?? []),
      etag: response.headers.get("etag"),
    };
  }

  /**
   * The server's metrics snapshot (`GET /_explorer/metrics`), signed as a read of the
   * account (resource type and link empty), as any key may read it.
   */
  metrics() {
    return this.accountRequest("GET", "/_explorer/metrics");
  }

  /** The functions host running in the server, if any: `{ hosted, functions, skipped }`. */
  functions() {
    return this.accountRequest("GET", "/_explorer/functions");
  }

  /** A function's dead letters, oldest first: `{ function, deadLetters, truncated }`. */
  deadLetters(functionName) {
    return this.accountRequest("GET", `/_explorer/functions/${encodeURIComponent(functionName)}/deadletters`);
  }

  /**
   * Runs a function again on one of its dead letters (needs a read-write key):
   * `{ replayed: true }`, or `{ replayed: false, error }` when it failed again.
   */
  replayDeadLetter(functionName, id) {
    const path = `/_explorer/functions/${encodeURIComponent(functionName)}/deadletters/${encodeURIComponent(id)}/replay`;
    return this.accountRequest("POST", path);
  }

  /**
   * A request to one of the Explorer's own endpoints, signed as a request on the account
   * (resource type and link empty, as the SDKs sign `GET /`); answers the parsed JSON body.
   */
  async accountRequest(method, path) {
    const signed = await this.signedHeaders(method, "", "");
    const response = await fetch(`${this.origin}${path}`, {
      method,
      headers: { accept: "application/json", ...signed },
      cache: "no-store",
    });
    const text = await response.text();
    const parsed = parseJson(text);
    if (!response.ok) {
      throw errorOf(response, parsed, text);
    }
    return parsed;
  }

  /**
   * Opens the Explorer's feed stream of a container (Server-Sent Events, read with fetch so
   * the request can carry its signature: `EventSource` cannot send headers). `start` is
   * `now`, `beginning` or an ISO time; `range` (a feed range id) and `pk` (a partition key as
   * JSON text) narrow it when given. The signature covers the container's link, not the
   * query. Calls `onEvent({ event, data })` for each event until the stream ends or `signal`
   * aborts; throws `ApiError` when the server refuses the stream.
   */
  async streamFeed(database, container, { start, mode, range, pk, signal, onEvent }) {
    const signed = await this.signedHeaders("GET", "docs", `dbs/${database}/colls/${container}`);
    const query = new URLSearchParams({ start, mode });
    if (range !== undefined) {
      query.set("range", range);
    }
    if (pk !== undefined) {
      query.set("pk", pk);
    }
    const path = `/_explorer/feed/dbs/${encodeURIComponent(database)}/colls/${encodeURIComponent(container)}`;
    const response = await fetch(`${this.origin}${path}?${query}`, {
      headers: { accept: "text/event-stream", ...signed },
      signal,
      cache: "no-store",
    });
    if (!response.ok) {
      const text = await response.text();
      throw errorOf(response, parseJson(text), text);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        return;
      }
      buffered += value;
      let end = buffered.indexOf("\n\n");
      while (end >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const event = parseEvent(block);
        if (event) {
          onEvent(event);
        }
        end = buffered.indexOf("\n\n");
      }
    }
  }
}

/** One Server-Sent Event block: `{ event, data }`, or null for a comment (a heartbeat). */
function parseEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":") || line === "") {
      continue;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") {
      event = value;
    } else if (field === "data") {
      data.push(value);
    }
  }
  return data.length === 0 ? null : { event, data: data.join("\n") };
}

/** Options for a request with a JSON body. */
function jsonBody(value) {
  return { headers: { "content-type": "application/json" }, body: JSON.stringify(value) };
}

/**
 * The resource type and link a path is signed for, as the server rebuilds them: an odd
 * number of segments is a feed (type = last segment, link = the ones before), an even number
 * one resource (type = second to last, link = all); offers are signed by their id alone.
 */
function addressOf(segments) {
  const n = segments.length;
  if (n === 0) {
    return { resourceType: "", resourceLink: "" };
  }
  if (n === 2 && segments[0] === "offers") {
    return { resourceType: "offers", resourceLink: segments[1].toLowerCase() };
  }
  if (n % 2 === 1) {
    return { resourceType: segments[n - 1], resourceLink: segments.slice(0, n - 1).join("/") };
  }
  return { resourceType: segments[n - 2], resourceLink: segments.join("/") };
}

/** A response body parsed as JSON; null when it is empty or not JSON. */
function parseJson(text) {
  if (text === "") {
    return null;
  }
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The `ApiError` of a failed response: the server's code and message when it sent them. */
function errorOf(response, parsed, text) {
  const message = parsed?.message ?? (text || response.statusText);
  const substatus = response.headers.get("x-ms-substatus");
  return new ApiError(response.status, parsed?.code ?? String(response.status), message, substatus);
}
