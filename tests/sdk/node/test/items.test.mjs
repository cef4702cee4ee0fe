// Item create, read, replace, upsert, delete and patch through @azure/cosmos, with etag preconditions.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { SUITE_TIMEOUT_MS, rejectsWithStatus, scratchDatabase, uniqueId } from "./harness.mjs";

describe("items", { timeout: SUITE_TIMEOUT_MS }, () => {
  let scratch;
  let container;

  before(async () => {
    scratch = await scratchDatabase("items");
    ({ container } = await scratch.database.containers.create({
      id: "items",
      partitionKey: { paths: ["/pk"] },
    }));
  });

  after(async () => {
    await scratch?.cleanup();
  });

  test("create returns 201 with the body and system properties", async () => {
    const body = {
      id: uniqueId("i"),
      pk: "p1",
      text: "ñ€ and 🚀",
      number: 12.5,
      big: 9007199254740991,
      flag: false,
      nothing: null,
      list: [1, "two", { three: 3 }],
      nested: { deep: { deeper: ["x"] } },
    };
    const { resource, statusCode, etag } = await container.items.create(body);
    assert.equal(statusCode, 201);
    for (const [key, value] of Object.entries(body)) {
      assert.deepEqual(resource[key], value, `field ${key} round-trips`);
    }
    assert.ok(resource._rid, "an item has a _rid");
    assert.equal(typeof resource._self, "string");
    assert.equal(typeof resource._ts, "number");
    assert.ok(resource._etag, "an item has an _etag");
    assert.equal(etag, resource._etag, "the etag header matches the body's _etag");
  });

  test("creating an id that exists in the same partition fails with 409", async () => {
    const id = uniqueId("dup");
    await container.items.create({ id, pk: "p1", v: 1 });
    await rejectsWithStatus(container.items.create({ id, pk: "p1", v: 2 }), 409);
    const { resource } = await container.item(id, "p1").read();
    assert.equal(resource.v, 1, "the failed create left the first item untouched");
  });

  test("the same id may exist once per partition key value", async () => {
    const id = uniqueId("twin");
    await container.items.create({ id, pk: "left", side: "left" });
    await container.items.create({ id, pk: "right", side: "right" });
    assert.equal((await container.item(id, "left").read()).resource.side, "left");
    assert.equal((await container.item(id, "right").read()).resource.side, "right");
  });

  test("read returns the stored item", async () => {
    const id = uniqueId("r");
    const { resource: created } = await container.items.create({ id, pk: "p1", v: 7 });
    const { resource, statusCode, etag } = await container.item(id, "p1").read();
    assert.equal(statusCode, 200);
    assert.equal(resource.v, 7);
    assert.equal(resource._etag, created._etag);
    assert.equal(etag, created._etag);
  });

  test("reading a missing item answers 404 without throwing", async () => {
    const response = await container.item(uniqueId("missing"), "p1").read();
    assert.equal(response.statusCode, 404);
    assert.equal(response.resource, undefined);
  });

  test("reading with the wrong partition key value answers 404", async () => {
    const id = uniqueId("wrongpk");
    await container.items.create({ id, pk: "p1" });
    const response = await container.item(id, "p2").read();
    assert.equal(response.statusCode, 404);
  });

  test("ids with spaces, plus signs and non-ASCII characters round-trip through the URL", async () => {
    for (const id of ["with space", "a+b", "ñ€-id", "semi;colon", "quote'd"]) {
      await container.items.create({ id, pk: "odd", v: id });
      const { resource, statusCode } = await container.item(id, "odd").read();
      assert.equal(statusCode, 200, `read ${JSON.stringify(id)}`);
      assert.equal(resource.id, id);
      assert.equal(resource.v, id);
      const deleted = await container.item(id, "odd").delete();
      assert.equal(deleted.statusCode, 204, `delete ${JSON.stringify(id)}`);
    }
  });

  test("numeric and boolean partition key values address items", async () => {
    const { container: typed } = await scratch.database.containers.create({
      id: uniqueId("typed"),
      partitionKey: { paths: ["/k"] },
    });
    await typed.items.create({ id: "n", k: 5 });
    await typed.items.create({ id: "f", k: 5.5 });
    await typed.items.create({ id: "t", k: true });
    assert.equal((await typed.item("n", 5).read()).statusCode, 200);
    assert.equal((await typed.item("f", 5.5).read()).statusCode, 200);
    assert.equal((await typed.item("t", true).read()).statusCode, 200);
    assert.equal((await typed.item("n", "5").read()).statusCode, 404, "the string \"5\" is a different key");
  });

  test("replace with a matching IfMatch etag succeeds and changes the etag", async () => {
    const id = uniqueId("rep");
    const { resource: created } = await container.items.create({ id, pk: "p1", v: 1 });
    const { resource, statusCode } = await container
      .item(id, "p1")
      .replace({ id, pk: "p1", v: 2 }, { accessCondition: { type: "IfMatch", condition: created._etag } });
    assert.equal(statusCode, 200);
    assert.equal(resource.v, 2);
    assert.notEqual(resource._etag, created._etag);
    assert.equal((await container.item(id, "p1").read()).resource.v, 2);
  });

  test("replace with a stale IfMatch etag fails with 412 and changes nothing", async () => {
    const id = uniqueId("stale");
    const { resource: created } = await container.items.create({ id, pk: "p1", v: 1 });
    await container.item(id, "p1").replace({ id, pk: "p1", v: 2 });
    await rejectsWithStatus(
      container
        .item(id, "p1")
        .replace({ id, pk: "p1", v: 3 }, { accessCondition: { type: "IfMatch", condition: created._etag } }),
      412,
    );
    assert.equal((await container.item(id, "p1").read()).resource.v, 2);
  });

  test("replacing a missing item fails with 404", async () => {
    const id = uniqueId("ghost");
    await rejectsWithStatus(container.item(id, "p1").replace({ id, pk: "p1" }), 404);
  });

  test("upsert creates with 201, then replaces with 200", async () => {
    const id = uniqueId("ups");
    const first = await container.items.upsert({ id, pk: "p1", v: 1, only: "first" });
    assert.equal(first.statusCode, 201);
    const second = await container.items.upsert({ id, pk: "p1", v: 2 });
    assert.equal(second.statusCode, 200);
    assert.equal(second.resource.v, 2);
    assert.equal(second.resource.only, undefined, "upsert replaces the whole document");
    assert.notEqual(second.resource._etag, first.resource._etag);
  });

  test("delete answers 204, after which the item reads as 404 and a second delete fails with 404", async () => {
    const id = uniqueId("del");
    await container.items.create({ id, pk: "p1" });
    const deleted = await container.item(id, "p1").delete();
    assert.equal(deleted.statusCode, 204);
    assert.equal((await container.item(id, "p1").read()).statusCode, 404);
    await rejectsWithStatus(container.item(id, "p1").delete(), 404);
  });

  test("delete with a stale IfMatch etag fails with 412 and keeps the item", async () => {
    const id = uniqueId("deletestale");
    const { resource: created } = await container.items.create({ id, pk: "p1", v: 1 });
    await container.item(id, "p1").replace({ id, pk: "p1", v: 2 });
    await rejectsWithStatus(
      container.item(id, "p1").delete({ accessCondition: { type: "IfMatch", condition: created._etag } }),
      412,
    );
    assert.equal((await container.item(id, "p1").read()).statusCode, 200);
  });

  test("patch applies set, add, incr and remove in order", async () => {
    const id = uniqueId("patch");
    const { resource: created } = await container.items.create({
      id,
      pk: "p1",
      name: "before",
      count: 10,
      ratio: 1.5,
      tags: ["a", "c"],
      obsolete: true,
      nested: { keep: 1 },
    });
    const { resource, statusCode } = await container.item(id, "p1").patch([
      { op: "set", path: "/name", value: "after" },
      { op: "set", path: "/nested/added", value: { x: 1 } },
      { op: "add", path: "/fresh", value: [1, 2] },
      { op: "add", path: "/tags/1", value: "b" },
      { op: "incr", path: "/count", value: 5 },
      { op: "incr", path: "/count", value: -2 },
      { op: "incr", path: "/ratio", value: 0.25 },
      { op: "remove", path: "/obsolete" },
    ]);
    assert.equal(statusCode, 200);
    assert.equal(resource.name, "after");
    assert.deepEqual(resource.nested, { keep: 1, added: { x: 1 } });
    assert.deepEqual(resource.fresh, [1, 2]);
    assert.deepEqual(resource.tags, ["a", "b", "c"]);
    assert.equal(resource.count, 13);
    assert.equal(resource.ratio, 1.75);
    assert.equal("obsolete" in resource, false);
    assert.notEqual(resource._etag, created._etag);

    const { resource: read } = await container.item(id, "p1").read();
    assert.equal(read.count, 13);
    assert.equal("obsolete" in read, false);
  });

  test("a conditional patch applies when its filter matches and fails with 412 when it does not", async () => {
    const id = uniqueId("cond");
    await container.items.create({ id, pk: "p1", stock: 3 });
    const applied = await container.item(id, "p1").patch({
      condition: "from c where c.stock > 0",
      operations: [{ op: "incr", path: "/stock", value: -3 }],
    });
    assert.equal(applied.resource.stock, 0);

    await rejectsWithStatus(
      container.item(id, "p1").patch({
        condition: "from c where c.stock > 0",
        operations: [{ op: "incr", path: "/stock", value: -1 }],
      }),
      412,
    );
    assert.equal((await container.item(id, "p1").read()).resource.stock, 0);
  });

  test("patching a missing item fails with 404", async () => {
    await rejectsWithStatus(
      container.item(uniqueId("nopatch"), "p1").patch([{ op: "set", path: "/x", value: 1 }]),
      404,
    );
  });

  test("removing a path that does not exist fails the whole patch with 400", async () => {
    const id = uniqueId("badpatch");
    await container.items.create({ id, pk: "p1", v: 1 });
    await rejectsWithStatus(
      container.item(id, "p1").patch([
        { op: "set", path: "/v", value: 2 },
        { op: "remove", path: "/absent" },
      ]),
      400,
    );
    assert.equal((await container.item(id, "p1").read()).resource.v, 1, "a failed patch changes nothing");
  });

  test("readAll returns every item of the container", async () => {
    const { container: small } = await scratch.database.containers.create({
      id: uniqueId("all"),
      partitionKey: { paths: ["/pk"] },
    });
    for (let i = 0; i < 5; i += 1) {
      await small.items.create({ id: `i${i}`, pk: `p${i % 2}` });
    }
    const { resources } = await small.items.readAll().fetchAll();
    assert.deepEqual(resources.map((item) => item.id).sort(), ["i0", "i1", "i2", "i3", "i4"]);
  });
});
