/*
 * <notifier-inbox api-base="https://notifier.example" token="<user token>">: a user's in-app inbox,
 * a bell with the unread count and a panel of messages, kept live over the inbox stream.
 * No dependencies and no build step: served as it is at /inbox/widget.js (docs/api.md, "Embedding
 * the inbox"). Message text only ever goes through textContent: nothing a message holds is HTML.
 */
(() => {
  "use strict";
  if (!window.customElements || customElements.get("notifier-inbox")) return;

  const DEFAULT_LABELS = {
    bell: "Notifications",
    unread: "{count} unread",
    title: "Notifications",
    markAll: "Mark all read",
    loadMore: "Load more",
    empty: "No messages yet",
    newMessage: "New message: {title}",
    error: "The messages could not be loaded.",
  };
  // label-* attributes, each overriding one label (the `labels` property overrides them all).
  const LABEL_ATTRIBUTES = {
    "label-bell": "bell", "label-unread": "unread", "label-title": "title", "label-mark-all": "markAll",
    "label-load-more": "loadMore", "label-empty": "empty", "label-new-message": "newMessage", "label-error": "error",
  };
  const PAGE_SIZE = 20;
  const BACKOFF_MIN_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  // New messages often come in bursts: one count request for a burst.
  const COUNT_REFRESH_DELAY_MS = 250;
  const TIME_REFRESH_MS = 60000;

  const STYLE = `
    :host { all: initial; display: inline-block; position: relative; contain: layout style;
      font-family: var(--notifier-font, system-ui, -apple-system, "Segoe UI", sans-serif);
      font-size: var(--notifier-font-size, 14px); line-height: 1.4; color: var(--notifier-color, #1f2328); }
    [hidden] { display: none !important; }
    button { font: inherit; color: inherit; }
    .bell { position: relative; display: inline-flex; align-items: center; justify-content: center;
      width: 2.5em; height: 2.5em; padding: 0; border: 0; border-radius: 50%; cursor: pointer;
      background: var(--notifier-bell-background, transparent); color: var(--notifier-bell-color, currentColor); }
    .bell:hover { background: var(--notifier-hover-background, rgba(127, 127, 127, .15)); }
    .bell svg { width: 1.5em; height: 1.5em; }
    :focus-visible { outline: 2px solid var(--notifier-accent, #0969da); outline-offset: 2px; }
    .badge { position: absolute; top: 0; right: 0; min-width: 1.4em; height: 1.4em; padding: 0 .35em;
      box-sizing: border-box; border-radius: .7em; font-size: .75em; font-weight: 600; line-height: 1.4em;
      text-align: center; background: var(--notifier-accent, #cf222e); color: var(--notifier-accent-contrast, #fff); }
    .panel { position: absolute; right: 0; top: calc(100% + .4em); z-index: var(--notifier-z-index, 1000);
      width: var(--notifier-panel-width, min(24em, calc(100vw - 1em))); max-height: var(--notifier-panel-height, 70vh);
      overflow-y: auto; box-sizing: border-box; border: 1px solid var(--notifier-border, #d1d9e0);
      border-radius: .6em; background: var(--notifier-background, #fff);
      box-shadow: 0 .5em 1.5em rgba(0, 0, 0, .15); text-align: left; }
    .header { display: flex; align-items: center; justify-content: space-between; gap: .5em;
      padding: .6em .8em; border-bottom: 1px solid var(--notifier-border, #d1d9e0); }
    .title { font-weight: 600; }
    .mark-all, .more { border: 0; background: none; padding: .2em .3em; cursor: pointer;
      color: var(--notifier-link, #0969da); }
    .mark-all:disabled { color: var(--notifier-muted, #59636e); cursor: default; }
    .list { list-style: none; margin: 0; padding: 0; }
    .item { display: block; width: 100%; box-sizing: border-box; padding: .6em .8em .6em 1.4em; border: 0;
      border-bottom: 1px solid var(--notifier-border, #d1d9e0); background: none; text-align: left;
      cursor: pointer; position: relative; }
    .item:hover { background: var(--notifier-hover-background, rgba(127, 127, 127, .08)); }
    .item.unread { background: var(--notifier-unread-background, #f0f6ff); }
    .item.unread::before { content: ""; position: absolute; left: .55em; top: 1em; width: .45em; height: .45em;
      border-radius: 50%; background: var(--notifier-accent, #0969da); }
    .item-title { display: block; font-weight: 400; }
    .item.unread .item-title { font-weight: 600; }
    .item-body { display: block; margin-top: .15em; white-space: pre-line; overflow-wrap: anywhere; }
    .item-time { display: block; margin-top: .2em; font-size: .85em; color: var(--notifier-muted, #59636e); }
    .empty, .error { margin: 0; padding: 1.2em .8em; color: var(--notifier-muted, #59636e); text-align: center; }
    .more { display: block; width: 100%; padding: .7em; }
    .live { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
  `;

  function element(tag, properties = {}, children = []) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(properties)) {
      if (name === "text") node.textContent = value;
      else if (name === "className") node.className = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function bellIcon() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("fill", "currentColor");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 "
      + "0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z");
    svg.append(path);
    return svg;
  }

  // Only http(s) links are followed: a message's url must never run script on the host page.
  function safeLink(url) {
    try {
      const parsed = new URL(url, window.location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (error) {
      return null;
    }
  }

  // An answer dropped on purpose: the token expired (the event is out), or a newer token replaced it.
  class Dropped extends Error {}

  class NotifierInbox extends HTMLElement {
    static get observedAttributes() {
      return ["api-base", "token", "locale", ...Object.keys(LABEL_ATTRIBUTES)];
    }

    constructor() {
      super();
      this._labelOverrides = {};
      this._messages = new Map(); // id → message, for those shown
      this._listLoaded = false;
      this._nextCursor = null;
      this._unread = 0;
      this._stream = null;
      this._reconnectTimer = null;
      this._countTimer = null;
      this._timeTimer = null;
      this._backoff = BACKOFF_MIN_MS;
      this._lastEventId = "";
      this._expired = false;
      this._generation = 0; // bumped on each (re)start: answers for an older token are dropped
      this._connected = false;
      this._startQueued = false;

      const root = this.attachShadow({ mode: "open" });
      this._badge = element("span", { part: "badge", className: "badge", hidden: "" });
      this._bell = element("button", { part: "bell", className: "bell", type: "button", "aria-haspopup": "true",
        "aria-expanded": "false", "aria-controls": "panel" }, [bellIcon(), this._badge]);
      this._title = element("span", { className: "title", id: "panel-title" });
      this._markAll = element("button", { part: "mark-all", className: "mark-all", type: "button", disabled: "" });
      this._list = element("ul", { className: "list", "aria-labelledby": "panel-title" });
      this._empty = element("p", { className: "empty", hidden: "" });
      this._error = element("p", { className: "error", role: "alert", hidden: "" });
      this._more = element("button", { className: "more", type: "button", hidden: "" });
      this._panel = element("div", { part: "panel", className: "panel", id: "panel", role: "region",
        "aria-labelledby": "panel-title", hidden: "" },
      [element("div", { className: "header" }, [this._title, this._markAll]), this._list, this._empty, this._error,
        this._more]);
      this._live = element("div", { className: "live", "aria-live": "polite", role: "status" });
      root.append(element("style", { text: STYLE }), this._bell, this._panel, this._live);

      this._bell.addEventListener("click", () => this._toggle());
      this._bell.addEventListener("keydown", (event) => {
        if (event.key !== "ArrowDown") return; // the menu-button pattern: down opens and goes to the first message
        event.preventDefault();
        if (this._panel.hidden) this._openPanel();
        const first = this._list.querySelector(".item");
        if (first) first.focus();
      });
      this._markAll.addEventListener("click", () => this._readAll());
      this._more.addEventListener("click", () => this._loadPage(this._nextCursor));
      this._list.addEventListener("click", (event) => {
        const item = event.target.closest(".item");
        if (item) this._open(Number(item.dataset.id));
      });
      this._panel.addEventListener("keydown", (event) => this._onPanelKey(event));
      this._onDocumentClick = (event) => {
        if (!this._panel.hidden && !event.composedPath().includes(this)) this._close(false);
      };
      this._applyLabels();
    }

    // --- Public surface ------------------------------------------------------------------------

    get labels() {
      const labels = {};
      for (const key of Object.keys(DEFAULT_LABELS)) labels[key] = this._label(key);
      return labels;
    }

    set labels(value) {
      this._labelOverrides = { ...(value || {}) };
      this._applyLabels();
    }

    // True while the live stream is open (a host page may show it; tests wait for it).
    get live() {
      return Boolean(this._stream && this._stream.readyState === EventSource.OPEN);
    }

    connectedCallback() {
      this._connected = true;
      document.addEventListener("click", this._onDocumentClick);
      this._startSoon();
    }

    disconnectedCallback() {
      this._connected = false;
      document.removeEventListener("click", this._onDocumentClick);
      this._stop();
    }

    attributeChangedCallback(name, oldValue, newValue) {
      if (oldValue === newValue) return;
      if (name in LABEL_ATTRIBUTES || name === "locale") {
        this._applyLabels();
        return;
      }
      // A new token (after notifier:token-expired) or server: start over with it.
      if (this._connected) this._startSoon();
    }

    // --- Labels --------------------------------------------------------------------------------

    _label(key, values = {}) {
      const attribute = Object.keys(LABEL_ATTRIBUTES).find((name) => LABEL_ATTRIBUTES[name] === key);
      let text = this._labelOverrides[key] ?? this.getAttribute(attribute) ?? DEFAULT_LABELS[key];
      for (const [name, value] of Object.entries(values)) text = text.split(`{${name}}`).join(String(value));
      return text;
    }

    _applyLabels() {
      this._title.textContent = this._label("title");
      this._markAll.textContent = this._label("markAll");
      this._more.textContent = this._label("loadMore");
      this._empty.textContent = this._label("empty");
      this._error.textContent = this._label("error");
      this._setCount(this._unread);
      this._refreshTimes();
    }

    // --- Connection ------------------------------------------------------------------------------

    get _apiBase() {
      return (this.getAttribute("api-base") || "").replace(/\/+$/, "");
    }

    get _token() {
      return this.getAttribute("token") || "";
    }

    // Once for attributes set together (api-base and token, or a page setting both in one go).
    _startSoon() {
      if (this._startQueued) return;
      this._startQueued = true;
      queueMicrotask(() => {
        this._startQueued = false;
        if (this._connected) this._start();
      });
    }

    _start() {
      this._stop();
      this._generation += 1;
      this._expired = false;
      this._backoff = BACKOFF_MIN_MS;
      if (!this._apiBase || !this._token) return;
      this._openStream();
      this._refreshCount();
      if (this._listLoaded || !this._panel.hidden) this._loadPage(null);
    }

    _stop() {
      if (this._stream) this._stream.close();
      this._stream = null;
      clearTimeout(this._reconnectTimer);
      clearTimeout(this._countTimer);
    }

    async _api(path, method = "GET") {
      const generation = this._generation;
      const response = await fetch(this._apiBase + path, {
        method,
        headers: { Authorization: `Bearer ${this._token}`, Accept: "application/json" },
        credentials: "omit", // the bearer token is the credential; no cookie ever goes along
        mode: "cors",
      });
      if (generation !== this._generation) throw new Dropped("superseded");
      if (response.status === 401) {
        this._tokenExpired();
        throw new Dropped("token expired");
      }
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status}`);
      return response.json();
    }

    _tokenExpired() {
      if (this._expired) return;
      this._expired = true;
      this._stop();
      // The host page answers with a new `token` attribute, which starts everything again.
      this.dispatchEvent(new CustomEvent("notifier:token-expired", { bubbles: true, composed: true }));
    }

    _openStream() {
      if (this._stream) this._stream.close();
      // EventSource cannot send headers, hence the token in the query; a reconnection of our own
      // (not the browser's, which sends Last-Event-ID itself) says where it left off the same way.
      const url = new URL(`${this._apiBase}/api/v1/inbox/stream`, window.location.href);
      url.searchParams.set("token", this._token);
      if (this._lastEventId) url.searchParams.set("last_event_id", this._lastEventId);
      const stream = new EventSource(url.href);
      this._stream = stream;
      stream.addEventListener("open", () => {
        this._backoff = BACKOFF_MIN_MS;
        // Messages read or removed elsewhere while disconnected are not events: ask for the count.
        this._refreshCount();
      });
      stream.addEventListener("message", (event) => {
        if (event.lastEventId) this._lastEventId = event.lastEventId;
        let message;
        try {
          message = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        this._receive(message);
      });
      stream.addEventListener("error", () => {
        // While CONNECTING the browser reconnects by itself; CLOSED means it gave up (a refusal:
        // 401 when the token expired, 429, or the server unreachable). Then: find out why with a
        // plain call, and try again later, each time waiting longer.
        if (stream.readyState !== EventSource.CLOSED || stream !== this._stream) return;
        this._stream = null;
        this._scheduleReconnect();
      });
    }

    _scheduleReconnect() {
      const delay = this._backoff / 2 + Math.random() * this._backoff / 2;
      this._backoff = Math.min(this._backoff * 2, BACKOFF_MAX_MS);
      const generation = this._generation;
      clearTimeout(this._reconnectTimer);
      this._reconnectTimer = setTimeout(async () => {
        try {
          await this._refreshCount(true);
        } catch (error) {
          // Unreachable still: the stream below fails too and comes back here, later.
        }
        if (generation === this._generation && !this._expired) this._openStream();
      }, delay);
    }

    // --- Count ---------------------------------------------------------------------------------

    async _refreshCount(raise = false) {
      try {
        const body = await this._api("/api/v1/inbox/unread-count");
        this._setCount(body.count);
      } catch (error) {
        if (raise) throw error;
      }
    }

    _refreshCountSoon() {
      clearTimeout(this._countTimer);
      this._countTimer = setTimeout(() => this._refreshCount(), COUNT_REFRESH_DELAY_MS);
    }

    _setCount(count) {
      this._unread = Math.max(0, Number(count) || 0);
      this._badge.hidden = this._unread === 0;
      this._badge.textContent = this._unread > 99 ? "99+" : String(this._unread);
      this._markAll.disabled = this._unread === 0;
      const label = this._label("bell");
      this._bell.setAttribute("aria-label",
        this._unread ? `${label}, ${this._label("unread", { count: this._badge.textContent })}` : label);
    }

    // --- Messages ------------------------------------------------------------------------------

    _receive(message) {
      if (!message || typeof message.id !== "number" || this._messages.has(message.id)) return;
      if (!message.read) this._setCount(this._unread + 1); // at once; the count request settles it
      this._refreshCountSoon();
      if (this._listLoaded) {
        this._messages.set(message.id, message);
        this._list.prepend(this._renderItem(message));
        this._empty.hidden = true;
      }
      this._live.textContent = this._label("newMessage", { title: message.title || "" });
    }

    async _loadPage(cursor) {
      const generation = this._generation;
      let path = `/api/v1/inbox?limit=${PAGE_SIZE}`;
      if (cursor) path += `&cursor=${encodeURIComponent(cursor)}`;
      let page;
      try {
        page = await this._api(path);
      } catch (error) {
        if (!(error instanceof Dropped)) this._error.hidden = false;
        return;
      }
      if (generation !== this._generation) return;
      this._error.hidden = true;
      if (!cursor) {
        this._messages.clear();
        this._list.replaceChildren();
      }
      for (const message of page.results || []) {
        if (this._messages.has(message.id)) continue; // arrived over the stream meanwhile
        this._messages.set(message.id, message);
        this._list.append(this._renderItem(message));
      }
      this._listLoaded = true;
      this._nextCursor = page.next ? new URL(page.next, window.location.href).searchParams.get("cursor") : null;
      this._more.hidden = !this._nextCursor;
      this._empty.hidden = this._messages.size > 0;
    }

    _renderItem(message) {
      const time = element("time", { className: "item-time", datetime: message.created_at || "" });
      time.textContent = this._relativeTime(message.created_at);
      const item = element("button", { part: message.read ? "item" : "item unread", type: "button",
        className: message.read ? "item" : "item unread", "data-id": String(message.id) },
      [element("span", { className: "item-title", text: message.title || "" }),
        element("span", { className: "item-body", text: message.body || "" }), time]);
      return element("li", {}, [item]);
    }

    _itemFor(id) {
      return this._list.querySelector(`.item[data-id="${Number(id)}"]`);
    }

    _showRead(id) {
      const message = this._messages.get(id);
      if (message) message.read = true;
      const item = this._itemFor(id);
      if (item) {
        item.classList.remove("unread");
        item.setAttribute("part", "item");
      }
    }

    async _open(id) {
      const message = this._messages.get(id);
      if (!message) return;
      if (!message.read) {
        this._showRead(id);
        this._setCount(this._unread - 1);
        try {
          await this._api(`/api/v1/inbox/${id}/read`, "POST");
        } catch (error) {
          // The count request below tells the truth either way.
        }
        this._refreshCount();
      }
      const link = message.url ? safeLink(message.url) : null;
      if (link) window.location.assign(link);
    }

    async _readAll() {
      for (const id of this._messages.keys()) this._showRead(id);
      this._setCount(0);
      try {
        await this._api("/api/v1/inbox/read-all", "POST");
      } catch (error) {
        // As above: the count request settles it.
      }
      this._refreshCount();
    }

    // --- Panel and keyboard --------------------------------------------------------------------

    _toggle() {
      if (this._panel.hidden) this._openPanel();
      else this._close(true);
    }

    _openPanel() {
      this._panel.hidden = false;
      this._bell.setAttribute("aria-expanded", "true");
      this._refreshTimes();
      this._timeTimer = setInterval(() => this._refreshTimes(), TIME_REFRESH_MS);
      if (!this._listLoaded) this._loadPage(null);
    }

    _close(focusBell) {
      this._panel.hidden = true;
      this._bell.setAttribute("aria-expanded", "false");
      clearInterval(this._timeTimer);
      if (focusBell) this._bell.focus();
    }

    _onPanelKey(event) {
      if (event.key === "Escape") {
        event.preventDefault();
        this._close(true);
        return;
      }
      const items = [...this._list.querySelectorAll(".item")];
      if (!items.length || !["ArrowDown", "ArrowUp", "Home", "End"].includes(event.key)) return;
      const current = items.indexOf(this.shadowRoot.activeElement);
      let next;
      if (event.key === "Home") next = 0;
      else if (event.key === "End") next = items.length - 1;
      else if (event.key === "ArrowDown") next = current < 0 ? 0 : Math.min(current + 1, items.length - 1);
      else next = current < 0 ? items.length - 1 : Math.max(current - 1, 0);
      event.preventDefault();
      items[next].focus();
    }

    // --- Time ------------------------------------------------------------------------------------

    _relativeTime(iso) {
      const moment = Date.parse(iso);
      if (Number.isNaN(moment)) return "";
      const locale = this.getAttribute("locale") || document.documentElement.lang || navigator.language;
      let format;
      try {
        format = new Intl.RelativeTimeFormat(locale, { numeric: "auto" });
      } catch (error) {
        format = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
      }
      const seconds = Math.round((moment - Date.now()) / 1000);
      const units = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600],
        ["minute", 60]];
      for (const [unit, size] of units) {
        if (Math.abs(seconds) >= size) return format.format(Math.round(seconds / size), unit);
      }
      return format.format(0, "second");
    }

    _refreshTimes() {
      for (const time of this._list.querySelectorAll("time")) {
        time.textContent = this._relativeTime(time.getAttribute("datetime"));
      }
    }
  }

  customElements.define("notifier-inbox", NotifierInbox);
})();
