// The evolution timeline as an inline SVG: revisions on top, each evolution as a bar from start to decision
// (coloured by outcome, labelled with its shadow scores), and the canary's share of traffic over time below.
const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

const t = (iso) => new Date(iso).getTime();

// The canary's weight over one evolution's life, from its events: (time, weight) steps.
export function weightSteps(evo) {
  const points = [];
  for (const e of evo.events || []) {
    const w = e.data && typeof e.data.weight === "number" ? e.data.weight : null;
    if ((e.phase === "canary" || e.phase === "step") && w !== null) points.push([t(e.created_at), w]);
  }
  if (points.length && evo.completed_at) points.push([t(evo.completed_at), evo.status === "promoted" ? 1 : 0]);
  return points;
}

export function timelineChart(revisions, evolutions) {
  const W = 960, H = 260, left = 70, right = 20;
  const times = [...revisions.map((r) => t(r.created_at)), ...evolutions.flatMap((e) => [t(e.created_at), t(e.completed_at || e.updated_at)])];
  const now = Date.now();
  const t0 = Math.min(...times, now), t1 = Math.max(...times, t0 + 1000);
  const span = t1 - t0 || 1;
  const x = (ms) => left + ((ms - t0) / span) * (W - left - right);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "timeline", "aria-labelledby": "timeline-title timeline-desc" });
  const promoted = evolutions.filter((e) => e.status === "promoted").length;
  const rolled = evolutions.filter((e) => e.status === "rolled_back").length;
  svg.append(
    s("title", { id: "timeline-title" }, "Evolution timeline"),
    s("desc", { id: "timeline-desc" }, `${revisions.length} revisions and ${evolutions.length} evolutions (${promoted} promoted, ${rolled} rolled back) from ${new Date(t0).toLocaleString()} to ${new Date(t1).toLocaleString()}.`),
  );
  // lanes
  const lanes = [["Revisions", 40], ["Evolutions", 100], ["Canary", 200]];
  for (const [name, y] of lanes) svg.append(s("text", { x: 4, y: y + 4, class: "lane" }, name));
  svg.append(s("line", { x1: left, x2: W - right, y1: 40, y2: 40, class: "axis" }));
  for (const r of revisions) {
    const cx = x(t(r.created_at));
    const g = s("g", { class: `rev ${r.author}${r.current ? " current" : ""}` });
    g.append(s("title", {}, `Revision ${r.number} by ${r.author}: ${r.rationale || ""}`), s("circle", { cx, cy: 40, r: r.current ? 8 : 6 }), s("text", { x: cx, y: 24, "text-anchor": "middle" }, `r${r.number}`));
    svg.append(g);
  }
  evolutions.forEach((e, i) => {
    const x1 = x(t(e.created_at)), x2 = Math.max(x1 + 4, x(t(e.completed_at || e.updated_at)));
    const y = 80 + (i % 3) * 16;
    const sh = (e.figures || {}).shadow;
    const label = sh ? `${Number((sh.current || {}).score).toFixed(2)}→${Number((sh.candidate || {}).score).toFixed(2)}` : e.status;
    const g = s("g", { class: `evo ${e.status}` });
    g.append(s("title", {}, `${e.id}: ${e.status}${e.reason ? ` — ${e.reason}` : ""}`), s("rect", { x: x1, y, width: x2 - x1, height: 12, rx: 3 }), s("text", { x: x1, y: y - 2 }, `${e.status} ${label}`));
    svg.append(g);
  });
  // canary weight, 0..100% between y=240 and y=160
  const wy = (w) => 240 - w * 80;
  svg.append(s("line", { x1: left, x2: W - right, y1: 240, y2: 240, class: "axis" }), s("text", { x: left - 6, y: 244, "text-anchor": "end", class: "tick" }, "0%"), s("text", { x: left - 6, y: 164, "text-anchor": "end", class: "tick" }, "100%"));
  for (const e of evolutions) {
    const pts = weightSteps(e);
    if (!pts.length) continue;
    let d = `M ${x(pts[0][0])} ${wy(0)} L ${x(pts[0][0])} ${wy(pts[0][1])}`;
    for (let i = 1; i < pts.length; i++) d += ` L ${x(pts[i][0])} ${wy(pts[i - 1][1])} L ${x(pts[i][0])} ${wy(pts[i][1])}`;
    const path = s("path", { d, class: `weight ${e.status}` });
    path.append(s("title", {}, `Canary of ${e.id}: ${pts.map(([, w]) => `${Math.round(w * 100)}%`).join(" → ")}`));
    svg.append(path);
  }
  svg.append(s("text", { x: left, y: H - 2, class: "tick" }, new Date(t0).toLocaleString()), s("text", { x: W - right, y: H - 2, "text-anchor": "end", class: "tick" }, new Date(t1).toLocaleString()));
  return svg;
}
