// The API, from the same origin, with the key the user entered (kept in this tab's sessionStorage).

const KEY = "o-console-key";
// "" locally; "/prod" behind API Gateway's stage path: everything before /console/.
export const base = location.pathname.replace(/\/console(\/.*)?$/, "");

export const key = () => sessionStorage.getItem(KEY);
export const setKey = (value) => (value ? sessionStorage.setItem(KEY, value) : sessionStorage.removeItem(KEY));

export class ApiError extends Error {
  constructor(status, detail) {
    super(`${status ? `HTTP ${status}: ` : ""}${detail}`);
    this.status = status;
  }
}

function describe(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => (d && d.msg ? `${(d.loc || []).slice(1).join(".") || "body"}: ${d.msg}` : JSON.stringify(d))).join("; ");
  }
  return JSON.stringify(detail);
}

export function url(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) query.append(name, v);
  }
  const q = query.toString();
  return `${base}${path}${q ? `?${q}` : ""}`;
}

async function send(method, path, { body, params } = {}) {
  const headers = { Authorization: `Bearer ${key()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url(path, params), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, `the server could not be reached (${err.message})`);
  }
  if (response.status === 401) window.dispatchEvent(new CustomEvent("o-unauthorized"));
  if (!response.ok) {
    let detail = response.statusText || "request failed";
    try {
      const data = await response.json();
      detail = describe(data.detail ?? data);
    } catch {
      /* not JSON: keep the status text */
    }
    throw new ApiError(response.status, detail);
  }
  return response;
}

export async function api(method, path, options) {
  const response = await send(method, path, options);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, params) => api("GET", path, { params });

// Server-sent events of a POST (EventSource can only GET): yields each `data:` JSON, and the run id.
export async function* stream(path, body) {
  const response = await send("POST", path, { body });
  yield { message_type: "o_run", run_id: response.headers.get("X-Run-Id") };
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
      const data = event.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (!data) continue;
      if (data === "[DONE]") return;
      yield JSON.parse(data);
    }
    if (done) return;
  }
}
