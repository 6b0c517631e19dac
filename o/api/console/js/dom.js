// A tiny element builder: every API value goes in as text, never as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let counter = 0;
// A labelled form control: <label for=id>text</label> + the control.
export function field(label, control, hint) {
  const id = control.id || `f${++counter}`;
  control.id = id;
  const hintEl = hint ? h("small", { id: `${id}-hint`, class: "hint" }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl);
}

export function when(value) {
  if (!value) return "—";
  const d = new Date(value);
  return isNaN(d) ? String(value) : d.toLocaleString();
}

export function errorText(err) {
  return err && err.message ? err.message : String(err);
}

// A section that loads itself: "Loading…" first, then its content or the API's error as a message.
export function loading(title, load, level = "h2") {
  const body = h("div", { class: "section-body" }, h("p", { class: "muted" }, "Loading…"));
  const section = h("section", { "aria-label": title }, h(level, {}, title), body);
  const run = async () => {
    try {
      replace(body, await load(run));
    } catch (err) {
      replace(body, h("p", { class: "error", role: "alert" }, `Could not load ${title.toLowerCase()}: ${errorText(err)}`));
    }
  };
  run();
  return section;
}

// A message in the page's notice area (role=alert): API errors are told, never a blank panel.
export function tell(message, kind = "error") {
  const notice = document.getElementById("notice");
  if (!message) return replace(notice);
  replace(notice, h("p", { class: kind }, message, " ", h("button", { type: "button", onclick: () => replace(notice) }, "Dismiss")));
}
