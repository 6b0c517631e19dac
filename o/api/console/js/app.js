// The console's shell: sign-in with an API key, hash routes, and a notice area for errors.
import { h, replace, field, errorText, tell } from "./dom.js";
import { get, key, setKey } from "./api.js";
import { agentsPage } from "./agents.js";
import { agentPage } from "./agent.js";
import { runsPage, tracePage } from "./runs.js";
import { evolutionPage } from "./evolution.js";

const main = document.getElementById("main");
const signOut = document.getElementById("sign-out");

const routes = [
  [/^#\/agents\/([^/]+)\/runs$/, (m) => runsPage(m[1])],
  [/^#\/agents\/([^/]+)\/evolution$/, (m) => evolutionPage(m[1])],
  [/^#\/agents\/([^/]+)$/, (m) => agentPage(m[1])],
  [/^#\/runs\/([^/]+)$/, (m) => tracePage(m[1])],
  [/^#\/agents$/, () => agentsPage()],
];

function signInPage(reason) {
  const input = h("input", { type: "password", name: "key", autocomplete: "off", required: true, spellcheck: "false" });
  const form = h(
    "form",
    { class: "card narrow" },
    h("h1", {}, "Sign in"),
    reason ? h("p", { class: "error", role: "alert" }, reason) : null,
    field("API key", input, "Made with `o keys create`. Kept in this tab only (sessionStorage) and sent to this server alone."),
    h("button", { type: "submit" }, "Open console"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setKey(input.value.trim());
    try {
      await get("/v1/agents/", { limit: 1 });
      tell(null);
      if (!location.hash || location.hash === "#/") location.hash = "#/agents"; // hashchange routes
      else route();
    } catch (err) {
      setKey(null);
      replace(form.querySelector(".error") || form.insertBefore(h("p", { class: "error", role: "alert" }), form.children[1]), errorText(err));
    }
  });
  return form;
}

function route() {
  signOut.hidden = !key();
  if (!key()) {
    replace(main, signInPage());
    main.querySelector("input").focus();
    return;
  }
  const hash = location.hash || "#/agents";
  const match = routes.map(([re, page]) => [hash.match(re), page]).find(([m]) => m);
  if (!match) {
    location.hash = "#/agents";
    return;
  }
  tell(null);
  replace(main, match[1](match[0]));
  main.focus({ preventScroll: true });
}

signOut.addEventListener("click", () => {
  setKey(null);
  route();
});
window.addEventListener("o-unauthorized", () => {
  setKey(null);
  replace(main, signInPage("The API refused the key (401). Enter a valid one."));
  signOut.hidden = true;
});
window.addEventListener("hashchange", route);
route();
