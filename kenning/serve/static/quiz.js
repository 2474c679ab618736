// The Quiz view (#quiz): review the index's cards (GET /api/cards/due), due ones first,
// scheduled by FSRS on the server (POST /api/cards/{id}/review). Works with the keyboard
// alone: 1-4 pick a choice or a grade, Space or Enter shows the answer or goes on.
(() => {
  "use strict";

  const $ = (sel) => document.querySelector(sel);
  const GRADES = [[1, "Again"], [2, "Hard"], [3, "Good"], [4, "Easy"]];
  let queue = [];
  let at = 0;
  let step = "idle"; // "choose", "reveal", "grade", "next"
  let done = 0;
  let right = 0;

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  async function call(url, body) {
    const init = body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    };
    const response = await fetch(url, init);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.detail || data.error || response.statusText);
    return data;
  }

  function build() {
    const item = el("li", {}, el("a", { href: "#quiz", "data-view": "quiz" }, "Quiz"));
    $("header.top nav ul").append(item);
    const section = el("section", { id: "view-quiz", class: "view", "aria-labelledby": "h-quiz" },
      el("h1", { id: "h-quiz" }, "Quiz"),
      el("p", { id: "quiz-status", class: "status-line", role: "status", "aria-live": "polite" }),
      el("div", { id: "quiz-card", class: "quiz-card", tabindex: "-1" }));
    section.hidden = true;
    $("#main").append(section);
  }

  function when(iso) {
    const seconds = (new Date(iso) - Date.now()) / 1000;
    if (seconds < 3600) return `in ${Math.max(1, Math.round(seconds / 60))} minutes`;
    if (seconds < 86400) return `in ${Math.round(seconds / 3600)} hours`;
    return `on ${new Date(iso).toLocaleDateString()}`;
  }

  function focusFirst(selector) {
    const target = $("#quiz-card").querySelector(selector);
    if (target) target.focus();
  }

  async function load() {
    const box = $("#quiz-card");
    box.replaceChildren();
    $("#quiz-status").textContent = "Loading…";
    try {
      const data = await call("/api/cards/due?limit=20");
      queue = data.cards;
      at = 0; done = 0; right = 0;
      if (!queue.length) {
        $("#quiz-status").textContent = data.stats.active
          ? "No cards are due now. Come back later."
          : "No cards yet.";
        if (!data.stats.active) {
          box.append(el("button", { type: "button", id: "quiz-make", onclick: make },
            "Make cards from my notes"));
          focusFirst("#quiz-make");
        }
        step = "idle";
        return;
      }
      show();
    } catch (error) {
      $("#quiz-status").textContent = `Could not load the cards: ${error.message}`;
    }
  }

  async function make() {
    $("#quiz-status").textContent = "Making cards…";
    try {
      const made = await call("/api/cards", {});
      $("#quiz-status").textContent = `${made.cards} cards from ${made.notes} notes.`;
      await load();
    } catch (error) {
      $("#quiz-status").textContent = `Could not make cards: ${error.message}`;
    }
  }

  function show() {
    const card = queue[at];
    const box = $("#quiz-card");
    const where = [...new Set([card.title, card.heading.split(" > ").pop()])].filter(Boolean).join(" › ");
    $("#quiz-status").textContent = `Card ${at + 1} of ${queue.length}`;
    box.replaceChildren(
      el("p", { class: "quiz-where" }, where),
      el("p", { class: "quiz-question", id: "quiz-question" }, card.question));
    if (card.kind === "choice") {
      const list = el("ol", { class: "quiz-choices", "aria-labelledby": "quiz-question" });
      card.choices.forEach((option, i) => {
        list.append(el("li", {}, el("button", {
          type: "button", class: "quiz-choice", "data-n": String(i + 1),
          onclick: () => choose(option),
        }, `${i + 1}. ${option}`)));
      });
      box.append(list);
      step = "choose";
      focusFirst(".quiz-choice");
    } else {
      box.append(el("button", { type: "button", id: "quiz-reveal", onclick: reveal },
        "Show answer (Space)"));
      step = "reveal";
      focusFirst("#quiz-reveal");
    }
  }

  function source(card, shown) {
    return el("div", { class: "quiz-source" },
      el("blockquote", {}, shown.source),
      el("a", { href: shown.link }, "Open the note"));
  }

  async function choose(option) {
    if (step !== "choose") return;
    step = "busy";
    const card = queue[at];
    try {
      const result = await call(`/api/cards/${card.id}/review`, { choice: option });
      const box = $("#quiz-card");
      for (const b of box.querySelectorAll(".quiz-choice")) b.disabled = true;
      done += 1;
      if (result.correct) {
        right += 1;
        box.append(el("p", { class: "quiz-verdict right", role: "status" }, "Correct."));
      } else {
        box.append(el("p", { class: "quiz-verdict wrong", role: "status" },
          "Not quite: the answer is ", el("strong", {}, result.answer), "."), source(card, result));
      }
      box.append(el("p", { class: "quiz-due" }, `Next review ${when(result.due)}.`));
      next();
    } catch (error) {
      $("#quiz-status").textContent = `Could not save the answer: ${error.message}`;
      step = "choose";
    }
  }

  function reveal() {
    if (step !== "reveal") return;
    const card = queue[at];
    const box = $("#quiz-card");
    box.querySelector("#quiz-reveal").remove();
    box.append(el("p", { class: "quiz-answer" }, card.answer), source(card, card));
    const grades = el("div", { class: "quiz-grades", role: "group", "aria-label": "Grade" });
    for (const [n, name] of GRADES) {
      grades.append(el("button", { type: "button", class: "quiz-grade", "data-n": String(n),
        onclick: () => grade(n) }, `${n} ${name}`));
    }
    box.append(grades);
    step = "grade";
    focusFirst('.quiz-grade[data-n="3"]');
  }

  async function grade(rating) {
    if (step !== "grade") return;
    step = "busy";
    const card = queue[at];
    try {
      const result = await call(`/api/cards/${card.id}/review`, { rating });
      done += 1;
      const box = $("#quiz-card");
      for (const b of box.querySelectorAll(".quiz-grade")) b.disabled = true;
      box.append(el("p", { class: "quiz-due" }, `Next review ${when(result.due)}.`));
      next();
    } catch (error) {
      $("#quiz-status").textContent = `Could not save the grade: ${error.message}`;
      step = "grade";
    }
  }

  function next() {
    const last = at + 1 >= queue.length;
    $("#quiz-card").append(el("button", { type: "button", id: "quiz-next", onclick: advance },
      last ? "Finish (Enter)" : "Next card (Enter)"));
    step = "next";
    focusFirst("#quiz-next");
  }

  function advance() {
    if (step !== "next") return;
    at += 1;
    if (at < queue.length) { show(); return; }
    step = "idle";
    const choices = queue.filter((c) => c.kind === "choice").length;
    $("#quiz-status").textContent = `Done: ${done} reviewed` +
      (choices ? `, ${right} of ${choices} multiple-choice answers right.` : ".");
    $("#quiz-card").replaceChildren(el("button", { type: "button", id: "quiz-again",
      onclick: load }, "Check for due cards"));
    focusFirst("#quiz-again");
  }

  function onKey(event) {
    if ($("#view-quiz").hidden || event.ctrlKey || event.metaKey || event.altKey) return;
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)) return;
    const n = Number(event.key);
    if (step === "choose" && n >= 1) {
      const button = $(`#quiz-card .quiz-choice[data-n="${n}"]`);
      if (button) { event.preventDefault(); button.click(); }
    } else if (step === "grade" && n >= 1 && n <= 4) {
      event.preventDefault();
      grade(n);
    } else if (step === "reveal" && (event.key === " " || event.key === "Enter")) {
      event.preventDefault();
      reveal();
    } else if (step === "next" && (event.key === " " || event.key === "Enter")) {
      event.preventDefault();
      advance();
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    build();
    document.addEventListener("keydown", onKey);
    window.kenningAddView("quiz", () => {
      if (step === "idle") load();
      $("#quiz-card").focus();
    });
  });
})();
