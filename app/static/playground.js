// Footnote playground: ask a question, stream the answer, show each footnote's basis.
//
// Everything the server sends back (answer text, page titles, excerpts, URLs) is untrusted:
// it reaches the DOM only through textContent / createTextNode, and a URL becomes a link only
// when it parses as http(s). No innerHTML anywhere. The page's CSP allows nothing but this
// origin, so there is no inline script or style either.
"use strict";

(() => {
  const KEY_STORAGE = "footnote.apiKey";
  const TIER_STORAGE = "footnote.tier";
  const MARKER = /\[(\d{1,3})\]/g;

  const $ = (id) => document.getElementById(id);
  const ui = {
    app: $("app"),
    form: $("ask"),
    question: $("question"),
    tier: $("tier"),
    tierInfo: $("tier-info"),
    keyBox: $("key-box"),
    apiKey: $("api-key"),
    submit: $("submit"),
    stop: $("stop"),
    error: $("error"),
    result: $("result"),
    status: $("status"),
    usage: $("usage"),
    answer: $("answer"),
    basisPanel: $("basis-panel"),
    basis: $("basis"),
    sourcesPanel: $("sources-panel"),
    sources: $("sources"),
    popover: $("popover"),
  };

  let tiers = [];
  let run = null; // the request in progress or last finished: see newRun()

  // --- small DOM helpers (text only) ----------------------------------------------------

  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  // The URL as an absolute http(s) URL, or null for anything else (javascript:, data: ...).
  function safeUrl(url) {
    if (typeof url !== "string") return null;
    try {
      const parsed = new URL(url);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch {
      return null;
    }
  }

  // A link that opens in a new tab, or plain text when the URL is not http(s).
  function externalLink(url, text, className) {
    const href = safeUrl(url);
    if (href === null) return el("span", className, text);
    const a = el("a", className, text);
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  function hostOf(url) {
    const href = safeUrl(url);
    return href === null ? String(url ?? "") : new URL(href).host;
  }

  function str(value) {
    return typeof value === "string" ? value : "";
  }

  // --- API key and tiers ------------------------------------------------------------------

  function apiKey() {
    return ui.apiKey.value.trim();
  }

  // Request headers; a POST of the chat request sends JSON and reads an event stream.
  function headers(post) {
    const h = { accept: post ? "text/event-stream" : "application/json" };
    if (post) h["content-type"] = "application/json";
    const key = apiKey();
    if (key) h.authorization = `Bearer ${key}`;
    return h;
  }

  // The OpenAI error object of a failed response, or one made up from its status.
  async function errorOf(response) {
    let text = "";
    try {
      text = await response.text();
    } catch {
      // the body is gone; the status says enough
    }
    try {
      const body = JSON.parse(text);
      if (body && typeof body.error === "object" && body.error !== null) {
        return { status: response.status, ...body.error };
      }
    } catch {
      // not JSON: fall through
    }
    return {
      status: response.status,
      message: text.trim().slice(0, 300) || response.statusText || "Request failed.",
    };
  }

  async function loadTiers() {
    let response;
    try {
      response = await fetch("/v1/models", { headers: headers(false) });
    } catch (exc) {
      showError({ message: `Could not reach the server: ${exc.message}` });
      return;
    }
    if (!response.ok) {
      const err = await errorOf(response);
      showError(err);
      if (response.status === 401) {
        ui.keyBox.open = true;
        ui.apiKey.focus();
      }
      return;
    }
    const body = await response.json();
    tiers = Array.isArray(body.data) ? body.data.filter((m) => typeof m.id === "string") : [];
    const wanted = localStorage.getItem(TIER_STORAGE) || ui.tier.value || "base";
    ui.tier.replaceChildren(...tiers.map((m) => {
      const option = el("option", null, m.id);
      option.value = m.id;
      return option;
    }));
    if (tiers.some((m) => m.id === wanted)) ui.tier.value = wanted;
    ui.tier.dataset.loaded = "true";
    showTierInfo();
    hideError();
  }

  function showTierInfo() {
    const tier = tiers.find((m) => m.id === ui.tier.value);
    ui.tierInfo.textContent = tier ? str(tier.description) : "";
  }

  // --- errors -----------------------------------------------------------------------------

  function showError(err, inBand = false) {
    const title = inBand
      ? "The answer stopped:"
      : err.status ? `Error ${err.status}:` : "Error:";
    const code = [err.type, err.code].filter((x) => typeof x === "string" && x).join(" · ");
    ui.error.replaceChildren(
      el("span", "error-title", title),
      el("span", "error-message", str(err.message) || "Something went wrong."),
      code ? el("div", "error-code", code) : null,
    );
    ui.error.hidden = false;
  }

  function hideError() {
    ui.error.hidden = true;
    ui.error.replaceChildren();
  }

  // --- streaming --------------------------------------------------------------------------

  // Yield the data of each server-sent event of a fetch() body, as it arrives.
  async function* sseData(body, signal) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    const onAbort = () => reader.cancel().catch(() => {});
    signal.addEventListener("abort", onAbort);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        buffer += decoder.decode(value ?? new Uint8Array(), { stream: !done });
        const events = buffer.split(/\r\n\r\n|\n\n|\r\r/);
        buffer = done ? "" : events.pop();
        for (const event of events) {
          const data = event
            .split(/\r\n|\n|\r/)
            .filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(5).replace(/^ /, ""));
          if (data.length) yield data.join("\n");
        }
        if (done) return;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  function newRun(question, model) {
    return {
      question,
      model,
      text: "",
      annotations: [],
      finishReason: null,
      basis: null,
      citations: null,
      searchResults: null,
      usage: null,
      started: performance.now(),
      controller: new AbortController(),
      segments: [], // text nodes of the answer with their [start, end) in `text` (UTF-16)
    };
  }

  function setState(state, status) {
    ui.app.dataset.state = state;
    if (status !== undefined) ui.status.textContent = status;
    const busy = state === "researching" || state === "streaming";
    ui.submit.disabled = busy;
    ui.stop.hidden = !busy;
  }

  async function ask(question, model) {
    if (run && run.controller) run.controller.abort();
    const current = newRun(question, model);
    run = current;
    hideError();
    hidePopover();
    ui.result.hidden = false;
    ui.answer.replaceChildren();
    ui.usage.textContent = "";
    ui.basis.replaceChildren();
    ui.sources.replaceChildren();
    ui.basisPanel.hidden = true;
    ui.sourcesPanel.hidden = true;
    setState("researching", "Searching and reading sources…");

    const request = { model, stream: true, messages: [{ role: "user", content: question }] };
    let finished = false;
    try {
      const response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: headers(true),
        body: JSON.stringify(request),
        signal: current.controller.signal,
      });
      if (!response.ok) {
        showError(await errorOf(response));
        setState("error", "Failed.");
        ui.result.hidden = true; // nothing was answered: the error says it all
        return;
      }
      setState("streaming", "Writing the answer…");
      for await (const data of sseData(response.body, current.controller.signal)) {
        if (data === "[DONE]") {
          finished = true;
          break;
        }
        let chunk;
        try {
          chunk = JSON.parse(data);
        } catch {
          showError({ message: "The server sent a malformed stream event." }, true);
          setState("error", "Failed.");
          return;
        }
        if (chunk && typeof chunk.error === "object" && chunk.error !== null) {
          showError(chunk.error, true);
          setState("error", "Failed while writing.");
          return;
        }
        onChunk(current, chunk);
      }
      if (!finished) {
        showError({ message: "The stream ended before the answer was complete." }, true);
        setState("error", "Incomplete.");
        return;
      }
      const seconds = ((performance.now() - current.started) / 1000).toFixed(1);
      setState("done", `Answered in ${seconds} s`);
    } catch (exc) {
      if (exc && exc.name === "AbortError") {
        if (run === current) setState("stopped", "Stopped.");
        return;
      }
      showError({ message: `Network error: ${exc && exc.message ? exc.message : exc}` });
      setState("error", "Failed.");
    }
  }

  function onChunk(current, chunk) {
    const choices = Array.isArray(chunk.choices) ? chunk.choices : [];
    if (choices.length) {
      const choice = choices[0] || {};
      const delta = choice.delta || {};
      if (typeof delta.content === "string" && delta.content) {
        current.text += delta.content;
        renderAnswer(current);
      }
      if (Array.isArray(delta.annotations)) current.annotations = delta.annotations;
      if (choice.finish_reason) current.finishReason = choice.finish_reason;
      return;
    }
    // The final chunk: the research metadata.
    if (Array.isArray(chunk.basis)) current.basis = chunk.basis;
    if (Array.isArray(chunk.citations)) current.citations = chunk.citations;
    if (Array.isArray(chunk.search_results)) current.searchResults = chunk.search_results;
    if (chunk.usage && typeof chunk.usage === "object") current.usage = chunk.usage;
    renderAnswer(current);
    renderBasis(current);
    renderSources(current);
    renderUsage(current);
  }

  // --- the answer with its footnotes ------------------------------------------------------

  function renderAnswer(current) {
    const fragment = document.createDocumentFragment();
    const segments = [];
    let last = 0;
    const addText = (start, end) => {
      if (end <= start) return;
      const node = document.createTextNode(current.text.slice(start, end));
      segments.push({ node, start, end });
      fragment.append(node);
    };
    for (const match of current.text.matchAll(MARKER)) {
      addText(last, match.index);
      fragment.append(footnote(current, Number(match[1]), match.index));
      last = match.index + match[0].length;
    }
    addText(last, current.text.length);
    current.segments = segments;
    ui.answer.replaceChildren(fragment);
  }

  function footnote(current, n, at) {
    const link = el("a", null, String(n));
    link.href = `#src-${n}`;
    link.dataset.n = String(n);
    link.dataset.at = String(at);
    const source = sourceOf(current, n);
    link.setAttribute("aria-label", source.title ? `Source ${n}: ${source.title}` : `Source ${n}`);
    return el("sup", "fn", link);
  }

  // Source n (1-based, as in the markers): search_results[n-1], else citations[n-1].
  function sourceOf(current, n) {
    const result = current.searchResults && current.searchResults[n - 1];
    if (result && typeof result === "object") {
      return { url: str(result.url), title: str(result.title), snippet: str(result.snippet) };
    }
    const url = current.citations && current.citations[n - 1];
    return { url: str(url), title: "", snippet: "" };
  }

  // The basis excerpts quoting `url`, across every field, without repeats.
  function excerptsFor(current, url) {
    const seen = new Set();
    for (const field of current.basis || []) {
      for (const citation of (field && field.citations) || []) {
        if (!citation || citation.url !== url || !Array.isArray(citation.excerpts)) continue;
        for (const excerpt of citation.excerpts) {
          if (typeof excerpt === "string" && excerpt) seen.add(excerpt);
        }
      }
    }
    return [...seen];
  }

  function citedUrls(current) {
    const urls = new Set();
    for (const field of current.basis || []) {
      for (const citation of (field && field.citations) || []) {
        if (citation && typeof citation.url === "string") urls.add(citation.url);
      }
    }
    for (const annotation of current.annotations) {
      const citation = annotation && annotation.url_citation;
      if (citation && typeof citation.url === "string") urls.add(citation.url);
    }
    return urls;
  }

  // --- popover ----------------------------------------------------------------------------

  let hideTimer = null;
  let activeLink = null;

  function showPopover(link) {
    if (!run) return;
    clearTimeout(hideTimer);
    const n = Number(link.dataset.n);
    const source = sourceOf(run, n);
    const parts = [];
    parts.push(el("div", "pop-title", source.title || `Source ${n}`));
    if (source.url) parts.push(el("div", "pop-url", externalLink(source.url, source.url)));
    if (run.basis === null) {
      parts.push(el("div", "pop-pending", "The excerpts arrive when the answer is complete."));
    } else {
      const excerpts = excerptsFor(run, source.url);
      if (excerpts.length) {
        for (const excerpt of excerpts) parts.push(el("blockquote", "excerpt", excerpt));
      } else if (source.snippet) {
        parts.push(el("div", "pop-pending", "Not quoted in the basis; the page's best passage:"));
        parts.push(el("blockquote", "excerpt snippet", source.snippet));
      } else {
        parts.push(el("div", "pop-pending", "No excerpt recorded for this source."));
      }
    }
    ui.popover.replaceChildren(...parts);
    ui.popover.hidden = false;
    if (activeLink) activeLink.classList.remove("active");
    activeLink = link;
    link.classList.add("active");
    placePopover(link);
    highlightClaim(run, link, source.url);
  }

  function placePopover(link) {
    const box = link.getBoundingClientRect();
    const width = ui.popover.offsetWidth;
    const margin = 8;
    const maxLeft = document.documentElement.clientWidth - width - margin;
    const left = Math.max(margin, Math.min(box.left + box.width / 2 - width / 2, maxLeft));
    ui.popover.style.left = `${left + window.scrollX}px`;
    ui.popover.style.top = `${box.bottom + window.scrollY + 6}px`;
  }

  function scheduleHide() {
    clearTimeout(hideTimer);
    hideTimer = setTimeout(hidePopover, 250);
  }

  function hidePopover() {
    clearTimeout(hideTimer);
    ui.popover.hidden = true;
    if (activeLink) activeLink.classList.remove("active");
    activeLink = null;
    if (window.CSS && CSS.highlights) CSS.highlights.delete("claim");
  }

  // Highlight the claim this footnote supports: the annotation span holding the marker.
  function highlightClaim(current, link, url) {
    if (!(window.CSS && CSS.highlights && window.Highlight)) return;
    const at = Number(link.dataset.at);
    const spans = current.annotations
      .map((a) => a && a.url_citation)
      .filter((c) => c && Number.isInteger(c.start_index) && Number.isInteger(c.end_index))
      .map((c) => ({
        url: c.url,
        start: utf16Index(current.text, c.start_index),
        end: utf16Index(current.text, c.end_index),
      }))
      .filter((s) => s.start <= at && at < s.end);
    const span = spans.find((s) => s.url === url) || spans[0];
    if (!span) return;
    const range = rangeOf(current.segments, span.start, span.end);
    if (range) CSS.highlights.set("claim", new Highlight(range));
  }

  // The server counts code points (Python); the DOM counts UTF-16 units.
  function utf16Index(text, codePoints) {
    let units = 0;
    let seen = 0;
    for (const ch of text) {
      if (seen === codePoints) break;
      units += ch.length;
      seen += 1;
    }
    return units;
  }

  function rangeOf(segments, start, end) {
    const first = segments.find((s) => s.end > start);
    const lastSegs = segments.filter((s) => s.start < end);
    const last = lastSegs[lastSegs.length - 1];
    if (!first || !last || first.start >= end) return null;
    const range = document.createRange();
    range.setStart(first.node, Math.max(0, start - first.start));
    range.setEnd(last.node, Math.min(last.end, end) - last.start);
    return range;
  }

  // --- basis, sources, usage --------------------------------------------------------------

  function renderBasis(current) {
    const fields = (current.basis || []).filter((f) => f && typeof f === "object");
    ui.basis.replaceChildren(...fields.map((field) => {
      const confidence = ["low", "medium", "high"].includes(field.confidence)
        ? field.confidence : "low";
      const head = el("div", "basis-head",
        el("span", "field-name", str(field.field) || "content"),
        el("span", `confidence ${confidence}`, `${confidence} confidence`),
      );
      const citations = el("ul", "basis-cites", ...((field.citations || []).map((citation) => {
        const excerpts = Array.isArray(citation.excerpts) ? citation.excerpts : [];
        return el("li", null,
          externalLink(citation.url, str(citation.title) || str(citation.url) || "untitled"),
          ...excerpts.filter((x) => typeof x === "string").map((x) => el("blockquote", "excerpt", x)),
        );
      })));
      const box = el("div", "basis-field", head);
      box.dataset.field = str(field.field);
      if (str(field.reasoning)) box.append(el("p", "reasoning", field.reasoning));
      box.append(citations);
      return box;
    }));
    ui.basisPanel.hidden = fields.length === 0;
  }

  function renderSources(current) {
    const results = current.searchResults
      || (current.citations || []).map((url) => ({ url, title: "", snippet: "", date: null }));
    const cited = citedUrls(current);
    ui.sources.replaceChildren(...results.map((result, i) => {
      const n = i + 1;
      const url = str(result && result.url);
      const isCited = cited.has(url);
      const item = el("li", isCited ? "source cited" : "source uncited");
      item.id = `src-${n}`;
      const title = el("div", "title",
        externalLink(url, str(result.title) || url || "untitled"),
        el("span", isCited ? "badge cited" : "badge not-cited", isCited ? "cited" : "not cited"),
      );
      const meta = el("div", "meta", hostOf(url), result.date ? ` · ${str(result.date)}` : null);
      const body = el("div", null, title, meta);
      if (str(result.snippet)) body.append(el("p", "snippet", result.snippet));
      item.append(el("div", "num", `[${n}]`), body);
      return item;
    }));
    ui.sourcesPanel.hidden = results.length === 0;
  }

  function renderUsage(current) {
    const u = current.usage;
    if (!u) return;
    const parts = [];
    const add = (value, label) => {
      if (Number.isFinite(value)) parts.push(`${value} ${label}`);
    };
    add(u.num_search_queries, "searches");
    add(u.num_pages_fetched, "pages read");
    add(u.num_sources_cited, "cited");
    if (u.total_tokens > 0) add(u.total_tokens, "tokens"); // extractive answers use none
    ui.usage.textContent = parts.join(" · ");
  }

  // --- wiring -----------------------------------------------------------------------------

  ui.answer.addEventListener("mouseover", (event) => {
    const link = event.target.closest && event.target.closest("sup.fn a");
    if (link) showPopover(link);
  });
  ui.answer.addEventListener("mouseout", (event) => {
    const link = event.target.closest && event.target.closest("sup.fn a");
    if (link) scheduleHide();
  });
  ui.answer.addEventListener("focusin", (event) => {
    const link = event.target.closest && event.target.closest("sup.fn a");
    if (link) showPopover(link);
  });
  ui.answer.addEventListener("focusout", scheduleHide);
  ui.answer.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("sup.fn a");
    if (!link) return;
    const target = document.getElementById(`src-${link.dataset.n}`);
    if (!target) {
      event.preventDefault(); // the sources are not listed yet
      return;
    }
    target.classList.remove("flash");
    void target.offsetWidth; // restart the outline flash
    target.classList.add("flash");
    setTimeout(() => target.classList.remove("flash"), 1600);
  });
  ui.popover.addEventListener("mouseenter", () => clearTimeout(hideTimer));
  ui.popover.addEventListener("mouseleave", scheduleHide);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") hidePopover();
  });
  window.addEventListener("resize", () => {
    if (activeLink && !ui.popover.hidden) placePopover(activeLink);
  });

  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = ui.question.value.trim();
    if (!question) {
      ui.question.focus();
      return;
    }
    ask(question, ui.tier.value || "base");
  });
  ui.question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      ui.form.requestSubmit();
    }
  });
  ui.stop.addEventListener("click", () => {
    if (run) run.controller.abort();
  });
  ui.tier.addEventListener("change", () => {
    localStorage.setItem(TIER_STORAGE, ui.tier.value);
    showTierInfo();
  });
  ui.apiKey.addEventListener("change", () => {
    const key = apiKey();
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
    loadTiers();
  });

  ui.apiKey.value = localStorage.getItem(KEY_STORAGE) || "";
  if (ui.apiKey.value) ui.keyBox.open = false;
  loadTiers();
})();
