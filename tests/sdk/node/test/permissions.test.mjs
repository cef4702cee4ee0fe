// Users, permissions and resource tokens through @azure/cosmos: an application (master key) creates a user and a
// permission limited to one tenant's partition key; a client holding only the permission's token (`resourceTokens`,
// or the permission itself through `permissionFeed`) reads and writes that partition and is refused elsewhere.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { SUITE_TIMEOUT_MS, connect, rejectsWithStatus, scratchDatabase, sortedIds, uniqueId } from "./harness.mjs";

describe("users, permissions and resource tokens", { timeout: SUITE_TIMEOUT_MS }, () => {
  let scratch;
  let container;
  let user;
  const tokenClients = [];

  /** A client whose only credential is `options` (`resourceTokens` or `permissionFeed`). */
  function tokenClient(options) {
    const connection = connect({ key: undefined, ...options });
    tokenClients.push(connection);
    return connection.client;
  }

  before(async () => {
    scratch = await scratchDatabase("permissions");
    ({ container } = await scratch.database.containers.create({
      id: uniqueId("tenants"),
      partitionKey: { paths: ["/tenant"] },
    }));
    await container.items.create({ id: "t1-seed", tenant: "tenant-1" });
    await container.items.create({ id: "t2-seed", tenant: "tenant-2" });
    ({ user } = await scratch.database.users.create({ id: uniqueId("app-user") }));
  });

  after(async () => {
    for (const connection of tokenClients) {
      connection.close();
    }
    await scratch?.cleanup();
  });

  test("users are created, read, listed and deleted", async () => {
    const { resource, statusCode } = await scratch.database.users.create({ id: "someone" });
    assert.equal(statusCode, 201);
    assert.equal(resource.id, "someone");
    assert.equal(resource._permissions, "permissions/");
    await rejectsWithStatus(scratch.database.users.create({ id: "someone" }), 409);
    const { resources } = await scratch.database.users.readAll().fetchAll();
    assert.ok(resources.some((u) => u.id === "someone"));
    await scratch.database.user("someone").delete();
    await rejectsWithStatus(scratch.database.user("someone").read(), 404);
  });

  test("a token limited to one partition key reads and writes there and nowhere else", async () => {
    const link = `dbs/${scratch.database.id}/colls/${container.id}`;
    const { resource: permission, statusCode } = await user.permissions.create({
      id: "tenant-1-all",
      permissionMode: "all",
      resource: link,
      resourcePartitionKey: ["tenant-1"],
    });
    assert.equal(statusCode, 201);
    assert.ok(permission._token, "a permission carries a token");

    const client = tokenClient({ resourceTokens: { [link]: permission._token } });
    const mine = client.database(scratch.database.id).container(container.id);
    const { resource: seed } = await mine.item("t1-seed", "tenant-1").read();
    assert.equal(seed.id, "t1-seed");
    await mine.items.create({ id: "t1-new", tenant: "tenant-1" });
    const { resources } = await mine.items
      .query("SELECT * FROM c", { partitionKey: "tenant-1" })
      .fetchAll();
    assert.deepEqual(sortedIds(resources), ["t1-new", "t1-seed"]);

    await rejectsWithStatus(mine.items.create({ id: "t2-new", tenant: "tenant-2" }), 403);
    await rejectsWithStatus(mine.item("t2-seed", "tenant-2").read(), 403);
    await rejectsWithStatus(mine.delete(), 403);
    await mine.item("t1-new", "tenant-1").delete();

    // Revoked by deleting the permission.
    await user.permission("tenant-1-all").delete();
    await rejectsWithStatus(mine.item("t1-seed", "tenant-1").read(), 401);
  });

  test("a Read permission given as a permission feed reads and cannot write", async () => {
    const { resource: permission } = await user.permissions.create({
      id: "read-all",
      permissionMode: "read",
      resource: `dbs/${scratch.database.id}/colls/${container.id}`,
    });
    const client = tokenClient({ permissionFeed: [permission] });
    const readable = client.database(scratch.database.id).container(container.id);
    const { resources } = await readable.items.readAll().fetchAll();
    assert.deepEqual(sortedIds(resources), ["t1-seed", "t2-seed"]);
    await rejectsWithStatus(readable.items.create({ id: "nope", tenant: "tenant-1" }), 403);
  });
});
