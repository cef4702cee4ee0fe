// At a glance: the server's metrics snapshot (GET /_explorer/metrics), polled once a second,
// drawn as small line charts (inline SVG, drawn here) of the last few minutes, with the current
// numbers as text. Rates are the differences of the snapshot's counters over the time
// between two snapshots (their `uptimeMs`). The total lag of the processor picked in the
// Processors view is read every few seconds through the REST API.

import { h, replaceChildren } from "./dom.js";
import { formatLag, watched, watchedLag } from "./processors.js";

/** How often the snapshot is read. */
const POLL_MS = 1_000;
/** How often the watched processor's lag is counted (it reads the change feed). */
const LAG_POLL_MS = 5_000;
/** Points kept per chart: five minutes at one a second. */
const MAX_POINTS = 300;
const CHART_WIDTH = 320;
const CHART_HEIGHT = 80;
const SVG = "http://www.w3.org/2000/svg";

/** One chart's definition: its title, unit, and how to read its value. */
const CHARTS = [
  { name: "requests", title: "Requests/s", unit: "/s" },
  { name: "commits", title: "Commits/s", unit: "/s" },
  { name: "fsync", title: "fsync p99 (ms)", unit: " ms" },
  { name: "feed", title: "Feed items/s", unit: "/s" },
  { name: "lag", title: "Total lag (items)", unit: " items" },
  { name: "rss", title: "RSS (MiB)", unit: " MiB" },
];

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    element.setAttribute(name, String(value));
  }
  element.append(...children);
  return element;
}

/** A number shown with at most one decimal place. */
function round(value) {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

/** A line chart of `points` (numbers; null for no value): an SVG with its own text alternative. */
function drawChart(chart, points) {
  const values = points.filter((value) => value !== null);
  const max = Math.max(1, ...values);
  const step = CHART_WIDTH / (MAX_POINTS - 1);
  const offset = MAX_POINTS - points.length;
  const coordinates = [];
  points.forEach((value, index) => {
    if (value !== null) {
      const x = (offset + index) * step;
      const y = CHART_HEIGHT - (value / max) * (CHART_HEIGHT - 4) - 2;
      coordinates.push(`${x.toFixed(1)},${y.toFixed(1)}`);
    }
  });
  const last = values.length > 0 ? values[values.length - 1] : null;
  const label = `${chart.title} over the last ${Math.round(points.length * (POLL_MS / 1000))} s: now ${
    last === null ? "no value" : `${round(last)}${chart.unit}`
  }, peak ${round(max)}${chart.unit}`;
  return svg(
    "svg",
    {
      class: "chart-plot",
      viewBox: `0 0 ${CHART_WIDTH} ${CHART_HEIGHT}`,
      width: CHART_WIDTH,
      height: CHART_HEIGHT,
      role: "img",
      "aria-label": label,
    },
    svg("title", {}, label),
    svg("line", { class: "chart-axis", x1: 0, y1: CHART_HEIGHT - 1, x2: CHART_WIDTH, y2: CHART_HEIGHT - 1 }),
    svg("polyline", { class: "chart-line", points: coordinates.join(" "), fill: "none" }),
    svg("text", { class: "chart-max", x: 2, y: 12 }, `${round(max)}`),
  );
}

export function dashboardView({ client, describeError }) {
  const history = Object.fromEntries(CHARTS.map((chart) => [chart.name, []]));
  const cards = Object.fromEntries(
    CHARTS.map((chart) => {
      const value = h("p", { class: "chart-value", "data-chart-value": chart.name }, "—");
      const plot = h("div", { class: "chart-area" });
      const card = h("figure", { class: "chart", "data-chart": chart.name }, h("figcaption", {}, chart.title), value, plot);
      return [chart.name, { card, value, plot }];
    }),
  );
  const totals = h("dl", { class: "facts totals" });
  const status = h("p", { class: "message", role: "status" }, "Reading the metrics…");
  const element = h(
    "div",
    { class: "dashboard" },
    h("h2", {}, "At a glance"),
    status,
    h("div", { class: "charts" }, CHARTS.map((chart) => cards[chart.name].card)),
    h("h3", {}, "Totals since the server started"),
    totals,
  );
  let previous = null;
  let lag = null;
  let lagMessage = "Pick a processor in Processors (Chart its lag on the dashboard).";
  let disposed = false;
  let polling = false;
  let lagPolling = false;

  const push = (name, value) => {
    const points = history[name];
    points.push(value);
    if (points.length > MAX_POINTS) {
      points.shift();
    }
  };

  const render = (snapshot) => {
    for (const chart of CHARTS) {
      const points = history[chart.name];
      const last = points.length > 0 ? points[points.length - 1] : null;
      let text = last === null ? "—" : `${round(last)}${chart.unit}`;
      if (chart.name === "lag") {
        text = lag ? `${formatLag({ pending: lag.total, capped: lag.capped })} items (${lag.prefix})` : lagMessage;
      }
      cards[chart.name].value.textContent = text;
      replaceChildren(cards[chart.name].plot, drawChart(chart, points));
    }
    const requests = snapshot.requests;
    const nRequests = Object.values(requests).reduce((sum, n) => sum + n, 0);
    const mib = (bytes) => (bytes === null ? "unknown" : `${round(bytes / 1_048_576)} MiB`);
    const fsync = snapshot.fsync;
    const us = (value) => (value === null ? "—" : `${round(value / 1000)} ms`);
    const facts = [
      ["Requests", `${nRequests} (2xx ${requests["2xx"]}, 3xx ${requests["3xx"]}, 4xx ${requests["4xx"]}, 5xx ${requests["5xx"]})`],
      ["Commits", String(snapshot.commits)],
      ["Item changes committed", String(snapshot.itemChangesCommitted)],
      [`fsync, last ${fsync.windowS} s`, `${fsync.commits} commits, p50 ${us(fsync.p50Us)}, p99 ${us(fsync.p99Us)}, max ${us(fsync.maxUs)}`],
      ["Feed items served", String(snapshot.feedItemsServed)],
      ["Open connections", String(snapshot.openConnections)],
      ["Process RSS", mib(snapshot.processRssBytes)],
      ["Store size", mib(snapshot.storeBytes)],
      ["Uptime", `${Math.round(snapshot.uptimeMs / 1000)} s`],
    ];
    replaceChildren(totals, facts.map(([term, value]) => [h("dt", {}, term), h("dd", { "data-total": term }, value)]));
  };

  const poll = async () => {
    if (polling || disposed) {
      return;
    }
    polling = true;
    try {
      const snapshot = await client.metrics();
      if (disposed) {
        return;
      }
      const requests = Object.values(snapshot.requests).reduce((sum, n) => sum + n, 0);
      if (previous) {
        const seconds = Math.max(0.001, (snapshot.uptimeMs - previous.uptimeMs) / 1000);
        const rate = (now, before) => Math.max(0, now - before) / seconds;
        push("requests", rate(requests, previous.requests));
        push("commits", rate(snapshot.commits, previous.commits));
        push("feed", rate(snapshot.feedItemsServed, previous.feedItemsServed));
      }
      push("fsync", snapshot.fsync.p99Us === null ? null : snapshot.fsync.p99Us / 1000);
      push("rss", snapshot.processRssBytes === null ? null : snapshot.processRssBytes / 1_048_576);
      push("lag", lag ? lag.total : null);
      previous = { uptimeMs: snapshot.uptimeMs, requests, commits: snapshot.commits, feedItemsServed: snapshot.feedItemsServed };
      status.textContent = `Updated ${new Date().toLocaleTimeString()}; one reading a second.`;
      delete status.dataset.kind;
      render(snapshot);
    } catch (error) {
      status.textContent = describeError(error);
      status.dataset.kind = "error";
    } finally {
      polling = false;
    }
  };

  const pollLag = async () => {
    if (lagPolling || disposed) {
      return;
    }
    lagPolling = true;
    try {
      lag = await watchedLag(client);
      if (!watched.processor) {
        lagMessage = "Pick a processor in Processors (Chart its lag on the dashboard).";
      }
    } catch (error) {
      lag = null;
      lagMessage = describeError(error);
    } finally {
      lagPolling = false;
    }
  };

  pollLag();
  poll();
  const timer = setInterval(poll, POLL_MS);
  const lagTimer = setInterval(pollLag, LAG_POLL_MS);
  return {
    element,
    dispose() {
      disposed = true;
      clearInterval(timer);
      clearInterval(lagTimer);
    },
  };
}
