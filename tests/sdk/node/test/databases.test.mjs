// Client construction, authentication and the database lifecycle through @azure/cosmos.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { SUITE_TIMEOUT_MS, connect, rejectsWithStatus, uniqueId } from "./harness.mjs";

describe("client and databases", { timeout: SUITE_TIMEOUT_MS }, () => {
  let connection;
  const created = [];

  before(() => {
    connection = connect();
  });

  after(async () => {
    for (const id of created) {
      try {
        await connection.client.database(id).delete();
      } catch (error) {
        if (error?.code !== 404) {
          throw error;
        }
      }
    }
    connection.close();
  });

  test("client built from endpoint and key reads the database account", async () => {
    const { resource, statusCode } = await connection.client.getDatabaseAccount();
    assert.equal(statusCode, 200);
    assert.ok(resource.writableLocations.length >= 1, "the account lists at least one writable location");
    assert.ok(resource.readableLocations.length >= 1, "the account lists at least one readable location");
    for (const location of [...resource.writableLocations, ...resource.readableLocations]) {
      assert.match(location.databaseAccountEndpoint, /^https?:\/\//);
    }
    assert.ok(
      ["Strong", "BoundedStaleness", "Session", "Eventual", "ConsistentPrefix"].includes(resource.consistencyPolicy),
      `the account reports a known default consistency level, got ${resource.consistencyPolicy}`,
    );
  });

  test("a client signing with the wrong master key is refused with 401", async () => {
    const impostor = connect({ key: randomBytes(64).toString("base64") });
    try {
      await rejectsWithStatus(impostor.client.databases.readAll().fetchAll(), 401);
    } finally {
      impostor.close();
    }
  });

  test("createIfNotExists creates once, then returns the existing database", async () => {
    const id = uniqueId("tributary-node-db");
    created.push(id);
    const first = await connection.client.databases.createIfNotExists({ id });
    assert.equal(first.statusCode, 201);
    assert.equal(first.resource.id, id);
    assert.ok(first.resource._rid, "a created database has a _rid");
    assert.ok(first.resource._etag, "a created database has an _etag");
    assert.equal(typeof first.resource._ts, "number");

    const second = await connection.client.databases.createIfNotExists({ id });
    assert.equal(second.statusCode, 200);
    assert.equal(second.resource._rid, first.resource._rid, "the existing database is returned, not a new one");
  });

  test("creating a database whose id is taken fails with 409", async () => {
    const id = uniqueId("tributary-node-db");
    created.push(id);
    await connection.client.databases.create({ id });
    await rejectsWithStatus(connection.client.databases.create({ id }), 409);
  });

  test("read returns the database with its system properties", async () => {
    const id = uniqueId("tributary-node-db");
    created.push(id);
    const { resource: made } = await connection.client.databases.create({ id });
    const { resource, statusCode } = await connection.client.database(id).read();
    assert.equal(statusCode, 200);
    assert.equal(resource.id, id);
    assert.equal(resource._rid, made._rid);
    assert.equal(resource._etag, made._etag);
    assert.equal(typeof resource._self, "string");
  });

  test("readAll lists every created database", async () => {
    const mine = [uniqueId("tributary-node-db"), uniqueId("tributary-node-db")];
    for (const id of mine) {
      created.push(id);
      await connection.client.databases.create({ id });
    }
    const { resources } = await connection.client.databases.readAll().fetchAll();
    const listed = new Set(resources.map((database) => database.id));
    for (const id of mine) {
      assert.ok(listed.has(id), `readAll lists ${id}`);
    }
  });

  test("reading a database that does not exist fails with 404", async () => {
    await rejectsWithStatus(connection.client.database(uniqueId("tributary-node-missing")).read(), 404);
  });

  test("delete removes the database and everything under it", async () => {
    const id = uniqueId("tributary-node-db");
    created.push(id);
    const { database } = await connection.client.databases.create({ id });
    const { container } = await database.containers.create({ id: "c", partitionKey: { paths: ["/pk"] } });
    await container.items.create({ id: "i", pk: "p" });

    const deleted = await database.delete();
    assert.equal(deleted.statusCode, 204);

    await rejectsWithStatus(database.read(), 404);
    await rejectsWithStatus(container.read(), 404);
    const { resources } = await connection.client.databases.readAll().fetchAll();
    assert.ok(!resources.some((listed) => listed.id === id), "a deleted database is no longer listed");
    await rejectsWithStatus(database.delete(), 404);
  });
});
