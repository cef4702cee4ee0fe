// The Explorer in a real browser: the system's headless Chromium (Debian's `chromium`), driven
// by playwright-core, against a running `tributary serve`.
//
// One walk through the page, in order: sign in, create a database, a container and an item,
// edit the item, meet a 412 when the item was changed behind the page's back, run a query,
// watch the live feed show a change written through the Python SDK (azure-cosmos) within a
// second, narrow the feed to a partition key and a feed range (and see a refused key's 400),
// and start it from a time. Every
// view's form controls must have an accessible label, the tree must work from the keyboard,
// and the page must log no console error and throw no page error, except the network errors
// a step expects (the browser logs a failed response, such as the 412, as a console error).
//
// Then the processors view: leases shaped as crates/processor writes them are imported with
// the real CLI (`tributary leases import`, which checks each with the processor's own parser
// and computes the lease prefix from the monitored container), and the page must show the
// processor, its leases, a lag per lease equal to the estimator's (`tributary estimate`), and
// the stale lease flagged as stuck; and the dashboard, whose charts must render and whose
// request counter must rise. Last, a live feed of feed range 0 ends with the server's error
// event when a throughput raise splits that range, and the range picker shows the children;
// a range split behind the page's back is refused with the server's 410.
//
// Environment:
//   TRIBUTARY_ENDPOINT  required, e.g. https://localhost:8081/ (self-signed TLS is accepted)
//   TRIBUTARY_KEY       the account's read-write key (default: the emulator's key)
//   TRIBUTARY_BIN       the tributary binary for the lease commands (default: the workspace's
//                       target/debug/tributary)
//   CHROMIUM            the browser (default /usr/bin/chromium)
//   TRIBUTARY_PYTHON    required: a Python with azure-cosmos (tests/sdk/python/requirements.txt;
//                       scripts/test.sh passes .venv's), for the live feed's SDK write
//   EXPLORER_SCREENSHOTS  a directory to save a screenshot of each view in (docs/explorer/ keeps them)

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import {
  EMULATOR_KEY,
  STEP_TIMEOUT_MS,
  checkLabels as checkLabelsOf,
  openBrowser,
  screenshot as screenshotOf,
} from "./browser.mjs";
import { Rest } from "./rest.mjs";

const endpoint = process.env.TRIBUTARY_ENDPOINT?.trim();
const key = process.env.TRIBUTARY_KEY?.trim() || EMULATOR_KEY;
const tributaryBin =
  process.env.TRIBUTARY_BIN?.trim() ||
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../target/debug/tributary");
const python = process.env.TRIBUTARY_PYTHON?.trim();

/** How long a pushed change may take from its write to the page. */
const LIVE_WITHIN_MS = 1_000;
/** The whole walk's limit. */
const SUITE_TIMEOUT_MS = 120_000;

if (!endpoint) {
  throw new Error("TRIBUTARY_ENDPOINT is not set: export it to the server's URL, e.g. https://localhost:8081/");
}
if (!python) {
  throw new Error(
    "TRIBUTARY_PYTHON is not set: export it to a Python with azure-cosmos installed, e.g. .venv/bin/python " +
      "(python3 -m venv .venv && .venv/bin/pip install -r tests/sdk/python/requirements.txt)",
  );
}

/**
 * Upserts an item (argv: endpoint, key, database, container, item JSON) with the Python SDK,
 * built from a connection string as an application builds it (the server's certificate is
 * self-signed, so it is not verified), and prints the time just before the write, in ms.
 */
const PYTHON_UPSERT = `
import json, sys, time
from azure.cosmos import CosmosClient
endpoint, key, database, container, item = sys.argv[1:6]
client = CosmosClient.from_connection_string(
    f"AccountEndpoint={endpoint};AccountKey={key};", connection_verify=False
)
items = client.get_database_client(database).get_container_client(container)
written = time.time()
items.upsert_item(json.loads(item))
print(round(written * 1000))
`;

/** Upserts `item` through the Python SDK; resolves the time (ms) the SDK began the write. */
async function upsertWithPythonSdk(item) {
  const { stdout } = await promisify(execFile)(
    python,
    ["-c", PYTHON_UPSERT, endpoint, key, database, container, JSON.stringify(item)],
    { timeout: STEP_TIMEOUT_MS },
  );
  return Number(stdout.trim());
}

const database = `explorer-${Date.now()}`;
const container = "orders";
const rest = new Rest(endpoint, key);

let browser;
let page;
/** Console errors and page errors not expected by the step that caused them. */
let unexpected;
/** Runs a step while the browser may log failed responses of a status. */
let expectingNetworkError;

const screenshot = (name) => screenshotOf(page, name);
const checkLabels = (where) => checkLabelsOf(page, where);

describe("the Explorer in Chromium", { timeout: SUITE_TIMEOUT_MS }, () => {
  before(async () => {
    ({ browser, page, unexpected, expectingNetworkError } = await openBrowser());
  });

  after(async () => {
    await browser?.close();
    await rest.deleteDatabase(database).catch(() => {});
  });

  test("a browser opening the server is sent to the page, which asks for the key", async () => {
    const response = await page.goto(endpoint);
    assert.equal(response.status(), 200);
    assert.match(page.url(), /\/_explorer\/index\.html$/);
    const keyInput = page.getByLabel("Account key (base64)");
    await keyInput.waitFor();
    const host = new URL(endpoint).hostname;
    if (["localhost", "127.0.0.1"].includes(host)) {
      assert.equal(await keyInput.inputValue(), EMULATOR_KEY, "pre-filled with the emulator's key on localhost");
    }
    await checkLabels("the sign-in form");
    await screenshot("sign-in");
    // Nothing of the account is on the page before signing in.
    assert.equal(await page.locator("#workspace").isHidden(), true);
  });

  test("a wrong key is refused, the right one signs in", async () => {
    const keyInput = page.getByLabel("Account key (base64)");
    await expectingNetworkError(401, async () => {
      await keyInput.fill("dGhpcyBpcyBub3QgdGhlIGFjY291bnQga2V5IGF0IGFsbA==");
      await keyInput.press("Enter");
      await page.locator("#login-message", { hasText: "401" }).waitFor();
    });
    await keyInput.fill(key);
    await keyInput.press("Enter");
    await page.getByRole("button", { name: "New database" }).waitFor();
    assert.equal(
      await page.evaluate(() => sessionStorage.getItem("tributary.explorer.key")),
      key,
      "the key is kept in session storage",
    );
    assert.equal(await page.evaluate(() => localStorage.length), 0, "nothing in local storage");
  });

  test("creates a database and a container from the page", async () => {
    await page.getByRole("button", { name: "New database" }).click();
    await checkLabels("the new database form");
    await page.getByLabel("Database id").fill(database);
    await page.getByRole("button", { name: "Create database" }).click();
    await page.getByLabel("Container id").waitFor();
    await checkLabels("the new container form");
    await page.getByLabel("Container id").fill(container);
    assert.equal(await page.getByLabel("Partition key path").inputValue(), "/pk");
    await page.getByLabel("Default time to live (seconds, optional)").fill("-1");
    await page.getByRole("button", { name: "Create container" }).click();
    await page.getByRole("button", { name: container, exact: true }).waitFor();
    await page.getByRole("button", { name: "New item" }).waitFor();
  });

  test("the tree works from the keyboard", async () => {
    const databaseButton = page.getByRole("button", { name: database, exact: true });
    await databaseButton.focus();
    await page.keyboard.press("Enter");
    await page.locator(`.tree-database[aria-expanded="false"]`, { hasText: database }).waitFor();
    await page.keyboard.press("Enter");
    await page.locator(`.tree-database[aria-expanded="true"]`, { hasText: database }).waitFor();
    // Down moves to the container, Enter opens it.
    await page.keyboard.press("ArrowDown");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), container);
    await page.keyboard.press("Enter");
    await page.getByRole("button", { name: "New item" }).waitFor();
  });

  test("the overview shows the container's settings, throughput and feed ranges", async () => {
    await page.getByRole("button", { name: "Overview" }).click();
    const overview = page.locator(".overview");
    await overview.locator("table").waitFor();
    const text = await overview.innerText();
    assert.match(text, /\/pk \(Hash, version 2\)/);
    assert.match(text, /on, no default \(-1\)/);
    assert.match(text, /RU\/s/);
    assert.match(text, /Feed ranges \(1\)/);
    assert.match(text, /"indexingMode"/);
    await screenshot("overview");
  });

  test("creates an item, refusing invalid JSON first", async () => {
    await page.getByRole("button", { name: "Items" }).click();
    await page.getByRole("button", { name: "New item" }).click();
    const editor = page.getByLabel("New item (JSON)");
    await checkLabels("the item editor");
    await editor.fill('{"id": "item1", "pk": "p1", "n": 1');
    await page.getByRole("button", { name: "Create item" }).click();
    await page.locator(".message", { hasText: "Not valid JSON" }).waitFor();
    await editor.fill('{"id": "item1", "pk": "p1", "n": 1}');
    await page.getByRole("button", { name: "Create item" }).click();
    await page.locator(".message", { hasText: "Created item1" }).waitFor();
    await page.locator("table.grid").getByRole("button", { name: "item1" }).waitFor();
  });

  test("edits the item, and shows a 412 when it changed behind the page's back", async () => {
    const editor = page.getByLabel("Item item1 (JSON)");
    await editor.fill(JSON.stringify({ id: "item1", pk: "p1", n: 2 }));
    await page.getByRole("button", { name: "Save item" }).click();
    await page.locator(".message", { hasText: "Saved item1" }).waitFor();

    await rest.upsert(database, container, { id: "item1", pk: "p1", n: 99 });
    await expectingNetworkError(412, async () => {
      await editor.fill(JSON.stringify({ id: "item1", pk: "p1", n: 3 }));
      await page.getByRole("button", { name: "Save item" }).click();
      await page.locator(".message", { hasText: "changed since you opened it" }).waitFor();
    });
    await page.getByRole("button", { name: "Reload item" }).click();
    await page.locator(".message", { hasText: "Reloaded item1" }).waitFor();
    assert.equal(JSON.parse(await editor.inputValue()).n, 99, "the reload shows the other writer's version");
    await screenshot("items");
  });

  test("runs a query and shows the result row, its charge and metrics, and errors with their position", async () => {
    await page.getByRole("button", { name: "Query", exact: true }).click();
    const editor = page.getByLabel("Query (Cosmos SQL)");
    await checkLabels("the query view");
    await editor.fill('SELECT c.id, c.n FROM c WHERE c.id = "item1"');
    await page.getByRole("button", { name: "Run query" }).click();
    const row = page.locator(".results table tbody tr");
    await row.first().waitFor();
    assert.deepEqual(await row.first().locator("td").allInnerTexts(), ["item1", "99"]);
    await screenshot("query");
    assert.match(await page.locator(".query .stats").innerText(), /1 result, request charge [\d.]+ RU/);
    assert.equal(await page.locator(".metrics-block").isVisible(), true, "query metrics are shown");
    await page.getByRole("button", { name: "Results as JSON" }).click();
    assert.deepEqual(JSON.parse(await page.locator(".results pre").innerText()), [{ id: "item1", n: 99 }]);

    await expectingNetworkError(400, async () => {
      await editor.fill("SELECT * FROM c WHERE");
      await editor.press("Control+Enter");
      const error = page.locator(".query .message[data-kind=error]");
      await error.waitFor();
      assert.match(await error.innerText(), /400 BadRequest: .*\(at byte \d+\)/);
    });
  });

  test("the live feed shows a change written through the Python SDK within a second", async () => {
    await page.getByRole("button", { name: "Live feed" }).click();
    await checkLabels("the live feed");
    await page.getByRole("button", { name: "Start feed" }).click();
    await page.locator(".feed .stats", { hasText: "Live: latest-version, from now." }).waitFor();

    // The page waits while the SDK starts up and writes; the time counts from the write.
    const [appeared, written] = await Promise.all([
      page
        .locator(".change", { hasText: "live1" })
        .waitFor({ timeout: STEP_TIMEOUT_MS })
        .then(() => Date.now()),
      upsertWithPythonSdk({ id: "live1", pk: "p2", n: 1 }),
    ]);
    const tookMs = appeared - written;
    assert.ok(Number.isFinite(tookMs) && tookMs < LIVE_WITHIN_MS, `the change appeared ${tookMs} ms after the SDK's write`);
    const rate = Number(await page.locator(".rate-value").innerText());
    assert.ok(rate >= 0);
    assert.match(await page.locator(".feed-stats").innerText(), /1 change received/);

    // The filter hides what does not match.
    await page.getByLabel("Filter (text in the change)").fill("no-such-text");
    assert.equal(await page.locator(".change", { hasText: "live1" }).isHidden(), true);
    await page.getByLabel("Filter (text in the change)").fill("");

    // Pause holds changes back until resumed.
    await page.getByRole("button", { name: "Pause" }).click();
    await rest.upsert(database, container, { id: "live2", pk: "p2", n: 2 });
    await page.locator(".feed .stats", { hasText: "Paused: 1 change waiting" }).waitFor();
    assert.equal(await page.locator(".change", { hasText: "live2" }).count(), 0);
    await page.getByRole("button", { name: "Resume" }).click();
    await page.locator(".change", { hasText: "live2" }).waitFor();
    await screenshot("live-feed");

    await page.getByRole("button", { name: "Stop feed" }).click();
    await page.locator(".feed .stats", { hasText: "Stopped." }).waitFor();
  });

  test("the live feed narrowed to a partition key or a feed range shows only those changes", async () => {
    const keyField = page.getByLabel("Partition key (JSON, optional)");
    // A key the container's /pk does not fit: the server's 400 is shown, nothing streams.
    await expectingNetworkError(400, async () => {
      await keyField.fill('["a", "b"]');
      await page.getByRole("button", { name: "Start feed" }).click();
      await page.locator(".feed .stats", { hasText: "The stream was refused: 400 BadRequest: pk does not fit" }).waitFor();
    });
    await page.getByRole("button", { name: "Start feed" }).waitFor();

    await keyField.fill('"p-mine"');
    await page.getByRole("button", { name: "Start feed" }).click();
    await page.locator(".feed .stats", { hasText: 'Live: latest-version, from now, partition key ["p-mine"].' }).waitFor();
    await rest.upsert(database, container, { id: "other-key", pk: "p-other" });
    await rest.upsert(database, container, { id: "mine-key", pk: "p-mine" });
    // Changes arrive in commit order: the other key's, written first, would be here by now.
    await page.locator(".change", { hasText: "mine-key" }).waitFor();
    assert.equal(await page.locator(".change", { hasText: "other-key" }).count(), 0);
    await page.getByRole("button", { name: "Stop feed" }).click();
    await keyField.fill("");

    // The feed range picker lists the container's ranges.
    const rangePicker = page.getByLabel("Feed range");
    assert.deepEqual(await rangePicker.locator("option").allInnerTexts(), ["All feed ranges", 'Range 0: EPK "" – FF']);
    await rangePicker.selectOption("0");
    await page.getByRole("button", { name: "Start feed" }).click();
    await page.locator(".feed .stats", { hasText: "Live: latest-version, from now, feed range 0." }).waitFor();
    await rest.upsert(database, container, { id: "in-range", pk: "p-range" });
    await page.locator(".change", { hasText: "in-range" }).waitFor();
    await page.getByRole("button", { name: "Stop feed" }).click();
    await rangePicker.selectOption("");
  });

  test("the live feed started from a time shows the changes after it, not before", async () => {
    await rest.upsert(database, container, { id: "before-time", pk: "p-time" });
    // The feed's times are whole seconds: start in a later second than that write's.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const startMs = Math.floor(Date.now() / 1000) * 1000;
    await rest.upsert(database, container, { id: "after-time", pk: "p-time" });

    await page.getByRole("button", { name: "Clear changes" }).click();
    await page.getByLabel("Start", { exact: true }).selectOption("time");
    const timeField = page.getByLabel("Start time (your local time)");
    await checkLabels("the live feed with a start time");
    // The field takes the browser's local time; the page sends it as UTC.
    const local = await page.evaluate((ms) => {
      const time = new Date(ms);
      const pad = (n) => String(n).padStart(2, "0");
      return `${time.getFullYear()}-${pad(time.getMonth() + 1)}-${pad(time.getDate())}T${pad(time.getHours())}:${pad(time.getMinutes())}:${pad(time.getSeconds())}`;
    }, startMs);
    await timeField.fill(local);
    await page.getByRole("button", { name: "Start feed" }).click();
    await page.locator(".feed .stats", { hasText: `Live: latest-version, from ${new Date(startMs).toISOString()}.` }).waitFor();
    await page.locator(".change", { hasText: "after-time" }).waitFor();
    assert.equal(await page.locator(".change", { hasText: "before-time" }).count(), 0);
    await page.getByRole("button", { name: "Stop feed" }).click();
    await page.getByLabel("Start", { exact: true }).selectOption("now");
    assert.equal(await timeField.isHidden(), true);
  });

  test("deletes an item after a confirmation", async () => {
    await rest.upsert(database, container, { id: "doomed", pk: "p3" });
    await page.getByRole("button", { name: "Items" }).click();
    await page.locator("table.grid").getByRole("button", { name: "doomed" }).click();
    await page.getByRole("button", { name: "Delete item" }).click();
    await page.getByRole("button", { name: "Confirm delete" }).click();
    await page.locator(".message", { hasText: "Deleted doomed" }).waitFor();
    const read = await rest.send("GET", ["dbs", database, "colls", container, "docs", "doomed"], {
      headers: { "x-ms-documentdb-partitionkey": '["p3"]' },
    });
    assert.equal(read.status, 404, "the item is gone");
  });

  test("pages through items and query results with continuations", async () => {
    const n = 55;
    await Promise.all(
      Array.from({ length: n }, (_, i) => rest.upsert(database, container, { id: `bulk-${String(i).padStart(2, "0")}`, pk: "p4" })),
    );
    await page.getByRole("button", { name: "Refresh items" }).click();
    await page.locator(".items .message", { hasText: "50 items shown; more to load" }).waitFor();
    await page.getByRole("button", { name: "Load more items" }).click();
    await page.locator(".items .message", { hasText: /^\d+ items shown\.$/ }).waitFor();
    const shown = await page.locator(".items tbody tr").count();
    assert.ok(shown > 50, `${shown} items after loading more`);
    assert.equal(await page.getByRole("button", { name: "Load more items" }).isHidden(), true);

    await page.getByRole("button", { name: "Query", exact: true }).click();
    await page.getByLabel("Query (Cosmos SQL)").fill('SELECT VALUE c.id FROM c WHERE STARTSWITH(c.id, "bulk-")');
    await page.getByLabel("Results per page").fill("20");
    await page.getByRole("button", { name: "Run query" }).click();
    await page.locator(".query .stats", { hasText: "Page 1: 20 results" }).waitFor();
    await page.getByRole("button", { name: "Next page" }).click();
    await page.locator(".query .stats", { hasText: "Page 2: 20 results" }).waitFor();
    await page.getByRole("button", { name: "Next page" }).click();
    await page.locator(".query .stats", { hasText: `Page 3: ${n - 40} results` }).waitFor();
    assert.equal(await page.getByRole("button", { name: "Next page" }).isHidden(), true);
  });

  /** Runs the tributary CLI with the processor's arguments; answers its stdout. */
  function tributary(args) {
    assert.ok(existsSync(tributaryBin), `the tributary binary is at ${tributaryBin} (set TRIBUTARY_BIN)`);
    const processorArgs = [
      "--processor", processorName,
      "--database", database,
      "--container", container,
      "--lease-container", leaseContainer,
      "--connection-string", `AccountEndpoint=${endpoint};AccountKey=${key};`,
    ];
    return execFileSync(tributaryBin, [...args, ...processorArgs], { encoding: "utf8", timeout: STEP_TIMEOUT_MS });
  }

  const processorName = "explorer-test";
  const leaseContainer = "leases";
  /** The estimator's pending changes per lease id, from `tributary estimate --json`. */
  let estimated = new Map();

  test("the processors view shows a processor's leases, their lag and a stuck lease", async () => {
    const created = await rest.send("POST", ["dbs", database, "colls"], {
      body: { id: leaseContainer, partitionKey: { paths: ["/id"], kind: "Hash", version: 2 } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    // The lease prefix, as crates/processor makes it: `{name}{account host}_{db rid}_{container rid}..`.
    const databaseRid = (await rest.send("GET", ["dbs", database])).body._rid;
    const containerRid = (await rest.send("GET", ["dbs", database, "colls", container])).body._rid;
    const prefix = `${processorName}${new URL(endpoint).hostname}_${databaseRid}_${containerRid}..`;
    // Where the feed is now: the continuation both leases are checkpointed at.
    const now = await rest.send("GET", ["dbs", database, "colls", container, "docs"], {
      headers: { "a-im": "Incremental Feed", "if-none-match": "*" },
    });
    assert.equal(now.status, 304);
    const continuation = now.headers.etag;
    assert.match(continuation, /^"\d+"$/);
    // Two EPK leases covering the container, shaped as `Lease::to_document` writes them: one
    // renewed just now, one whose owner stopped renewing ten minutes ago.
    const lease = (min, max, owner, renewedMs) => ({
      id: `${prefix}${min}-${max}`,
      version: 1,
      LeaseToken: `${min}-${max}`,
      FeedRange: { Range: { min, max, isMinInclusive: true, isMaxInclusive: false } },
      Owner: owner,
      ContinuationToken: continuation,
      timestamp: new Date(renewedMs).toISOString(),
      properties: {},
      Mode: "Incremental Feed",
    });
    const leases = [
      lease("", "7F", "host-a", Date.now()),
      lease("7F", "FF", "host-b", Date.now() - 10 * 60_000),
      { id: `${prefix.slice(0, -2)}.info` },
    ];
    const directory = mkdtempSync(path.join(tmpdir(), "explorer-leases-"));
    const file = path.join(directory, "leases.json");
    writeFileSync(file, JSON.stringify(leases));
    assert.match(tributary(["leases", "import", file]), /imported 3 documents/);
    // Changes after the continuation: the lag.
    for (let i = 0; i < 5; i += 1) {
      await rest.upsert(database, container, { id: `lag-${i}`, pk: `lag-pk-${i}` });
    }
    const estimates = JSON.parse(tributary(["estimate", "--json"]));
    estimated = new Map(estimates.map((estimate) => [estimate.lease_id, estimate.pending]));
    assert.equal(estimates.length, 2);
    assert.equal([...estimated.values()].reduce((a, b) => a + b, 0), 5, "the estimator counts the 5 changes");

    // From the top bar, reached from the keyboard: the page finds the lease container.
    await page.getByRole("button", { name: "Processors", exact: true }).first().focus();
    await page.keyboard.press("Enter");
    const picker = page.getByLabel("Lease container");
    await picker.waitFor();
    await checkLabels("the lease container picker");
    await picker.selectOption({ label: `${database} / ${leaseContainer}` });
    await page.getByRole("button", { name: "Show processors" }).click();

    const section = page.locator(`section.processor[data-prefix="${prefix}"]`);
    await section.waitFor();
    await section.getByRole("heading", { name: `Processor ${processorName}` }).waitFor();
    const facts = await section.locator("dl.facts").innerText();
    assert.match(facts, new RegExp(`${database} / ${container} \\(from the lease ids\\)`));
    assert.match(facts, /Total lag\s+5 items/);
    assert.match(facts, /Hosts\s+host-a, host-b/);
    assert.match(facts, /Stuck leases\s+1/);
    assert.match(facts, /\.info present/);
    await checkLabels("the processors view");

    const rows = section.locator("tbody tr");
    assert.equal(await rows.count(), 2);
    for (const [id, pending] of estimated) {
      const row = section.locator(`tr[data-lease="${id}"]`);
      assert.equal(await row.locator("td.lag").innerText(), String(pending), `the lag of ${id} is the estimator's`);
      assert.equal(await row.locator("td.mono").nth(2).innerText(), continuation);
    }
    const fresh = section.locator(`tr[data-lease="${prefix}-7F"]`);
    assert.equal(await fresh.getAttribute("data-stuck"), "false");
    assert.equal(await fresh.locator("td.status").innerText(), "OK");
    const stale = section.locator(`tr[data-lease="${prefix}7F-FF"]`);
    assert.equal(await stale.getAttribute("data-stuck"), "true");
    assert.match(await stale.locator("td.status").innerText(), /Stuck: not renewed for 10 min \d+ s \(expiration 60 s\)/);
    await screenshot("processors");

    await section.getByRole("button", { name: "Chart its lag on the dashboard" }).click();
    await page.locator(".processors .message", { hasText: "The dashboard now charts" }).waitFor();
  });

  test("the dashboard charts the server's metrics and the processor's lag", async () => {
    await page.getByRole("button", { name: "Dashboard", exact: true }).focus();
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "At a glance" }).waitFor();
    await checkLabels("the dashboard");
    const requestsTotal = page.locator('[data-total="Requests"]');
    await requestsTotal.waitFor();
    const count = async () => Number((await requestsTotal.innerText()).split(" ")[0]);
    const first = await count();
    for (let i = 0; i < 3; i += 1) {
      await rest.upsert(database, container, { id: `dash-${i}`, pk: "dash" });
    }
    // The page reads the snapshot once a second: the counter rises with the writes above.
    await page.waitForFunction(
      ([selector, before]) => Number(document.querySelector(selector)?.textContent.split(" ")[0]) >= before + 3,
      ['[data-total="Requests"]', first],
    );
    assert.ok((await count()) >= first + 3);
    // Every chart is drawn, with its text alternative; rates need two readings.
    for (const name of ["requests", "commits", "fsync", "feed", "lag", "rss"]) {
      const chart = page.locator(`figure[data-chart="${name}"] svg[role="img"]`);
      await chart.waitFor();
      assert.match(await chart.getAttribute("aria-label"), /over the last \d+ s: now /);
    }
    await page.waitForFunction(() =>
      [...document.querySelectorAll("figure[data-chart=requests] polyline")].some((line) => line.getAttribute("points").split(" ").length >= 2),
    );
    // The 5 changes after the checkpoints plus the 3 written above (the leases cover the
    // container); the lag is counted every 5 s.
    await page.locator('[data-chart-value="lag"]', { hasText: /^8 items \(/ }).waitFor({ timeout: 2 * STEP_TIMEOUT_MS });
    assert.match(await page.locator('[data-chart-value="rss"]').innerText(), /MiB/);
    await screenshot("dashboard");
  });

  test("a live feed of a feed range ends saying so when the range is split, and a gone range is refused", async () => {
    await page.getByRole("button", { name: container, exact: true }).click();
    await page.getByRole("button", { name: "Live feed" }).click();
    const rangePicker = page.getByLabel("Feed range");
    await rangePicker.locator("option", { hasText: "Range 0:" }).waitFor({ state: "attached" });
    await rangePicker.selectOption("0");
    await page.getByRole("button", { name: "Start feed" }).click();
    await page.locator(".feed .stats", { hasText: "Live: latest-version, from now, feed range 0." }).waitFor();
    // Past 10,000 RU/s a container needs two feed ranges: the server splits range 0.
    await rest.replaceThroughput(database, container, 11_000);
    await page
      .locator(".feed .stats", { hasText: /The stream ended: Gone: feed range '0' is gone.*pick a current one/ })
      .waitFor();
    await page.getByRole("button", { name: "Start feed" }).waitFor();
    await rangePicker.locator("option", { hasText: "Range 1:" }).waitFor({ state: "attached" });
    const options = await rangePicker.locator("option").allInnerTexts();
    assert.equal(options.length, 3, `all ranges and the two children: ${options}`);
    assert.ok(!options.some((text) => text.startsWith("Range 0:")), `the split range is gone: ${options}`);
    assert.equal(await rangePicker.inputValue(), "", "back to all ranges");

    // Split again behind the page's back: the picker still offers the range that is gone, and
    // starting on it is refused with the server's 410, after which the picker is read again.
    await rest.replaceThroughput(database, container, 21_000);
    const current = (await rest.send("GET", ["dbs", database, "colls", container, "pkranges"])).body.PartitionKeyRanges.map(
      (range) => range.id,
    );
    const gone = ["1", "2"].find((id) => !current.includes(id));
    assert.ok(gone, `one of ranges 1 and 2 was split: now ${current}`);
    await rangePicker.selectOption(gone);
    await expectingNetworkError(410, async () => {
      await page.getByRole("button", { name: "Start feed" }).click();
      await page
        .locator(".feed .stats", { hasText: new RegExp(`The stream was refused: 410 Gone: feed range '${gone}' is gone.*pick a current one`) })
        .waitFor();
    });
    await page.waitForFunction(
      ([selector, n]) => document.querySelector(selector)?.options.length === n,
      [`#${await rangePicker.getAttribute("id")}`, current.length + 1],
    );
    assert.equal(await rangePicker.locator("option", { hasText: `Range ${gone}:` }).count(), 0);
  });

  test("no console errors or page errors", () => {
    assert.deepEqual(unexpected, []);
  });
});
