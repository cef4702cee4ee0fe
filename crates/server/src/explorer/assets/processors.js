// Processors, leases and lag: the change feed processors found in a lease container (one per
// lease prefix), each lease's owner, feed range, continuation, last renewal and lag, and the
// leases that look stuck, and resetting a processor's leases to a time. Everything is read
// (and a reset written) through the signed REST API: the lease documents
// with a query, the lag by reading the monitored container's change feed from each lease's
// continuation as the processor's estimator does on Tributary (crates/processor/src/feed.rs,
// `count_by_reading`), counting, up to a cap.
//
// Lease documents follow the .NET SDK's shape, as crates/processor/src/lease.rs reads and
// writes them: `id` = `{processor name}{account host}_{database rid}_{container rid}..{token}`,
// `LeaseToken` (or `PartitionId`), `FeedRange.Range` {min, max}, `Owner`, `ContinuationToken`,
// `timestamp`, `properties`, `Mode`; `{prefix without ..}.info` and `.lock` are bookkeeping.

import { ApiError, partitionKeyOf } from "./api.js";
import { h, labelled, messageLine, replaceChildren } from "./dom.js";

/** The processor's default lease expiration interval (crates/processor: 60 s, as .NET). */
export const DEFAULT_EXPIRATION_S = 60;
/** Most pending changes counted per lease; past it the lag shows as "≥ N". */
export const LAG_CAP_PER_LEASE = 10_000;
/** The page size of the counting reads (the estimator's `PENDING_PAGE_ITEMS`). */
const LAG_PAGE_ITEMS = 1_000;
/** Most documents read from a lease container. */
const MAX_LEASE_DOCUMENTS = 5_000;
/** Most containers looked into when searching the account for lease containers. */
const MAX_CONTAINERS_SEARCHED = 100;
/** How often the view reads the leases again (polling the REST API; the feed is pushed). */
const REFRESH_MS = 5_000;

/** The separator between a processor's prefix and a lease token. */
const TOKEN_SEPARATOR = "..";
const HANDOFF_PROPERTY = "tributary.handoffTo";
const FAILURES_PROPERTY = "tributary.consecutiveFailures";
const LAST_ERROR_PROPERTY = "tributary.lastError";
const START_PROPERTY = "tributary.start";

/** How often a reset re-reads a lease that changed under it (a 412) before giving up. */
const RESET_ATTEMPTS = 5;
/** System properties the server sets; left out of a replaced lease, as the processor does. */
const SYSTEM_PROPERTIES = ["_etag", "_rid", "_self", "_attachments", "_ts", "_lsn"];

/** The processor whose lag the dashboard charts: `{ leaseDatabase, leaseContainer, prefix, monitored }`. */
export const watched = { processor: null };

/** The etag inside .NET's composite continuation JSON, or the text as it is. */
function continuationOf(text) {
  if (typeof text !== "string" || text === "") {
    return null;
  }
  if (!text.trim().startsWith("{")) {
    return text;
  }
  try {
    return JSON.parse(text).Continuation?.[0]?.State?.value ?? text;
  } catch {
    return text;
  }
}

/** A lease document read as crates/processor's `Lease::from_document` reads it; null if not a lease. */
export function leaseOf(document) {
  const token = document.LeaseToken ?? document.PartitionId;
  const id = document.id;
  if (typeof id !== "string" || typeof token !== "string" || !id.endsWith(token)) {
    return null;
  }
  const prefix = id.slice(0, id.length - token.length);
  if (!prefix.endsWith(TOKEN_SEPARATOR)) {
    return null;
  }
  const range = document.FeedRange?.Range;
  const properties = {};
  for (const [name, value] of Object.entries(document.properties ?? {})) {
    properties[name] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return {
    id,
    prefix,
    token,
    span: range && typeof range.max === "string" ? { min: range.min ?? "", max: range.max } : null,
    owner: typeof document.Owner === "string" && document.Owner !== "" ? document.Owner : null,
    continuation: continuationOf(document.ContinuationToken),
    timestamp: typeof document.timestamp === "string" ? document.timestamp : null,
    properties,
    allVersions: document.Mode === "Full-Fidelity Feed",
    document,
  };
}

/**
 * A lease document moved back to `start` (`"beginning"` or `"time:{ms}"`), as
 * crates/processor's `LeaseStore::reset` moves it: no continuation, no owner, no hand-off
 * request or failure record, the start recorded for the host that takes it, stamped now.
 */
export function resetLeaseDocument(document, start, nowMs) {
  const reset = { ...document };
  for (const name of SYSTEM_PROPERTIES) {
    delete reset[name];
  }
  const properties = { ...(document.properties ?? {}) };
  delete properties[HANDOFF_PROPERTY];
  delete properties[FAILURES_PROPERTY];
  delete properties[LAST_ERROR_PROPERTY];
  properties[START_PROPERTY] = start;
  reset.ContinuationToken = null;
  reset.Owner = null;
  reset.properties = properties;
  reset.timestamp = new Date(nowMs).toISOString();
  return reset;
}

/**
 * Resets every lease of the processor with lease prefix `prefix` (read again now, so leases
 * created by a split since the page last looked are included) to `start`, each replace
 * conditional on the etag read (re-read and tried again on a 412, as the processor's own
 * writes are). Answers how many leases were reset.
 */
export async function resetLeases(client, leaseContainer, prefix, start) {
  const definition = await client.container(leaseContainer.database, leaseContainer.container);
  const { documents } = await client.queryAll(
    leaseContainer.database,
    leaseContainer.container,
    "SELECT * FROM c WHERE STARTSWITH(c.id, @prefix)",
    [{ name: "@prefix", value: prefix }],
    MAX_LEASE_DOCUMENTS,
  );
  const leases = documents.map(leaseOf).filter((lease) => lease && lease.prefix === prefix);
  let nReset = 0;
  for (const lease of leases) {
    let document = lease.document;
    for (let attempt = 1; ; attempt += 1) {
      const partitionKey = partitionKeyOf(definition, document);
      try {
        await client.replaceItem(
          leaseContainer.database,
          leaseContainer.container,
          lease.id,
          resetLeaseDocument(document, start, Date.now()),
          partitionKey,
          document._etag,
        );
        nReset += 1;
        break;
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 412 || attempt >= RESET_ATTEMPTS) {
          throw error;
        }
        document = await client.readItem(leaseContainer.database, leaseContainer.container, lease.id, partitionKey);
      }
    }
  }
  return nReset;
}

/**
 * The processors of a lease container's documents, by prefix: `{ prefix, scope, leases,
 * info, lock }`, where `scope` is what the prefix says of the monitored container
 * (`{ nameAndHost, databaseRid, containerRid }`, or null).
 */
export function processorsOf(documents) {
  const processors = new Map();
  const processor = (prefix) => {
    if (!processors.has(prefix)) {
      processors.set(prefix, { prefix, scope: scopeOf(prefix), leases: [], info: null, lock: null });
    }
    return processors.get(prefix);
  };
  for (const document of documents) {
    const id = typeof document.id === "string" ? document.id : "";
    if (id.endsWith(".info") || id.endsWith(".lock")) {
      const kind = id.endsWith(".info") ? "info" : "lock";
      processor(id.slice(0, -5) + TOKEN_SEPARATOR)[kind] = document;
      continue;
    }
    const lease = leaseOf(document);
    if (lease) {
      processor(lease.prefix).leases.push(lease);
    }
  }
  for (const found of processors.values()) {
    found.leases.sort((a, b) => compareEpk(a.span?.min ?? a.token, b.span?.min ?? b.token));
  }
  return [...processors.values()].sort((a, b) => a.prefix.localeCompare(b.prefix));
}

/** `{name}{host}_{database rid}_{container rid}..` → its parts (rids hold no `_`). */
function scopeOf(prefix) {
  const base = prefix.slice(0, -TOKEN_SEPARATOR.length);
  const parts = base.split("_");
  if (parts.length < 3) {
    return null;
  }
  const containerRid = parts.pop();
  const databaseRid = parts.pop();
  return { nameAndHost: parts.join("_"), databaseRid, containerRid };
}

/** The processor's name, when the account host at the end of `nameAndHost` is known. */
function processorName(scope) {
  for (const host of [window.location.hostname, "localhost", "embedded"]) {
    if (scope.nameAndHost.endsWith(host) && scope.nameAndHost.length > host.length) {
      return scope.nameAndHost.slice(0, -host.length);
    }
  }
  return null;
}

/** EPKs are hex strings ("" the least, "FF" the end): compared as upper-case text. */
function compareEpk(a, b) {
  const x = a.toUpperCase();
  const y = b.toUpperCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Where a lease without a continuation starts (its reset's `tributary.start`; else the beginning). */
function startOf(lease) {
  const start = lease.properties[START_PROPERTY];
  if (start === "now") {
    return { now: true };
  }
  const ms = start?.startsWith("time:") ? Number(start.slice(5)) : NaN;
  if (Number.isFinite(ms)) {
    return { modifiedSince: new Date(ms).toUTCString() };
  }
  return { beginning: true, assumed: start !== "beginning" };
}

/**
 * A lease's lag in items: the changes after its continuation in the monitored container's
 * feed, read over every feed range its span overlaps (a split may have cut it), up to `cap`.
 * Answers `{ pending, capped, exact, oldestTs, note }`.
 */
export async function leaseLag(client, monitored, ranges, lease, cap = LAG_CAP_PER_LEASE) {
  const span =
    lease.span ??
    ranges
      .filter((range) => range.id === lease.token)
      .map((range) => ({ min: range.minInclusive, max: range.maxExclusive }))[0];
  if (!span) {
    return { pending: 0, capped: false, exact: false, oldestTs: null, note: "its range is gone (split)" };
  }
  const start = lease.continuation ? { continuation: lease.continuation } : startOf(lease);
  if (start.now) {
    return { pending: 0, capped: false, exact: true, oldestTs: null, note: "reset to start from now" };
  }
  let pending = 0;
  let exact = true;
  let oldestTs = null;
  for (const range of ranges) {
    const rangeSpan = { min: range.minInclusive, max: range.maxExclusive };
    const overlaps = compareEpk(rangeSpan.min, span.max) < 0 && compareEpk(span.min, rangeSpan.max) < 0;
    if (!overlaps) {
      continue;
    }
    const part = {
      min: compareEpk(rangeSpan.min, span.min) >= 0 ? rangeSpan.min : span.min,
      max: compareEpk(rangeSpan.max, span.max) <= 0 ? rangeSpan.max : span.max,
    };
    const whole = part.min === rangeSpan.min && part.max === rangeSpan.max;
    let continuation = start.continuation ?? null;
    let modifiedSince = start.modifiedSince ?? null;
    for (;;) {
      if (pending >= cap) {
        return { pending, capped: true, exact: false, oldestTs, note: null };
      }
      let page;
      try {
        page = await client.changeFeedPage(monitored.database, monitored.container, {
          rangeId: range.id,
          epk: whole ? null : part,
          continuation,
          modifiedSince,
          allVersions: lease.allVersions,
          maxItems: Math.min(LAG_PAGE_ITEMS, cap - pending),
        });
      } catch (error) {
        if (error.status === 410) {
          exact = false;
          break;
        }
        throw error;
      }
      if (page.changes.length === 0) {
        break;
      }
      if (oldestTs === null) {
        const first = page.changes[0];
        oldestTs = first._ts ?? first.metadata?.crts ?? first.current?._ts ?? null;
      }
      pending += page.changes.length;
      continuation = page.etag;
      modifiedSince = null;
    }
  }
  const note = start.assumed ? "no checkpoint: counted from the beginning" : null;
  return { pending, capped: false, exact, oldestTs, note };
}

/** Seconds as "42 s", "3 min 5 s", "2 h 1 min". */
export function formatAge(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) {
    return `${s} s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ${s % 60} s`;
  }
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A lag as text: "12", or "≥ 10000" when the count stopped at its cap. */
export function formatLag(lag) {
  return lag.capped ? `≥ ${lag.pending}` : String(lag.pending);
}

/**
 * Why a lease looks stuck (empty when it does not): no owner, no renewal within the
 * expiration interval, failing batches (the processor's own record), or an owner whose
 * checkpoint has not moved for the expiration interval while changes wait.
 */
export function stuckReasons(lease, lag, expirationS, progress, nowMs) {
  const reasons = [];
  if (!lease.owner) {
    reasons.push("unowned: no host holds it");
  }
  const renewedMs = lease.timestamp ? Date.parse(lease.timestamp) : NaN;
  if (lease.owner && Number.isFinite(renewedMs) && (nowMs - renewedMs) / 1000 > expirationS) {
    reasons.push(`not renewed for ${formatAge((nowMs - renewedMs) / 1000)} (expiration ${expirationS} s)`);
  }
  const failures = Number(lease.properties[FAILURES_PROPERTY] ?? 0);
  if (failures > 0) {
    const error = lease.properties[LAST_ERROR_PROPERTY];
    reasons.push(`failing: ${failures} failed batches in a row${error ? ` (${error})` : ""}`);
  }
  if (lease.owner && lag && lag.pending > 0 && progress && (nowMs - progress.sinceMs) / 1000 >= expirationS) {
    reasons.push(
      `not progressing: checkpoint unchanged for ${formatAge((nowMs - progress.sinceMs) / 1000)} with ${formatLag(lag)} pending`,
    );
  }
  return reasons;
}

/** Every container of the account: `[{ database, databaseRid, container, containerRid, definition }]`. */
async function allContainers(client) {
  const found = [];
  for (const database of await client.databases()) {
    for (const container of await client.containers(database.id)) {
      found.push({
        database: database.id,
        databaseRid: database._rid,
        container: container.id,
        containerRid: container._rid,
        definition: container,
      });
    }
  }
  return found;
}

/** Containers partitioned on /id holding at least one lease or bookkeeping document. */
async function leaseContainers(client, containers) {
  const candidates = containers
    .filter((c) => JSON.stringify(c.definition.partitionKey?.paths ?? []) === '["/id"]')
    .slice(0, MAX_CONTAINERS_SEARCHED);
  const found = [];
  for (const candidate of candidates) {
    const { documents } = await client.queryAll(
      candidate.database,
      candidate.container,
      'SELECT TOP 1 c.id FROM c WHERE IS_DEFINED(c.LeaseToken) OR IS_DEFINED(c.PartitionId) OR ENDSWITH(c.id, ".info")',
      [],
      1,
    );
    if (documents.length > 0) {
      found.push(candidate);
    }
  }
  return found;
}

/**
 * The Processors view. `leaseContainer` (`{ database, container }`) shows that container's
 * processors; without it the view first searches the account for lease containers.
 */
export function processorsView({ client, describeError, leaseContainer }) {
  const element = h("div", { class: "processors" });
  /** What an action did, or why the last read failed; a refresh does not overwrite an action's. */
  const message = messageLine();
  /** When the view last read the server. */
  const readAt = h("p", { class: "hint", "aria-live": "off" });
  /** Whether `message` holds the last read's error (cleared by the next good read). */
  let loadFailed = false;
  const expiration = h("input", {
    type: "number",
    min: "1",
    step: "1",
    value: String(DEFAULT_EXPIRATION_S),
    autocomplete: "off",
  });
  const expirationField = labelled(
    "Lease expiration interval (seconds)",
    expiration,
    "As the processor's lease_expiration_interval (default 60 s): a lease not renewed for longer is flagged.",
  );
  const body = h("div", { class: "processors-body" });
  /** The reset confirmation, outside `body` so a refresh does not take it away. */
  const resetArea = h("div", { class: "reset-area" });
  /** Per lease id: the continuation last seen and since when (ms), to tell "not progressing". */
  const progress = new Map();
  /** Per prefix: the monitored container the user picked, when the leases do not say. */
  const picked = new Map();
  let timer = null;
  let disposed = false;
  let loading = false;
  let current = leaseContainer ?? null;
  let containers = [];

  const expirationS = () => Math.max(1, Number(expiration.value) || DEFAULT_EXPIRATION_S);

  const load = async () => {
    if (loading || disposed || resetArea.childElementCount > 0) {
      return;
    }
    loading = true;
    try {
      containers = await allContainers(client);
      if (!current) {
        await showPicker();
        return;
      }
      const { documents, truncated } = await client.queryAll(
        current.database,
        current.container,
        "SELECT * FROM c",
        [],
        MAX_LEASE_DOCUMENTS,
      );
      const processors = processorsOf(documents);
      const sections = [];
      for (const processor of processors) {
        sections.push(await processorSection(processor));
      }
      if (disposed) {
        return;
      }
      replaceChildren(
        body,
        h("p", {}, `Lease container ${current.database} / ${current.container}: ${processors.length} processor${processors.length === 1 ? "" : "s"}.`),
        truncated ? h("p", { class: "hint" }, `Only the first ${MAX_LEASE_DOCUMENTS} documents were read.`) : null,
        processors.length === 0 ? h("p", { class: "hint" }, "No lease documents here.") : null,
        sections,
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
    }
  };

  const showPicker = async () => {
    const found = await leaseContainers(client, containers);
    if (disposed) {
      return;
    }
    if (found.length === 0) {
      replaceChildren(body, h("p", {}, "No lease containers found: none of the containers partitioned on /id holds lease documents."));
      return;
    }
    const select = h(
      "select",
      {},
      found.map((c) => h("option", { value: `${c.database}\u0000${c.container}` }, `${c.database} / ${c.container}`)),
    );
    const field = labelled("Lease container", select);
    replaceChildren(
      body,
      h(
        "form",
        {
          class: "actions",
          onsubmit: (event) => {
            event.preventDefault();
            const [database, container] = select.value.split("\u0000");
            current = { database, container };
            replaceChildren(body, h("p", {}, "Loading…"));
            load();
          },
        },
        field.field,
        h("button", { type: "submit" }, "Show processors"),
      ),
    );
  };

  const monitoredOf = (processor) => {
    const chosen = picked.get(processor.prefix);
    if (chosen) {
      return { ...chosen, from: "picked" };
    }
    const scope = processor.scope;
    const match = scope && containers.find((c) => c.databaseRid === scope.databaseRid && c.containerRid === scope.containerRid);
    return match ? { database: match.database, container: match.container, from: "lease ids" } : null;
  };

  const processorSection = async (processor) => {
    const monitored = monitoredOf(processor);
    const nowMs = Date.now();
    let ranges = null;
    let rangeError = null;
    if (monitored) {
      try {
        ranges = await client.partitionKeyRanges(monitored.database, monitored.container);
      } catch (error) {
        rangeError = describeError(error);
      }
    }
    const rows = [];
    let totalLag = 0;
    let anyCapped = false;
    let nStuck = 0;
    for (const lease of processor.leases) {
      let lag = null;
      let lagError = null;
      if (ranges) {
        try {
          lag = await leaseLag(client, monitored, ranges, lease);
          totalLag += lag.pending;
          anyCapped ||= lag.capped;
        } catch (error) {
          lagError = describeError(error);
        }
      }
      const seen = progress.get(lease.id);
      if (!seen || seen.continuation !== lease.continuation) {
        progress.set(lease.id, { continuation: lease.continuation, sinceMs: nowMs });
      }
      const reasons = stuckReasons(lease, lag, expirationS(), progress.get(lease.id), nowMs);
      if (reasons.length > 0) {
        nStuck += 1;
      }
      rows.push(leaseRow(lease, lag, lagError, reasons, nowMs));
    }
    const scope = processor.scope;
    const name = scope ? processorName(scope) : null;
    const owners = [...new Set(processor.leases.map((lease) => lease.owner).filter(Boolean))];
    const lagText = monitored ? `${anyCapped ? "≥ " : ""}${totalLag} items` : "unknown: pick the monitored container";
    const facts = [
      ["Lease prefix", h("code", {}, processor.prefix)],
      ["Processor", name ?? scope?.nameAndHost ?? "?"],
      [
        "Monitored container",
        monitored
          ? `${monitored.database} / ${monitored.container} (from the ${monitored.from})`
          : "not found from the lease ids",
      ],
      ["Leases", String(processor.leases.length)],
      ["Hosts", owners.length === 0 ? "none" : owners.join(", ")],
      ["Total lag", lagText],
      ["Stuck leases", nStuck === 0 ? "none" : `${nStuck} (see Status)`],
      ["Bookkeeping", `${processor.info ? ".info present (leases created)" : "no .info"}${processor.lock ? ", .lock held" : ""}`],
    ];
    const section = h(
      "section",
      { class: "processor", "data-prefix": processor.prefix, "aria-label": `Processor ${processor.prefix}` },
      h("h3", {}, name ? `Processor ${name}` : `Processor ${processor.prefix}`),
      h("dl", { class: "facts" }, facts.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
      monitored ? null : monitoredPicker(processor),
      rangeError ? h("p", { class: "message", "data-kind": "error", role: "alert" }, rangeError) : null,
      h(
        "div",
        { class: "actions" },
        monitored
          ? h(
              "button",
              {
                type: "button",
                "aria-pressed": String(watched.processor?.prefix === processor.prefix),
                onclick: (event) => {
                  watched.processor = {
                    leaseDatabase: current.database,
                    leaseContainer: current.container,
                    prefix: processor.prefix,
                    monitored: { database: monitored.database, container: monitored.container },
                  };
                  event.currentTarget.setAttribute("aria-pressed", "true");
                  message.show(`The dashboard now charts the total lag of ${processor.prefix}.`);
                },
              },
              "Chart its lag on the dashboard",
            )
          : null,
        processor.leases.length > 0
          ? h("button", { type: "button", class: "danger", onclick: () => askReset(processor, name) }, "Reset leases…")
          : null,
      ),
      h(
        "table",
        { class: "grid leases" },
        h("caption", { class: "visually-hidden" }, `Leases of ${processor.prefix}`),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Lease", "Feed range", "Owner", "Continuation", "Last renewal", "Lag (items)", "Oldest pending", "Status"].map((title) =>
              h("th", { scope: "col" }, title),
            ),
          ),
        ),
        h("tbody", {}, rows),
      ),
    );
    return section;
  };

  const leaseRow = (lease, lag, lagError, reasons, nowMs) => {
    const renewedMs = lease.timestamp ? Date.parse(lease.timestamp) : NaN;
    const range = lease.span ? `[${lease.span.min || "(start)"}, ${lease.span.max})` : `range ${lease.token}`;
    const lagCell = lagError ?? (lag ? `${formatLag(lag)}${lag.note ? ` (${lag.note})` : ""}` : "?");
    const oldest = lag?.oldestTs ? `${formatAge(nowMs / 1000 - lag.oldestTs)} ago` : "—";
    const stuck = reasons.length > 0;
    return h(
      "tr",
      { class: stuck ? "lease stuck" : "lease", "data-lease": lease.id, "data-stuck": String(stuck) },
      h("td", { class: "mono" }, lease.token),
      h("td", { class: "mono" }, range),
      h("td", {}, lease.owner ?? "(none)"),
      h("td", { class: "mono" }, lease.continuation ?? "(none)"),
      h(
        "td",
        {},
        Number.isFinite(renewedMs) ? `${formatAge((nowMs - renewedMs) / 1000)} ago` : "never",
      ),
      h("td", { class: "lag" }, lagCell),
      h("td", {}, oldest),
      h(
        "td",
        { class: "status" },
        stuck ? [h("strong", {}, "⚠ Stuck: "), reasons.join("; ")] : "OK",
      ),
    );
  };

  /** Asks where to reset a processor's leases to, and resets them once confirmed. */
  const askReset = (processor, name) => {
    const leaseContainer = { ...current };
    const label = name ?? processor.prefix;
    const nLeases = `${processor.leases.length} lease${processor.leases.length === 1 ? "" : "s"}`;
    const from = h(
      "select",
      {},
      h("option", { value: "time" }, "a time"),
      h("option", { value: "beginning" }, "the beginning"),
    );
    const local = new Date(Date.now() - new Date().getTimezoneOffset() * 60_000);
    const time = h("input", { type: "datetime-local", step: "1", value: local.toISOString().slice(0, 19) });
    const fromField = labelled("Start from", from);
    const timeField = labelled("Time (your local time)", time, "Changes committed at or after it are delivered again.");
    from.addEventListener("change", () => {
      timeField.field.hidden = from.value !== "time";
    });
    const close = () => {
      resetArea.replaceChildren();
      load();
    };
    const confirm = async (event) => {
      event.preventDefault();
      let start = "beginning";
      if (from.value === "time") {
        const ms = new Date(time.value).getTime();
        if (!Number.isFinite(ms)) {
          message.show("Pick a valid time to reset the leases to.", "error");
          time.focus();
          return;
        }
        start = `time:${ms}`;
      }
      try {
        const nReset = await resetLeases(client, leaseContainer, processor.prefix, start);
        message.show(
          `Reset ${nReset} lease${nReset === 1 ? "" : "s"} of ${label} to start from ${start === "beginning" ? "the beginning" : new Date(Number(start.slice(5))).toISOString()}.`,
          "success",
        );
        progress.clear();
      } catch (error) {
        message.show(`The reset stopped: ${describeError(error)}`, "error");
      }
      close();
    };
    replaceChildren(
      resetArea,
      h(
        "form",
        { class: "confirm-reset", "aria-label": `Reset the leases of ${label}`, onsubmit: confirm },
        h("h3", {}, `Reset the ${nLeases} of ${label}?`),
        h(
          "p",
          {},
          "Each lease loses its continuation and owner, and the host that takes it next starts from the point chosen here: the changes after it are processed again. Running hosts notice at their next renewal or checkpoint and stop working on the lease (a batch in progress is delivered again).",
        ),
        h("div", { class: "actions" }, fromField.field, timeField.field),
        h(
          "div",
          { class: "actions" },
          h("button", { type: "submit", class: "danger" }, `Reset ${nLeases}`),
          h("button", { type: "button", onclick: close }, "Keep them"),
        ),
      ),
    );
    from.focus();
  };

  const monitoredPicker = (processor) => {
    const select = h(
      "select",
      {},
      containers.map((c) => h("option", { value: `${c.database}\u0000${c.container}` }, `${c.database} / ${c.container}`)),
    );
    const field = labelled(`Monitored container of ${processor.prefix}`, select);
    return h(
      "form",
      {
        class: "actions",
        onsubmit: (event) => {
          event.preventDefault();
          const [database, container] = select.value.split("\u0000");
          picked.set(processor.prefix, { database, container });
          load();
        },
      },
      field.field,
      h("button", { type: "submit" }, "Use this container"),
    );
  };

  const refresh = h("button", { type: "button", onclick: () => load() }, "Refresh processors");
  replaceChildren(
    element,
    h(
      "p",
      { class: "hint" },
      "Leases grouped by prefix, one processor each. Lag counts the changes after each lease's continuation, read from the monitored container's change feed as the processor's estimator reads it, up to ",
      String(LAG_CAP_PER_LEASE),
      " per lease. Read again every ",
      String(REFRESH_MS / 1000),
      " s.",
    ),
    h("div", { class: "actions" }, expirationField.field, refresh),
    readAt,
    message.element,
    resetArea,
    body,
  );
  replaceChildren(body, h("p", {}, "Loading…"));
  load();
  timer = setInterval(() => {
    if (current) {
      load();
    }
  }, REFRESH_MS);
  return {
    element,
    dispose() {
      disposed = true;
      clearInterval(timer);
    },
  };
}

/**
 * The total lag of the watched processor (for the dashboard): the sum over its leases, and
 * whether a count hit its cap. Null when no processor is watched.
 */
export async function watchedLag(client) {
  const target = watched.processor;
  if (!target) {
    return null;
  }
  const { documents } = await client.queryAll(
    target.leaseDatabase,
    target.leaseContainer,
    "SELECT * FROM c WHERE STARTSWITH(c.id, @prefix)",
    [{ name: "@prefix", value: target.prefix }],
    MAX_LEASE_DOCUMENTS,
  );
  const ranges = await client.partitionKeyRanges(target.monitored.database, target.monitored.container);
  let total = 0;
  let capped = false;
  for (const document of documents) {
    const lease = leaseOf(document);
    if (!lease || lease.prefix !== target.prefix) {
      continue;
    }
    const lag = await leaseLag(client, target.monitored, ranges, lease);
    total += lag.pending;
    capped ||= lag.capped;
  }
  return { prefix: target.prefix, total, capped };
}
