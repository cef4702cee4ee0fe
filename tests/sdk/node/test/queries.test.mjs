// SQL queries through @azure/cosmos: parameters, aggregates, ORDER BY, TOP, paging, continuations and
// errors; across feed ranges, the SDK's own merge from the server's query plan.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { MAX_PAGES, SUITE_TIMEOUT_MS, assertNoDuplicateIds, scratchDatabase, sortedIds } from "./harness.mjs";

/** Ten items over two partitions: n = 0..9, colour alternating red/blue, partition "even" or "odd". */
const SEED = Array.from({ length: 10 }, (_, n) => ({
  id: `item${n}`,
  pk: n % 2 === 0 ? "even" : "odd",
  n,
  colour: n % 3 === 0 ? "red" : "blue",
  label: `label-${String.fromCharCode(106 - n)}`,
}));

const ALL_IDS = SEED.map((item) => item.id).sort();

/** Reads an iterator page by page (at most MAX_PAGES) and returns the pages' contents. */
async function pages(iterator) {
  const result = [];
  for (let page = 0; page < MAX_PAGES && iterator.hasMoreResults(); page += 1) {
    const { resources } = await iterator.fetchNext();
    if (resources.length > 0) {
      result.push(resources);
    }
  }
  assert.equal(iterator.hasMoreResults(), false, `query did not finish within ${MAX_PAGES} pages`);
  return result;
}

describe("queries", { timeout: SUITE_TIMEOUT_MS }, () => {
  let scratch;
  let container;

  before(async () => {
    scratch = await scratchDatabase("queries");
    ({ container } = await scratch.database.containers.create({
      id: "items",
      partitionKey: { paths: ["/pk"] },
    }));
    for (const item of SEED) {
      await container.items.create(item);
    }
  });

  after(async () => {
    await scratch?.cleanup();
  });

  test("fetchAll returns every item for SELECT *", async () => {
    const { resources } = await container.items.query("SELECT * FROM c").fetchAll();
    assert.deepEqual(sortedIds(resources), ALL_IDS);
    for (const item of resources) {
      assert.ok(item._rid && item._etag && typeof item._ts === "number", "query results carry system properties");
    }
  });

  test("a parameterised query binds every parameter", async () => {
    const { resources } = await container.items
      .query({
        query: "SELECT * FROM c WHERE c.colour = @colour AND c.n >= @min",
        parameters: [
          { name: "@colour", value: "blue" },
          { name: "@min", value: 4 },
        ],
      })
      .fetchAll();
    assert.deepEqual(sortedIds(resources), ["item4", "item5", "item7", "item8"]);
  });

  test("string parameters are values, not SQL", async () => {
    const { resources } = await container.items
      .query({
        query: "SELECT * FROM c WHERE c.colour = @colour",
        parameters: [{ name: "@colour", value: "red' OR '1' = '1" }],
      })
      .fetchAll();
    assert.deepEqual(resources, []);
  });

  test("SELECT VALUE COUNT(1) counts all items, or the filtered ones", async () => {
    const all = await container.items.query("SELECT VALUE COUNT(1) FROM c").fetchAll();
    assert.deepEqual(all.resources, [10]);
    const reds = await container.items
      .query({ query: "SELECT VALUE COUNT(1) FROM c WHERE c.colour = @c", parameters: [{ name: "@c", value: "red" }] })
      .fetchAll();
    assert.deepEqual(reds.resources, [4]);
  });

  test("SELECT VALUE MAX and SUM aggregate across partitions", async () => {
    assert.deepEqual((await container.items.query("SELECT VALUE MAX(c.n) FROM c").fetchAll()).resources, [9]);
    assert.deepEqual((await container.items.query("SELECT VALUE SUM(c.n) FROM c").fetchAll()).resources, [45]);
  });

  test("ORDER BY sorts ascending and descending across partitions", async () => {
    const ascending = await container.items.query("SELECT * FROM c ORDER BY c.label").fetchAll();
    assert.deepEqual(
      ascending.resources.map((item) => item.n),
      [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    );
    const descending = await container.items.query("SELECT * FROM c ORDER BY c.n DESC").fetchAll();
    assert.deepEqual(
      descending.resources.map((item) => item.n),
      [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    );
  });

  test("TOP limits the ordered result", async () => {
    const { resources } = await container.items.query("SELECT TOP 3 * FROM c ORDER BY c.n").fetchAll();
    assert.deepEqual(
      resources.map((item) => item.n),
      [0, 1, 2],
    );
  });

  test("a projection returns only the selected fields", async () => {
    const { resources } = await container.items
      .query({ query: "SELECT c.id, c.n FROM c WHERE c.n < @n ORDER BY c.n", parameters: [{ name: "@n", value: 2 }] })
      .fetchAll();
    assert.deepEqual(resources, [
      { id: "item0", n: 0 },
      { id: "item1", n: 1 },
    ]);
  });

  test("a partitionKey option scopes the query to one partition", async () => {
    const { resources } = await container.items.query("SELECT * FROM c", { partitionKey: "odd" }).fetchAll();
    assert.deepEqual(sortedIds(resources), ["item1", "item3", "item5", "item7", "item9"]);
  });

  test("maxItemCount pages the result with fetchNext, with no loss and no duplicate", async () => {
    const got = await pages(container.items.query("SELECT * FROM c", { maxItemCount: 3 }));
    assert.ok(got.length >= 4, `ten items in pages of three take at least four pages, got ${got.length}`);
    for (const page of got) {
      assert.ok(page.length <= 3, `a page holds at most maxItemCount items, got ${page.length}`);
    }
    const flat = got.flat();
    assertNoDuplicateIds(flat, "paged query");
    assert.deepEqual(sortedIds(flat), ALL_IDS);
  });

  test("ORDER BY keeps its order across pages", async () => {
    const got = await pages(container.items.query("SELECT * FROM c ORDER BY c.n DESC", { maxItemCount: 4 }));
    assert.ok(got.length >= 3, `ten items in pages of four take at least three pages, got ${got.length}`);
    assert.deepEqual(
      got.flat().map((item) => item.n),
      [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    );
  });

  test("a continuation token resumes a query in a new iterator exactly where the first stopped", async () => {
    const query = { query: "SELECT * FROM c WHERE c.n >= @min", parameters: [{ name: "@min", value: 0 }] };
    const first = await container.items.query(query, { maxItemCount: 4 }).fetchNext();
    assert.ok(first.resources.length > 0 && first.resources.length <= 4);
    assert.ok(first.hasMoreResults, "ten items do not fit in one page of four");
    assert.ok(first.continuationToken, "a page with more to come carries a continuation token");

    const rest = await pages(
      container.items.query(query, { maxItemCount: 4, continuationToken: first.continuationToken }),
    );
    const all = [...first.resources, ...rest.flat()];
    assertNoDuplicateIds(all, "resumed query");
    assert.deepEqual(sortedIds(all), ALL_IDS);
  });

  test("the async iterator yields every page", async () => {
    const seen = [];
    let count = 0;
    for await (const page of container.items.query("SELECT * FROM c", { maxItemCount: 5 }).getAsyncIterator()) {
      seen.push(...page.resources);
      count += 1;
      assert.ok(count <= MAX_PAGES, "the async iterator ends");
    }
    assert.deepEqual(sortedIds(seen), ALL_IDS);
  });

  test("a query with a syntax error fails with 400 and a message", async () => {
    let caught;
    try {
      await container.items.query("SELEC * FORM c WHERE").fetchAll();
    } catch (error) {
      caught = error;
    }
    assert.ok(caught, "a malformed query is rejected");
    assert.equal(caught.code, 400);
    assert.equal(typeof caught.message, "string");
    assert.ok(caught.message.length > 0, "the error carries the server's message");
  });
});

/** Forty items with forty partition keys, so they spread over every feed range. */
const SPREAD = Array.from({ length: 40 }, (_, n) => ({
  id: `spread${String(n).padStart(2, "0")}`,
  pk: `key${n}`,
  n,
  colour: ["red", "green", "blue"][n % 3],
}));

describe("queries across feed ranges, merged by the SDK from the server's query plan", { timeout: SUITE_TIMEOUT_MS }, () => {
  let scratch;
  let container;

  before(async () => {
    scratch = await scratchDatabase("plans");
    // 12,000 RU/s gives the container two feed ranges, as on Cosmos DB.
    ({ container } = await scratch.database.containers.create({
      id: "spread",
      partitionKey: { paths: ["/pk"] },
      throughput: 12000,
    }));
    for (const item of SPREAD) {
      await container.items.create(item);
    }
  });

  after(async () => {
    await scratch?.cleanup();
  });

  test("the container has more than one feed range", async () => {
    const { resources } = await container.readPartitionKeyRanges().fetchAll();
    assert.ok(resources.length > 1, `expected several ranges, got ${resources.length}`);
  });

  test("ORDER BY merges the ranges' sorted answers, page by page", async () => {
    const byN = SPREAD.map((item) => item.id);
    const response = await container.items.query("SELECT * FROM c ORDER BY c.n").fetchAll();
    assert.deepEqual(response.resources.map((item) => item.id), byN);
    // The whole query was answered 400/1004 with its plan, then the SDK queried each range.
    const requests = response.diagnostics.clientSideRequestStatistics.gatewayStatistics;
    assert.ok(
      requests.some((request) => request.statusCode === 400 && request.subStatusCode === 1004),
      "the server handed the SDK the query's plan",
    );
    const ranges = new Set(requests.map((request) => request.partitionKeyRangeId).filter(Boolean));
    assert.ok(ranges.size > 1, `the SDK queried each range itself, got ${[...ranges]}`);
    const paged = await pages(container.items.query("SELECT c.id FROM c ORDER BY c.n DESC", { maxItemCount: 7 }));
    assert.deepEqual(paged.flat().map((item) => item.id), [...byN].reverse());
  });

  test("TOP and OFFSET/LIMIT cut the merged order", async () => {
    const top = await container.items.query("SELECT TOP 5 VALUE c.n FROM c ORDER BY c.n DESC").fetchAll();
    assert.deepEqual(top.resources, [39, 38, 37, 36, 35]);
    const window = await container.items
      .query({ query: "SELECT VALUE c.n FROM c ORDER BY c.n OFFSET @skip LIMIT 4", parameters: [{ name: "@skip", value: 10 }] })
      .fetchAll();
    assert.deepEqual(window.resources, [10, 11, 12, 13]);
  });

  test("DISTINCT drops duplicates across ranges, ordered or not", async () => {
    const ordered = await container.items.query("SELECT DISTINCT VALUE c.colour FROM c ORDER BY c.colour").fetchAll();
    assert.deepEqual(ordered.resources, ["blue", "green", "red"]);
    const unordered = await container.items.query("SELECT DISTINCT VALUE c.colour FROM c").fetchAll();
    assert.deepEqual([...unordered.resources].sort(), ["blue", "green", "red"]);
  });

  test("VALUE aggregates combine every range's partial result", async () => {
    const one = async (query) => (await container.items.query(query).fetchAll()).resources;
    assert.deepEqual(await one("SELECT VALUE COUNT(1) FROM c"), [40]);
    assert.deepEqual(await one("SELECT VALUE SUM(c.n) FROM c"), [780]);
    assert.deepEqual(await one("SELECT VALUE MIN(c.n) FROM c WHERE c.n > 3"), [4]);
    assert.deepEqual(await one("SELECT VALUE MAX(c.colour) FROM c"), ["red"]);
    assert.deepEqual(await one("SELECT VALUE AVG(c.n) FROM c"), [19.5]);
  });

  test("GROUP BY, which the server plans no merge for, is answered whole by the server", async () => {
    const { resources } = await container.items
      .query("SELECT c.colour, COUNT(1) AS n FROM c GROUP BY c.colour")
      .fetchAll();
    const counts = Object.fromEntries(resources.map((row) => [row.colour, row.n]));
    assert.deepEqual(counts, { red: 14, green: 13, blue: 13 });
  });
});
