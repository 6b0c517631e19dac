// One agent: its memory as the model sees it (editable), a streaming chat with tool calls, memory edits and
// per-step feedback inline, archival memory search and insert, attached tools and their rules.
import { h, append, replace, field, when, errorText, loading, tell } from "./dom.js";
import { api, get, stream } from "./api.js";
import { paged } from "./paging.js";

const MEMORY_TOOLS = /^(core_memory_|memory_|memory$|archival_memory_insert|rethink_memory|finish_rethinking_memory)/;

function blockEditor(agentId, block, onSaved) {
  const text = h("textarea", { rows: Math.min(10, Math.max(3, block.value.split("\n").length + 1)), maxlength: block.limit, "data-label": block.label }, block.value);
  const count = h("span", { class: "count", "aria-live": "polite" });
  const status = h("span", { "aria-live": "polite" });
  const counted = () => replace(count, `${text.value.length} / ${block.limit} characters`);
  text.addEventListener("input", counted);
  counted();
  const save = h("button", { type: "submit", disabled: block.read_only || undefined }, `Save ${block.label}`);
  const form = h(
    "form",
    { class: "block", "aria-label": `Memory block ${block.label}` },
    field(`<${block.label}>`, text, block.description || (block.read_only ? "read-only" : undefined)),
    h("div", { class: "row" }, count, save, status),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    replace(status, "Saving…");
    try {
      await api("PATCH", `/v1/agents/${agentId}/core-memory/blocks/${encodeURIComponent(block.label)}`, { body: { value: text.value } });
      replace(status, h("span", { class: "ok" }, "Saved"));
      onSaved();
    } catch (err) {
      replace(status, h("span", { class: "error", role: "alert" }, errorText(err)));
    }
  });
  return form;
}

function memorySection(agentId) {
  const compiled = h("pre", { class: "compiled" });
  let section;
  const refreshCompiled = async () => {
    try {
      replace(compiled, (await get(`/v1/agents/${agentId}/context`)).core_memory);
    } catch (err) {
      replace(compiled, `Could not compile the memory: ${errorText(err)}`);
    }
  };
  section = loading("Memory", async () => {
    const blocks = await get(`/v1/agents/${agentId}/core-memory/blocks`);
    refreshCompiled();
    return [
      h("p", { class: "muted" }, "Each block as the model reads it in its system prompt, with its character limit."),
      blocks.map((b) => blockEditor(agentId, b, refreshCompiled)),
      h("details", {}, h("summary", {}, "Compiled into the prompt"), compiled),
    ];
  });
  return section;
}

function describeCall(call) {
  let args = call.arguments || "";
  try {
    args = JSON.stringify(JSON.parse(args));
  } catch {
    /* still streaming, or not JSON: show as sent */
  }
  return `${call.name || "tool"}(${args})`;
}

function feedbackFor(step) {
  const status = h("span", { "aria-live": "polite" });
  const comment = h("input", { name: "comment", maxlength: 4000 });
  let verdict = step.feedback || null;
  const thumb = (value, label, symbol) => {
    const b = h("button", { type: "button", class: "thumb", "aria-pressed": String(verdict === value), "aria-label": `${label} step ${step.id}`, title: label }, symbol);
    b.addEventListener("click", () => {
      verdict = verdict === value ? null : value;
      up.setAttribute("aria-pressed", String(verdict === "positive"));
      down.setAttribute("aria-pressed", String(verdict === "negative"));
    });
    return b;
  };
  // plain glyphs with words: emoji fonts are not on every machine, and the words say it to everyone
  const up = thumb("positive", "Good", "▲ Good");
  const down = thumb("negative", "Bad", "▼ Bad");
  const form = h(
    "form",
    { class: "feedback", "aria-label": `Feedback on step ${step.id}` },
    h("span", { class: "muted" }, `step ${step.step_index ?? ""} · ${step.total_tokens ?? "?"} tokens`),
    up,
    down,
    field("Comment", comment),
    h("button", { type: "submit" }, "Send feedback"),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const body = { feedback: verdict };
      if (comment.value.trim()) body.comment = comment.value.trim();
      await api("PATCH", `/v1/steps/${step.id}/feedback`, { body });
      replace(status, h("span", { class: "ok" }, verdict ? "Feedback saved" : "Feedback cleared"));
    } catch (err) {
      replace(status, h("span", { class: "error", role: "alert" }, errorText(err)));
    }
  });
  return form;
}

function chatSection(agentId, onMemoryEdit) {
  const log = h("ol", { class: "chat", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  const input = h("textarea", { name: "message", rows: 2, required: true });
  const sendButton = h("button", { type: "submit" }, "Send");
  const form = h("form", { class: "composer", "aria-label": "Send a message" }, field("Message", input, "Enter sends; Shift+Enter starts a new line"), sendButton);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  const say = (cls, ...content) => {
    const item = h("li", { class: cls }, ...content);
    append(log, [item]);
    item.scrollIntoView({ block: "nearest" });
    return item;
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    sendButton.disabled = true;
    say("user", h("span", { class: "who" }, "You"), text);
    const seen = new Map();
    let runId = null;
    let edited = false;
    try {
      for await (const chunk of stream(`/v1/agents/${agentId}/messages/stream`, { messages: [{ role: "user", content: text }], stream_tokens: true })) {
        const type = chunk.message_type;
        if (type === "o_run") runId = chunk.run_id;
        else if (chunk.run_id && !runId) runId = chunk.run_id;
        const id = chunk.id ? `${type}:${chunk.id}` : null;
        if (type === "assistant_message" || type === "reasoning_message") {
          const piece = type === "assistant_message" ? chunk.content : chunk.reasoning;
          const pieceText = typeof piece === "string" ? piece : (piece || []).map((p) => p.text || "").join("");
          if (id && seen.has(id)) append(seen.get(id), [pieceText]);
          else {
            const body = h("span", { class: "text" }, pieceText);
            say(type === "assistant_message" ? "assistant" : "reasoning", h("span", { class: "who" }, type === "assistant_message" ? "Agent" : "Thinking"), body);
            if (id) seen.set(id, body);
          }
        } else if (type === "tool_call_message" || type === "approval_request_message") {
          const call = chunk.tool_call || (chunk.tool_calls || [])[0] || {};
          const entry = id && seen.get(id);
          const merged = entry ? { name: entry.call.name || call.name, arguments: (entry.call.arguments || "") + (call.arguments || "") } : { ...call };
          const memory = MEMORY_TOOLS.test(merged.name || "");
          if (memory) edited = true;
          const line = h("code", {}, describeCall(merged));
          const content = [h("span", { class: "who" }, memory ? "✎ memory edit" : "Tool call"), line];
          if (entry) replace(entry.item, ...content);
          const item = entry ? entry.item : say(memory ? "tool memory" : "tool", ...content);
          if (id) seen.set(id, { item, call: merged });
        } else if (type === "tool_return_message") {
          say(`tool-return ${chunk.status === "error" ? "failed" : ""}`, h("span", { class: "who" }, `Returned (${chunk.status || "ok"})`), h("code", {}, String(chunk.tool_return ?? "")));
        } else if (type === "stop_reason" && chunk.stop_reason !== "end_turn") {
          say("meta", `Stopped: ${chunk.stop_reason}`);
        } else if (type === "usage_statistics") {
          say("meta", `${chunk.total_tokens ?? "?"} tokens, ${chunk.step_count ?? "?"} step(s)`);
        } else if (type === "error_message" || type === "error") {
          say("meta error", chunk.message || chunk.detail || JSON.stringify(chunk));
        }
      }
      if (runId) {
        const steps = await get(`/v1/runs/${runId}/steps`, { limit: 100 });
        say("steps", h("a", { href: `#/runs/${runId}` }, "Open this run's trace"), steps.map(feedbackFor));
      }
    } catch (err) {
      say("meta error", `The message failed: ${errorText(err)}`);
    } finally {
      sendButton.disabled = false;
      if (edited) onMemoryEdit();
    }
  });
  return h("section", { "aria-label": "Chat" }, h("h2", {}, "Chat"), log, form);
}

function archivalSection(agentId) {
  const query = h("input", { type: "search", name: "query", required: true });
  const results = h("div", { "aria-live": "polite" });
  const search = h("form", { role: "search", class: "inline", "aria-label": "Search archival memory" }, field("Search archival memory", query), h("button", { type: "submit" }, "Search"));
  search.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const found = await get(`/v1/agents/${agentId}/archival-memory/search`, { query: query.value, top_k: 10 });
      const hits = found.results || [];
      replace(results, hits.length ? h("ol", { class: "hits" }, hits.map((r) => h("li", {}, r.content, " ", h("span", { class: "muted" }, when(r.timestamp))))) : h("p", {}, "No passages match."));
    } catch (err) {
      replace(results, h("p", { class: "error", role: "alert" }, errorText(err)));
    }
  });
  const list = h("div", {});
  const showAll = () =>
    replace(list, paged({
      label: "Archival passages",
      empty: "No passages yet.",
      fetchPage: (after, limit) => get(`/v1/agents/${agentId}/archival-memory`, { after, limit, ascending: false }),
      render: (p) => h("li", {}, p.text, " ", h("span", { class: "muted" }, when(p.created_at))),
    }));
  const text = h("textarea", { name: "passage", rows: 2, required: true });
  const status = h("span", { "aria-live": "polite" });
  const insert = h("form", { class: "inline", "aria-label": "Insert into archival memory" }, field("New passage", text), h("button", { type: "submit" }, "Insert"), status);
  insert.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", `/v1/agents/${agentId}/archival-memory`, { body: { text: text.value } });
      text.value = "";
      replace(status, h("span", { class: "ok" }, "Inserted"));
      showAll();
    } catch (err) {
      replace(status, h("span", { class: "error", role: "alert" }, errorText(err)));
    }
  });
  showAll();
  return h("section", { "aria-label": "Archival memory" }, h("h2", {}, "Archival memory"), search, results, insert, h("h3", {}, "Passages"), list);
}

function toolsSection(agent) {
  return loading("Tools and rules", async () => {
    const tools = await get(`/v1/agents/${agent.id}/tools`, { limit: 100 });
    const rules = agent.tool_rules || [];
    return [
      h("ul", { class: "tools" }, tools.map((t) => h("li", {}, h("code", {}, t.name), " ", h("span", { class: "muted" }, t.tool_type || ""), h("div", { class: "muted small" }, (t.description || "").split("\n")[0]))) ),
      h("h3", {}, "Rules"),
      rules.length
        ? h("ul", {}, rules.map((r) => h("li", {}, h("strong", {}, r.type), " ", h("code", {}, r.tool_name), r.children ? ` → ${r.children.join(", ")}` : "")))
        : h("p", { class: "muted" }, "No tool rules."),
    ];
  });
}

export function agentPage(agentId) {
  const page = h("div", { class: "agent-page" });
  (async () => {
    let agent;
    try {
      agent = await get(`/v1/agents/${agentId}`);
    } catch (err) {
      replace(page, h("h1", {}, "Agent"), h("p", { class: "error", role: "alert" }, `Could not load the agent: ${errorText(err)}`));
      return;
    }
    const memory = h("div", {}, memorySection(agentId));
    const reloadMemory = () => replace(memory, memorySection(agentId));
    replace(
      page,
      h("h1", {}, agent.name),
      h("p", { class: "muted" }, h("span", { class: "mono" }, agent.id), ` · ${(agent.llm_config && agent.llm_config.handle) || agent.model || ""} · revision ${(agent.metadata || {}).revision ?? "?"}`),
      h("nav", { class: "subnav", "aria-label": "Agent" }, h("a", { href: `#/agents/${agentId}/runs` }, "Runs and steps"), h("a", { href: `#/agents/${agentId}/evolution` }, "Evolution")),
      h("div", { class: "columns" }, h("div", {}, chatSection(agentId, reloadMemory)), memory),
      archivalSection(agentId),
      toolsSection(agent),
    );
  })();
  return page;
}
