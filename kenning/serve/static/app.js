// kenning's web page: plain JavaScript over the JSON API under /api. No framework, no build.
// Every piece of user or document text goes into the page as a text node (textContent),
// never as HTML; the one exception is a source note, which the server renders and escapes
// (GET /doc/{id}?partial=1).
"use strict";

(() => {
  const $ = (sel, root = document) => root.querySelector(sel);

  // ---- small helpers ---------------------------------------------------------------

  /** Make an element: el("a", {href: "/", class: "x"}, "text", child, ...). */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const clear = (node) => { node.replaceChildren(); return node; };
  const num = (x, digits = 3) => (typeof x === "number" ? x.toFixed(digits) : "—");
  const when = (t) => (typeof t === "number" ? new Date(t * 1000).toLocaleString() : (t || "—"));
  const listOf = (data, key) => (Array.isArray(data) ? data : (data && data[key]) || []);

  // With an API key (a non-loopback bind), the browser opens /?key=KEY once and the server
  // keeps the key in an HttpOnly cookie, which every same-origin fetch below sends.
  const headers = (extra = {}) => extra;

  async function failure(res) {
    let message = res.status + " " + res.statusText;
    try {
      const body = await res.json();
      const detail = body.detail ?? body.message ?? body.error;
      if (detail) message = typeof detail === "string" ? detail : JSON.stringify(detail);
    } catch (_) { /* not JSON */ }
    return new Error(message);
  }

  async function getJSON(path) {
    const res = await fetch(path, { headers: headers({ Accept: "application/json" }) });
    if (!res.ok) throw await failure(res);
    return res.json();
  }

  /** POST and read Server-Sent Events from the response: onEvent(name, data) per event. */
  async function postEvents(path, body, onEvent) {
    const res = await fetch(path, {
      method: "POST",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify(body),
    });
    if (!res.ok) throw await failure(res);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    const dispatch = (block) => {
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
      }
      if (!data.length) return;
      const text = data.join("\n");
      let parsed = text;
      try { parsed = JSON.parse(text); } catch (_) { /* plain text */ }
      onEvent(name, parsed);
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        dispatch(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
    }
    if (buffer.trim()) dispatch(buffer);
  }

  function docHref(docId, start, end) {
    let href = "/doc/" + encodeURIComponent(docId);
    if (typeof start === "number" && typeof end === "number") {
      href += "?start=" + start + "&end=" + end;
    }
    return href;
  }

  /** A link that opens a hit or source in its app (obsidian://open in a vault, else file://):
   * only those two schemes, as the API sends them. */
  function appLink(url, label, text) {
    if (typeof url !== "string" || !/^(obsidian|file):/.test(url)) return null;
    const app = url.startsWith("obsidian:") ? "Obsidian" : "your file manager";
    return el("a", { class: "open-app", href: url, title: "Open in " + app,
      "aria-label": `Open ${label} in ${app}` }, text);
  }

  // Paths are shown under their root (til/git/x.md), as the command line shows them.
  let roots = [];
  function shortPath(path) {
    const root = roots.filter((r) => path.startsWith(r.replace(/\/?$/, "/")))
      .sort((a, b) => b.length - a.length)[0];
    if (!root) return path;
    const parent = root.replace(/\/+$/, "").split("/").slice(0, -1).join("/");
    return parent ? path.slice(parent.length + 1) : path;
  }

  // ---- views -----------------------------------------------------------------------

  // Every view is a <section id="view-NAME"> with a nav link; other scripts (agent.js, quiz.js)
  // add theirs with window.kenningAddView, so one route() shows exactly one view.
  const views = new Map([
    ["search", () => {}],
    ["ask", (arg) => {
      if (!loaded.has("ask")) loadConversations();
      if (arg && String(conversationId) !== arg) resume(arg);
    }],
    ["status", () => loadStatus()],
    ["evals", () => loadRuns()],
  ]);
  const loaded = new Set();

  function route() {
    const [name, arg] = (location.hash.slice(1) || "search").split("/");
    const view = views.has(name) ? name : "search";
    for (const v of views.keys()) $("#view-" + v).hidden = v !== view;
    for (const link of document.querySelectorAll("nav a[data-view]")) {
      if (link.dataset.view === view) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    views.get(view)(arg);
    loaded.add(view);
    return view;
  }

  window.kenningAddView = (name, onShow) => {
    views.set(name, onShow);
    if (location.hash.slice(1).split("/")[0] === name) route();
  };

  // ---- search ----------------------------------------------------------------------

  function fillSelect(select, values, toValue = (v) => v) {
    for (const item of values) {
      const name = typeof item === "string" ? item : (item.name ?? item.value ?? item.tag);
      if (name === undefined || name === null || name === "") continue;
      const count = typeof item === "object" && item.count !== undefined ? ` (${item.count})` : "";
      select.append(el("option", { value: toValue(String(name)) }, String(name) + count));
    }
  }

  async function loadFacets() {
    try {
      const facets = await getJSON("/api/facets");
      fillSelect($("#f-tag"), facets.tags || []);
      fillSelect($("#f-folder"), facets.folders || [], (f) => f.replace(/\/+$/, "") + "/**");
      fillSelect($("#f-type"), facets.types || []);
    } catch (err) {
      $("#search-status").textContent = "Filters unavailable: " + err.message;
    }
  }

  async function loadRoots() {
    try { roots = (await getJSON("/api/status")).roots || []; } catch (_) { roots = []; }
  }

  /** The snippet as nodes, each word matching a query term (by the same crude stem as
   * kenning.search.highlight_spans) wrapped in <mark>. */
  function highlighted(text, terms) {
    const stems = terms.map((t) => t.toLowerCase()).map((t) => t.slice(0, Math.max(4, t.length - 2)));
    const out = [];
    if (!stems.length) return [text];
    const word = /[\p{L}\p{N}_]+/gu;
    let last = 0;
    for (const m of text.matchAll(word)) {
      const w = m[0].toLowerCase();
      if (!stems.some((s) => w.startsWith(s))) continue;
      if (m.index > last) out.push(text.slice(last, m.index));
      out.push(el("mark", {}, m[0]));
      last = m.index + m[0].length;
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
  }

  function explain(hit) {
    const row = (name, value) => [el("dt", {}, name), el("dd", {}, value)];
    const rank = (r) => (typeof r === "number" ? "#" + r : "not in the top candidates");
    return el("details", { class: "explain" },
      el("summary", {}, "Explain", el("span", { class: "visually-hidden" }, " the score of " + (hit.title || hit.path))),
      el("dl", {},
        row("Fused score", num(hit.score)),
        row("BM25 rank", rank(hit.bm25_rank)),
        row("BM25 score", num(hit.bm25_score)),
        row("Dense rank", rank(hit.dense_rank)),
        row("Dense score", num(hit.dense_score))));
  }

  /** The notes that link to a hit's note (GET /api/links, the data of `kenning links`),
   * fetched when the panel is first opened. */
  function backlinks(hit) {
    const list = el("ul", { class: "backlink-list" });
    const box = el("details", { class: "backlinks" },
      el("summary", {}, "Backlinks", el("span", { class: "visually-hidden" }, " of " + (hit.title || hit.path))),
      list);
    let loaded = false;
    box.addEventListener("toggle", async () => {
      if (!box.open || loaded) return;
      loaded = true;
      list.replaceChildren(el("li", {}, "Loading…"));
      try {
        const data = await getJSON("/api/links?note=" + encodeURIComponent(hit.path));
        const sources = [...new Set(data.backlinks.map((b) => b.source))];
        list.replaceChildren(...(sources.length
          ? sources.map((source) => el("li", { class: "backlink" }, shortPath(source)))
          : [el("li", {}, "No note links here.")]));
      } catch (err) {
        loaded = false;
        list.replaceChildren(el("li", {}, "Backlinks unavailable: " + err.message));
      }
    });
    return box;
  }

  function renderHit(hit, terms) {
    const path = shortPath(hit.path);
    const where = [appLink(hit.open_url, hit.title || path, el("span", { class: "path" }, path))
      || el("span", { class: "path" }, path)];
    if (hit.heading && hit.heading !== hit.title) where.push(" · ", el("span", { class: "heading" }, hit.heading));
    if (typeof hit.page === "number") where.push(" · ", el("span", {}, "page " + hit.page));
    if (hit.type) where.push(" · ", el("span", { class: "tag" }, hit.type));
    const href = docHref(hit.doc_id, hit.start, hit.end);
    return el("li", { class: "hit" },
      el("h2", { class: "hit-title" }, el("a", { href, class: "open-doc" }, hit.title || shortPath(hit.path))),
      el("p", { class: "where" }, where),
      el("p", { class: "snippet" }, highlighted(hit.snippet || "", terms)),
      explain(hit),
      backlinks(hit));
  }

  /** The chosen filters, as the API takes them: {where: [...], path: [...], type: [...]}. */
  function filters() {
    const out = {};
    const where = [];
    if ($("#f-tag").value) where.push("tag=" + $("#f-tag").value);
    if ($("#f-where").value.trim()) where.push($("#f-where").value.trim());
    if (where.length) out.where = where;
    const path = $("#f-path").value.trim() || $("#f-folder").value;
    if (path) out.path = [path];
    if ($("#f-type").value) out.type = [$("#f-type").value];
    return out;
  }

  async function search(event) {
    event.preventDefault();
    const q = $("#q").value.trim();
    if (!q) return;
    const p = new URLSearchParams({ q, k: $("#f-k").value || "10", mode: $("#f-mode").value, explain: "true" });
    for (const [name, values] of Object.entries(filters())) for (const v of values) p.append(name, v);
    const status = $("#search-status");
    const results = clear($("#results"));
    status.textContent = "Searching…";
    results.setAttribute("aria-busy", "true");
    try {
      const data = await getJSON("/api/search?" + p.toString());
      const hits = data.hits || [];
      results.append(...hits.map((h) => renderHit(h, data.terms || [])));
      let line = hits.length ? `${hits.length} result${hits.length === 1 ? "" : "s"}` : "No results";
      if (data.pending) line += ` (${data.pending} chunks still waiting for embeddings: keyword results only for those)`;
      status.textContent = line + ".";
    } catch (err) {
      status.textContent = "Search failed: " + err.message;
    } finally {
      results.removeAttribute("aria-busy");
    }
  }

  // ---- the reader: a source note, its cited span marked ------------------------------

  let readerTrigger = null;

  async function openReader(link, trigger) {
    readerTrigger = trigger || document.activeElement;
    const reader = $("#reader");
    const body = $("#reader-body");
    // a link to a heading of a note (web.py's [[note#Heading]]) ends with #its-id
    const cut = link.indexOf("#");
    const href = cut < 0 ? link : link.slice(0, cut);
    const heading = cut < 0 ? "" : link.slice(cut + 1);
    $("#reader-open").href = href + "#" + (heading || "cited");
    body.replaceChildren(el("p", { class: "status-line" }, "Loading…"));
    reader.hidden = false;
    document.body.classList.add("reading");
    try {
      const res = await fetch(href + (href.includes("?") ? "&" : "?") + "partial=1", { headers: headers() });
      if (!res.ok) throw await failure(res);
      body.innerHTML = await res.text(); // rendered and escaped by the server
    } catch (err) {
      body.replaceChildren(el("p", { class: "error" }, "Could not open the source: " + err.message));
      $("#reader-close").focus();
      return;
    }
    const target = (heading && body.querySelector(`[id="${CSS.escape(heading)}"]`))
      || $("#cited", body) || $("#doc-title", body);
    if (target) {
      target.tabIndex = -1;
      target.focus({ preventScroll: true });
      target.scrollIntoView({ block: "center" });
    }
  }

  function closeReader() {
    if ($("#reader").hidden) return;
    $("#reader").hidden = true;
    document.body.classList.remove("reading");
    $("#reader-body").replaceChildren();
    if (readerTrigger && document.contains(readerTrigger)) readerTrigger.focus();
    readerTrigger = null;
  }

  document.addEventListener("click", (event) => {
    const link = event.target.closest("a.open-doc, a.cite");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    openReader(link.getAttribute("href"), link);
  });

  // ---- ask: streamed answers, citations, conversations ---------------------------------

  let conversationId = null;

  /** "[n]" cites passage n: the link opens its note with that passage marked. */
  function citation(answer, n) {
    const source = (answer.sources || []).find((s) => s.n === n);
    return source ? { source, href: docHref(source.doc_id, source.start, source.end) } : null;
  }

  /** Text with `inline code` shown as code; everything else stays plain text. */
  function withCode(text) {
    return text.split(/(`[^`\n]+`)/).filter(Boolean)
      .map((part) => (/^`[^`]+`$/.test(part) ? el("code", {}, part.slice(1, -1)) : part));
  }

  /** Where a passage sits in its note: its page or heading, and its lines. */
  function passageLabel(source) {
    const parts = [];
    if (typeof source.page === "number") parts.push("page " + source.page);
    else if (source.heading && source.heading !== source.title) parts.push(source.heading);
    if (Array.isArray(source.lines)) parts.push(`lines ${source.lines[0]}–${source.lines[1]}`);
    return parts.join(" · ") || "the note";
  }

  /** The sources as notes, in the order each is first cited, each with its passages: one
   * note's chunks are listed under it once, not as so many separate sources. */
  function sourceNotes(sources) {
    const notes = new Map();
    for (const s of sources) {
      const key = s.doc_id ?? s.path;
      if (!notes.has(key)) notes.set(key, []);
      notes.get(key).push(s);
    }
    return [...notes.values()];
  }

  function sourceNote(passages) {
    const first = passages[0];
    const title = first.title || shortPath(first.path || "");
    return el("li", { class: "source-note" },
      el("a", { class: "open-doc", href: docHref(first.doc_id, first.start, first.end) }, title),
      el("span", { class: "where" }, " ",
        appLink(first.open_url, title, shortPath(first.path || "")) || shortPath(first.path || "")),
      el("ul", { class: "passages" }, passages.map((s) => el("li", { dataset: { n: s.n } },
        el("a", { class: "open-doc passage", href: docHref(s.doc_id, s.start, s.end),
          "aria-label": `Source ${s.n}: ${title}, ${passageLabel(s)}` }, `[${s.n}]`),
        el("span", { class: "at" }, " " + passageLabel(s)),
        s.open_url && s.open_url !== first.open_url ? [" ", appLink(s.open_url, `${title}, ${passageLabel(s)}`, "↗")] : null))));
  }

  function renderAnswer(box, answer) {
    clear(box);
    const sentences = answer.sentences || [];
    if (answer.refused || !sentences.length) {
      box.append(el("p", { class: answer.refused ? "answer-text refused" : "answer-text" }, withCode(answer.text || "")));
    } else {
      const para = el("p", { class: "answer-text" });
      let unsupported = 0;
      sentences.forEach((s, i) => {
        const status = s.status || "unsupported";
        const span = el("span", { class: "sentence " + status, dataset: { status } }, withCode(s.text));
        for (const n of s.citations || []) {
          const cite = citation(answer, n);
          if (!cite) continue;
          const label = `Source ${n}: ${cite.source.title || cite.source.path}` + (s.attributed ? " (cited by kenning)" : "");
          span.append(" ", el("a", { class: "cite", href: cite.href, "aria-label": label, title: label }, `[${n}]`));
        }
        if (status !== "supported") {
          unsupported += 1;
          span.append(" ", el("span", { class: "flag", title: "No cited passage supports this sentence" }, status));
        }
        para.append(span);
        if (i < sentences.length - 1) para.append(" ");
      });
      box.append(para);
      const total = sentences.length;
      box.append(el("p", { class: "check-summary" },
        unsupported ? `${total - unsupported} of ${total} sentences supported by their citations; ${unsupported} marked.`
          : `All ${total} sentences supported by their citations.`));
    }
    for (const c of answer.conflicts || []) { // notes that disagree (kenning/answer/conflicts.py)
      const sides = c.sides.map((s) => el("li", {}, el("q", {}, s.text), " ",
        el("a", { class: "cite", href: (citation(answer, s.n) || {}).href || "#" }, `[${s.n}]`),
        s.date ? ` (${s.date}, ${s.date_source})` : ""));
      box.append(el("div", { class: "conflict", role: "note" },
        el("p", {}, el("strong", {}, "Your notes disagree"), ` on the ${c.kind}: ${c.sides.map((s) => s.value).join(" or ")}.`),
        el("ul", {}, sides), el("p", { class: "note" }, c.recency || "")));
    }
    const sources = answer.sources || [];
    if (sources.length) {
      box.append(el("h3", { class: "sources-title" }, answer.refused ? "Nearest passages" : "Sources"),
        el("ul", { class: "sources" }, sourceNotes(sources).map(sourceNote)));
    }
    for (const note of answer.notes || []) box.append(el("p", { class: "note" }, note));
  }

  function turnNode(question) {
    const answer = el("div", { class: "answer", "aria-busy": "true" });
    const node = el("article", { class: "turn" },
      el("p", { class: "question" }, el("span", { class: "who" }, "You: "), question), answer);
    $("#transcript").append(node);
    return answer;
  }

  function setConversation(id, title) {
    conversationId = id;
    $("#conv-label").textContent = id === null ? "New conversation" : `Conversation ${id}` + (title ? `: ${title}` : "");
    for (const b of document.querySelectorAll("#conv-list button")) {
      if (String(b.dataset.id) === String(id)) b.setAttribute("aria-current", "true");
      else b.removeAttribute("aria-current");
    }
  }

  async function ask(event) {
    event.preventDefault();
    const input = $("#question");
    const question = input.value.trim();
    if (!question) return;
    const button = $("#ask-form button");
    const status = $("#ask-status");
    input.value = "";
    button.disabled = true;
    status.textContent = "Answering…";
    const box = turnNode(question);
    const streaming = el("p", { class: "answer-text streaming" });
    box.append(streaming);
    let finished = false;
    try {
      const body = { question, conversation_id: conversationId };
      if ($("#ask-filtered").checked) Object.assign(body, filters());
      await postEvents("/api/ask/stream", body, (name, data) => {
        if (name === "token") {
          streaming.append(typeof data === "string" ? data : data.text || "");
        } else if (name === "answer") {
          finished = true;
          renderAnswer(box, data);
          if (data.conversation_id !== undefined && data.conversation_id !== null) {
            setConversation(data.conversation_id, null);
          }
        } else if (name === "error") {
          finished = true;
          box.append(el("p", { class: "error" }, "Error: " + (data.message || data)));
        }
      });
      if (!finished) box.append(el("p", { class: "error" }, "The answer stream ended early."));
      status.textContent = "Answered.";
      loadConversations();
    } catch (err) {
      box.append(el("p", { class: "error" }, "Error: " + err.message));
      status.textContent = "";
    } finally {
      box.removeAttribute("aria-busy");
      button.disabled = false;
      input.focus();
    }
  }

  async function loadConversations() {
    const list = $("#conv-list");
    try {
      const convs = listOf(await getJSON("/api/conversations"), "conversations").slice().reverse();
      clear(list);
      if (!convs.length) list.append(el("li", { class: "status-line" }, "None yet."));
      for (const c of convs) {
        const turns = c.turns === undefined ? "" : ` · ${c.turns} turn${c.turns === 1 ? "" : "s"}`;
        list.append(el("li", {}, el("button", {
          type: "button", class: "conv", dataset: { id: c.id },
          "aria-current": String(c.id) === String(conversationId) ? "true" : null,
          onclick: () => { location.hash = "#ask/" + c.id; },
        }, el("span", { class: "conv-title" }, c.title || `Conversation ${c.id}`),
        el("span", { class: "conv-when" }, when(c.created_at) + turns))));
      }
    } catch (err) {
      clear(list).append(el("li", { class: "error" }, "Could not list conversations: " + err.message));
    }
  }

  async function resume(id) {
    const transcript = clear($("#transcript"));
    try {
      const data = await getJSON("/api/conversations/" + encodeURIComponent(id));
      const turns = listOf(data, "turns");
      setConversation(data.id ?? id, data.title);
      for (const t of turns) {
        const box = turnNode(t.question);
        const answer = t.details && t.details.sentences ? { ...t.details, text: t.answer } : (t.answer_json || null);
        if (answer && typeof answer === "object") renderAnswer(box, answer);
        else box.append(el("p", { class: "answer-text" }, withCode(t.answer || "")));
        box.removeAttribute("aria-busy");
      }
      $("#ask-status").textContent = `Resumed conversation ${id}: ${turns.length} earlier turn${turns.length === 1 ? "" : "s"}.`;
      $("#question").focus();
    } catch (err) {
      transcript.append(el("p", { class: "error" }, "Could not open the conversation: " + err.message));
    }
  }

  function newConversation() {
    clear($("#transcript"));
    setConversation(null);
    $("#ask-status").textContent = "";
    if (location.hash !== "#ask") history.replaceState(null, "", "#ask");
    $("#question").focus();
  }

  // ---- status and sync ---------------------------------------------------------------

  function table(caption, columns, rows) {
    return el("div", { class: "table-wrap", role: "region", "aria-label": caption, tabindex: "0" },
      el("table", {},
        el("caption", {}, caption),
        el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c)))),
        el("tbody", {}, rows.map((r) => el("tr", {}, r.map((cell) => el("td", {}, cell)))))));
  }

  function size(bytes) {
    if (typeof bytes !== "number") return "—";
    const units = ["B", "KB", "MB", "GB"];
    let i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i += 1; }
    return bytes.toFixed(i ? 1 : 0) + " " + units[i];
  }

  function embeddingLine(e) {
    if (!e) return "—";
    let line = e.pending ? `${e.pending} chunks waiting` : "all chunks embedded";
    if (e.running) {
      line += " · embedding now";
      if (e.rate) line += ` at ${e.rate} chunks/s`;
      if (typeof e.eta_seconds === "number") line += `, about ${e.eta_seconds} s left`;
    }
    return line;
  }

  async function loadStatus() {
    const body = $("#status-body");
    try {
      const s = await getJSON("/api/status");
      roots = s.roots || roots;
      const stat = (name, value, id) => el("div", { class: "stat" }, el("dt", {}, name), el("dd", { id }, value));
      const problems = s.problems || [];
      clear(body).append(
        el("dl", { class: "stats" },
          stat("Files", String(s.files ?? "—"), "stat-files"),
          stat("Chunks", String(s.chunks ?? "—"), "stat-chunks"),
          stat("Embeddings", String(s.embeddings ?? "—"), "stat-embeddings"),
          stat("Size on disk", size(s.size_bytes)),
          stat("Last sync", s.last_sync || "never", "stat-last-sync"),
          stat("Embedder", s.embedder ? `${s.embedder} (${s.dimension}-d)` : "—"),
          stat("Embedding", embeddingLine(s.embedding))),
        el("p", { class: "status-line" }, "Index: ", el("code", {}, s.index || "—")),
        el("h2", {}, "Roots"),
        (s.roots || []).length ? el("ul", { class: "roots" }, s.roots.map((r) => el("li", {}, el("code", {}, r))))
          : el("p", { class: "status-line" }, "No roots yet: add a folder with kenning add PATH."),
        el("h2", {}, "Problems"),
        problems.length
          ? table(`${problems.length} file${problems.length === 1 ? "" : "s"} with problems`, ["Path", "Status", "Reason"],
            problems.map((p) => [el("code", {}, shortPath(p.path || "")), p.status || "failed", p.reason || p.error || ""]))
          : el("p", { class: "status-line", id: "no-problems" }, "No files failed."));
    } catch (err) {
      clear(body).append(el("p", { class: "error" }, "Could not read the status: " + err.message));
    }
  }

  async function sync() {
    const button = $("#sync");
    const bar = $("#sync-progress");
    const status = $("#sync-status");
    button.disabled = true;
    bar.hidden = false;
    bar.removeAttribute("value");
    status.textContent = "Syncing…";
    let report = null;
    try {
      await postEvents("/api/sync", {}, (name, data) => {
        if (name === "progress") {
          if (data.total) { bar.max = data.total; bar.value = data.done || 0; }
          status.textContent = `${data.stage || "working"}: ${data.done ?? 0}` + (data.total ? ` of ${data.total}` : "");
        } else if (name === "report") {
          report = data;
        } else if (name === "error") {
          throw new Error(data.message || String(data));
        }
      });
      if (report) {
        const r = report;
        const failed = Array.isArray(r.failed) ? r.failed.length : (r.failed || 0);
        status.textContent = `Synced: ${r.scanned ?? 0} scanned, ${r.added ?? 0} added, ${r.changed ?? 0} changed, `
          + `${r.moved ?? 0} moved, ${r.deleted ?? 0} deleted, ${failed} failed.`;
      } else {
        status.textContent = "Synced.";
      }
    } catch (err) {
      status.textContent = "Sync failed: " + err.message;
    } finally {
      button.disabled = false;
      bar.hidden = true;
      loadStatus();
    }
  }

  // ---- evaluation history --------------------------------------------------------------

  function metricNames(runs) {
    const names = [];
    for (const r of runs) for (const k of Object.keys(r.metrics || {})) if (!names.includes(k)) names.push(k);
    return names.slice(0, 4);
  }

  async function loadRuns() {
    const body = $("#evals-body");
    try {
      const runs = listOf(await getJSON("/api/eval/runs"), "runs");
      if (!runs.length) {
        clear(body).append(el("p", { class: "status-line" }, "No evaluation runs yet: run kenning eval retrieval or kenning eval qa."));
        return;
      }
      const metrics = metricNames(runs);
      const rows = runs.map((r, i) => {
        const id = r.id ?? i + 1;
        return [
          el("button", { type: "button", class: "link", onclick: () => showRun(id) }, `Run ${id}`),
          when(r.created_at), r.dataset || "", r.config_name || "", String(r.queries ?? ""),
          ...metrics.map((m) => num((r.metrics || {})[m])),
        ];
      }).reverse();
      clear(body).append(table(`${runs.length} evaluation run${runs.length === 1 ? "" : "s"}, newest first`,
        ["Report", "When", "Dataset", "Config", "Queries", ...metrics], rows));
    } catch (err) {
      clear(body).append(el("p", { class: "error" }, "Could not read the evaluation history: " + err.message));
    }
  }

  async function showRun(id) {
    const box = clear($("#eval-report"));
    try {
      const r = await getJSON("/api/eval/runs/" + encodeURIComponent(id));
      const metrics = Object.entries(r.metrics || {});
      box.append(
        el("h2", {}, `Run ${r.id ?? id}: ${r.dataset || ""} · ${r.config_name || ""}`),
        el("p", { class: "status-line" }, `${when(r.created_at)} · ${r.queries ?? "?"} queries`),
        table("Metrics", ["Metric", "Value"], metrics.map(([k, v]) => [k, typeof v === "number" ? num(v, 4) : String(v)])),
        el("h3", {}, "Configuration"),
        el("pre", { class: "config" }, JSON.stringify(r.config || {}, null, 2)));
      if (r.report) box.append(el("h3", {}, "Report"), el("pre", { class: "config" }, String(r.report)));
      box.focus();
    } catch (err) {
      box.append(el("p", { class: "error" }, "Could not read the run: " + err.message));
    }
  }

  // ---- wiring ------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("#search-form").addEventListener("submit", search);
    $("#ask-form").addEventListener("submit", ask);
    $("#new-conv").addEventListener("click", newConversation);
    $("#sync").addEventListener("click", sync);
    $("#reader-close").addEventListener("click", closeReader);
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") closeReader();
      const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
      if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        location.hash = "#search";
        $("#q").focus();
      }
    });
    window.addEventListener("hashchange", route);
    loadFacets();
    loadRoots();
    if (route() === "search") $("#q").focus();
    document.body.dataset.ready = "true";
  });
})();
