// The Agent view (#agent): a question answered in several tool-using steps (POST /api/agent,
// streamed as Server-Sent Events: step, token, then answer). Each step shows its tool call and,
// expanded, its result; the checked answer and its sources follow. Past runs (GET
// /api/agent/runs) open as their trace (GET /api/agent/runs/{id}): spans, expandable.
// All text goes in as text nodes, never as HTML.
(() => {
  "use strict";

  const $ = (sel) => document.querySelector(sel);
  const MARKS = { supported: "✓", unsupported: "✗ unsupported", contradicted: "! contradicted" };

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function build() {
    $("header.top nav ul").append(el("li", {}, el("a", { href: "#agent", "data-view": "agent" }, "Agent")));
    const section = el("section", { id: "view-agent", class: "view", "aria-labelledby": "h-agent" },
      el("h1", { id: "h-agent" }, "Agent"),
      el("p", { class: "status-line" },
        "Questions that take several steps: the model searches, reads notes and follows links, then answers."),
      el("form", { id: "agent-form", class: "bar" },
        el("label", { for: "agent-question", class: "visually-hidden" }, "Question"),
        el("input", { id: "agent-question", name: "question", type: "text", required: "",
          placeholder: "What did I decide in the project my retro links to?", autocomplete: "off" }),
        el("label", { class: "check" }, "Steps ",
          el("input", { id: "agent-steps", type: "number", min: "1", max: "12", value: "4" })),
        el("button", { type: "submit" }, "Run")),
      el("p", { id: "agent-status", class: "status-line", role: "status", "aria-live": "polite" }),
      el("ol", { id: "agent-steps-list", class: "agent-steps", "aria-label": "Steps" }),
      el("div", { id: "agent-answer", class: "agent-answer", "aria-live": "polite" }),
      el("h2", {}, "Recent runs"),
      el("ul", { id: "agent-runs", class: "plain-list" }),
      el("div", { id: "agent-trace", class: "agent-trace" }));
    section.hidden = true;
    $("#main").append(section);
    $("#agent-form").addEventListener("submit", (e) => { e.preventDefault(); run(); });
  }

  function callText(step) {
    const args = Object.entries(step.arguments || {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ");
    return step.tool ? `${step.tool}(${args})` : "(no valid call)";
  }

  function stepItem(step) {
    let outcome = step.chunk_ids && step.chunk_ids.length ? `${step.chunk_ids.length} passages` : "done";
    if (!step.valid) outcome = `refused: ${step.error}`;
    else if (step.repeated) outcome = "refused: repeated call";
    else if (step.error) outcome = step.error;
    const summary = el("summary", {}, el("span", { class: "agent-step-n" }, `Step ${step.n}`), " ",
      el("code", { class: "agent-call" }, callText(step)), ` → ${outcome}`,
      step.auto ? " (kenning's own search)" : "");
    return el("li", { class: "agent-step" + (step.valid ? "" : " invalid") },
      el("details", {}, summary, el("pre", { class: "agent-result" }, step.result)));
  }

  function showAnswer(data) {
    const box = $("#agent-answer");
    box.replaceChildren();
    const text = el("p", { class: "agent-text" });
    for (const s of data.sentences || []) {
      const cites = (s.citations || []).map((n) => `[${n}]`).join("");
      text.append(el("span", { class: `sentence ${s.status}`, title: MARKS[s.status] || s.status },
        s.text, " ", el("sup", {}, cites), " "));
    }
    if (!(data.sentences || []).length) text.append(data.text || "");
    box.append(text);
    for (const note of data.notes || []) box.append(el("p", { class: "agent-note" }, note));
    const sources = el("ol", { class: "agent-sources", "aria-label": "Sources" });
    for (const s of data.sources || []) {
      const label = `${s.path}${s.heading ? " (" + s.heading + ")" : ""}`;
      const item = el("li", { value: String(s.n) });
      item.append(s.doc_id != null ? el("a", { href: `/doc/${s.doc_id}` }, label) : label);
      sources.append(item);
    }
    box.append(el("h2", {}, "Sources"), sources);
    $("#agent-status").textContent =
      `run ${String(data.run_id).slice(0, 12)} · ${(data.steps || []).length} steps · ${Number(data.seconds || 0).toFixed(1)} s`;
    loadRuns();
  }

  async function run() {
    const question = $("#agent-question").value.trim();
    if (!question) return;
    const steps = Number($("#agent-steps").value) || 4;
    $("#agent-steps-list").replaceChildren();
    $("#agent-answer").replaceChildren(el("p", { class: "agent-text" }));
    $("#agent-status").textContent = "Working…";
    const response = await fetch("/api/agent", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ question, steps }),
    });
    if (!response.ok || !response.body) {
      $("#agent-status").textContent = `Failed: ${response.status} ${response.statusText}`;
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        handle(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
    }
  }

  function handle(block) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    const payload = JSON.parse(data.join("\n") || "{}");
    if (event === "step") $("#agent-steps-list").append(stepItem(payload));
    else if (event === "token") $("#agent-answer .agent-text").append(payload.text);
    else if (event === "answer") showAnswer(payload);
    else if (event === "error") $("#agent-status").textContent = `Failed: ${payload.message}`;
  }

  function spanNode(span) {
    const a = span.attributes || {};
    const bits = [];
    if (a["gen_ai.tool.call.arguments"]) bits.push(a["gen_ai.tool.call.arguments"]);
    if ("gen_ai.usage.input_tokens" in a) bits.push(`${a["gen_ai.usage.input_tokens"]}+${a["gen_ai.usage.output_tokens"]} tokens`);
    if (a["kenning.tool.chunk_ids"] && a["kenning.tool.chunk_ids"].length) bits.push(`chunks ${a["kenning.tool.chunk_ids"].join(",")}`);
    const summary = el("summary", {}, `${span.name} · ${Number(span.seconds).toFixed(2)} s`,
      bits.length ? ` · ${bits.join(" · ")}` : "");
    const children = el("ul", { class: "plain-list" }, ...(span.children || []).map((c) => el("li", {}, spanNode(c))));
    return el("details", { class: "agent-span" }, summary, children);
  }

  async function showTrace(id) {
    const response = await fetch(`/api/agent/runs/${encodeURIComponent(id)}`);
    const box = $("#agent-trace");
    if (!response.ok) { box.textContent = "This run's trace cannot be read."; return; }
    const tree = spanNode(await response.json());
    tree.open = true;
    box.replaceChildren(el("h2", {}, "Trace"), tree);
  }

  async function loadRuns() {
    const response = await fetch("/api/agent/runs");
    if (!response.ok) return;
    const data = await response.json();
    $("#agent-runs").replaceChildren(...data.runs.map((r) => el("li", {},
      el("button", { type: "button", class: "link", onclick: () => showTrace(r.run_id) },
        `${r.question} (${r.steps} steps, ${Number(r.seconds).toFixed(1)} s)`))));
  }

  document.addEventListener("DOMContentLoaded", () => {
    build();
    window.kenningAddView("agent", () => {
      loadRuns();
      $("#agent-question").focus();
    });
  });
})();
