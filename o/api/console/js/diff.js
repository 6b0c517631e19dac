// A side-by-side line diff (longest common subsequence) of two texts, as an accessible table.
import { h } from "./dom.js";

export function diffLines(a, b) {
  const n = a.length, m = b.length;
  const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = a[i] === b[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const rows = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) rows.push(["same", a[i++], b[j++]]);
    else if (j < m && (i >= n || L[i][j + 1] >= L[i + 1][j])) rows.push(["added", "", b[j++]]);
    else rows.push(["removed", a[i++], ""]);
  }
  return rows;
}

export function diffTable(leftName, left, rightName, right) {
  const rows = diffLines(left.split("\n"), right.split("\n"));
  const changed = rows.filter(([k]) => k !== "same").length;
  return h("div", { class: "scroll" },
    h("p", { class: "muted" }, changed ? `${changed} changed line(s)` : "The two revisions' configurations are the same."),
    h("table", { class: "diff" },
      h("caption", { class: "sr-only" }, `Configuration of ${leftName} beside ${rightName}`),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, leftName), h("th", { scope: "col" }, rightName))),
      h("tbody", {}, rows.map(([kind, l, r]) => h("tr", { class: kind },
        h("td", { class: kind === "removed" ? "del" : "" }, kind === "removed" ? h("span", { class: "sr-only" }, "removed: ") : null, l),
        h("td", { class: kind === "added" ? "ins" : "" }, kind === "added" ? h("span", { class: "sr-only" }, "added: ") : null, r)))),
    ));
}
