// The chat page: ask /api/ask, show the answer as a bubble, expand each citation to its full article.
// No framework, no build step; every string shown comes from bot/replies.py via #bb-strings.
"use strict";

(function () {
  const S = JSON.parse(document.getElementById("bb-strings").textContent);
  const log = document.getElementById("log");
  const form = document.getElementById("ask");
  const input = document.getElementById("question");
  const send = document.getElementById("send");
  // A citation line as bot/answer.py writes it: 〔1〕2025-08-15 · 南阳市第六人民医院 · title
  const CITATION = /^〔(\d+)〕(\d{4}-\d{2}-\d{2}) · (.*?) · (.+)$/;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function bubble(who, cls) {
    const row = el("div", "row " + who);
    const b = el("div", "bubble" + (cls ? " " + cls : ""));
    row.appendChild(b);
    log.appendChild(row);
    scrollDown();
    return b;
  }

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  function showExamples() {
    const b = bubble("bot", "examples");
    b.appendChild(el("div", "examples-label", S.examplesLabel));
    for (const q of S.examples) {
      const chip = el("button", "chip", q);
      chip.type = "button";
      chip.addEventListener("click", () => ask(q));
      b.appendChild(chip);
    }
  }

  function splitAnswer(text) {
    const marker = "\n" + S.sourcesHeader + "\n";
    const at = text.lastIndexOf(marker);
    if (at < 0) return { body: text, citations: [] };
    const citations = text.slice(at + marker.length).split("\n")
      .map((line) => CITATION.exec(line.trim())).filter(Boolean)
      .map((m) => ({ n: m[1], date: m[2], unit: m[3], title: m[4], line: m[0] }));
    return { body: text.slice(0, at), citations };
  }

  function citation(c) {
    const details = el("details", "cite");
    const summary = el("summary");
    summary.appendChild(el("span", "cite-n", c.n));
    summary.appendChild(el("span", "cite-date", c.date));
    summary.appendChild(el("span", "cite-title", c.title));
    summary.appendChild(el("span", "cite-unit", c.unit));
    details.appendChild(summary);
    const full = el("div", "article", S.loadingArticle);
    details.appendChild(full);
    let loaded = false;
    details.addEventListener("toggle", async () => {
      if (!details.open || loaded) return;
      loaded = true;
      const query = new URLSearchParams({ date: c.date, title: c.title });
      try {
        const res = await fetch("/api/article?" + query.toString());
        const data = await res.json();
        if (!res.ok) throw new Error(data.error || S.noArticle);
        full.textContent = "";
        full.appendChild(el("div", "article-title", data.title));
        full.appendChild(el("div", "article-meta", data.date + " · " + (data.unit || "")));
        full.appendChild(el("div", "article-text", data.text));
      } catch (err) {
        loaded = false;
        full.textContent = err.message || S.networkError;
      }
    });
    return details;
  }

  function showAnswer(b, data) {
    b.textContent = "";
    b.classList.remove("pending");
    if (data.abstained) b.classList.add("abstained");
    const parts = splitAnswer(data.answer);
    b.appendChild(el("div", "answer", parts.body));
    if (parts.citations.length) {
      const box = el("div", "sources");
      box.appendChild(el("div", "sources-label", S.sources));
      for (const c of parts.citations) box.appendChild(citation(c));
      b.appendChild(box);
    }
    if (!data.abstained) {
      // the topic is read off the question on the server: /feed.xml?from=… redirects to /feed.xml?q=<topic>
      const feed = el("a", "feed", S.subscribeTopic);
      feed.href = "/feed.xml?from=" + encodeURIComponent(data.question);
      feed.type = "application/atom+xml";
      b.appendChild(feed);
    }
    if (data.abstained && data.nearest) {
      // an abstention names its closest article: it opens like any citation
      const box = el("div", "sources nearest");
      box.appendChild(el("div", "sources-label", S.nearest));
      const n = data.nearest;
      box.appendChild(citation({ n: "≈", date: n.date, unit: n.unit, title: n.title }));
      b.appendChild(box);
    }
    scrollDown();
  }

  async function ask(question) {
    question = question.trim();
    if (!question) return;
    bubble("me").textContent = question;
    const b = bubble("bot", "pending");
    b.textContent = S.thinking;
    send.disabled = true;
    try {
      const res = await fetch("/api/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ question }),
      });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(data.error || S.networkError);
      showAnswer(b, data);
    } catch (err) {
      b.classList.remove("pending");
      b.classList.add("error");
      b.textContent = err.message || S.networkError;
    } finally {
      send.disabled = false;
      scrollDown();
    }
  }

  function fitInput() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 120) + "px";
  }

  input.placeholder = S.placeholder;
  input.maxLength = S.maxQuestionChars;
  send.textContent = S.send;
  input.addEventListener("input", fitInput);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = input.value;
    input.value = "";
    fitInput();
    ask(q);
  });
  showExamples();
})();
