// An agent's evolution: a timeline chart (revisions, evolutions with their shadow scores, canary weight over
// time), the decisions with their reasons, a side-by-side diff of two revisions, and the owner's controls —
// approve or reject a pending gate, roll back to a revision, pause scheduled evolution — over the same API
// routes `o evolve` and the SDK use.
import { h, replace, field, when, errorText, loading, tell } from "./dom.js";
import { api, get } from "./api.js";
import { timelineChart } from "./timeline.js";
import { diffTable } from "./diff.js";

const TERMINAL = new Set(["promoted", "rolled_back"]);

async function all(path, params, cursor) {
  // every page, following the API's cursor (a timeline needs the whole history)
  const items = [];
  let after;
  for (;;) {
    const page = await get(path, { ...params, after, limit: 100 });
    items.push(...page);
    if (page.length < 100) return items;
    after = cursor(page[page.length - 1]);
  }
}

const pct = (x) => (x === null || x === undefined ? "—" : Number(x).toFixed(3));

function shadowCell(evo) {
  const s = (evo.figures || {}).shadow;
  if (!s) return "—";
  const e = s.evidence;
  return h("span", {},
    `${pct((s.current || {}).score)} → ${pct((s.candidate || {}).score)}`,
    e ? h("span", { class: "muted small" }, ` Δ ${pct(e.mean_delta)} (95% ${(e.ci95 || []).map(pct).join(" … ")}), p = ${pct(e.p_value)}, ${e.cases} cases`) : null);
}

function pendingGate(evo) {
  if (TERMINAL.has(evo.status)) return null;
  const approvals = (evo.figures || {}).approvals || {};
  return Object.keys(approvals).find((gate) => approvals[gate].status === "pending") || null;
}

function evolutionRow(agentId, evo, refresh) {
  const gate = pendingGate(evo);
  const decide = async (approve) => {
    const comment = approve ? null : prompt("Why reject it? (optional)");
    try {
      await api("POST", `/v1/agents/${agentId}/evolutions/${evo.id}/approval`, { body: { approve, comment: comment || null } });
      tell(`${approve ? "Approved" : "Rejected"} the ${gate} of ${evo.id}.`, "ok");
      refresh();
    } catch (err) {
      tell(`Could not decide: ${errorText(err)}`);
    }
  };
  const stop = async () => {
    try {
      await api("POST", `/v1/agents/${agentId}/evolutions/${evo.id}/stop`);
      refresh();
    } catch (err) {
      tell(`Could not stop ${evo.id}: ${errorText(err)}`);
    }
  };
  const events = h("div", {});
  const details = h("details", {}, h("summary", {}, "Events"), events);
  details.addEventListener("toggle", async () => {
    if (!details.open || events.childElementCount) return;
    try {
      const full = await get(`/v1/agents/${agentId}/evolutions/${evo.id}`);
      replace(events, h("ol", { class: "events" }, (full.events || []).map((e) => h("li", {}, h("span", { class: "muted" }, when(e.created_at)), ` [${e.phase}] ${e.message}`))));
    } catch (err) {
      replace(events, h("p", { class: "error", role: "alert" }, errorText(err)));
    }
  });
  return h("tr", {},
    h("td", {}, h("span", { class: `status ${evo.status}` }, evo.status), h("div", { class: "mono small muted" }, evo.id)),
    h("td", {}, `r${evo.base_revision} → ${evo.candidate_revision ? `r${evo.candidate_revision}` : "—"}`),
    h("td", {}, evo.rationale || "—"),
    h("td", {}, shadowCell(evo)),
    h("td", {}, evo.canary ? `${Math.round((evo.canary.weight || 0) * 100)}%` : "—"),
    h("td", {}, evo.decision ? h("strong", {}, evo.decision) : "—", evo.reason ? h("div", { class: "small" }, evo.reason) : null, details),
    h("td", { class: "actions" },
      gate ? [h("button", { type: "button", onclick: () => decide(true) }, `Approve ${gate}`), h("button", { type: "button", class: "danger", onclick: () => decide(false) }, "Reject")] : null,
      TERMINAL.has(evo.status) ? null : h("button", { type: "button", class: "danger", onclick: stop }, "Stop"),
    ),
  );
}

function revisionRow(agentId, rev, refresh) {
  const rollback = async () => {
    if (!confirm(`Run revision ${rev.number} again? This makes a new revision equal to it and stops any evolution in flight.`)) return;
    try {
      const made = await api("POST", `/v1/agents/${agentId}/revisions/${rev.number}/rollback`, { body: { rationale: `rolled back to revision ${rev.number} from the console` } });
      tell(`The agent now runs revision ${made.number} (= revision ${rev.number}).`, "ok");
      refresh();
    } catch (err) {
      tell(`Could not roll back: ${errorText(err)}`);
    }
  };
  return h("tr", { class: rev.current ? "current" : "" },
    h("th", { scope: "row" }, `r${rev.number}`, rev.current ? h("span", { class: "tag" }, "current") : null),
    h("td", {}, rev.author),
    h("td", {}, rev.rationale || "—"),
    h("td", {}, when(rev.created_at)),
    h("td", {}, rev.current ? null : h("button", { type: "button", onclick: rollback }, `Roll back to r${rev.number}`)),
  );
}

function diffSection(agentId, revisions) {
  const numbers = revisions.map((r) => r.number);
  const pick = (name, chosen) => h("select", { name }, numbers.map((n) => h("option", { value: n, selected: n === chosen || undefined }, `r${n}`)));
  const left = pick("left", numbers.length > 1 ? numbers[numbers.length - 2] : numbers[0]);
  const right = pick("right", numbers[numbers.length - 1]);
  const out = h("div", { class: "diff-out", "aria-live": "polite" });
  const form = h("form", { class: "inline", "aria-label": "Compare two revisions" }, field("From", left), field("To", right), h("button", { type: "submit" }, "Compare"));
  const compare = async () => {
    try {
      const [a, b] = await Promise.all([left.value, right.value].map((n) => get(`/v1/agents/${agentId}/revisions/${n}`)));
      replace(out, diffTable(`r${a.number}`, JSON.stringify(a.config, null, 2), `r${b.number}`, JSON.stringify(b.config, null, 2)));
    } catch (err) {
      replace(out, h("p", { class: "error", role: "alert" }, errorText(err)));
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    compare();
  });
  if (numbers.length) compare();
  return h("section", { "aria-label": "Compare revisions" }, h("h2", {}, "Compare revisions"), form, out);
}

function policyControls(agentId) {
  return loading("Evolution policy", async (reload) => {
    const policy = await get(`/v1/agents/${agentId}/evolution-policy`);
    const paused = policy.schedule === "manual";
    const toggle = async () => {
      try {
        await api("PUT", `/v1/agents/${agentId}/evolution-policy`, { body: { ...policy, schedule: paused ? "scheduled" : "manual" } });
        tell(paused ? "Scheduled evolution resumed." : "Evolution paused: sleep-time starts no evolutions until resumed.", "ok");
        reload();
      } catch (err) {
        tell(`Could not change the policy: ${errorText(err)}`);
      }
    };
    return [
      h("p", {}, paused ? "Paused: only the owner starts evolutions." : "Scheduled: sleep-time may start evolutions.",
        ` Approval: ${policy.approval}.`),
      h("button", { type: "button", onclick: toggle }, paused ? "Resume evolution" : "Pause evolution"),
    ];
  }, "h2");
}

export function evolutionPage(agentId) {
  const page = h("div", {});
  const render = async () => {
    try {
      const [agent, revisions, evolutions] = await Promise.all([
        get(`/v1/agents/${agentId}`),
        all(`/v1/agents/${agentId}/revisions`, { order: "asc" }, (r) => r.number),
        all(`/v1/agents/${agentId}/evolutions`, { order: "asc" }, (e) => e.id),
      ]);
      const detailed = await Promise.all(evolutions.map((e) => get(`/v1/agents/${agentId}/evolutions/${e.id}`)));
      replace(page,
        h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: `#/agents/${agentId}` }, `← ${agent.name}`)),
        h("h1", {}, `Evolution of ${agent.name}`),
        h("section", { "aria-label": "Timeline" }, h("h2", {}, "Timeline"), timelineChart(revisions, detailed)),
        policyControls(agentId),
        h("section", { "aria-label": "Evolutions" }, h("h2", {}, "Evolutions"),
          detailed.length
            ? h("div", { class: "scroll" }, h("table", {},
                h("thead", {}, h("tr", {}, ["Status", "Revisions", "Proposal", "Shadow score (current → candidate)", "Canary", "Decision and reason", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
                h("tbody", {}, detailed.slice().reverse().map((e) => evolutionRow(agentId, e, render)))))
            : h("p", { class: "muted" }, "No evolutions yet.")),
        h("section", { "aria-label": "Revisions" }, h("h2", {}, "Revisions"),
          h("div", { class: "scroll" }, h("table", {},
            h("thead", {}, h("tr", {}, ["Revision", "Author", "Rationale", "Created", ""].map((t) => h("th", { scope: "col" }, t)))),
            h("tbody", {}, revisions.slice().reverse().map((r) => revisionRow(agentId, r, render)))))),
        diffSection(agentId, revisions),
      );
    } catch (err) {
      replace(page, h("h1", {}, "Evolution"), h("p", { class: "error", role: "alert" }, `Could not load the evolution: ${errorText(err)}`));
    }
  };
  replace(page, h("p", { class: "muted" }, "Loading…"));
  render();
  return page;
}
