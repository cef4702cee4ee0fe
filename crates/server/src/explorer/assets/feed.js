// The live change feed of a container: the server pushes each change as it commits over the
// Explorer's feed stream (Server-Sent Events read with fetch; no polling). The stream may be
// narrowed to one feed range (from the container's pkranges) or one partition key (JSON), and
// start now, from the beginning or from a time (picked in local time, sent as UTC ISO). Pause
// holds incoming changes back, the filter hides changes whose JSON does not contain its text,
// and the counter shows changes per second over the last second.

import { ApiError } from "./api.js";
import { h, labelled, pretty, replaceChildren } from "./dom.js";

/** Most changes kept on the page; older ones are dropped from the bottom. */
const MAX_SHOWN = 500;
/** Most changes held back while paused; past it the oldest held are dropped (and counted). */
const MAX_HELD = 10_000;
/** How often the rate counter is redrawn (a local timer; the stream itself is pushed). */
const RATE_REDRAW_MS = 500;

export function feedView({ client, database, container, describeError }) {
  const allVersions = Boolean(container.changeFeedPolicy?.retentionDuration);
  const mode = h(
    "select",
    {},
    h("option", { value: "latest-version" }, "Latest version"),
    h(
      "option",
      { value: "all-versions-and-deletes", disabled: !allVersions },
      allVersions ? "All versions and deletes" : "All versions and deletes (needs a change feed retention)",
    ),
  );
  const modeField = labelled("Mode", mode);
  const start = h(
    "select",
    {},
    h("option", { value: "now" }, "From now"),
    h("option", { value: "beginning" }, "From the beginning"),
    h("option", { value: "time" }, "From a time"),
  );
  const startField = labelled("Start", start);
  const startTime = h("input", { type: "datetime-local", step: "1" });
  const startTimeField = labelled("Start time (your local time)", startTime);
  startTimeField.field.hidden = true;
  const range = h("select", {}, h("option", { value: "" }, "All feed ranges"));
  const rangeField = labelled("Feed range", range);
  const partitionKey = h("input", { type: "text", autocomplete: "off", spellcheck: "false" });
  const partitionKeyField = labelled(
    "Partition key (JSON, optional)",
    partitionKey,
    'One logical partition: "customer-1", 42, null, or ["a", "b"] for a hierarchical key (a shorter array is a prefix).',
  );
  const controls = [mode, start, startTime, range, partitionKey];
  const filter = h("input", { type: "search", autocomplete: "off", spellcheck: "false" });
  const filterField = labelled("Filter (text in the change)", filter);
  const toggle = h("button", { type: "button" }, "Start feed");
  const pause = h("button", { type: "button", "aria-pressed": "false", disabled: true }, "Pause");
  const clear = h("button", { type: "button" }, "Clear changes");
  const status = h("p", { class: "stats", role: "status" }, "Not started.");
  const rate = h("p", { class: "stats rate" }, h("span", { class: "rate-value" }, "0"), " changes/s");
  const count = h("p", { class: "stats" }, "0 changes received");
  const list = h("ol", { class: "changes", "aria-label": "Changes, newest first" });

  let controller = null;
  let paused = false;
  let held = [];
  let nDroppedWhileHeld = 0;
  let nReceived = 0;
  /** Arrival times (ms) of the changes of the last second, for the rate. */
  let arrivals = [];

  const filterText = () => filter.value.trim().toLowerCase();
  const applyFilter = (entry) => {
    const text = filterText();
    entry.hidden = text !== "" && !entry.dataset.text.includes(text);
  };

  const show = (change) => {
    const document = JSON.parse(change.text);
    const metadata = document.metadata;
    const subject = document.current ?? document.previous ?? document;
    const operation = metadata?.operationType ?? "change";
    const id = subject?.id ?? metadata?.id ?? "";
    const lsn = metadata?.lsn ?? document._lsn ?? "";
    const entry = h(
      "li",
      { class: "change", "data-text": change.text.toLowerCase(), "data-operation": operation },
      h(
        "details",
        {},
        h(
          "summary",
          {},
          h("span", { class: "time" }, change.at.toLocaleTimeString()),
          " ",
          h("span", { class: "operation" }, operation),
          " ",
          h("span", { class: "change-id" }, id),
          lsn === "" ? null : h("span", { class: "muted" }, ` lsn ${lsn}`),
        ),
        h("pre", { class: "json" }, pretty(document)),
      ),
    );
    applyFilter(entry);
    list.prepend(entry);
    while (list.childElementCount > MAX_SHOWN) {
      list.lastElementChild.remove();
    }
  };

  const describeHeld = () => {
    const dropped = nDroppedWhileHeld ? ` (${nDroppedWhileHeld} older dropped)` : "";
    status.textContent = `Paused: ${held.length} change${held.length === 1 ? "" : "s"} waiting${dropped}.`;
  };

  /** Fills the feed range picker from the container's current ranges, keeping the choice. */
  const loadRanges = async () => {
    const chosen = range.value;
    try {
      const ranges = await client.partitionKeyRanges(database, container.id);
      replaceChildren(
        range,
        h("option", { value: "" }, "All feed ranges"),
        ranges.map((r) =>
          h("option", { value: r.id }, `Range ${r.id}: EPK ${r.minInclusive === "" ? '""' : r.minInclusive} – ${r.maxExclusive}`),
        ),
      );
      range.value = ranges.some((r) => r.id === chosen) ? chosen : "";
    } catch (error) {
      status.textContent += ` (The feed ranges could not be read: ${describeError(error)})`;
    }
  };

  const onEvent = ({ event, data }) => {
    if (event === "open") {
      const opened = JSON.parse(data);
      const narrowed =
        (opened.range === null ? "" : `, feed range ${opened.range}`) +
        (opened.pk === null ? "" : `, partition key ${JSON.stringify(opened.pk)}`);
      status.textContent = `Live: ${opened.mode}, from ${opened.start}${narrowed}.`;
    } else if (event === "change") {
      nReceived += 1;
      arrivals.push(performance.now());
      count.textContent = `${nReceived} change${nReceived === 1 ? "" : "s"} received`;
      const change = { text: data, at: new Date() };
      if (paused) {
        held.push(change);
        if (held.length > MAX_HELD) {
          held.shift();
          nDroppedWhileHeld += 1;
        }
        describeHeld();
      } else {
        show(change);
      }
    } else if (event === "error") {
      const error = JSON.parse(data);
      status.textContent = `The stream ended: ${error.code}: ${error.message}`;
      if (error.code === "Gone") {
        // The range was split: its children take its place in the picker.
        loadRanges();
      }
    }
  };

  const stop = () => {
    if (controller) {
      controller.abort();
      controller = null;
    }
    toggle.textContent = "Start feed";
    pause.disabled = true;
    for (const control of controls) {
      control.disabled = false;
    }
  };

  const begin = async () => {
    let startAt = start.value;
    if (startAt === "time") {
      // A datetime-local value has no zone: Date reads it as local time.
      const time = new Date(startTime.value);
      if (startTime.value === "" || Number.isNaN(time.getTime())) {
        status.textContent = "Choose a start time first.";
        startTime.focus();
        return;
      }
      startAt = time.toISOString();
    }
    const key = partitionKey.value.trim();
    controller = new AbortController();
    const ours = controller;
    toggle.textContent = "Stop feed";
    pause.disabled = false;
    for (const control of controls) {
      control.disabled = true;
    }
    status.textContent = "Connecting…";
    try {
      await client.streamFeed(database, container.id, {
        start: startAt,
        mode: mode.value,
        range: range.value === "" ? undefined : range.value,
        pk: key === "" ? undefined : key,
        signal: ours.signal,
        onEvent,
      });
      if (controller === ours) {
        status.textContent = status.textContent.startsWith("The stream ended") ? status.textContent : "The server closed the stream.";
      }
    } catch (error) {
      if (ours.signal.aborted) {
        status.textContent = "Stopped.";
        return;
      }
      if (!(error instanceof ApiError)) {
        status.textContent = `The stream failed: ${error.message}`;
      } else {
        // The server's reason, such as a 400 for a partition key that does not fit.
        status.textContent = `The stream was refused: ${describeError(error)}`;
        if (error.status === 410) {
          // The range was split since the picker was filled: show the current ones.
          loadRanges();
        }
      }
    }
    if (controller === ours) {
      stop();
    }
  };

  toggle.addEventListener("click", () => {
    if (controller) {
      stop();
      status.textContent = "Stopped.";
    } else {
      begin();
    }
  });
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    if (paused) {
      describeHeld();
    } else {
      for (const change of held) {
        show(change);
      }
      held = [];
      nDroppedWhileHeld = 0;
      status.textContent = controller ? "Live." : "Stopped.";
    }
  });
  clear.addEventListener("click", () => list.replaceChildren());
  start.addEventListener("change", () => {
    startTimeField.field.hidden = start.value !== "time";
  });
  filter.addEventListener("input", () => {
    for (const entry of list.children) {
      applyFilter(entry);
    }
  });

  const redraw = setInterval(() => {
    const now = performance.now();
    arrivals = arrivals.filter((at) => now - at <= 1000);
    rate.querySelector(".rate-value").textContent = String(arrivals.length);
  }, RATE_REDRAW_MS);

  const element = h(
    "div",
    { class: "feed" },
    h(
      "div",
      { class: "feed-controls" },
      modeField.field,
      startField.field,
      startTimeField.field,
      rangeField.field,
      partitionKeyField.field,
      filterField.field,
    ),
    h("div", { class: "actions" }, toggle, pause, clear),
    h("div", { class: "feed-stats" }, status, rate, count),
    list,
  );
  loadRanges();
  return {
    element,
    dispose() {
      clearInterval(redraw);
      stop();
    },
  };
}
