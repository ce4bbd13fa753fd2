/* gplinker page.js: the service's page. Sends the texts to POST extract and draws each
   answer with GPL.render; errors show the server's "detail". */
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  function headers() {
    const h = { "Content-Type": "application/json" };
    const key = $("key").value.trim();
    if (key) h.Authorization = `Bearer ${key}`;
    return h;
  }

  function say(message, isError) {
    $("status").textContent = message;
    $("status").className = isError ? "gpl-error" : "gpl-hint";
  }

  /** FastAPI's detail: a string, or a list of {loc, msg} from validation. */
  function detail(body, status) {
    const d = body && body.detail;
    if (typeof d === "string") return d;
    if (Array.isArray(d)) {
      return d.map((e) => [...(e.loc || []).slice(1), e.msg].join(": ")).join("; ");
    }
    return `HTTP ${status}`;
  }

  async function extract() {
    const texts = $("text").value.split("\n").filter((t) => t.trim());
    if (!texts.length) return say("type a text first", true);
    $("go").disabled = true;
    say("extracting…");
    try {
      const r = await fetch("extract", {
        method: "POST", headers: headers(), body: JSON.stringify({ texts }),
      });
      const body = await r.json().catch(() => null);
      if (!r.ok) {
        const what = r.status === 401 ? "needs an API key" : `error ${r.status}`;
        return say(`${what}: ${detail(body, r.status)}`, true);
      }
      $("out").replaceChildren(...body.results.map((row) => GPL.render(body.task, row)));
      say(`${body.task}: ${body.results.length} text${body.results.length === 1 ? "" : "s"}`);
    } catch (e) {
      say(`cannot reach the service: ${e.message}`, true);
    } finally {
      $("go").disabled = false;
    }
  }

  $("go").addEventListener("click", extract);
  $("text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) extract();
  });
  fetch("health").then((r) => r.json()).then((h) => {
    if (h.task) $("task").textContent = `${h.task} extraction`;
  }).catch(() => {});
})();
