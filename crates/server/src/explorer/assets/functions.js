// The functions host running in the server's process (`tributary serve --functions APP_DIR`):
// each function with its invocations, failures, retries, dead-lettered items and lag, its
// leases as the host's estimator sees them, and its dead letters with their errors and a
// button that replays one. Read from the server's /_explorer/functions endpoints (signed as
// requests on the account), which only the host can answer: replaying runs the function.

import { h, messageLine, pretty, replaceChildren } from "./dom.js";
import { formatAge } from "./processors.js";

/** How often the counters are read again. */
const REFRESH_MS = 5_000;

export function functionsView({ client, describeError }) {
  const element = h("div", { class: "functions" });
  /** What an action did, or why the last read failed; a refresh does not overwrite an action's. */
  const message = messageLine();
  /** When the view last read the server. */
  const readAt = h("p", { class: "hint", "aria-live": "off" });
  /** Whether `message` holds the last read's error (cleared by the next good read). */
  let loadFailed = false;
  const body = h("div", { class: "functions-body" });
  /** Per function: the section's parts, kept so a refresh keeps open details and focus. */
  const sections = new Map();
  /** Per function: the dead-lettered count the dead letters were last read at. */
  const deadLetteredSeen = new Map();
  let disposed = false;
  let loading = false;
  let timer = null;

  /** A read asked for while another ran: done when that one ends (dead letters included if asked). */
  let queued = null;

  const load = async ({ rereadDeadLetters = false } = {}) => {
    if (disposed) {
      return;
    }
    if (loading) {
      queued = { rereadDeadLetters: rereadDeadLetters || Boolean(queued?.rereadDeadLetters) };
      return;
    }
    loading = true;
    try {
      const report = await client.functions();
      if (disposed) {
        return;
      }
      if (!report.hosted) {
        replaceChildren(
          body,
          h(
            "p",
            {},
            "No functions host runs in this server. Start the server with ",
            h("code", {}, "tributary serve --functions APP_DIR"),
            " to run an app's change feed functions in it and see them here.",
          ),
        );
        return;
      }
      const shown = [];
      for (const functionReport of report.functions) {
        const section = sections.get(functionReport.name) ?? newSection(functionReport.name);
        sections.set(functionReport.name, section);
        renderCounters(section, functionReport);
        if (rereadDeadLetters || deadLetteredSeen.get(functionReport.name) !== functionReport.deadLettered) {
          deadLetteredSeen.set(functionReport.name, functionReport.deadLettered);
          await loadDeadLetters(section, functionReport.name);
        }
        shown.push(section.element);
      }
      replaceChildren(
        body,
        h("p", {}, `${report.functions.length} function${report.functions.length === 1 ? "" : "s"} running.`),
        report.skipped.length > 0
          ? h(
              "p",
              { class: "hint" },
              "Not run: ",
              report.skipped.map((skipped, i) => [i > 0 ? "; " : "", h("code", {}, skipped.name), ` (${skipped.reason})`]),
            )
          : null,
        shown,
      );
      readAt.textContent = `Read at ${new Date().toLocaleTimeString()}.`;
      if (loadFailed) {
        loadFailed = false;
        message.clear();
      }
    } catch (error) {
      loadFailed = true;
      message.show(describeError(error), "error");
    } finally {
      loading = false;
      if (queued) {
        const next = queued;
        queued = null;
        load(next);
      }
    }
  };

  const newSection = (name) => {
    const facts = h("dl", { class: "facts" });
    const leases = h("div", { class: "function-leases" });
    const deadLetters = h("div", { class: "dead-letters" });
    const element = h(
      "section",
      { class: "function", "data-function": name, "aria-label": `Function ${name}` },
      h("h3", {}, `Function ${name}`),
      facts,
      leases,
      h("h4", {}, "Dead letters"),
      deadLetters,
    );
    return { name, element, facts, leases, deadLetters };
  };

  const renderCounters = (section, report) => {
    const pending = report.leases.reduce((sum, lease) => sum + lease.pending, 0);
    const inexact = report.leases.some((lease) => !lease.exact);
    const facts = [
      ["Monitored container", report.source],
      ["Lease container", `${report.leaseContainer} (processor ${report.processor})`],
      ["Dead-letter container", report.deadLetterContainer],
      ["Outputs", report.exactlyOnce ? "committed with the checkpoint (exactly once)" : "written before the checkpoint (at least once)"],
      ["Invocations", `${report.succeeded + report.failed} (${report.succeeded} succeeded, ${report.failed} failed, ${report.timedOut} timed out)`, "invocations"],
      ["Retries", String(report.retries), "retries"],
      ["Dead-lettered items", String(report.deadLettered), "dead-lettered"],
      ["Changes handed to it", `${report.changes} (${report.filtered} filtered out)`],
      ["Lag", `${inexact ? "≥ " : ""}${pending} changes`, "lag"],
    ];
    replaceChildren(
      section.facts,
      facts.map(([term, value, key]) => [h("dt", {}, term), h("dd", key ? { "data-counter": key } : {}, value)]),
    );
    replaceChildren(
      section.leases,
      report.leases.length === 0
        ? h("p", { class: "hint" }, "No lease estimate yet.")
        : h(
            "table",
            { class: "grid" },
            h("caption", { class: "visually-hidden" }, `Leases of ${report.name}`),
            h(
              "thead",
              {},
              h("tr", {}, ["Lease", "Owner", "Lag (changes)", "Oldest pending", "Failing batches"].map((title) => h("th", { scope: "col" }, title))),
            ),
            h(
              "tbody",
              {},
              report.leases.map((lease) =>
                h(
                  "tr",
                  { class: lease.consecutiveFailures > 0 ? "lease stuck" : "lease" },
                  h("td", { class: "mono" }, lease.token),
                  h("td", {}, lease.owner ?? "(none)"),
                  h("td", {}, `${lease.exact ? "" : "≥ "}${lease.pending}`),
                  h("td", {}, lease.oldestPendingAgeS === null ? "—" : `${formatAge(lease.oldestPendingAgeS)} ago`),
                  h(
                    "td",
                    {},
                    lease.consecutiveFailures > 0
                      ? `⚠ ${lease.consecutiveFailures}${lease.lastError ? `: ${lease.lastError}` : ""}`
                      : "0",
                  ),
                ),
              ),
            ),
          ),
    );
  };

  const loadDeadLetters = async (section, name) => {
    const { deadLetters, truncated } = await client.deadLetters(name);
    if (deadLetters.length === 0) {
      replaceChildren(section.deadLetters, h("p", { class: "hint" }, "None."));
      return;
    }
    replaceChildren(
      section.deadLetters,
      truncated ? h("p", { class: "hint" }, `The oldest ${deadLetters.length} are shown.`) : null,
      h(
        "table",
        { class: "grid dead-letter-list" },
        h("caption", { class: "visually-hidden" }, `Dead letters of ${name}`),
        h(
          "thead",
          {},
          h("tr", {}, ["Item", "Error", "Attempts", "Dead-lettered at", "Replay"].map((title) => h("th", { scope: "col" }, title))),
        ),
        h("tbody", {}, deadLetters.map((deadLetter) => deadLetterRow(name, deadLetter))),
      ),
    );
  };

  const deadLetterRow = (name, deadLetter) => {
    const itemId = typeof deadLetter.itemId === "string" ? deadLetter.itemId : JSON.stringify(deadLetter.itemId);
    const replay = h(
      "button",
      {
        type: "button",
        "aria-label": `Replay dead letter of item ${itemId}`,
        onclick: async () => {
          replay.disabled = true;
          message.show(`Replaying item ${itemId}…`);
          try {
            const outcome = await client.replayDeadLetter(name, deadLetter.id);
            if (outcome.replayed) {
              message.show(`Replayed item ${itemId}: ${name} processed it, its outputs are written and the dead letter is deleted.`);
            } else {
              message.show(`Item ${itemId} failed again, and its dead letter stays: ${outcome.error}`, "error");
            }
          } catch (error) {
            message.show(describeError(error), "error");
          }
          await load({ rereadDeadLetters: true });
        },
      },
      "Replay",
    );
    return h(
      "tr",
      { class: "dead-letter", "data-dead-letter": deadLetter.id, "data-item": itemId },
      h(
        "td",
        {},
        h("details", {}, h("summary", { class: "mono" }, itemId), h("pre", { class: "json" }, pretty(deadLetter.item))),
      ),
      h(
        "td",
        { class: "error-text" },
        deadLetter.timedOut ? "Timed out: " : "",
        deadLetter.error ?? "",
        deadLetter.traceback ? h("details", {}, h("summary", {}, "Traceback"), h("pre", {}, deadLetter.traceback)) : null,
      ),
      h("td", {}, String(deadLetter.attempts ?? "?")),
      h("td", {}, deadLetter.deadLetteredAt ?? "?"),
      h("td", {}, replay),
    );
  };

  replaceChildren(
    element,
    h(
      "p",
      { class: "hint" },
      "The change feed functions run by this server's functions host, with counters since it started, lag as its estimator counts it, and the items that kept failing. Replay runs the function again on a dead letter; a read-write key is needed. Counters are read every ",
      String(REFRESH_MS / 1000),
      " s.",
    ),
    h("div", { class: "actions" }, h("button", { type: "button", onclick: () => load({ rereadDeadLetters: true }) }, "Refresh functions")),
    readAt,
    message.element,
    body,
  );
  replaceChildren(body, h("p", {}, "Loading…"));
  load({ rereadDeadLetters: true });
  timer = setInterval(() => load(), REFRESH_MS);
  return {
    element,
    dispose() {
      disposed = true;
      clearInterval(timer);
    },
  };
}
