/*
 * The support desk in the Django admin, live (seed 002). On the desk list, support.updated events
 * update each row's unread count and flag rows with new messages (a conversation not on the page
 * shows a notice with a reload link). On a conversation page, the thread is joined from the last
 * seq the page rendered: new messages, the staff's own included, appear as they are sent, and the
 * desk's read mark follows. Messages are written with textContent: content is never HTML.
 * Both pages catch up as after a reconnect when a resync event says events may have been lost.
 */
(function () {
  "use strict";

  function start() {
    const client = new RealtimeClient();
    const desk = document.getElementById("support-desk");
    if (desk) conversationPage(client, desk);
    else listPage(client);
    client.start();
  }

  function listPage(client) {
    const results = document.getElementById("result_list") || document.getElementById("changelist");
    if (!results) return;
    const status = document.createElement("p");
    status.id = "desk-status";
    status.className = "help";
    results.parentNode.insertBefore(status, results);
    const notice = document.createElement("p");
    notice.id = "desk-notice";
    results.parentNode.insertBefore(notice, results);

    function update(row) {
      const cell = document.querySelector(`.desk-unread[data-conversation="${row.conversation_id}"]`);
      if (!cell) {
        notice.textContent = `New activity from ${row.user.name || row.user.username}. `;
        const link = document.createElement("a");
        link.href = location.href;
        link.textContent = "Reload the list";
        notice.append(link);
        return;
      }
      cell.textContent = String(row.unread);
      const tr = cell.closest("tr");
      if (tr) tr.style.fontWeight = row.unread > 0 ? "bold" : "";
    }

    client.on("support.updated", update);
    client.on("support.closed", (data) => {
      const cell = document.querySelector(`.desk-unread[data-conversation="${data.conversation_id}"]`);
      if (cell) cell.closest("tr").style.opacity = "0.5";
    });
    // Catch up with what changed while the page loaded, the socket was down or events were lost.
    async function reload() {
      const response = await fetch("/api/chat/support/queue/", { credentials: "same-origin" });
      if (response.ok) (await response.json()).forEach(update);
    }

    client.on("welcome", async () => {
      await reload();
      status.textContent = "Live: counts update as messages arrive.";
    });
    client.on("resync", () => reload().catch(() => {}));
    client.on("state", (state) => {
      if (state !== "open") status.textContent = `Not live (${state}).`;
    });
  }

  function conversationPage(client, desk) {
    const conversationId = Number(desk.dataset.conversationId);
    let lastSeq = Number(desk.dataset.lastSeq);
    const thread = document.getElementById("desk-thread");
    const status = document.getElementById("desk-status");

    function append(message) {
      if (message.seq <= lastSeq) return; // already shown
      lastSeq = message.seq;
      const li = document.createElement("li");
      li.className = "desk-message";
      li.dataset.seq = message.seq;
      const who = document.createElement("strong");
      who.className = "who";
      // Every message names its sender (docs/protocol.md, "Names"); staff replies are marked.
      who.textContent = message.sender.is_staff ? `${message.sender.name} (support)` : message.sender.name;
      li.append(who, " ");
      if (message.attachment) {
        const link = document.createElement("a");
        link.href = message.attachment.url;
        link.textContent = message.attachment.name;
        li.append(link, " ");
      }
      const content = document.createElement("span");
      content.className = "content";
      content.textContent = message.content;
      li.append(content);
      thread.append(li);
    }

    async function catchUp() {
      for (;;) {
        const reply = await client.request("chat.join", { conversation_id: conversationId, after_seq: lastSeq });
        reply.messages.forEach(append);
        if (!reply.has_more) break;
      }
      if (lastSeq) await client.request("chat.read", { conversation_id: conversationId, seq: lastSeq });
    }

    client.on("welcome", () => {
      catchUp().catch((error) => { status.textContent = error.message; });
    });
    client.on("resync", () => {
      catchUp().catch((error) => { status.textContent = error.message; });
    });
    client.on("chat.message", (message) => {
      if (message.conversation_id !== conversationId) return;
      if (message.seq > lastSeq + 1) {
        catchUp().catch(() => {});
        return;
      }
      append(message);
      client.request("chat.read", { conversation_id: conversationId, seq: message.seq }).catch(() => {});
    });
    client.on("presence.changed", (data) => {
      const presence = document.getElementById("desk-presence");
      if (Number(presence.dataset.userId) === data.user_id) presence.textContent = data.online ? "online" : "offline";
    });
    client.on("state", (state) => {
      status.textContent = state === "open" ? "live" : state;
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
