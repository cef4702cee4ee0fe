// Transactional batch (`items.batch`) and bulk (`items.executeBulkOperations`, `items.bulk`) through @azure/cosmos.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ChangeFeedStartFrom } from "@azure/cosmos";

import { SUITE_TIMEOUT_MS, drainChangeFeed, scratchDatabase, sortedIds, uniqueId } from "./harness.mjs";

describe("transactional batch", { timeout: SUITE_TIMEOUT_MS }, () => {
  let scratch;
  let container;

  before(async () => {
    scratch = await scratchDatabase("batch");
    ({ container } = await scratch.database.containers.create({
      id: "items",
      partitionKey: { paths: ["/pk"] },
    }));
  });

  after(async () => {
    await scratch?.cleanup();
  });

  test("a successful batch runs every operation in order and answers 200", async () => {
    const pk = uniqueId("ok");
    await container.items.create({ id: "existing", pk, v: 1 });
    const response = await container.items.batch(
      [
        { operationType: "Create", resourceBody: { id: "x1", pk, v: 1 } },
        { operationType: "Create", resourceBody: { id: "x2", pk, v: 1 } },
        { operationType: "Upsert", resourceBody: { id: "x3", pk, v: 1 } },
        { operationType: "Read", id: "x1" },
        { operationType: "Replace", id: "x2", resourceBody: { id: "x2", pk, v: 2 } },
        {
          operationType: "Patch",
          id: "existing",
          resourceBody: { operations: [{ op: "incr", path: "/v", value: 10 }] },
        },
        { operationType: "Delete", id: "x1" },
      ],
      pk,
    );
    assert.equal(response.code, 200);
    assert.deepEqual(
      response.result.map((result) => result.statusCode),
      [201, 201, 201, 200, 200, 200, 204],
    );
    assert.equal(response.result[0].resourceBody.id, "x1");
    assert.ok(response.result[0].eTag, "a write in a batch reports the new etag");
    assert.equal(response.result[3].resourceBody.v, 1, "a read in a batch sees the earlier create");
    assert.equal(response.result[4].resourceBody.v, 2);
    assert.equal(response.result[5].resourceBody.v, 11);

    assert.equal((await container.item("x1", pk).read()).statusCode, 404);
    assert.equal((await container.item("x2", pk).read()).resource.v, 2);
    assert.equal((await container.item("x3", pk).read()).resource.v, 1);
    assert.equal((await container.item("existing", pk).read()).resource.v, 11);
  });

  test("a conflicting create in a batch gives 207: the culprit 409, the rest 424, nothing committed", async () => {
    const pk = uniqueId("conflict");
    await container.items.create({ id: "taken", pk, v: 1 });
    const response = await container.items.batch(
      [
        { operationType: "Create", resourceBody: { id: "n1", pk } },
        { operationType: "Replace", id: "taken", resourceBody: { id: "taken", pk, v: 2 } },
        { operationType: "Create", resourceBody: { id: "taken", pk, v: 3 } },
        { operationType: "Create", resourceBody: { id: "n2", pk } },
      ],
      pk,
    );
    assert.equal(response.code, 207);
    assert.deepEqual(
      response.result.map((result) => result.statusCode),
      [424, 424, 409, 424],
    );
    assert.equal((await container.item("n1", pk).read()).statusCode, 404, "the batch rolled back n1");
    assert.equal((await container.item("n2", pk).read()).statusCode, 404, "the batch never made n2");
    assert.equal((await container.item("taken", pk).read()).resource.v, 1, "the batch rolled back the replace");
  });

  test("a batch with a stale ifMatch answers 207 with 412 for that operation", async () => {
    const pk = uniqueId("stale");
    const { resource: created } = await container.items.create({ id: "doc", pk, v: 1 });
    await container.item("doc", pk).replace({ id: "doc", pk, v: 2 });
    const response = await container.items.batch(
      [
        { operationType: "Upsert", resourceBody: { id: "side", pk } },
        { operationType: "Replace", id: "doc", ifMatch: created._etag, resourceBody: { id: "doc", pk, v: 3 } },
      ],
      pk,
    );
    assert.equal(response.code, 207);
    assert.deepEqual(
      response.result.map((result) => result.statusCode),
      [424, 412],
    );
    assert.equal((await container.item("side", pk).read()).statusCode, 404);
    assert.equal((await container.item("doc", pk).read()).resource.v, 2);
  });

  test("a committed batch shows up in the change feed", async () => {
    const { container: fresh } = await scratch.database.containers.create({
      id: uniqueId("batchfeed"),
      partitionKey: { paths: ["/pk"] },
    });
    await fresh.items.batch(
      [
        { operationType: "Create", resourceBody: { id: "b1", pk: "p" } },
        { operationType: "Create", resourceBody: { id: "b2", pk: "p" } },
      ],
      "p",
    );
    await fresh.items.batch(
      [
        { operationType: "Create", resourceBody: { id: "b3", pk: "p" } },
        { operationType: "Create", resourceBody: { id: "b1", pk: "p" } },
      ],
      "p",
    );
    const { items } = await drainChangeFeed(
      fresh.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning() }),
    );
    assert.deepEqual(sortedIds(items), ["b1", "b2"], "the failed batch left no trace in the feed");
  });
});

describe("bulk", { timeout: SUITE_TIMEOUT_MS }, () => {
  let scratch;
  let container;

  before(async () => {
    scratch = await scratchDatabase("bulk");
    ({ container } = await scratch.database.containers.create({
      id: "items",
      partitionKey: { paths: ["/pk"] },
    }));
  });

  after(async () => {
    await scratch?.cleanup();
  });

  test("executeBulkOperations runs independent operations across partitions and reports each", async () => {
    await container.items.create({ id: "pre-existing", pk: "k0", v: 1 });
    await container.items.create({ id: "to-delete", pk: "k1" });
    await container.items.create({ id: "to-replace", pk: "k2", v: 1 });
    // executeBulkOperations requires an explicit partitionKey on every operation.
    const creates = Array.from({ length: 30 }, (_, n) => ({
      operationType: "Create",
      partitionKey: `k${n % 5}`,
      resourceBody: { id: `bulk${n}`, pk: `k${n % 5}`, n },
    }));
    const operations = [
      ...creates,
      { operationType: "Create", partitionKey: "k0", resourceBody: { id: "pre-existing", pk: "k0", v: 2 } },
      { operationType: "Upsert", partitionKey: "k3", resourceBody: { id: "upserted", pk: "k3", v: 1 } },
      { operationType: "Read", id: "pre-existing", partitionKey: "k0" },
      { operationType: "Delete", id: "to-delete", partitionKey: "k1" },
      {
        operationType: "Replace",
        id: "to-replace",
        partitionKey: "k2",
        resourceBody: { id: "to-replace", pk: "k2", v: 2 },
      },
      {
        operationType: "Patch",
        id: "pre-existing",
        partitionKey: "k0",
        resourceBody: { operations: [{ op: "set", path: "/patched", value: true }] },
      },
    ];
    const results = await container.items.executeBulkOperations(operations);
    assert.equal(results.length, operations.length);
    for (let n = 0; n < creates.length; n += 1) {
      assert.equal(results[n].error, undefined, `bulk create ${n} succeeded`);
      assert.equal(results[n].response.statusCode, 201);
      assert.equal(results[n].operationInput.resourceBody.id, `bulk${n}`, "results come back in input order");
    }
    const [conflict, upsert, read, remove, replace, patch] = results.slice(creates.length);
    assert.equal(conflict.error?.code, 409, "a conflicting create fails alone");
    assert.equal(upsert.response.statusCode, 201);
    assert.equal(read.response.statusCode, 200);
    assert.equal(read.response.resourceBody.v, 1);
    assert.equal(remove.response.statusCode, 204);
    assert.equal(replace.response.statusCode, 200);
    assert.equal(patch.response.statusCode, 200);

    const { resources: count } = await container.items.query("SELECT VALUE COUNT(1) FROM c").fetchAll();
    assert.deepEqual(count, [30 + 1 + 1 + 1], "30 created, pre-existing, upserted and to-replace remain");
    assert.equal((await container.item("to-delete", "k1").read()).statusCode, 404);
    assert.equal((await container.item("to-replace", "k2").read()).resource.v, 2);
    assert.equal((await container.item("pre-existing", "k0").read()).resource.patched, true);
  });

  test("the deprecated bulk call returns one status per operation", async () => {
    const response = await container.items.bulk([
      { operationType: "Create", resourceBody: { id: "legacy1", pk: "L" } },
      { operationType: "Upsert", resourceBody: { id: "legacy2", pk: "M" } },
      { operationType: "Create", resourceBody: { id: "legacy1", pk: "L" } },
    ]);
    assert.deepEqual(
      response.map((result) => result.statusCode),
      [201, 201, 409],
    );
  });
});
