// Shared set-up for the @azure/cosmos scenario tests.
//
// The tests talk to whatever `TRIBUTARY_ENDPOINT` names: a `tributary serve` instance, the Cosmos DB emulator, or a
// real Azure Cosmos DB account. Nothing here knows which; the tests only use the public SDK surface.
//
// Environment:
//   TRIBUTARY_ENDPOINT  required, e.g. `https://127.0.0.1:8443/` or `http://127.0.0.1:8081/`
//   TRIBUTARY_KEY       the account master key; defaults to the emulator's well-known key
//
// For `https:` endpoints the client uses an agent that accepts self-signed certificates (the server and the emulator
// both use one); for `http:` the SDK's own plain agent is used.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import https from "node:https";

import { CosmosClient } from "@azure/cosmos";

/** The Cosmos DB emulator's published master key, used when `TRIBUTARY_KEY` is not set. */
const EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

/** Upper bound on pages read while draining a change feed or a query, so a misbehaving server cannot hang a test. */
export const MAX_PAGES = 200;

/** Per-suite timeout in milliseconds; every suite passes it to `describe`. */
export const SUITE_TIMEOUT_MS = 180_000;

/** Returns the endpoint under test, failing with a clear message when it is not configured. */
function endpoint() {
  const value = process.env.TRIBUTARY_ENDPOINT;
  if (value === undefined || value.trim() === "") {
    throw new Error(
      "TRIBUTARY_ENDPOINT is not set: export it to the server's URL, e.g. TRIBUTARY_ENDPOINT=http://127.0.0.1:8081/",
    );
  }
  return value.trim();
}

/** Returns the master key under test. */
function masterKey() {
  const value = process.env.TRIBUTARY_KEY;
  return value === undefined || value.trim() === "" ? EMULATOR_KEY : value.trim();
}

/**
 * Builds a client for the endpoint under test.
 *
 * `overrides` are merged into the CosmosClient options (used to try a wrong key). The returned object has the client
 * and a `close()` that releases the background refresher and the TLS agent, so a test file's process can exit.
 */
export function connect(overrides = {}) {
  const url = endpoint();
  const agent = url.startsWith("https:")
    ? new https.Agent({ keepAlive: true, rejectUnauthorized: false })
    : undefined;
  const client = new CosmosClient({
    endpoint: url,
    key: masterKey(),
    ...(agent === undefined ? {} : { agent }),
    connectionPolicy: { requestTimeout: 30_000 },
    ...overrides,
  });
  return {
    client,
    close() {
      client.dispose();
      agent?.destroy();
    },
  };
}

/** A fresh identifier with the given prefix, unique across runs, safe as a database, container or item id. */
export function uniqueId(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
}

/**
 * Creates a uniquely named database for one test file and returns it with a `cleanup()` that deletes it (and
 * closes the client). Call `cleanup()` from `after`; it tolerates a database that was never created.
 */
export async function scratchDatabase(label) {
  const connection = connect();
  const id = uniqueId(`tributary-node-${label}`);
  const { database } = await connection.client.databases.createIfNotExists({ id });
  return {
    client: connection.client,
    database,
    async cleanup() {
      try {
        await database.delete();
      } catch (error) {
        if (error?.code !== 404) {
          throw error;
        }
      } finally {
        connection.close();
      }
    },
  };
}

/**
 * Asserts that `promise` rejects with a Cosmos error whose `code` is `status`; returns the error for more checks.
 */
export async function rejectsWithStatus(promise, status) {
  let caught;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught !== undefined, `expected the operation to fail with HTTP ${status}, but it succeeded`);
  assert.equal(caught.code, status, `expected HTTP ${status}, got ${caught.code}: ${caught.message}`);
  return caught;
}

/**
 * Reads a change-feed iterator until it answers 304 Not Modified, at most `maxPages` pages.
 *
 * Returns every item seen in order, the page sizes, and the final 304 response (whose `continuationToken` resumes
 * right after the last change). Fails if a page is neither 200 nor 304, or if the feed never reaches 304.
 */
export async function drainChangeFeed(iterator, maxPages = MAX_PAGES) {
  const items = [];
  const pageSizes = [];
  for (let page = 0; page < maxPages; page += 1) {
    const response = await iterator.readNext();
    if (response.statusCode === 304) {
      assert.equal(response.result.length, 0, "a 304 change-feed page carries no items");
      assert.ok(response.continuationToken, "a 304 change-feed page still carries a continuation token");
      return { items, pageSizes, last: response };
    }
    assert.equal(response.statusCode, 200, `unexpected change-feed status ${response.statusCode}`);
    assert.ok(response.continuationToken, "a 200 change-feed page carries a continuation token");
    pageSizes.push(response.result.length);
    items.push(...response.result);
  }
  assert.fail(`change feed did not reach 304 within ${maxPages} pages`);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms) {
  return new Promise((resolve) => {
    setTimeout(resolve, ms);
  });
}

/** The ids of `items`, in order. */
export function ids(items) {
  return items.map((item) => item.id);
}

/** The ids of `items`, sorted, for order-insensitive comparisons. */
export function sortedIds(items) {
  return ids(items).sort();
}

/** Asserts that no id occurs twice in `items`. */
export function assertNoDuplicateIds(items, what) {
  const seen = new Set();
  for (const item of items) {
    assert.ok(!seen.has(item.id), `${what}: id ${item.id} appears more than once`);
    seen.add(item.id);
  }
}
