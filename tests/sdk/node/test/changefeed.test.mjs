// The change feed pull model of @azure/cosmos: start points, continuations, scopes and both feed modes.
//
// Every test makes its own container, so "from the beginning" sees exactly the writes that test made.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  ChangeFeedMode,
  ChangeFeedPolicy,
  ChangeFeedRetentionTimeSpan,
  ChangeFeedStartFrom,
} from "@azure/cosmos";

import {
  SUITE_TIMEOUT_MS,
  assertNoDuplicateIds,
  drainChangeFeed,
  ids,
  scratchDatabase,
  sleep,
  sortedIds,
  uniqueId,
} from "./harness.mjs";

describe("change feed", { timeout: SUITE_TIMEOUT_MS }, () => {
  let scratch;

  before(async () => {
    scratch = await scratchDatabase("changefeed");
  });

  after(async () => {
    await scratch?.cleanup();
  });

  /** A fresh container partitioned on /pk (or as `definition` says). */
  async function freshContainer(definition = {}) {
    const { container } = await scratch.database.containers.create({
      id: uniqueId("cf"),
      partitionKey: { paths: ["/pk"] },
      ...definition,
    });
    return container;
  }

  /** True when the container has one physical range, so the whole feed is in write order. */
  async function isSingleRange(container) {
    const { resources } = await container.readPartitionKeyRanges().fetchAll();
    return resources.length === 1;
  }

  async function createAll(container, items) {
    for (const item of items) {
      await container.items.create(item);
    }
  }

  test("Beginning drains every item in write order, then answers 304", async () => {
    const container = await freshContainer();
    const written = Array.from({ length: 7 }, (_, n) => ({ id: `d${n}`, pk: `p${n % 3}`, n }));
    await createAll(container, written);

    const iterator = container.items.getChangeFeedIterator({
      changeFeedStartFrom: ChangeFeedStartFrom.Beginning(),
    });
    assert.equal(iterator.hasMoreResults, true, "a change feed never ends");
    const { items } = await drainChangeFeed(iterator);
    assertNoDuplicateIds(items, "change feed from the beginning");
    if (await isSingleRange(container)) {
      assert.deepEqual(ids(items), ids(written));
    } else {
      assert.deepEqual(sortedIds(items), sortedIds(written));
    }
    for (const item of items) {
      assert.equal(typeof item._lsn, "number", "change-feed items carry _lsn");
      assert.ok(item._etag && item._rid, "change-feed items carry their system properties");
      assert.equal(item.n, Number(item.id.slice(1)), "change-feed items carry the user's fields");
    }

    const again = await iterator.readNext();
    assert.equal(again.statusCode, 304, "a drained feed keeps answering 304");
  });

  test("maxItemCount bounds every page", async () => {
    const container = await freshContainer();
    const written = Array.from({ length: 5 }, (_, n) => ({ id: `m${n}`, pk: "p", n }));
    await createAll(container, written);

    const { items, pageSizes } = await drainChangeFeed(
      container.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning(), maxItemCount: 2 }),
    );
    assert.deepEqual(ids(items), ids(written));
    assert.ok(pageSizes.length >= 3, `five items in pages of two take at least three pages, got ${pageSizes}`);
    for (const size of pageSizes) {
      assert.ok(size >= 1 && size <= 2, `a 200 page holds 1..maxItemCount items, got ${size}`);
    }
  });

  test("an iterator that reached 304 picks up later writes", async () => {
    const container = await freshContainer();
    await container.items.create({ id: "first", pk: "p" });
    const iterator = container.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning() });
    assert.deepEqual(ids((await drainChangeFeed(iterator)).items), ["first"]);

    await container.items.create({ id: "second", pk: "p" });
    await container.items.create({ id: "third", pk: "q" });
    const { items } = await drainChangeFeed(iterator);
    assert.deepEqual(sortedIds(items), ["second", "third"]);
  });

  test("Now skips everything written before the iterator's first read", async () => {
    const container = await freshContainer();
    await container.items.create({ id: "before", pk: "p" });

    const iterator = container.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Now() });
    const first = await iterator.readNext();
    assert.equal(first.statusCode, 304, "nothing has happened since now");
    assert.ok(first.continuationToken, "even the first 304 carries a continuation token");

    await container.items.create({ id: "after", pk: "p" });
    await container.items.upsert({ id: "before", pk: "p", touched: true });
    const { items } = await drainChangeFeed(iterator);
    assert.deepEqual(sortedIds(items), ["after", "before"]);
    assert.equal(items.find((item) => item.id === "before").touched, true, "the feed carries the new version");
  });

  test("Time starts at a point in time", async () => {
    const container = await freshContainer();
    await container.items.create({ id: "old", pk: "p" });
    await sleep(2100);
    const start = new Date();
    await container.items.create({ id: "new", pk: "p" });

    const { items } = await drainChangeFeed(
      container.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Time(start) }),
    );
    assert.deepEqual(ids(items), ["new"]);

    const { items: fromEpoch } = await drainChangeFeed(
      container.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Time(new Date(0)) }),
    );
    assert.deepEqual(sortedIds(fromEpoch), ["new", "old"], "a start time before every write sees everything");
  });

  test("Continuation resumes mid-feed with no loss and no duplicate", async () => {
    const container = await freshContainer();
    const written = Array.from({ length: 5 }, (_, n) => ({ id: `c${n}`, pk: "p", n }));
    await createAll(container, written);

    const iterator = container.items.getChangeFeedIterator({
      changeFeedStartFrom: ChangeFeedStartFrom.Beginning(),
      maxItemCount: 2,
    });
    const page = await iterator.readNext();
    assert.equal(page.statusCode, 200);
    assert.ok(page.result.length >= 1 && page.result.length <= 2);
    const token = page.continuationToken;
    assert.equal(typeof token, "string");

    const resumed = container.items.getChangeFeedIterator({
      changeFeedStartFrom: ChangeFeedStartFrom.Continuation(token),
      maxItemCount: 2,
    });
    const { items } = await drainChangeFeed(resumed);
    const all = [...page.result, ...items];
    assertNoDuplicateIds(all, "resumed change feed");
    assert.deepEqual(ids(all), ids(written));
  });

  test("Continuation taken at 304 yields exactly the later changes", async () => {
    const container = await freshContainer();
    await createAll(container, [
      { id: "a", pk: "p", v: 1 },
      { id: "b", pk: "q", v: 1 },
    ]);
    const { last } = await drainChangeFeed(
      container.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning() }),
    );
    const token = last.continuationToken;

    await container.items.create({ id: "c", pk: "p", v: 1 });
    await container.item("a", "p").replace({ id: "a", pk: "p", v: 2 });
    await container.item("a", "p").replace({ id: "a", pk: "p", v: 3 });

    const { items, last: end } = await drainChangeFeed(
      container.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Continuation(token) }),
    );
    assert.deepEqual(sortedIds(items), ["a", "c"]);
    assert.equal(items.find((item) => item.id === "a").v, 3);

    const { items: nothing } = await drainChangeFeed(
      container.items.getChangeFeedIterator({
        changeFeedStartFrom: ChangeFeedStartFrom.Continuation(end.continuationToken),
      }),
    );
    assert.deepEqual(nothing, [], "a token taken after the last change resumes with nothing new");
  });

  test("latest-version mode shows a twice-updated item once, at its last version, and no deletes", async () => {
    const container = await freshContainer();
    await container.items.create({ id: "twice", pk: "p", v: 1 });
    await container.item("twice", "p").replace({ id: "twice", pk: "p", v: 2 });
    await container.items.upsert({ id: "twice", pk: "p", v: 3 });
    await container.items.create({ id: "gone", pk: "p" });
    await container.item("gone", "p").delete();
    await container.items.create({ id: "stays", pk: "p" });

    const { items } = await drainChangeFeed(
      container.items.getChangeFeedIterator({
        changeFeedStartFrom: ChangeFeedStartFrom.Beginning(),
        changeFeedMode: ChangeFeedMode.LatestVersion,
      }),
    );
    assert.deepEqual(ids(items), ["twice", "stays"], "ordered by each item's latest write");
    assert.equal(items[0].v, 3);
  });

  test("Beginning(partitionKey) sees only that logical partition, and its continuation stays scoped", async () => {
    const container = await freshContainer();
    await createAll(container, [
      { id: "p1-a", pk: "p1" },
      { id: "p2-a", pk: "p2" },
      { id: "p1-b", pk: "p1" },
      { id: "p3-a", pk: "p3" },
    ]);
    const { items, last } = await drainChangeFeed(
      container.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning("p1") }),
    );
    assert.deepEqual(ids(items), ["p1-a", "p1-b"]);

    await container.items.create({ id: "p2-b", pk: "p2" });
    await container.items.create({ id: "p1-c", pk: "p1" });
    const { items: later } = await drainChangeFeed(
      container.items.getChangeFeedIterator({
        changeFeedStartFrom: ChangeFeedStartFrom.Continuation(last.continuationToken),
      }),
    );
    assert.deepEqual(ids(later), ["p1-c"]);
  });

  test("Now(partitionKey) sees only later writes to that partition", async () => {
    const container = await freshContainer();
    await container.items.create({ id: "early", pk: "p1" });
    const iterator = container.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Now("p1") });
    assert.equal((await iterator.readNext()).statusCode, 304);
    await container.items.create({ id: "other", pk: "p2" });
    await container.items.create({ id: "late", pk: "p1" });
    const { items } = await drainChangeFeed(iterator);
    assert.deepEqual(ids(items), ["late"]);
  });

  test("Beginning(feedRange) per feed range covers the container exactly once", async () => {
    const container = await freshContainer();
    const written = Array.from({ length: 12 }, (_, n) => ({ id: `r${n}`, pk: `key-${n}` }));
    await createAll(container, written);

    const feedRanges = await container.getFeedRanges();
    assert.ok(feedRanges.length >= 1);
    const seen = [];
    for (const range of feedRanges) {
      const { items } = await drainChangeFeed(
        container.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning(range) }),
      );
      seen.push(...items);
    }
    assertNoDuplicateIds(seen, "union of the feed ranges");
    assert.deepEqual(sortedIds(seen), sortedIds(written));
  });

  test("a hierarchical key scopes the feed by full key and by prefix", async () => {
    const container = await freshContainer({
      partitionKey: { paths: ["/tenant", "/user"], kind: "MultiHash", version: 2 },
    });
    await createAll(container, [
      { id: "1", tenant: "t1", user: "u1" },
      { id: "2", tenant: "t1", user: "u2" },
      { id: "3", tenant: "t2", user: "u1" },
      { id: "4", tenant: "t1", user: "u1" },
    ]);

    const { items: full } = await drainChangeFeed(
      container.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning(["t1", "u1"]) }),
    );
    assert.deepEqual(ids(full), ["1", "4"]);

    const { items: prefix } = await drainChangeFeed(
      container.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning(["t1"]) }),
    );
    assert.deepEqual(sortedIds(prefix), ["1", "2", "4"]);

    const { items: everything } = await drainChangeFeed(
      container.items.getChangeFeedIterator({ changeFeedStartFrom: ChangeFeedStartFrom.Beginning() }),
    );
    assert.deepEqual(sortedIds(everything), ["1", "2", "3", "4"]);
  });

  test("all-versions-and-deletes mode reports every create, replace and delete", async () => {
    const container = await freshContainer({
      changeFeedPolicy: new ChangeFeedPolicy(ChangeFeedRetentionTimeSpan.fromMinutes(10)),
    });
    const { resource: definition } = await container.read();
    assert.equal(definition.changeFeedPolicy?.retentionDuration, 10, "the container keeps its changeFeedPolicy");

    const iterator = container.items.getChangeFeedIterator({
      changeFeedStartFrom: ChangeFeedStartFrom.Now(),
      changeFeedMode: ChangeFeedMode.AllVersionsAndDeletes,
    });
    assert.equal((await iterator.readNext()).statusCode, 304, "nothing has happened since now");

    await container.items.create({ id: "a", pk: "p", v: 1 });
    await container.item("a", "p").replace({ id: "a", pk: "p", v: 2 });
    await container.items.upsert({ id: "b", pk: "q", v: 1 });
    await container.item("a", "p").delete();

    const { items } = await drainChangeFeed(iterator);
    assert.deepEqual(
      items.map((entry) => entry.metadata?.operationType),
      ["create", "replace", "create", "delete"],
    );
    const [created, replaced, upserted, deleted] = items;
    assert.equal(created.current.id, "a");
    assert.equal(created.current.v, 1);
    assert.equal(replaced.current.id, "a");
    assert.equal(replaced.current.v, 2);
    assert.equal(upserted.current.id, "b");
    assert.ok(
      deleted.metadata.id === "a" || deleted.previous?.id === "a",
      "a delete names the deleted item in metadata.id or previous",
    );
    const lsns = items.map((entry) => entry.metadata.lsn);
    for (let i = 1; i < lsns.length; i += 1) {
      assert.ok(lsns[i] > lsns[i - 1], `each change has a larger lsn than the one before: ${lsns}`);
    }
  });
});
