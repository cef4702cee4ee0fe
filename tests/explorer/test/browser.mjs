// What the browser tests share: the system's headless Chromium with a page that records
// console and page errors, screenshots, and the accessibility check of the controls shown.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";

import { chromium } from "playwright-core";

/** The Cosmos DB emulator's well-known key, which `tributary serve` uses by default. */
export const EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";
/** How long any one step may wait for the page. */
export const STEP_TIMEOUT_MS = 10_000;

/**
 * Launches Chromium (`CHROMIUM`, default /usr/bin/chromium) with one page that accepts the
 * server's self-signed certificate. Console errors and page errors are collected in
 * `unexpected`, except failed responses of a status passed to `expectingNetworkError`.
 */
export async function openBrowser() {
  const executablePath = process.env.CHROMIUM?.trim() || "/usr/bin/chromium";
  const browser = await chromium.launch({ executablePath, args: ["--ignore-certificate-errors"] });
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const unexpected = [];
  let expectedStatuses = [];
  page.on("console", (message) => {
    if (message.type() !== "error") {
      return;
    }
    const text = message.text();
    if (!expectedStatuses.some((status) => text.includes(`status of ${status}`))) {
      unexpected.push(`console error: ${text}`);
    }
  });
  page.on("pageerror", (error) => unexpected.push(`page error: ${error.message}`));
  /** Runs `step` while the browser may log failed responses of `status`. */
  const expectingNetworkError = async (status, step) => {
    expectedStatuses.push(status);
    try {
      await step();
    } finally {
      expectedStatuses = expectedStatuses.filter((expected) => expected !== status);
    }
  };
  return { browser, page, unexpected, expectingNetworkError };
}

/** Saves a screenshot of the page as NAME.png when EXPLORER_SCREENSHOTS names a directory. */
export async function screenshot(page, name) {
  const directory = process.env.EXPLORER_SCREENSHOTS?.trim();
  if (!directory) {
    return;
  }
  mkdirSync(directory, { recursive: true });
  await page.screenshot({ path: path.join(directory, `${name}.png`), fullPage: true });
}

/** Every form control on the page has an accessible label, and every button a name. */
export async function checkLabels(page, where) {
  const problems = await page.evaluate(() => {
    const found = [];
    for (const control of document.querySelectorAll("input, select, textarea")) {
      if (control.type === "hidden" || control.closest("[hidden]")) {
        continue;
      }
      const labelled =
        control.labels.length > 0 || control.getAttribute("aria-label") || control.getAttribute("aria-labelledby");
      if (!labelled) {
        found.push(`${control.tagName.toLowerCase()}#${control.id || "(no id)"} has no label`);
      }
    }
    for (const button of document.querySelectorAll("button")) {
      if (!button.closest("[hidden]") && button.textContent.trim() === "" && !button.getAttribute("aria-label")) {
        found.push(`a button has no name: ${button.outerHTML.slice(0, 80)}`);
      }
    }
    return found;
  });
  assert.deepEqual(problems, [], `accessibility problems on ${where}`);
}
