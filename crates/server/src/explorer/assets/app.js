// The Explorer's entry point: sign-in, the tree of databases and containers, the container
// views (overview, items, query, live feed, processors) and the account views of the top bar
// (the dashboard, processors, functions). Every request goes through the signed
// client in api.js: the page itself holds no data and no privilege.

import { ApiError, Client, EMULATOR_KEY } from "./api.js";
import { h, labelled, messageLine, pretty, replaceChildren } from "./dom.js";
import { dashboardView } from "./dashboard.js";
import { feedView } from "./feed.js";
import { functionsView } from "./functions.js";
import { itemsView } from "./items.js";
import { processorsView } from "./processors.js";
import { queryView } from "./query.js";

/** Where the key is kept: this tab's session storage only. */
const KEY_STORAGE = "tributary.explorer.key";

const elements = {
  login: document.getElementById("login"),
  loginForm: document.getElementById("login-form"),
  loginKey: document.getElementById("login-key"),
  loginMessage: document.getElementById("login-message"),
  workspace: document.getElementById("workspace"),
  tree: document.getElementById("tree-panel"),
  content: document.getElementById("content"),
  account: document.getElementById("account"),
  signOut: document.getElementById("sign-out"),
  topViews: document.getElementById("top-views"),
  showDashboard: document.getElementById("show-dashboard"),
  showProcessors: document.getElementById("show-processors"),
  showFunctions: document.getElementById("show-functions"),
};

const state = {
  client: null,
  /** Database ids whose containers are shown. */
  expanded: new Set(),
  /** `{ database, container }` ids of the container shown, or null. */
  selected: null,
  /** Which container view is shown. */
  view: "items",
  /** Stops the view shown (the live feed holds a stream). */
  disposeView: () => {},
};

/** Whether the page was served from this machine (the emulator pre-fills its key then). */
function servedFromLocalhost() {
  return ["localhost", "127.0.0.1", "[::1]", "::1"].includes(window.location.hostname);
}

/** A one-line description of an error for the user: the server's message for API errors. */
export function describeError(error) {
  if (error instanceof ApiError) {
    return `${error.status} ${error.code}: ${error.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}

function showLogin(message) {
  state.client = null;
  elements.workspace.hidden = true;
  elements.signOut.hidden = true;
  elements.topViews.hidden = true;
  elements.account.textContent = "";
  elements.login.hidden = false;
  if (elements.loginKey.value === "" && servedFromLocalhost()) {
    elements.loginKey.value = EMULATOR_KEY;
  }
  elements.loginMessage.textContent = message ?? "";
  elements.loginKey.focus();
}

async function signIn(key) {
  const client = new Client(key);
  try {
    await client.keyPromise;
  } catch {
    throw new Error("The key is not valid base64.");
  }
  const account = await client.account();
  sessionStorage.setItem(KEY_STORAGE, key);
  state.client = client;
  elements.login.hidden = true;
  elements.workspace.hidden = false;
  elements.signOut.hidden = false;
  elements.topViews.hidden = false;
  elements.account.textContent = `Account ${account.body.id} at ${window.location.host}`;
  await renderTree();
  showWelcome();
}

function signOut() {
  state.disposeView();
  state.disposeView = () => {};
  sessionStorage.removeItem(KEY_STORAGE);
  elements.loginKey.value = "";
  state.selected = null;
  state.expanded.clear();
  replaceChildren(elements.tree);
  replaceChildren(elements.content);
  showLogin("Signed out.");
}

function showWelcome() {
  replaceChildren(
    elements.content,
    h("h2", {}, "Welcome"),
    h("p", {}, "Pick a container in the tree to browse its items, run queries and watch its change feed live, or create a database."),
  );
}

// ---- the tree ------------------------------------------------------------------------

async function renderTree() {
  const client = state.client;
  const databases = await client.databases();
  const containersOf = new Map();
  await Promise.all(
    databases
      .filter((database) => state.expanded.has(database.id))
      .map(async (database) => containersOf.set(database.id, await client.containers(database.id))),
  );
  const list = h("ul", { class: "tree" });
  for (const database of databases) {
    const expanded = state.expanded.has(database.id);
    const children = containersOf.get(database.id);
    const item = h(
      "li",
      {},
      h(
        "button",
        {
          type: "button",
          class: "tree-item tree-database",
          "aria-expanded": String(expanded),
          "data-database": database.id,
          onclick: () => toggleDatabase(database.id),
        },
        h("span", { class: "disclosure", "aria-hidden": "true" }, expanded ? "▾ " : "▸ "),
        database.id,
      ),
    );
    if (expanded && children) {
      const sublist = h("ul", { class: "tree-children" });
      for (const container of children) {
        const selected = state.selected?.database === database.id && state.selected?.container === container.id;
        sublist.append(
          h(
            "li",
            {},
            h(
              "button",
              {
                type: "button",
                class: "tree-item tree-container",
                "aria-current": selected ? "true" : false,
                "data-database": database.id,
                "data-container": container.id,
                onclick: () => selectContainer(database.id, container.id),
              },
              container.id,
            ),
          ),
        );
      }
      sublist.append(
        h(
          "li",
          {},
          h(
            "button",
            { type: "button", class: "tree-item tree-new", onclick: () => showNewContainer(database.id) },
            `New container in ${database.id}`,
          ),
        ),
      );
      item.append(sublist);
    }
    list.append(item);
  }
  replaceChildren(
    elements.tree,
    h(
      "div",
      { class: "tree-actions" },
      h("button", { type: "button", onclick: showNewDatabase }, "New database"),
      h("button", { type: "button", onclick: () => refreshTree() }, "Refresh"),
    ),
    databases.length === 0 ? h("p", { class: "hint" }, "No databases yet.") : list,
  );
}

async function refreshTree(focusSelector) {
  try {
    await renderTree();
    if (focusSelector) {
      elements.tree.querySelector(focusSelector)?.focus();
    }
  } catch (error) {
    handleError(error);
  }
}

/** Up and down arrows move between the tree's buttons, Home and End to its ends. */
function onTreeKey(event) {
  if (!["ArrowDown", "ArrowUp", "Home", "End"].includes(event.key)) {
    return;
  }
  const buttons = [...elements.tree.querySelectorAll(".tree-item")];
  const index = buttons.indexOf(document.activeElement);
  if (index < 0) {
    return;
  }
  event.preventDefault();
  const next = {
    ArrowDown: Math.min(index + 1, buttons.length - 1),
    ArrowUp: Math.max(index - 1, 0),
    Home: 0,
    End: buttons.length - 1,
  }[event.key];
  buttons[next].focus();
}

async function toggleDatabase(database) {
  if (state.expanded.has(database)) {
    state.expanded.delete(database);
  } else {
    state.expanded.add(database);
  }
  await refreshTree(`.tree-database[data-database="${CSS.escape(database)}"]`);
}

// ---- creating databases and containers ----------------------------------------------------

function showNewDatabase() {
  state.disposeView();
  state.disposeView = () => {};
  const id = labelled("Database id", h("input", { type: "text", required: true, autocomplete: "off" }));
  const throughput = labelled(
    "Shared throughput (RU/s, optional)",
    h("input", { type: "number", min: "400", step: "100", autocomplete: "off" }),
    "Leave empty for none: each container then gets its own.",
  );
  const message = messageLine();
  const form = h(
    "form",
    {
      class: "panel-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const name = id.control.value.trim();
        if (name === "") {
          message.show("A database needs an id.", "error");
          return;
        }
        try {
          const options = { headers: { "content-type": "application/json" }, body: JSON.stringify({ id: name }) };
          if (throughput.control.value !== "") {
            options.headers["x-ms-offer-throughput"] = throughput.control.value;
          }
          await state.client.request("POST", ["dbs"], options);
          state.expanded.add(name);
          await refreshTree(`.tree-database[data-database="${CSS.escape(name)}"]`);
          showNewContainer(name, `Database ${name} created.`);
        } catch (error) {
          message.show(describeError(error), "error");
        }
      },
    },
    id.field,
    throughput.field,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Create database")),
    message.element,
  );
  replaceChildren(elements.content, h("h2", {}, "New database"), form);
  id.control.focus();
}

function showNewContainer(database, notice) {
  state.disposeView();
  state.disposeView = () => {};
  const id = labelled("Container id", h("input", { type: "text", required: true, autocomplete: "off" }));
  const paths = labelled(
    "Partition key path",
    h("input", { type: "text", required: true, value: "/pk", autocomplete: "off", spellcheck: "false" }),
    "One path such as /pk, or up to three separated by commas for a hierarchical key.",
  );
  const ttl = labelled(
    "Default time to live (seconds, optional)",
    h("input", { type: "number", min: "-1", step: "1", autocomplete: "off" }),
    "Empty: items never expire; -1: on, with no default (items set their own ttl).",
  );
  const throughput = labelled(
    "Throughput (RU/s, optional)",
    h("input", { type: "number", min: "400", step: "100", autocomplete: "off" }),
  );
  const retention = labelled(
    "All-versions change feed retention (minutes, optional)",
    h("input", { type: "number", min: "0", step: "1", autocomplete: "off" }),
    "Set it to read the change feed in all-versions-and-deletes mode.",
  );
  const message = messageLine();
  if (notice) {
    message.show(notice);
  }
  const form = h(
    "form",
    {
      class: "panel-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const name = id.control.value.trim();
        const keyPaths = paths.control.value
          .split(",")
          .map((path) => path.trim())
          .filter((path) => path !== "");
        if (name === "" || keyPaths.length === 0) {
          message.show("A container needs an id and a partition key path.", "error");
          return;
        }
        const definition = {
          id: name,
          partitionKey:
            keyPaths.length > 1
              ? { paths: keyPaths, kind: "MultiHash", version: 2 }
              : { paths: keyPaths, kind: "Hash", version: 2 },
        };
        if (ttl.control.value !== "") {
          definition.defaultTtl = Number(ttl.control.value);
        }
        if (retention.control.value !== "") {
          definition.changeFeedPolicy = { retentionDuration: Number(retention.control.value) };
        }
        try {
          await state.client.createContainer(database, definition, throughput.control.value);
          state.expanded.add(database);
          await selectContainer(database, name);
        } catch (error) {
          message.show(describeError(error), "error");
        }
      },
    },
    id.field,
    paths.field,
    ttl.field,
    throughput.field,
    retention.field,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Create container")),
    message.element,
  );
  replaceChildren(elements.content, h("h2", {}, `New container in ${database}`), form);
  id.control.focus();
}

// ---- a container's views ------------------------------------------------------------------

const VIEWS = [
  { name: "overview", label: "Overview" },
  { name: "items", label: "Items" },
  { name: "query", label: "Query" },
  { name: "feed", label: "Live feed" },
  { name: "processors", label: "Processors" },
];

async function selectContainer(database, container) {
  state.selected = { database, container };
  await refreshTree(
    `.tree-container[data-database="${CSS.escape(database)}"][data-container="${CSS.escape(container)}"]`,
  );
  await showContainer();
}

async function showContainer() {
  state.disposeView();
  state.disposeView = () => {};
  const { database, container } = state.selected;
  let definition;
  try {
    definition = await state.client.container(database, container);
  } catch (error) {
    replaceChildren(elements.content, h("p", { class: "message", "data-kind": "error", role: "alert" }, describeError(error)));
    return;
  }
  const viewArea = h("div", { class: "view" });
  const switcher = h(
    "div",
    { class: "view-switcher", role: "group", "aria-label": "Container views" },
    VIEWS.map((view) =>
      h(
        "button",
        {
          type: "button",
          "aria-pressed": String(view.name === state.view),
          "data-view": view.name,
          onclick: () => {
            state.view = view.name;
            for (const button of switcher.querySelectorAll("button")) {
              button.setAttribute("aria-pressed", String(button.dataset.view === view.name));
            }
            openView(viewArea, definition);
          },
        },
        view.label,
      ),
    ),
  );
  replaceChildren(
    elements.content,
    h("h2", {}, h("span", { class: "muted" }, `${database} / `), container),
    switcher,
    viewArea,
  );
  openView(viewArea, definition);
}

function openView(viewArea, definition) {
  state.disposeView();
  const context = { client: state.client, database: state.selected.database, container: definition, describeError };
  const view = {
    overview: overviewView,
    items: itemsView,
    query: queryView,
    feed: feedView,
    processors: (viewContext) =>
      processorsView({ ...viewContext, leaseContainer: { database: viewContext.database, container: definition.id } }),
  }[state.view](context);
  state.disposeView = view.dispose ?? (() => {});
  replaceChildren(viewArea, view.element);
}

/** The container's settings, throughput and feed ranges with their item counts. */
function overviewView({ client, database, container }) {
  const element = h("div", { class: "overview" }, h("p", {}, "Loading…"));
  const load = async () => {
    const [ranges, containerOffer] = await Promise.all([
      client.partitionKeyRanges(database, container.id),
      client.offerOf(container._rid),
    ]);
    let throughput = "none";
    let offer = containerOffer;
    let shared = false;
    if (!offer) {
      const databaseRecord = (await client.request("GET", ["dbs", database])).body;
      offer = await client.offerOf(databaseRecord._rid);
      shared = offer !== null;
    }
    if (offer) {
      const autoscale = offer.content.offerAutopilotSettings;
      throughput = autoscale
        ? `autoscale, up to ${autoscale.maxThroughput} RU/s`
        : `${offer.content.offerThroughput} RU/s (manual)`;
      if (shared) {
        throughput += `, shared by database ${database}`;
      }
    }
    const statistics = new Map((container.statistics ?? []).map((entry) => [entry.id, entry]));
    const ttl = container.defaultTtl;
    const retention = container.changeFeedPolicy?.retentionDuration;
    const facts = [
      ["Partition key", `${(container.partitionKey?.paths ?? []).join(", ")} (${container.partitionKey?.kind}, version ${container.partitionKey?.version ?? 1})`],
      ["Default time to live", ttl === undefined || ttl === null ? "off" : ttl === -1 ? "on, no default (-1)" : `${ttl} s`],
      ["Throughput", throughput],
      [
        "Change feed",
        retention ? `latest version, and all versions and deletes for ${retention} minutes` : "latest version (no all-versions retention)",
      ],
      ["Resource id", container._rid],
    ];
    replaceChildren(
      element,
      h("dl", { class: "facts" }, facts.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)])),
      h("h3", {}, `Feed ranges (${ranges.length})`),
      h(
        "table",
        { class: "grid" },
        h("caption", { class: "visually-hidden" }, "Feed ranges with their item counts"),
        h(
          "thead",
          {},
          h("tr", {}, ["Range", "From EPK", "To EPK", "Items", "Size (KB)"].map((name) => h("th", { scope: "col" }, name))),
        ),
        h(
          "tbody",
          {},
          ranges.map((range) => {
            const stats = statistics.get(range.id);
            return h(
              "tr",
              {},
              h("td", {}, range.id),
              h("td", { class: "mono" }, range.minInclusive === "" ? "(start)" : range.minInclusive),
              h("td", { class: "mono" }, range.maxExclusive),
              h("td", {}, stats ? String(stats.documentCount) : "?"),
              h("td", {}, stats ? String(stats.sizeInKB) : "?"),
            );
          }),
        ),
      ),
      h("h3", {}, "Indexing policy"),
      h("pre", { class: "json", tabindex: "0", "aria-label": "Indexing policy" }, pretty(container.indexingPolicy ?? {})),
    );
  };
  load().catch((error) => replaceChildren(element, h("p", { class: "message", "data-kind": "error", role: "alert" }, describeError(error))));
  return { element };
}

// ---- account views (top bar) --------------------------------------------------------------

/** Shows an account view (not tied to a container) in the content area. */
async function showAccountView(title, makeView) {
  state.disposeView();
  state.disposeView = () => {};
  if (state.selected) {
    state.selected = null;
    await refreshTree();
  }
  const view = makeView({ client: state.client, describeError });
  state.disposeView = view.dispose ?? (() => {});
  replaceChildren(elements.content, title ? h("h2", {}, title) : null, view.element);
}

function handleError(error) {
  if (error instanceof ApiError && error.status === 401) {
    sessionStorage.removeItem(KEY_STORAGE);
    showLogin(`The server refused the key: ${error.message}`);
    return;
  }
  replaceChildren(elements.content, h("p", { class: "message", "data-kind": "error", role: "alert" }, describeError(error)));
}

// ---- start --------------------------------------------------------------------------------

elements.loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  elements.loginMessage.textContent = "Signing in…";
  try {
    await signIn(elements.loginKey.value.trim());
  } catch (error) {
    showLogin(describeError(error));
  }
});
elements.signOut.addEventListener("click", signOut);
elements.showDashboard.addEventListener("click", () => showAccountView(null, dashboardView));
elements.showProcessors.addEventListener("click", () => showAccountView("Processors", processorsView));
elements.showFunctions.addEventListener("click", () => showAccountView("Functions", functionsView));
elements.tree.addEventListener("keydown", onTreeKey);

const savedKey = sessionStorage.getItem(KEY_STORAGE);
if (savedKey) {
  signIn(savedKey).catch((error) => showLogin(describeError(error)));
} else {
  showLogin();
}
