// The messages page: lists messages newest first, pages to older ones, posts new ones.
// Plain script (no build step). Runs under CSP "default-src 'self'": no inline code, no eval.
// User data only ever goes into the page through textContent. Posting needs an API key: the
// page asks for it once and keeps it in sessionStorage (this tab, until it is closed); it
// sends it with every request, so its lists skip nginx's micro-cache and show its own posts.
"use strict";

(() => {
  const PAGE_SIZE = 20;
  const TIMEOUT_MS = 15000;
  const KEY_STORAGE = "messages.apiKey";

  const MESSAGES = {
    429: "Too many requests — wait a moment and try again.",
    413: "That message is too large.",
    503: "The database is unavailable, try again shortly.",
    unavailable: "The service is unavailable, try again shortly.",
    415: "The server did not accept the request's format.",
    network: "Cannot reach the server.",
    timeout: "The server did not answer in time, try again.",
    invalid: "The server refused the message.",
    401: "The API key was not accepted: enter a valid one.",
    needKey: "Enter your API key to post.",
  };

  const byId = (id) => document.getElementById(id);
  const form = byId("post-form");
  const input = byId("message-input");
  const postButton = byId("post-button");
  const counter = byId("counter");
  const statusLine = byId("status");
  const list = byId("messages");
  const empty = byId("empty");
  const olderButton = byId("older");
  const newerButton = byId("newer");
  const keyRow = byId("key-row");
  const keyInput = byId("key-input");
  const forgetButton = byId("forget-key");

  const timeFormat = new Intl.DateTimeFormat(undefined, {
    dateStyle: "medium",
    timeStyle: "medium",
  });

  // `before` of the page shown (null: the newest page); `nextBefore` of the next older page.
  const view = { before: null, nextBefore: null, loading: false, load: 0 };

  // The longest message the server accepts, from GET /limits at start-up. Until then, or
  // if that fails, the page sets no limit of its own and the server's 422 says what is wrong.
  let maxLength = null;

  /** An API failure, with the sentence to show to the person. */
  class ApiError extends Error {}

  function setStatus(text, kind = "info") {
    statusLine.textContent = text;
    statusLine.dataset.kind = kind;
  }

  // --- the API key ---------------------------------------------------------------------

  function storedKey() {
    try {
      return sessionStorage.getItem(KEY_STORAGE);
    } catch {
      return null; // storage disabled: the key is asked for each time
    }
  }

  function keepKey(key) {
    try {
      sessionStorage.setItem(KEY_STORAGE, key);
    } catch {
      // Storage is off: the post goes without a key, and its refusal says so.
    }
  }

  function forgetKey() {
    try {
      sessionStorage.removeItem(KEY_STORAGE);
    } catch {
      // Nothing was kept.
    }
    updateKeyControls();
  }

  function updateKeyControls() {
    const known = Boolean(storedKey());
    keyRow.hidden = known;
    forgetButton.hidden = !known;
    if (!known) keyInput.value = "";
  }

  // --- talking to the API -------------------------------------------------------------

  async function readJson(response) {
    const type = response.headers.get("Content-Type") || "";
    if (!type.includes("json")) return null;
    try {
      return await response.json();
    } catch {
      return null;
    }
  }

  function tidy(msg, loc) {
    let text = String(msg).replace(/^Value error, /, "");
    if (Array.isArray(loc) && loc[loc.length - 1] === "message") {
      text = text.replace(/^String (?=should )/, "");
      if (/^(must|should) /.test(text)) text = `The message ${text}`;
    }
    text = text.charAt(0).toUpperCase() + text.slice(1);
    return /[.!?]$/.test(text) ? text : `${text}.`;
  }

  function validationText(payload) {
    const detail = payload && payload.detail;
    if (Array.isArray(detail)) {
      const texts = detail
        .filter((problem) => problem && typeof problem.msg === "string")
        .map((problem) => tidy(problem.msg, problem.loc));
      if (texts.length > 0) return texts.join(" ");
    }
    if (typeof detail === "string" && detail.trim()) return tidy(detail);
    return MESSAGES.invalid;
  }

  function failureText(status, payload) {
    if (status === 422) return validationText(payload);
    if (status === 503) {
      // The app says "database unavailable"; nginx answers 503 when no app instance is up.
      const detail = payload && payload.detail;
      return detail === "database unavailable" || detail === undefined
        ? MESSAGES[503]
        : MESSAGES.unavailable;
    }
    if (status === 502 || status === 504) return MESSAGES.unavailable;
    if (MESSAGES[status]) return MESSAGES[status];
    return `Something went wrong (HTTP ${status}), try again later.`;
  }

  /** fetch() a JSON endpoint, with the kept API key if there is one; resolves to the parsed
   * body, or rejects with an ApiError. A refused key is forgotten (a read is tried again
   * without it: reads need none). */
  async function api(method, path, body) {
    const key = storedKey();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    const init = {
      method,
      headers: { Accept: "application/json" },
      cache: "no-store",
      signal: controller.signal,
    };
    if (key) init.headers.Authorization = `Bearer ${key}`;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new ApiError(error.name === "AbortError" ? MESSAGES.timeout : MESSAGES.network);
    } finally {
      clearTimeout(timer);
    }
    const payload = await readJson(response);
    if (response.status === 401 && key) {
      forgetKey();
      if (method === "GET") return api(method, path, body);
    }
    if (!response.ok) throw new ApiError(failureText(response.status, payload));
    return payload;
  }

  // --- the list -----------------------------------------------------------------------

  function renderItem(item) {
    const li = document.createElement("li");
    li.className = "message";
    li.dataset.id = String(item.id);

    const text = document.createElement("p");
    text.className = "message-text";
    text.textContent = item.message;

    const meta = document.createElement("p");
    meta.className = "message-meta";
    const time = document.createElement("time");
    time.dateTime = item.created_at;
    const created = new Date(item.created_at);
    time.textContent = Number.isNaN(created.getTime())
      ? String(item.created_at)
      : timeFormat.format(created);
    time.title = String(item.created_at);
    const id = document.createElement("span");
    id.className = "message-id";
    id.textContent = `#${item.id}`;
    meta.append(time, id);

    li.append(text, meta);
    return li;
  }

  function updateControls() {
    olderButton.disabled = view.loading || view.nextBefore === null;
    newerButton.disabled = view.loading || view.before === null;
    empty.hidden = view.loading || list.childElementCount > 0;
  }

  async function loadPage(before) {
    const load = ++view.load;
    view.loading = true;
    list.setAttribute("aria-busy", "true");
    updateControls();
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (before !== null) query.set("before", String(before));
    try {
      const page = await api("GET", `/messages?${query}`);
      if (load !== view.load) return false; // a later load superseded this one
      view.before = before;
      view.nextBefore = page.next_before ?? null;
      list.replaceChildren(...page.items.map(renderItem));
      return true;
    } catch (error) {
      if (load !== view.load) return false;
      setStatus(error instanceof ApiError ? error.message : MESSAGES.network, "error");
      return false;
    } finally {
      if (load === view.load) {
        view.loading = false;
        list.setAttribute("aria-busy", "false");
        updateControls();
      }
    }
  }

  /** Put a just-created message at the top of the newest page. */
  function showAtTop(item) {
    const key = String(item.id);
    for (const li of list.querySelectorAll("li[data-id]")) {
      if (li.dataset.id === key) li.remove();
    }
    const li = renderItem(item);
    li.classList.add("is-new");
    list.prepend(li);
    while (list.childElementCount > PAGE_SIZE) {
      list.lastElementChild.remove();
      view.nextBefore = Number(list.lastElementChild.dataset.id);
    }
    updateControls();
  }

  // --- the form -----------------------------------------------------------------------

  function updateCounter() {
    const used = input.value.length;
    counter.textContent =
      maxLength === null ? `${used} characters` : `${used} / ${maxLength} characters`;
    counter.classList.toggle("is-near-limit", maxLength !== null && used > maxLength * 0.9);
  }

  async function loadLimits() {
    try {
      const limits = await api("GET", "/limits");
      const longest = limits && limits.message_max_length;
      if (Number.isInteger(longest) && longest > 0) {
        maxLength = longest;
        input.maxLength = longest;
      }
    } catch {
      // No limit on this side: the server still enforces its own.
    }
    updateCounter();
  }

  async function post(event) {
    event.preventDefault();
    if (postButton.disabled) return;
    if (!storedKey()) {
      const key = keyInput.value.trim();
      if (!key) {
        setStatus(MESSAGES.needKey, "error");
        keyInput.focus();
        return;
      }
      keepKey(key);
      updateKeyControls();
    }
    postButton.disabled = true;
    form.setAttribute("aria-busy", "true");
    setStatus("Posting…");
    try {
      const created = await api("POST", "/messages", { message: input.value });
      input.value = "";
      updateCounter();
      if (view.before !== null) await loadPage(null);
      showAtTop(created);
      setStatus("Message posted.", "success");
    } catch (error) {
      setStatus(error instanceof ApiError ? error.message : MESSAGES.network, "error");
    } finally {
      postButton.disabled = false;
      form.removeAttribute("aria-busy");
    }
  }

  async function changePage(before, label) {
    setStatus(`Loading ${label} messages…`);
    if (await loadPage(before)) {
      setStatus("");
      list.focus({ preventScroll: true });
      list.scrollIntoView({ block: "nearest" });
    }
  }

  form.addEventListener("submit", post);
  input.addEventListener("input", updateCounter);
  input.addEventListener("keydown", (event) => {
    // Ctrl+Enter (or Cmd+Enter) posts, as in most chat boxes.
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  forgetButton.addEventListener("click", () => {
    forgetKey();
    setStatus("The API key is forgotten.");
  });
  olderButton.addEventListener("click", () => {
    if (view.nextBefore !== null) changePage(view.nextBefore, "older");
  });
  newerButton.addEventListener("click", () => changePage(null, "the newest"));

  list.tabIndex = -1;
  updateKeyControls();
  updateCounter();
  loadLimits();
  loadPage(null);
})();
