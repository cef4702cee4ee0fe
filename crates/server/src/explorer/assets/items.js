// A container's items: pages read with continuations, and an editor to view, create,
// replace (conditional on the etag the item was opened at) and delete them.

import { ApiError, partitionKeyOf } from "./api.js";
import { h, labelled, messageLine, pretty, replaceChildren } from "./dom.js";

/** Items per page. */
const PAGE_SIZE = 50;

export function itemsView({ client, database, container, describeError }) {
  const rows = h("tbody", {});
  const more = h("button", { type: "button", hidden: true }, "Load more items");
  const listMessage = messageLine();
  const editorArea = h("div", { class: "editor-area" });
  let continuation = null;
  let nRows = 0;

  const keyText = (document) => JSON.stringify(partitionKeyOf(container, document));

  const addRows = (items) => {
    for (const item of items) {
      nRows += 1;
      rows.append(
        h(
          "tr",
          {},
          h(
            "td",
            {},
            h("button", { type: "button", class: "link", onclick: () => openItem(item) }, item.id),
          ),
          h("td", { class: "mono" }, keyText(item)),
          h("td", {}, item._ts ? new Date(item._ts * 1000).toISOString() : ""),
        ),
      );
    }
  };

  const loadPage = async (first) => {
    if (first) {
      rows.replaceChildren();
      nRows = 0;
      continuation = null;
    }
    try {
      const page = await client.itemsPage(database, container.id, { continuation, pageSize: PAGE_SIZE });
      addRows(page.items);
      continuation = page.continuation;
      more.hidden = !continuation;
      listMessage.show(`${nRows} item${nRows === 1 ? "" : "s"} shown${continuation ? "; more to load" : ""}.`);
    } catch (error) {
      listMessage.show(describeError(error), "error");
    }
  };
  more.addEventListener("click", () => loadPage(false));

  /**
   * The editor for an existing item (`original` as read) or a new one (`original` null), with
   * an optional notice of what just happened.
   */
  const showEditor = (original, text, notice) => {
    const editing = original !== null;
    const textarea = h("textarea", { rows: "18", spellcheck: "false", class: "json-input" });
    textarea.value = text;
    const field = labelled(editing ? `Item ${original.id} (JSON)` : "New item (JSON)", textarea);
    const message = messageLine();
    let opened = original;

    const parse = () => {
      let document;
      try {
        document = JSON.parse(textarea.value);
      } catch (error) {
        message.show(`Not valid JSON: ${error.message}`, "error");
        textarea.setAttribute("aria-invalid", "true");
        return null;
      }
      if (document === null || typeof document !== "object" || Array.isArray(document)) {
        message.show("An item must be a JSON object.", "error");
        textarea.setAttribute("aria-invalid", "true");
        return null;
      }
      if (typeof document.id !== "string" || document.id === "") {
        message.show('An item needs a non-empty string "id".', "error");
        textarea.setAttribute("aria-invalid", "true");
        return null;
      }
      textarea.removeAttribute("aria-invalid");
      return document;
    };

    const save = async () => {
      const document = parse();
      if (!document) {
        return;
      }
      try {
        if (opened) {
          const response = await client.replaceItem(
            database,
            container.id,
            opened.id,
            document,
            partitionKeyOf(container, opened),
            opened._etag,
          );
          opened = response.body;
          textarea.value = pretty(opened);
          message.show(`Saved ${opened.id} (etag ${opened._etag}).`, "success");
        } else {
          const response = await client.createItem(database, container.id, document, partitionKeyOf(container, document));
          await loadPage(true);
          showEditor(response.body, pretty(response.body), `Created ${response.body.id}.`);
        }
      } catch (error) {
        if (error instanceof ApiError && error.status === 412) {
          message.show(
            "Conflict: this item was changed since you opened it (its etag no longer matches), so your edit was not saved. Reload it to see the current version; your text stays here until you do.",
            "error",
          );
        } else {
          message.show(describeError(error), "error");
        }
      }
    };

    const reload = async () => {
      try {
        opened = await client.readItem(database, container.id, opened.id, partitionKeyOf(container, opened));
        textarea.value = pretty(opened);
        message.show(`Reloaded ${opened.id} (etag ${opened._etag}).`);
      } catch (error) {
        message.show(describeError(error), "error");
      }
    };

    const confirmArea = h("span", { class: "confirm" });
    const askDelete = () => {
      replaceChildren(
        confirmArea,
        h("span", {}, `Delete ${opened.id}? `),
        h("button", { type: "button", class: "danger", onclick: remove }, "Confirm delete"),
        h("button", { type: "button", onclick: () => confirmArea.replaceChildren() }, "Keep it"),
      );
      confirmArea.querySelector("button").focus();
    };
    async function remove() {
      confirmArea.replaceChildren();
      try {
        await client.deleteItem(database, container.id, opened.id, partitionKeyOf(container, opened), opened._etag);
        await loadPage(true);
        replaceChildren(editorArea, h("p", { class: "message", role: "status" }, `Deleted ${opened.id}.`));
      } catch (error) {
        if (error instanceof ApiError && error.status === 412) {
          message.show("Conflict: this item was changed since you opened it, so it was not deleted. Reload it first.", "error");
        } else {
          message.show(describeError(error), "error");
        }
      }
    }

    replaceChildren(
      editorArea,
      h("h3", {}, editing ? `Item ${original.id}` : "New item"),
      field.field,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", onclick: save }, editing ? "Save item" : "Create item"),
        editing ? h("button", { type: "button", onclick: reload }, "Reload item") : null,
        editing ? h("button", { type: "button", class: "danger", onclick: askDelete }, "Delete item") : null,
        h("button", { type: "button", onclick: () => editorArea.replaceChildren() }, "Close editor"),
        confirmArea,
      ),
      message.element,
    );
    if (notice) {
      message.show(notice, "success");
    }
    textarea.focus();
  };

  const openItem = (item) => showEditor(item, pretty(item));
  const newItem = () => {
    const template = { id: crypto.randomUUID() };
    for (const path of container.partitionKey?.paths ?? []) {
      const name = path.split("/")[1];
      if (name && name !== "id" && path.split("/").length === 2) {
        template[name] = "";
      }
    }
    showEditor(null, pretty(template));
  };

  const element = h(
    "div",
    { class: "items" },
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: newItem }, "New item"),
      h("button", { type: "button", onclick: () => loadPage(true) }, "Refresh items"),
    ),
    h(
      "table",
      { class: "grid" },
      h("caption", { class: "visually-hidden" }, `Items of ${container.id}`),
      h(
        "thead",
        {},
        h("tr", {}, ["id", "Partition key", "Modified"].map((name) => h("th", { scope: "col" }, name))),
      ),
      rows,
    ),
    more,
    listMessage.element,
    editorArea,
  );
  loadPage(true);
  return { element };
}
