// Agents: search by text and tags, create with model and embedding pickers, delete.
import { h, replace, field, when, errorText, tell } from "./dom.js";
import { api, get } from "./api.js";
import { paged } from "./paging.js";

const tagsOf = (text) => text.split(",").map((t) => t.trim()).filter(Boolean);

function agentRow(agent, refresh) {
  const remove = async () => {
    if (!confirm(`Delete agent ${agent.name}? Its memory and history go with it.`)) return;
    try {
      await api("DELETE", `/v1/agents/${agent.id}`);
      tell(`Deleted ${agent.name}.`, "ok");
      refresh();
    } catch (err) {
      tell(`Could not delete ${agent.name}: ${errorText(err)}`);
    }
  };
  return h(
    "li",
    { class: "agent" },
    h("a", { href: `#/agents/${agent.id}` }, agent.name),
    h("span", { class: "muted mono" }, agent.id),
    h("span", {}, (agent.llm_config && agent.llm_config.handle) || agent.model || ""),
    h("span", { class: "tags" }, (agent.tags || []).map((t) => h("span", { class: "tag" }, t))),
    h("span", { class: "muted" }, when(agent.created_at)),
    h("button", { type: "button", class: "danger", onclick: remove, "aria-label": `Delete ${agent.name}` }, "Delete"),
  );
}

function createForm() {
  const name = h("input", { name: "name", required: true, maxlength: 200 });
  const model = h("select", { name: "model", required: true }, h("option", { value: "" }, "Loading models…"));
  const embedding = h("select", { name: "embedding" }, h("option", { value: "" }, "Loading…"));
  const tags = h("input", { name: "tags" });
  const persona = h("textarea", { name: "persona", rows: 2 }, "I am a helpful assistant.");
  const human = h("textarea", { name: "human", rows: 2 }, "Nothing known yet.");
  const status = h("p", { "aria-live": "polite" });
  const fill = async (select, path, blank) => {
    try {
      const models = await get(path);
      replace(select, blank ? h("option", { value: "" }, blank) : null, models.map((m) => h("option", { value: m.handle }, m.handle)));
      if (!models.length) replace(select, h("option", { value: "" }, "No models: configure a provider (see the README)"));
    } catch (err) {
      replace(select, h("option", { value: "" }, "Could not list models"));
      replace(status, h("span", { class: "error", role: "alert" }, `Could not list models: ${errorText(err)}`));
    }
  };
  fill(model, "/v1/models/");
  fill(embedding, "/v1/models/embedding", "The server's default");
  const form = h(
    "form",
    { class: "card", "aria-label": "Create an agent" },
    h("h2", {}, "Create an agent"),
    h("div", { class: "grid" },
      field("Name", name),
      field("Model", model, "From GET /v1/models/"),
      field("Embedding model", embedding, "From GET /v1/models/embedding"),
      field("Tags", tags, "Comma-separated"),
      field("Persona block", persona),
      field("Human block", human),
    ),
    h("button", { type: "submit" }, "Create agent"),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      name: name.value.trim(),
      model: model.value,
      tags: tagsOf(tags.value),
      memory_blocks: [
        { label: "persona", value: persona.value },
        { label: "human", value: human.value },
      ],
    };
    if (embedding.value) body.embedding = embedding.value;
    replace(status, "Creating…");
    try {
      const agent = await api("POST", "/v1/agents/", { body });
      location.hash = `#/agents/${agent.id}`;
    } catch (err) {
      replace(status, h("span", { class: "error", role: "alert" }, `Could not create the agent: ${errorText(err)}`));
    }
  });
  return form;
}

export function agentsPage() {
  const query = h("input", { type: "search", name: "query" });
  const tags = h("input", { name: "tags" });
  const all = h("input", { type: "checkbox", name: "match_all_tags" });
  const results = h("div", {});
  const search = () =>
    replace(results, paged({
      label: "Agents",
      empty: "No agents match.",
      fetchPage: (after, limit) =>
        get("/v1/agents/", { query_text: query.value.trim(), tags: tagsOf(tags.value), match_all_tags: all.checked || undefined, after, limit }),
      render: (agent) => agentRow(agent, search),
    }));
  const form = h(
    "form",
    { class: "searchbar", role: "search", "aria-label": "Search agents" },
    field("Search", query),
    field("Tags", tags, "Comma-separated"),
    h("label", { class: "check" }, all, " all tags"),
    h("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    search();
  });
  search();
  return h("div", {}, h("h1", {}, "Agents"), form, results, createForm());
}
