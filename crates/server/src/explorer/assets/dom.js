// Small DOM helpers shared by the Explorer's views. Everything is built with these (never with
// innerHTML), so text from the server is always text.

/**
 * Creates an element: `h("button", { type: "button", onclick: f }, "Save")`. Attributes whose
 * name starts with `on` become listeners; `false`, `null` and `undefined` attributes are left
 * out; children may be strings, nodes, arrays of them, or null.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) {
      continue;
    }
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "value" && "value" in element) {
      element.value = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    if (Array.isArray(child)) {
      append(element, child);
    } else {
      element.append(child instanceof Node ? child : String(child));
    }
  }
}

/** Replaces every child of `element` with `children`. */
export function replaceChildren(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

let nextId = 0;

/** A fresh element id with a readable prefix, for label `for` attributes. */
export function freshId(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** A labelled form control: returns `{ field, control }`, the wrapper and the control. */
export function labelled(labelText, control, hint) {
  const id = control.id || freshId("field");
  control.id = id;
  const hintElement = hint ? h("span", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintElement) {
    control.setAttribute("aria-describedby", hintElement.id);
  }
  const field = h("div", { class: "field" }, h("label", { for: id }, labelText), control, hintElement);
  return { field, control };
}

/** An alert line that screen readers announce; empty until `show`. */
export function messageLine() {
  const element = h("p", { class: "message", role: "status", "aria-live": "polite" });
  return {
    element,
    show(text, kind = "info") {
      element.textContent = text;
      element.dataset.kind = kind;
      element.setAttribute("role", kind === "error" ? "alert" : "status");
    },
    clear() {
      element.textContent = "";
      delete element.dataset.kind;
    },
  };
}

/** Pretty JSON text of a value. */
export function pretty(value) {
  return JSON.stringify(value, null, 2);
}
