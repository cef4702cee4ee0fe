// The functions host in the Explorer, in headless Chromium: this test starts its own
// `tributary serve --functions APP_DIR` (TRIBUTARY_BIN) with a small app, a Node handler run
// by examples/functions-node/worker.js that copies orders to a view and fails on an order
// marked `poison` while a switch file exists. The page must show the function, its counters
// and the dead-lettered order with its error; a replay while the order still fails must say
// so and keep the dead letter; a replay after the switch is removed must process it (its
// output written, the dead letter gone). Then the processors view resets the function's leases
// to the beginning, after a confirmation, and the host processes every order again.
//
// Environment:
//   TRIBUTARY_BIN       the tributary binary (default: the workspace's target/debug/tributary)
//   CHROMIUM            the browser (default /usr/bin/chromium)
//   EXPLORER_SCREENSHOTS  a directory to save a screenshot of each view in

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { EMULATOR_KEY, checkLabels, openBrowser, screenshot } from "./browser.mjs";
import { Rest } from "./rest.mjs";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const tributaryBin = process.env.TRIBUTARY_BIN?.trim() || path.join(repo, "target/debug/tributary");
/** The Node worker the app runs its handler in. */
const worker = path.join(repo, "examples/functions-node/worker.js");

/** How long the server may take to start. */
const START_TIMEOUT_MS = 30_000;
/** How long the host may take to dead-letter the poison order (two attempts, a bisection). */
const PROCESSED_WITHIN_MS = 30_000;
/** The whole walk's limit. */
const SUITE_TIMEOUT_MS = 180_000;

const database = "fnshop";
const functionName = "copy_orders";

const scratch = mkdtempSync(path.join(tmpdir(), "explorer-functions-"));
const appDir = path.join(scratch, "app");
const dataDir = path.join(scratch, "data");
/** While this file exists, the handler fails on poison orders. */
const poisonSwitch = path.join(appDir, "poison-fails");

let server = null;
let rest;
let endpoint;
let browser;
let page;
let unexpected;

/** A free loopback port (the app's connection string must name the server's port). */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Starts `tributary serve` with `args` and resolves once it prints that it is ready. */
function startServer(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(tributaryBin, ["serve", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`tributary serve did not start within ${START_TIMEOUT_MS} ms:\n${output}`));
    }, START_TIMEOUT_MS);
    const collect = (chunk) => {
      output += chunk;
      if (/^ready in \d+ ms$/m.test(output)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`tributary serve exited with ${code}:\n${output}`));
    });
  });
}

/** Stops the server (SIGTERM: it stops the host and closes the store) and waits for it. */
async function stopServer(child) {
  if (!child || child.exitCode !== null) {
    return;
  }
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const killed = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(killed);
}

/** Waits until `condition()` resolves truthy, polling every 200 ms. */
async function waitFor(what, condition, timeoutMs = PROCESSED_WITHIN_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) {
      return value;
    }
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The view document the function wrote for `id`, or null. */
async function viewOf(id) {
  const response = await rest.send("GET", ["dbs", database, "colls", "view", "docs", id], {
    headers: { "x-ms-documentdb-partitionkey": JSON.stringify([id]) },
  });
  return response.status === 200 ? response.body : null;
}

/** The app: one function in a Node worker, its connection string naming the server. */
function writeApp(port) {
  const connection = `AccountEndpoint=https://localhost:${port}/;AccountKey=${EMULATOR_KEY};`;
  const fast = "feed_poll_delay = 200, lease_acquire_interval = 300, lease_renew_interval = 300, lease_expiration_interval = 3000";
  writeFileSync(
    path.join(appDir, "tributary.toml"),
    [
      "[worker]",
      `command = ${JSON.stringify(["node", worker, path.join(appDir, "functions.js")])}`,
      "",
      "[[function]]",
      `name = "${functionName}"`,
      'handler = "worker"',
      `trigger = { connection = "Conn", database_name = "${database}", container_name = "orders", lease_container_name = "leases", create_lease_container_if_not_exists = true, start_from_beginning = true, ${fast} }`,
      `outputs = [{ name = "view", connection = "Conn", database_name = "${database}", container_name = "view", partition_key = "/id", create_if_not_exists = true }]`,
      'retry = { strategy = "fixed_delay", max_retry_count = 1, delay_interval = "00:00:00" }',
      "",
    ].join("\n"),
  );
  writeFileSync(
    path.join(appDir, "functions.js"),
    [
      "'use strict';",
      "const fs = require('fs');",
      "const path = require('path');",
      "exports.copy_orders = async (documents) => {",
      "  for (const document of documents) {",
      "    if (document.poison && fs.existsSync(path.join(__dirname, 'poison-fails'))) {",
      "      throw new Error(`order ${document.id} is poison`);",
      "    }",
      "  }",
      "  return { outputs: { view: documents.map((document) => ({ id: document.id, copiedAt: Date.now() })) } };",
      "};",
      "",
    ].join("\n"),
  );
  writeFileSync(
    path.join(appDir, "local.settings.json"),
    JSON.stringify({ IsEncrypted: false, Values: { Conn: connection } }),
  );
}

describe("the functions host in the Explorer", { timeout: SUITE_TIMEOUT_MS }, () => {
  before(async () => {
    const port = await freePort();
    endpoint = `https://localhost:${port}/`;
    rest = new Rest(endpoint, EMULATOR_KEY);
    const serveArgs = ["--port", String(port), "--data-dir", dataDir, "--durability", "relaxed"];
    // The monitored container must exist before the host starts: create it and two orders
    // on a plain server first, then start again with the app.
    server = await startServer(serveArgs);
    assert.equal((await rest.send("POST", ["dbs"], { body: { id: database } })).status, 201);
    const created = await rest.send("POST", ["dbs", database, "colls"], {
      body: { id: "orders", partitionKey: { paths: ["/pk"], kind: "Hash", version: 2 } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await rest.upsert(database, "orders", { id: "o1", pk: "a" });
    await rest.upsert(database, "orders", { id: "o2", pk: "b", poison: true });
    await stopServer(server);

    mkdirSync(appDir, { recursive: true });
    writeApp(port);
    writeFileSync(poisonSwitch, "");
    server = await startServer([...serveArgs, "--functions", appDir]);
    ({ browser, page, unexpected } = await openBrowser());
  });

  after(async () => {
    await browser?.close();
    await stopServer(server);
    rmSync(scratch, { recursive: true, force: true });
  });

  test("signs in and shows the function with its counters and the dead-lettered order", async () => {
    await page.goto(endpoint);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Functions", exact: true }).click();
    const section = page.locator(`section.function[data-function="${functionName}"]`);
    await section.waitFor();
    // The order that never fails is copied; the poison one is dead-lettered after its retry.
    await waitFor("the view of o1", () => viewOf("o1"));
    const row = section.locator('tr.dead-letter[data-item="o2"]');
    await row.waitFor({ timeout: PROCESSED_WITHIN_MS });
    assert.match(await row.locator("td.error-text").innerText(), /order o2 is poison/);
    const facts = section.locator("dl.facts");
    await facts.locator('[data-counter="dead-lettered"]', { hasText: /^1$/ }).waitFor();
    assert.match(await facts.locator('[data-counter="invocations"]').innerText(), /[1-9]\d* failed/);
    assert.match(await facts.locator('[data-counter="retries"]').innerText(), /^[1-9]/);
    const text = await facts.innerText();
    assert.match(text, new RegExp(`Monitored container\\s+${database}/orders`));
    assert.match(text, new RegExp(`Dead-letter container\\s+${database}/deadletter`));
    assert.match(text, /exactly once/);
    assert.equal(await viewOf("o2"), null, "the poison order has no view");
    await checkLabels(page, "the functions view");
    await screenshot(page, "functions");
  });

  test("a replay that fails again says so and keeps the dead letter", async () => {
    const section = page.locator(`section.function[data-function="${functionName}"]`);
    await section.getByRole("button", { name: "Replay dead letter of item o2" }).click();
    await page.locator(".functions .message", { hasText: "Item o2 failed again" }).waitFor();
    assert.match(await page.locator(".functions .message").innerText(), /order o2 is poison/);
    await section.locator('tr.dead-letter[data-item="o2"]').waitFor();
    assert.equal(await viewOf("o2"), null);
  });

  test("a replay once the cause is fixed processes the order and removes the dead letter", async () => {
    unlinkSync(poisonSwitch);
    const section = page.locator(`section.function[data-function="${functionName}"]`);
    await section.getByRole("button", { name: "Replay dead letter of item o2" }).click();
    await page.locator(".functions .message", { hasText: "Replayed item o2" }).waitFor();
    await section.locator(".dead-letters", { hasText: "None." }).waitFor();
    assert.ok(await viewOf("o2"), "the replay wrote the view of o2");
  });

  test("the processors view resets the function's leases to the beginning after a confirmation", async () => {
    const before = await viewOf("o1");
    await page.getByRole("button", { name: "Processors", exact: true }).click();
    const picker = page.getByLabel("Lease container");
    await picker.waitFor();
    await picker.selectOption({ label: `${database} / leases` });
    await page.getByRole("button", { name: "Show processors" }).click();
    const section = page.locator("section.processor").first();
    await section.waitFor();
    assert.match(await section.locator("h3").innerText(), new RegExp(`Processor ${functionName}`));
    await section.getByRole("button", { name: "Reset leases…" }).click();
    const form = page.locator("form.confirm-reset");
    await form.waitFor();
    // Keeping them changes nothing.
    await form.getByRole("button", { name: "Keep them" }).click();
    assert.equal(await page.locator("form.confirm-reset").count(), 0);
    await section.getByRole("button", { name: "Reset leases…" }).click();
    await form.waitFor();
    await checkLabels(page, "the reset confirmation");
    await form.getByLabel("Start from").selectOption("beginning");
    assert.equal(await form.getByLabel("Time (your local time)").isHidden(), true);
    await screenshot(page, "reset-leases");
    await form.getByRole("button", { name: /^Reset \d+ leases?$/ }).click();
    await page.locator(".processors .message", { hasText: /Reset \d+ leases? of .* to start from the beginning/ }).waitFor();
    // The host takes the reset leases and delivers every order again: o1's view is rewritten.
    await waitFor("o1 processed again", async () => {
      const now = await viewOf("o1");
      return now && now._etag !== before._etag;
    });
  });

  test("no console errors or page errors", () => {
    assert.deepEqual(unexpected, []);
  });
});
