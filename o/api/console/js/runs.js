// Runs of an agent, and one run's trace: each step's messages, tool calls, tokens, latency and cost.
import { h, when, loading } from "./dom.js";
import { get } from "./api.js";
import { paged } from "./paging.js";

const ms = (ns) => (ns === null || ns === undefined ? "—" : `${(ns / 1e6).toFixed(0)} ms`);
const usd = (v) => (v === null || v === undefined ? "not priced" : `$${Number(v).toFixed(6)}`);

export function runsPage(agentId) {
  return h(
    "div",
    {},
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: `#/agents/${agentId}` }, "← Agent")),
    h("h1", {}, "Runs"),
    paged({
      label: "Runs",
      container: "ol",
      empty: "No runs yet.",
      fetchPage: (after, limit) => get("/v1/runs/", { agent_id: agentId, after, limit }),
      render: (run) =>
        h("li", { class: "run" },
          h("a", { href: `#/runs/${run.id}` }, run.id),
          h("span", { class: `status ${run.status}` }, run.status),
          h("span", { class: "muted" }, run.stop_reason || ""),
          h("span", { class: "muted" }, when(run.created_at)),
        ),
    }),
  );
}

function messageLine(m) {
  const t = m.message_type;
  if (t === "user_message") return h("li", { class: "user" }, h("span", { class: "who" }, "User"), typeof m.content === "string" ? m.content : JSON.stringify(m.content));
  if (t === "assistant_message") return h("li", { class: "assistant" }, h("span", { class: "who" }, "Agent"), typeof m.content === "string" ? m.content : JSON.stringify(m.content));
  if (t === "reasoning_message") return h("li", { class: "reasoning" }, h("span", { class: "who" }, "Thinking"), m.reasoning);
  if (t === "tool_call_message") {
    const c = m.tool_call || (m.tool_calls || [])[0] || {};
    return h("li", { class: "tool" }, h("span", { class: "who" }, "Tool call"), h("code", {}, `${c.name}(${c.arguments || ""})`));
  }
  if (t === "tool_return_message") return h("li", { class: "tool-return" }, h("span", { class: "who" }, `Returned (${m.status})`), h("code", {}, String(m.tool_return ?? "")));
  return h("li", { class: "meta" }, h("span", { class: "who" }, t), JSON.stringify(m).slice(0, 300));
}

async function stepCard(step, messages) {
  let metrics = null;
  try {
    metrics = await get(`/v1/steps/${step.id}/metrics`);
  } catch {
    /* shown as unknown below */
  }
  const mine = messages.filter((m) => m.step_id === step.id);
  return h(
    "li",
    { class: "step card" },
    h("h3", {}, `Step ${step.step_index ?? ""} `, h("span", { class: "mono muted" }, step.id)),
    h("dl", { class: "figures" },
      h("dt", {}, "Model"), h("dd", {}, step.model_handle || step.model || "—"),
      h("dt", {}, "Tokens"), h("dd", {}, `${step.prompt_tokens ?? "?"} in · ${step.completion_tokens ?? "?"} out · ${step.total_tokens ?? "?"} total`),
      h("dt", {}, "Latency"), h("dd", {}, metrics ? `${ms(metrics.step_ns)} (model ${ms(metrics.llm_request_ns)}, tools ${ms(metrics.tool_execution_ns)})` : "—"),
      h("dt", {}, "Cost"), h("dd", {}, usd(step.cost_usd)),
      h("dt", {}, "Status"), h("dd", {}, `${step.status}${step.stop_reason ? ` (${step.stop_reason})` : ""}`),
      h("dt", {}, "Feedback"), h("dd", {}, step.feedback || "none"),
    ),
    step.error_data ? h("p", { class: "error" }, step.error_data.message) : null,
    h("ol", { class: "chat" }, mine.map(messageLine)),
  );
}

export function tracePage(runId) {
  return h("div", {}, loading(`Run ${runId}`, async () => {
    const run = await get(`/v1/runs/${runId}`);
    const [steps, messages] = await Promise.all([
      get("/v1/steps/", { trace_ids: runId, order: "asc", limit: 100 }),
      get(`/v1/runs/${runId}/messages`, { limit: 100 }),
    ]);
    const loose = messages.filter((m) => !steps.some((s) => s.id === m.step_id));
    return [
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: `#/agents/${run.agent_id}` }, "← Agent"), " ", h("a", { href: `#/agents/${run.agent_id}/runs` }, "Runs")),
      h("p", {}, `Status ${run.status}`, run.stop_reason ? ` · ${run.stop_reason}` : "", ` · started ${when(run.created_at)}`, run.completed_at ? ` · finished ${when(run.completed_at)}` : ""),
      loose.length ? h("section", { "aria-label": "Input" }, h("h2", {}, "Input"), h("ol", { class: "chat" }, loose.map(messageLine))) : null,
      h("h2", {}, `${steps.length} step(s)`),
      h("ol", { class: "steps" }, await Promise.all(steps.map((s) => stepCard(s, messages)))),
    ];
  }, "h1"));
}
