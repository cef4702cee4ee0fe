// The container lifecycle, partition key definitions, TTL and partition key ranges through @azure/cosmos.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { SUITE_TIMEOUT_MS, rejectsWithStatus, scratchDatabase, sleep, sortedIds, uniqueId } from "./harness.mjs";

describe("containers", { timeout: SUITE_TIMEOUT_MS }, () => {
  let scratch;

  before(async () => {
    scratch = await scratchDatabase("containers");
  });

  after(async () => {
    await scratch?.cleanup();
  });

  test("create with a single-path key stores the definition Node sent (no kind, no version)", async () => {
    const id = uniqueId("c");
    const { resource, statusCode, container } = await scratch.database.containers.create({
      id,
      partitionKey: { paths: ["/pk"] },
    });
    assert.equal(statusCode, 201);
    assert.equal(resource.id, id);
    assert.ok(resource._rid, "a created container has a _rid");
    assert.ok(resource._etag, "a created container has an _etag");
    assert.equal(typeof resource._ts, "number");
    assert.deepEqual(resource.partitionKey.paths, ["/pk"]);
    assert.equal(resource.partitionKey.kind, "Hash");

    const { resource: read } = await container.read();
    assert.equal(read._rid, resource._rid);
    assert.deepEqual(read.partitionKey.paths, ["/pk"]);
  });

  test("create with a hierarchical MultiHash v2 key keeps kind, version and paths", async () => {
    const { resource, container } = await scratch.database.containers.create({
      id: uniqueId("h"),
      partitionKey: { paths: ["/a", "/b"], kind: "MultiHash", version: 2 },
    });
    assert.deepEqual(resource.partitionKey.paths, ["/a", "/b"]);
    assert.equal(resource.partitionKey.kind, "MultiHash");
    assert.equal(resource.partitionKey.version, 2);

    // Items are addressed by the full two-level key.
    await container.items.create({ id: "x", a: "tenant1", b: "user1", v: 1 });
    await container.items.create({ id: "x", a: "tenant1", b: "user2", v: 2 });
    await container.items.create({ id: "y", a: "tenant2", b: "user1", v: 3 });
    await rejectsWithStatus(container.items.create({ id: "x", a: "tenant1", b: "user1", v: 9 }), 409);

    const { resource: one } = await container.item("x", ["tenant1", "user2"]).read();
    assert.equal(one.v, 2);
    const missing = await container.item("x", ["tenant2", "user1"]).read();
    assert.equal(missing.statusCode, 404);

    const { resources } = await container.items
      .query("SELECT * FROM c WHERE c.a = 'tenant1'", { partitionKey: ["tenant1", "user1"] })
      .fetchAll();
    assert.deepEqual(
      resources.map((item) => item.v),
      [1],
      "a full hierarchical key scopes a query to one logical partition",
    );

    await container.item("x", ["tenant1", "user1"]).delete();
    const { resources: left } = await container.items.readAll().fetchAll();
    assert.deepEqual(sortedIds(left), ["x", "y"]);
  });

  test("createIfNotExists creates once, then returns the existing container", async () => {
    const id = uniqueId("c");
    const first = await scratch.database.containers.createIfNotExists({ id, partitionKey: { paths: ["/pk"] } });
    assert.equal(first.statusCode, 201);
    const second = await scratch.database.containers.createIfNotExists({ id, partitionKey: { paths: ["/pk"] } });
    assert.equal(second.statusCode, 200);
    assert.equal(second.resource._rid, first.resource._rid);
  });

  test("creating a container whose id is taken fails with 409", async () => {
    const id = uniqueId("c");
    await scratch.database.containers.create({ id, partitionKey: { paths: ["/pk"] } });
    await rejectsWithStatus(scratch.database.containers.create({ id, partitionKey: { paths: ["/pk"] } }), 409);
  });

  test("reading a container that does not exist fails with 404", async () => {
    await rejectsWithStatus(scratch.database.container(uniqueId("missing")).read(), 404);
  });

  test("readAll lists the database's containers", async () => {
    const mine = [uniqueId("c"), uniqueId("c")];
    for (const id of mine) {
      await scratch.database.containers.create({ id, partitionKey: { paths: ["/pk"] } });
    }
    const { resources } = await scratch.database.containers.readAll().fetchAll();
    const listed = new Set(resources.map((container) => container.id));
    for (const id of mine) {
      assert.ok(listed.has(id), `readAll lists ${id}`);
    }
  });

  test("defaultTtl is stored on create and changed by replace", async () => {
    const id = uniqueId("ttl");
    const { resource, container } = await scratch.database.containers.create({
      id,
      partitionKey: { paths: ["/pk"] },
      defaultTtl: 3600,
    });
    assert.equal(resource.defaultTtl, 3600);

    const replaced = await container.replace({ id, partitionKey: resource.partitionKey, defaultTtl: -1 });
    assert.equal(replaced.statusCode, 200);
    assert.equal(replaced.resource.defaultTtl, -1);
    assert.equal(replaced.resource._rid, resource._rid, "replace keeps the container's identity");
    assert.notEqual(replaced.resource._etag, resource._etag, "replace changes the container's etag");

    const { resource: read } = await container.read();
    assert.equal(read.defaultTtl, -1);

    const cleared = await container.replace({ id, partitionKey: resource.partitionKey });
    assert.equal(cleared.resource.defaultTtl, undefined, "replacing without defaultTtl turns TTL off");
  });

  test("an item with ttl expires from point reads and queries", async () => {
    const { container } = await scratch.database.containers.create({
      id: uniqueId("ttl"),
      partitionKey: { paths: ["/pk"] },
      defaultTtl: -1,
    });
    await container.items.create({ id: "short", pk: "p", ttl: 1 });
    await container.items.create({ id: "forever", pk: "p" });

    let expired = false;
    for (let attempt = 0; attempt < 20 && !expired; attempt += 1) {
      await sleep(1000);
      const { statusCode } = await container.item("short", "p").read();
      expired = statusCode === 404;
    }
    assert.ok(expired, "an item with ttl 1 is gone from point reads within 20 s");
    const { resources } = await container.items.query("SELECT * FROM c").fetchAll();
    assert.deepEqual(sortedIds(resources), ["forever"], "an expired item is gone from queries");
  });

  test("readPartitionKeyRanges returns ranges that tile the whole key space", async () => {
    const { container } = await scratch.database.containers.create({
      id: uniqueId("pkr"),
      partitionKey: { paths: ["/pk"] },
    });
    const { resources } = await container.readPartitionKeyRanges().fetchAll();
    assert.ok(resources.length >= 1, "a container has at least one partition key range");
    const ordered = [...resources].sort((x, y) => (x.minInclusive < y.minInclusive ? -1 : 1));
    assert.equal(ordered[0].minInclusive, "");
    assert.equal(ordered[ordered.length - 1].maxExclusive, "FF");
    for (let i = 1; i < ordered.length; i += 1) {
      assert.equal(ordered[i].minInclusive, ordered[i - 1].maxExclusive, "ranges are contiguous");
    }
    for (const range of resources) {
      assert.equal(typeof range.id, "string");
    }
  });

  test("getFeedRanges returns one feed range per partition key range", async () => {
    const { container } = await scratch.database.containers.create({
      id: uniqueId("fr"),
      partitionKey: { paths: ["/pk"] },
    });
    const { resources: ranges } = await container.readPartitionKeyRanges().fetchAll();
    const feedRanges = await container.getFeedRanges();
    assert.equal(feedRanges.length, ranges.length);
    const bounds = (list) => list.map((range) => `${range.minInclusive}..${range.maxExclusive}`).sort();
    assert.deepEqual(bounds(feedRanges), bounds(ranges));
  });

  test("delete removes the container and its items", async () => {
    const id = uniqueId("c");
    const { container } = await scratch.database.containers.create({ id, partitionKey: { paths: ["/pk"] } });
    await container.items.create({ id: "i", pk: "p" });
    const deleted = await container.delete();
    assert.equal(deleted.statusCode, 204);
    await rejectsWithStatus(container.read(), 404);
    const { resources } = await scratch.database.containers.readAll().fetchAll();
    assert.ok(!resources.some((listed) => listed.id === id), "a deleted container is no longer listed");

    // A container created again under the same id starts empty.
    const { container: again } = await scratch.database.containers.create({ id, partitionKey: { paths: ["/pk"] } });
    const read = await again.item("i", "p").read();
    assert.equal(read.statusCode, 404);
  });
});
