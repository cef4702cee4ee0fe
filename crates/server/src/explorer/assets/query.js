// Queries in Cosmos SQL: an editor, results as JSON or as a table, paging with continuations,
// the request charge and the server's query metrics. Errors show the server's message, which
// names the position of a syntax error.

import { h, labelled, messageLine, pretty, replaceChildren } from "./dom.js";

/** Most columns the table shows (the first properties met, in order). */
const MAX_COLUMNS = 40;

export function queryView({ client, database, container, describeError }) {
  const editor = h("textarea", { rows: "5", spellcheck: "false", class: "sql-input" });
  editor.value = "SELECT * FROM c";
  const editorField = labelled("Query (Cosmos SQL)", editor, "Ctrl+Enter runs it.");
  const pageSize = h("input", { type: "number", min: "1", max: "1000", value: "100" });
  const pageSizeField = labelled("Results per page", pageSize);
  const message = messageLine();
  const stats = h("p", { class: "stats", role: "status" });
  const metrics = h("pre", { class: "metrics", tabindex: "0", "aria-label": "Query metrics" });
  const metricsBlock = h("details", { class: "metrics-block", hidden: true }, h("summary", {}, "Query metrics"), metrics);
  const results = h("div", { class: "results" });
  const next = h("button", { type: "button", hidden: true }, "Next page");
  let layout = "table";
  let lastResults = [];
  let continuation = null;
  let pageNumber = 0;
  let runningQuery = "";

  const layoutButtons = ["table", "json"].map((name) =>
    h(
      "button",
      {
        type: "button",
        "aria-pressed": String(name === layout),
        "data-layout": name,
        onclick: () => {
          layout = name;
          for (const button of layoutButtons) {
            button.setAttribute("aria-pressed", String(button.dataset.layout === layout));
          }
          render();
        },
      },
      name === "table" ? "Results as table" : "Results as JSON",
    ),
  );

  const render = () => {
    if (layout === "json") {
      replaceChildren(results, h("pre", { class: "json", tabindex: "0", "aria-label": "Results as JSON" }, pretty(lastResults)));
    } else {
      replaceChildren(results, table(lastResults));
    }
  };

  const run = async (fromStart) => {
    if (fromStart) {
      runningQuery = editor.value;
      continuation = null;
      pageNumber = 0;
    }
    message.show("Running…");
    try {
      const page = await client.queryPage(database, container.id, runningQuery, {
        continuation,
        pageSize: Number(pageSize.value) || 100,
      });
      pageNumber += 1;
      lastResults = page.results;
      continuation = page.continuation;
      next.hidden = !continuation;
      message.clear();
      stats.textContent = `Page ${pageNumber}: ${page.results.length} result${page.results.length === 1 ? "" : "s"}, request charge ${page.charge ?? "?"} RU${continuation ? "; more pages follow" : ""}.`;
      metrics.textContent = page.metrics ? page.metrics.split(";").join(";\n") : "";
      metricsBlock.hidden = !page.metrics;
      render();
    } catch (error) {
      message.show(describeError(error), "error");
    }
  };
  next.addEventListener("click", () => run(false));
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      run(true);
    }
  });

  const element = h(
    "div",
    { class: "query" },
    editorField.field,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: () => run(true) }, "Run query"),
      pageSizeField.field,
    ),
    message.element,
    stats,
    metricsBlock,
    h("div", { class: "actions", role: "group", "aria-label": "Result layout" }, layoutButtons),
    results,
    next,
  );
  return { element };
}

/** A table of results: one column per top-level property of the objects, or one of values. */
function table(rows) {
  if (rows.length === 0) {
    return h("p", { class: "hint" }, "No results.");
  }
  const columns = [];
  let scalars = false;
  for (const row of rows) {
    if (row !== null && typeof row === "object" && !Array.isArray(row)) {
      for (const name of Object.keys(row)) {
        if (!columns.includes(name) && columns.length < MAX_COLUMNS) {
          columns.push(name);
        }
      }
    } else {
      scalars = true;
    }
  }
  const headers = scalars ? ["value", ...columns] : columns;
  const cell = (value) => {
    if (value === undefined) {
      return h("td", { class: "absent" }, "");
    }
    const text = typeof value === "string" ? value : JSON.stringify(value);
    return h("td", { class: typeof value === "string" ? "" : "mono" }, text);
  };
  return h(
    "table",
    { class: "grid" },
    h("caption", { class: "visually-hidden" }, "Query results"),
    h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
    h(
      "tbody",
      {},
      rows.map((row) => {
        const isObject = row !== null && typeof row === "object" && !Array.isArray(row);
        return h(
          "tr",
          {},
          scalars ? cell(isObject ? undefined : row) : null,
          columns.map((name) => cell(isObject ? row[name] : undefined)),
        );
      }),
    ),
  );
}
