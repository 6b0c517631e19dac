// Long lists paged with the API's cursors: each "Load more" asks for the page after the last item shown.
import { h, append, replace, errorText } from "./dom.js";

// fetchPage(after, limit) -> items; cursor(item) -> the value `after` takes (an id, a number).
export function paged({ fetchPage, render, cursor = (item) => item.id, limit = 20, empty = "Nothing yet.", label, container = "ul" }) {
  const list = h(container, { class: "paged", "aria-label": label });
  const status = h("p", { class: "muted", "aria-live": "polite" });
  const more = h("button", { type: "button", class: "more", hidden: true }, "Load more");
  let after;
  let shown = 0;
  const load = async () => {
    more.disabled = true;
    try {
      const items = await fetchPage(after, limit);
      for (const item of items) append(list, [render(item)]);
      shown += items.length;
      if (items.length) after = cursor(items[items.length - 1]);
      more.hidden = items.length < limit;
      replace(status, shown ? `${shown} shown` : empty);
    } catch (err) {
      replace(status, h("span", { class: "error", role: "alert" }, errorText(err)));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", load);
  load();
  return h("div", { class: "paged-list" }, list, status, more);
}
