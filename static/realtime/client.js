/*
 * RealtimeClient: the browser side of docs/protocol.md, shared by every page.
 *
 *   const client = new RealtimeClient();           // same-site /ws/, session cookie auth
 *   client.on("welcome", (data) => ...);           // after every (re)connect
 *   client.on("workspace.updated", (data) => ...); // server events by type
 *   const data = await client.request("workspace.list", {});  // ack data, or throws {code, message, details}
 *   client.start();
 *
 * Close codes (docs/protocol.md, "Close codes"): 1000, 1009, 4401 (a session page cannot refresh
 * a token: the user logs in again) and 4403 stop, and the page shows why; 1001 reconnects at once
 * (within 1 s of jitter); 1013 waits at least 5 s and 4429 at least 60 s; everything else
 * reconnects with exponential backoff and jitter (0.5 s doubling to 30 s).
 * Commands in flight when the socket closes fail with code "disconnected".
 */
(function () {
  "use strict";

  const STOP_CODES = new Set([1000, 1009, 4401, 4403]);
  const MIN_DELAY_MS = { 1001: 0, 1013: 5000, 4429: 60000 };
  const MIN_BACKOFF_MS = 500;
  const MAX_BACKOFF_MS = 30000;

  class RealtimeClient {
    constructor(url) {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      this.url = url || `${scheme}//${location.host}/ws/`;
      this.handlers = new Map();
      this.pending = new Map();
      this.nextRef = 1;
      this.backoffMs = MIN_BACKOFF_MS;
      this.socket = null;
      this.lastError = null;
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

    start() {
      this.emit("state", "connecting");
      const socket = new WebSocket(this.url);
      this.socket = socket;
      socket.addEventListener("message", (event) => this.receive(event.data));
      socket.addEventListener("close", (event) => this.closed(event.code));
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
        this.emit("state", "open");
      }
      this.emit(frame.type, frame.data, frame);
    }

    closed(code) {
      for (const pending of this.pending.values()) {
        pending.reject({ code: "disconnected", message: "Connection lost; try again" });
      }
      this.pending.clear();
      if (STOP_CODES.has(code)) {
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
  }

  window.RealtimeClient = RealtimeClient;
})();
