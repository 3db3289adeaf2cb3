/*
 * RealtimeClient: the browser side of docs/protocol.md, shared by every page.
 *
 *   const client = new RealtimeClient();           // same-site /ws/, session cookie auth
 *   client.on("welcome", (data) => ...);           // after every (re)connect
 *   client.on("workspace.updated", (data) => ...); // server events by type
 *   const data = await client.request("workspace.create", {name}); // ack data, or throws {code, message, details}
 *   const all = await client.requestAll("workspace.list", {}, "workspaces"); // every page of a list
 *   const ack = await client.enqueue("chat.send", {..., client_msg_id}); // sent now or after reconnecting
 *   client.start();
 *
 * Token mode, for a page served from another origin (docs/protocol.md, "Front ends on another
 * origin"): no session cookie; an access JWT, obtained and refreshed over REST (CORS), is sent in
 * an ``auth`` frame on every connect and renewed on the open socket with ``auth.refresh`` a
 * minute (at most half its life) before it expires:
 *
 *   const client = new RealtimeClient({
 *     url: "wss://api.example.com/ws/",
 *     tokens: RealtimeClient.passwordTokens("https://api.example.com", username, password),
 *   });
 *
 * ``tokens`` is any ``{obtain(), refresh(refreshToken)}``: ``obtain`` resolves with ``{access,
 * refresh}`` (``POST /api/auth/token/``), ``refresh`` with ``{access}`` (``POST
 * /api/auth/token/refresh/``); a refresh that fails falls back to ``obtain``. A rejection with
 * ``{status: 400 or 401}`` (credentials refused) stops the client; any other is retried with
 * backoff. In this mode a 4401 close (the token expired or was refused) is not a stop: the
 * client takes a fresh token and reconnects.
 *
 * Close codes (docs/protocol.md, "Close codes"): 1000, 1009, 4401 (a session page cannot refresh
 * a token: the user logs in again), 4403 and 4409 stop, and the page shows why; 1001 reconnects at once
 * (within 1 s of jitter); 1013 waits at least 5 s and 4429 at least 60 s; everything else
 * reconnects with exponential backoff and jitter (0.5 s doubling to 30 s).
 * Commands in flight when the socket closes fail with code "disconnected".
 *
 * Offline queue: ``enqueue`` keeps idempotent commands (chat.send with a client_msg_id) while the
 * socket is down and sends them, in order, after the next welcome; one whose ack was lost to a
 * disconnect is sent again, which the idempotency key makes safe (the ack says duplicate: true).
 *
 * SeqTracker: one conversation's messages in seq order, whatever order they arrive in
 * (docs/protocol.md, "chat.join", "Resume"). ``synced`` is the highest seq with no gap below it.
 *
 *   const tracker = new SeqTracker((message) => show(message));  // called once per seq, in order
 *   tracker.advance(lastSeqOfNewestHistoryPage);   // everything up to it is shown already
 *   if (tracker.receive(message)) fetchHole();     // true: held above a gap; fetch with
 *                                                  // chat.join {after_seq: tracker.synced}
 *
 * A message at or below ``synced``, or already held, is ignored; one above a gap is held until the
 * messages below it arrive. The caller feeds live events, acks and chat.join pages through
 * ``receive``, and catches up (chat.join while has_more) when it returns true and on ``resync``.
 */
(function () {
  "use strict";

  const STOP_CODES = new Set([1000, 1009, 4401, 4403, 4409]);
  const MIN_DELAY_MS = { 1001: 0, 1013: 5000, 4429: 60000 };
  const MIN_BACKOFF_MS = 500;
  const MAX_BACKOFF_MS = 30000;
  const PAGE_LIMIT = 100; // the largest page a list gives (docs/protocol.md, "Lists"): fewest round trips
  const itemId = (item) => (item.task_id !== undefined ? item.task_id : item.id);
  // Renew an access token this long before it expires, or at half its remaining life if shorter.
  const REFRESH_AHEAD_MS = 60000;

  /** POST ``body`` as JSON to ``url``; resolve with the JSON answer, reject with ``{status, message}``. */
  async function postJson(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (error) {
      throw { status: 0, message: String(error) }; // network, or CORS refused: worth a retry
    }
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw { status: response.status, message: answer.detail || response.statusText };
    return answer;
  }

  class RealtimeClient {
    /**
     * ``new RealtimeClient()`` (same-site /ws/, session cookie), ``new RealtimeClient(url)``, or
     * ``new RealtimeClient({url, tokens})`` (token mode: see the top of this file).
     */
    constructor(options) {
      const { url, tokens } = typeof options === "object" && options !== null ? options : { url: options };
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      this.url = url || `${scheme}//${location.host}/ws/`;
      this.tokens = tokens || null;
      this.access = null; // token mode: the current access JWT
      this.refreshToken = null;
      this.refreshTimer = null;
      this.clockOffsetMs = 0; // server time - local time, from welcome
      this.handlers = new Map();
      this.pending = new Map();
      this.nextRef = 1;
      this.backoffMs = MIN_BACKOFF_MS;
      this.socket = null;
      this.ready = false; // welcomed: commands may be sent
      this.lastError = null;
      this.queue = []; // [{type, data, resolve, reject}] awaiting a connection, oldest first
      this.flushing = false;
    }

    /** Register ``handler(data, frame)`` for frames of ``type`` (events, "welcome", "state", "error"). */
    on(type, handler) {
      if (!this.handlers.has(type)) this.handlers.set(type, []);
      this.handlers.get(type).push(handler);
      return this;
    }

    emit(type, data, frame) {
      for (const handler of this.handlers.get(type) || []) handler(data, frame);
    }

    /**
     * ``tokens`` for token mode from a username and password: ``POST {apiBase}/api/auth/token/``
     * and ``{apiBase}/api/auth/token/refresh/`` (``apiBase``: Switchboard's origin, e.g.
     * "https://api.example.com"; the page's origin must be in its CORS_ALLOWED_ORIGINS).
     */
    static passwordTokens(apiBase, username, password) {
      return {
        obtain: () => postJson(`${apiBase}/api/auth/token/`, { username, password }),
        refresh: (refresh) => postJson(`${apiBase}/api/auth/token/refresh/`, { refresh }),
      };
    }

    start() {
      this.emit("state", "connecting");
      if (!this.tokens) {
        this.open(null);
        return;
      }
      this.accessToken().then(
        (token) => this.open(token),
        (error) => {
          this.lastError = { code: "unauthorized", message: error.message || "Could not obtain a token" };
          this.emit("error", this.lastError);
          // Refused credentials stop the client; anything else (the network) is retried.
          this.closed(error.status === 400 || error.status === 401 ? 1000 : 1006);
        },
      );
    }

    /** Open the socket; in token mode, authenticate with an ``auth`` frame (not ?token=: URLs get logged). */
    open(token) {
      const socket = new WebSocket(this.url);
      this.socket = socket;
      if (token) {
        socket.addEventListener("open", () => socket.send(JSON.stringify({ type: "auth", data: { token } })));
      }
      socket.addEventListener("message", (event) => this.receive(event.data));
      socket.addEventListener("close", (event) => this.closed(event.code));
    }

    /** Token mode: a usable access token, refreshed (or obtained anew) when missing or ``fresh`` is asked. */
    async accessToken(fresh = false) {
      if (this.access && !fresh) return this.access;
      if (this.refreshToken && this.tokens.refresh) {
        try {
          const pair = await this.tokens.refresh(this.refreshToken);
          this.access = pair.access;
          if (pair.refresh) this.refreshToken = pair.refresh; // rotated refresh tokens
          return this.access;
        } catch (error) {
          this.refreshToken = null; // expired or revoked: log in again below
        }
      }
      const pair = await this.tokens.obtain();
      this.access = pair.access;
      this.refreshToken = pair.refresh || null;
      return this.access;
    }

    /** Token mode: ``auth.refresh`` with a new access token before ``expiresAtMs`` (server epoch ms). */
    scheduleRefresh(expiresAtMs) {
      clearTimeout(this.refreshTimer);
      if (!this.tokens || !expiresAtMs) return;
      const remaining = expiresAtMs - (Date.now() + this.clockOffsetMs);
      const delay = Math.max(remaining - Math.min(REFRESH_AHEAD_MS, remaining / 2), 0);
      this.refreshTimer = setTimeout(() => this.refreshInBand(), delay);
    }

    async refreshInBand() {
      try {
        const token = await this.accessToken(true);
        const ack = await this.request("auth.refresh", { token });
        this.scheduleRefresh(ack.expires_at);
        this.emit("token", ack.expires_at);
      } catch (error) {
        // Disconnected meanwhile (the next connect brings a new token), or refused: the server
        // closes with 4401 at expiry and the client reconnects with a fresh token.
        this.emit("error", error);
      }
    }

    receive(text) {
      const frame = JSON.parse(text);
      if (frame.type === "ack" || (frame.type === "error" && this.pending.has(frame.ref))) {
        const pending = this.pending.get(frame.ref);
        if (!pending) return;
        this.pending.delete(frame.ref);
        if (frame.type === "ack") pending.resolve(frame.data);
        else pending.reject(frame.error);
        return;
      }
      if (frame.type === "error") {
        // An error without a pending command: the server says why it is about to close.
        this.lastError = frame.error;
        this.emit("error", frame.error, frame);
        return;
      }
      if (frame.type === "welcome") {
        this.backoffMs = MIN_BACKOFF_MS;
        this.ready = true;
        this.clockOffsetMs = frame.data.server_time - Date.now();
        this.scheduleRefresh(frame.data.token_expires_at);
        this.emit("state", "open");
      }
      this.emit(frame.type, frame.data, frame);
      if (frame.type === "welcome") this.flush();
    }

    closed(code) {
      this.ready = false;
      clearTimeout(this.refreshTimer);
      for (const pending of this.pending.values()) {
        pending.reject({ code: "disconnected", message: "Connection lost; try again" });
      }
      this.pending.clear();
      if (code === 4401 && this.tokens) {
        this.access = null; // expired or refused: the reconnect takes a fresh one
      } else if (STOP_CODES.has(code)) {
        this.emit("state", "stopped", code);
        return;
      }
      const delay = code === 1001
        ? Math.random() * 1000
        : (MIN_DELAY_MS[code] || 0) + this.backoffMs * (0.5 + Math.random() / 2);
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
      this.emit("state", "reconnecting", code);
      setTimeout(() => this.start(), delay);
    }

    /** Send a command; resolve with its ack data, reject with its error ({code, message, details}). */
    request(type, data) {
      if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
        return Promise.reject({ code: "disconnected", message: "Not connected" });
      }
      const ref = `r${this.nextRef++}`;
      return new Promise((resolve, reject) => {
        this.pending.set(ref, { resolve, reject });
        this.socket.send(JSON.stringify({ type, ref, data }));
      });
    }

    /**
     * Fetch every page of a list (docs/protocol.md, "Lists"): send ``type`` with ``data`` and each
     * reply's ``next_cursor`` until it is null; resolve with the items under ``key`` of every page,
     * in order, each id once (a page may repeat an item that moved while paging). ``onPage(items)``
     * is awaited after each page. A page refused with ``rate_limited`` is asked again after
     * ``retry_after_ms``; any other refusal rejects.
     */
    async requestAll(type, data, key, onPage) {
      const items = [];
      const seen = new Set();
      let cursor = null;
      for (;;) {
        let page;
        try {
          page = await this.request(type, { ...data, limit: PAGE_LIMIT, cursor });
        } catch (error) {
          if (error.code !== "rate_limited") throw error;
          await new Promise((r) => setTimeout(r, (error.details && error.details.retry_after_ms) || 1000));
          continue;
        }
        const fresh = page[key].filter((item) => !seen.has(itemId(item)));
        fresh.forEach((item) => seen.add(itemId(item)));
        items.push(...fresh);
        if (onPage) await onPage(fresh);
        if (!page.next_cursor) return items;
        cursor = page.next_cursor;
      }
    }

    /**
     * Send an idempotent command now, or after the next welcome while disconnected; resolve with
     * its ack data, reject with a refusal (never with "disconnected": it is then resent).
     */
    enqueue(type, data) {
      return new Promise((resolve, reject) => {
        this.queue.push({ type, data, resolve, reject });
        this.flush();
      });
    }

    /** How many enqueued commands wait for an ack. */
    get queued() {
      return this.queue.length;
    }

    async flush() {
      if (this.flushing || !this.ready) return;
      this.flushing = true;
      try {
        while (this.queue.length && this.ready) {
          const item = this.queue[0];
          try {
            const ack = await this.request(item.type, item.data);
            this.queue.shift();
            item.resolve(ack);
          } catch (error) {
            if (error.code === "disconnected") break; // resent after the next welcome
            if (error.code === "rate_limited" || error.code === "server_error") {
              const wait = (error.details && error.details.retry_after_ms) || 1000;
              await new Promise((r) => setTimeout(r, wait));
              continue;
            }
            this.queue.shift();
            item.reject(error);
          }
        }
      } finally {
        this.flushing = false;
      }
      this.emit("queue", this.queue.length);
    }
  }

  class SeqTracker {
    /** Release messages to ``onRelease(message)`` in seq order, from ``synced`` + 1 on. */
    constructor(onRelease, synced = 0) {
      this.onRelease = onRelease;
      this.synced = synced;
      this.held = new Map(); // seq -> message above a gap
    }

    /** Whether ``seq`` was released or is held. */
    has(seq) {
      return seq <= this.synced || this.held.has(seq);
    }

    /** Whether messages are held above a gap (a catch-up is needed). */
    get gap() {
      return this.held.size > 0;
    }

    /** Take a message; release it and the held ones it completes. Return true while a gap remains. */
    receive(message) {
      if (!this.has(message.seq)) this.held.set(message.seq, message);
      this.release();
      return this.gap;
    }

    /** Take every seq up to ``seq`` as released elsewhere (a history page); release what follows. */
    advance(seq) {
      if (seq <= this.synced) return this.gap;
      this.synced = seq;
      for (const held of this.held.keys()) if (held <= seq) this.held.delete(held);
      this.release();
      return this.gap;
    }

    /** Move ``synced`` up over the held messages that follow it without a gap, handing each to ``onRelease`` in seq order. */
    release() {
      while (this.held.has(this.synced + 1)) {
        const message = this.held.get(this.synced + 1);
        this.held.delete(this.synced + 1);
        this.synced += 1;
        this.onRelease(message);
      }
    }
  }

  window.RealtimeClient = RealtimeClient;
  window.SeqTracker = SeqTracker;
})();
