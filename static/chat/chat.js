/*
 * The chat page (docs/protocol.md, "Chat"): conversation list with unread counts and presence
 * dots, one open thread with history scroll-back, typing indicator, read receipts, uploads.
 *
 * Truth is the server's: each opened thread feeds events, acks and resume pages through a
 * SeqTracker (static/realtime/client.js), so a message that arrives twice (an event and a resume
 * page) is shown once, and one whose seq skips ahead (a lost event) is held while the hole is
 * fetched with chat.join {after_seq: synced} (docs/protocol.md, "Resume"), then shown in seq order.
 * After every (re)connect and on a resync event the page reloads the conversation list and
 * catches up the open thread the same way. Sends go through the client's offline queue with a
 * client_msg_id, so a send made while offline goes out after reconnecting and a resend after a
 * lost ack is not stored twice.
 */
(function () {
  "use strict";

  const root = document.querySelector(".chat");
  const me = Number(root.dataset.userId);
  const client = new RealtimeClient();
  const $ = (id) => document.getElementById(id);
  const list = $("conversations");
  const messagesEl = $("messages");
  const notice = $("notice");
  const status = $("status");
  const TYPING_SEND_MS = 3000; // at most one chat.typing per 3 s (the chat.typing rate limit)
  const TYPING_SHOW_MS = 4000;

  const conversations = new Map(); // id -> summary from chat.conversations / events
  // id -> {messages: Map(seq -> message shown), hasOlder, loaded, tracker, catchingUp, again}:
  // tracker.synced is the seq up to which the thread has every message; messages above a gap
  // wait in the tracker, so a message that arrived out of order (a lost event, an ack racing an
  // event) is never shown before the ones below it, and resuming never skips a hole.
  const threads = new Map();
  const pending = new Map(); // client_msg_id -> {conversationId, content} (sent, not yet acked)
  const typingUsers = new Map(); // user id -> timer
  const online = new Map(); // user id -> bool
  // user id -> display name, from every event that names a user (members, senders, typing,
  // receipts): staff answering a support conversation are not members, their messages name them.
  const names = new Map();
  let openId = null;
  let lastTypingSent = 0;

  function say(text) {
    notice.textContent = text;
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function newClientMsgId() {
    return (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`).slice(0, 64);
  }

  function remember(userId, name) {
    if (userId !== null && userId !== undefined && name) names.set(userId, name);
  }

  // A user as the page shows them: their display name (docs/protocol.md, "Names"); the support
  // desk's shared read mark (user id null) is "support".
  function nameOf(userId) {
    if (userId === null) return "support";
    return names.get(userId) || "someone";
  }

  // Who wrote a message: "me", else the sender's name; staff in a support conversation are
  // marked as support ("Ann Lee (support)").
  function senderLabel(message) {
    if (message.sender_id === me) return "me";
    const sender = message.sender || { id: message.sender_id, name: nameOf(message.sender_id), is_staff: false };
    const conversation = conversations.get(message.conversation_id);
    const support = sender.is_staff && conversation && conversation.kind === "support";
    return support ? `${sender.name} (support)` : sender.name;
  }

  function titleOf(conversation) {
    if (conversation.kind === "direct") {
      const other = conversation.members.find((m) => m.user_id !== me);
      return other ? other.name || other.username : "direct";
    }
    return conversation.title || `${conversation.kind} ${conversation.id}`;
  }

  function thread(id) {
    if (!threads.has(id)) {
      const data = { messages: new Map(), hasOlder: true, loaded: false, catchingUp: null, again: false };
      data.tracker = new SeqTracker((message) => show(data, message));
      threads.set(id, data);
    }
    return threads.get(id);
  }

  function lastSeq(id) {
    const seqs = [...thread(id).messages.keys()];
    return seqs.length ? Math.max(...seqs) : 0;
  }

  // -- conversation list --------------------------------------------------------------------

  function renderList() {
    const sorted = [...conversations.values()].sort((a, b) => b.last_seq - a.last_seq || b.id - a.id);
    list.replaceChildren(...sorted.map((conversation) => {
      const li = document.createElement("li");
      li.dataset.id = conversation.id;
      li.setAttribute("aria-current", String(conversation.id === openId));
      const dot = document.createElement("span");
      dot.className = "presence";
      const others = conversation.members.filter((m) => m.user_id !== me);
      dot.dataset.online = String(others.some((m) => online.get(m.user_id)));
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = titleOf(conversation);
      const unread = document.createElement("span");
      unread.className = "unread";
      unread.textContent = conversation.unread > 0 ? String(conversation.unread) : "";
      li.append(dot, name, unread);
      li.addEventListener("click", () => openConversation(conversation.id));
      return li;
    }));
  }

  function upsertConversation(summary) {
    const known = conversations.get(summary.id) || { unread: 0, last_read_seq: 0 };
    const merged = { ...known, ...summary };
    for (const member of merged.members) {
      if ("online" in member) online.set(member.user_id, member.online);
      remember(member.user_id, member.name || member.username);
    }
    conversations.set(summary.id, merged);
  }

  // Every page of chat.conversations (docs/protocol.md, "Lists"), each shown as it arrives.
  async function loadConversations() {
    await client.requestAll("chat.conversations", {}, "conversations", (page) => {
      for (const conversation of page) upsertConversation(conversation);
      renderList();
    });
  }

  // -- the open thread ----------------------------------------------------------------------

  function renderMessage(message) {
    const li = document.createElement("li");
    li.className = "message";
    if (message.seq) li.dataset.seq = message.seq;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = senderLabel(message);
    li.append(who);
    if (message.attachment) {
      if (message.content_type === "image") {
        const img = document.createElement("img");
        img.src = message.attachment.url;
        img.alt = message.attachment.name;
        li.append(img);
      } else {
        const link = document.createElement("a");
        link.href = message.attachment.url;
        link.textContent = message.attachment.name;
        li.append(link);
      }
    }
    const text = document.createElement("span");
    text.className = "content";
    // textContent: content is shown exactly as sent, never as HTML.
    if (!message.attachment || message.content !== message.attachment.name) text.textContent = message.content;
    li.append(text);
    return li;
  }

  function renderThread() {
    if (openId === null) return;
    const data = thread(openId);
    const atBottom = messagesEl.scrollTop + messagesEl.clientHeight >= messagesEl.scrollHeight - 4;
    const rows = [...data.messages.values()].sort((a, b) => a.seq - b.seq).map(renderMessage);
    for (const [id, item] of pending) {
      if (item.conversationId !== openId) continue;
      const row = renderMessage({ sender_id: me, content: item.content, content_type: "text" });
      row.dataset.pending = id;
      row.querySelector(".who").textContent = "me (sending…)";
      rows.push(row);
    }
    const receipt = readReceipt();
    if (receipt && rows.length) {
      const target = rows.find((row) => Number(row.dataset.seq) === receipt.seq);
      if (target) {
        const note = document.createElement("span");
        note.className = "receipt";
        note.textContent = `Seen by ${receipt.names.join(", ")}`;
        target.append(note);
      }
    }
    messagesEl.replaceChildren(...rows);
    $("older").hidden = !data.hasOlder;
    if (atBottom) messagesEl.scrollTop = messagesEl.scrollHeight;
  }

  // The newest of my messages that others have read, with who read it.
  function readReceipt() {
    const conversation = conversations.get(openId);
    if (!conversation || !conversation.reads) return null;
    const mine = [...thread(openId).messages.values()].filter((m) => m.sender_id === me).map((m) => m.seq);
    let best = null;
    for (const seq of mine) {
      const readers = Object.entries(conversation.reads)
        .filter(([userId, read]) => Number(userId) !== me && read >= seq)
        .map(([userId]) => nameOf(userId === "null" ? null : Number(userId)));
      if (readers.length && (!best || seq > best.seq)) best = { seq, names: readers };
    }
    return best;
  }

  // A message the thread shows: released by its tracker in seq order, or from a history page.
  function show(data, message) {
    if (message.sender) remember(message.sender.id, message.sender.name);
    data.messages.set(message.seq, message);
    if (message.client_msg_id) pending.delete(message.client_msg_id);
  }

  // Fetch every message after the last one we have without a gap (docs/protocol.md, "Resume"),
  // page by page. One at a time per thread: asked again while running, it runs once more after.
  function catchUp(id) {
    const data = thread(id);
    if (data.catchingUp) {
      data.again = true;
      return data.catchingUp;
    }
    data.catchingUp = (async () => {
      try {
        do {
          data.again = false;
          for (;;) {
            const reply = await client.request("chat.join", { conversation_id: id, after_seq: data.tracker.synced });
            upsertConversation(reply.conversation);
            reply.messages.forEach((message) => data.tracker.receive(message));
            if (!reply.has_more || !reply.messages.length) break;
          }
        } while (data.again);
      } finally {
        data.catchingUp = null;
      }
    })();
    return data.catchingUp;
  }

  // A live message skipped ahead of the open thread: fetch the hole, then show both.
  async function fillGap(id) {
    await catchUp(id);
    renderList();
    if (id === openId) {
      renderThread();
      await markRead(id);
    }
  }

  // A thread's newest history page, once: it has every message up to its last one, so the
  // thread is synced that far (a catch-up before it would fetch the whole conversation).
  async function loadNewest(id) {
    const data = thread(id);
    if (data.loaded) return;
    const page = await client.request("chat.history", { conversation_id: id, limit: 50 });
    page.messages.forEach((message) => show(data, message));
    if (page.messages.length) data.tracker.advance(page.messages[page.messages.length - 1].seq);
    data.hasOlder = page.has_more;
    data.loaded = true;
  }

  async function openConversation(id) {
    if (openId !== null && openId !== id && client.ready) {
      client.request("chat.leave", { conversation_id: openId }).catch(() => {});
    }
    openId = id;
    $("thread").hidden = false;
    $("thread-title").textContent = titleOf(conversations.get(id));
    $("typing").textContent = "";
    typingUsers.clear();
    try {
      await loadNewest(id);
      await catchUp(id);
      renderList();
      renderThread();
      messagesEl.scrollTop = messagesEl.scrollHeight;
      await markRead(id);
    } catch (error) {
      say(error.message);
    }
  }

  async function loadOlder() {
    const data = thread(openId);
    const seqs = [...data.messages.keys()];
    const before = seqs.length ? Math.min(...seqs) : undefined;
    const page = await client.request("chat.history", { conversation_id: openId, before_seq: before, limit: 50 });
    const height = messagesEl.scrollHeight;
    page.messages.forEach((message) => show(data, message)); // older than any shown: no gap below
    data.hasOlder = page.has_more;
    renderThread();
    messagesEl.scrollTop = messagesEl.scrollHeight - height; // keep the reader's place
  }

  async function markRead(id) {
    const conversation = conversations.get(id);
    const seq = lastSeq(id);
    if (!conversation || document.hidden || seq <= (conversation.last_read_seq || 0)) return;
    const reply = await client.request("chat.read", { conversation_id: id, seq });
    conversation.last_read_seq = reply.last_read_seq;
    conversation.unread = reply.unread;
    renderList();
  }

  // -- sending ------------------------------------------------------------------------------

  function send(data, shownAs) {
    const clientMsgId = newClientMsgId();
    pending.set(clientMsgId, { conversationId: data.conversation_id, content: shownAs });
    renderThread();
    client.enqueue("chat.send", { ...data, client_msg_id: clientMsgId })
      .then((ack) => {
        onMessage(ack.message);
      })
      .catch((error) => {
        pending.delete(clientMsgId);
        renderThread();
        say(`Not sent: ${error.message}`);
      });
  }

  async function upload(file) {
    const kind = file.type.startsWith("image/") ? "image" : "file";
    const form = new FormData();
    form.append("file", file);
    form.append("kind", kind);
    const response = await fetch("/api/chat/attachments/", {
      method: "POST", body: form, credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() },
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? JSON.stringify(body.error.details || body.error.message) : response.statusText);
    return { kind, attachment: body };
  }

  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const content = form.content.value;
    const file = form.file.files[0];
    if (openId === null || (!content.trim() && !file)) return;
    try {
      if (file) {
        const { kind, attachment } = await upload(file);
        send({ conversation_id: openId, content, content_type: kind, attachment_id: attachment.id }, content || attachment.name);
      } else {
        send({ conversation_id: openId, content }, content);
      }
      form.reset();
    } catch (error) {
      say(`Upload refused: ${error.message}`);
    }
  });

  $("composer").content.addEventListener("input", () => {
    const now = Date.now();
    if (openId === null || !client.ready || now - lastTypingSent < TYPING_SEND_MS) return;
    lastTypingSent = now;
    client.request("chat.typing", { conversation_id: openId }).catch(() => {});
  });

  $("older").addEventListener("click", () => loadOlder().catch((error) => say(error.message)));

  $("new-direct").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      const ack = await client.request("chat.send", {
        recipient_id: Number(form.recipient_id.value), content: form.content.value, client_msg_id: newClientMsgId(),
      });
      form.reset();
      await loadConversations();
      openConversation(ack.message.conversation_id);
    } catch (error) {
      say(error.message);
    }
  });

  $("new-group").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const memberIds = form.member_ids.value.split(/[\s,]+/).filter(Boolean).map(Number);
    try {
      const ack = await client.request("chat.create_group", { title: form.title.value, member_ids: memberIds });
      form.reset();
      upsertConversation(ack.conversation);
      openConversation(ack.conversation.id);
    } catch (error) {
      say(error.details ? JSON.stringify(error.details) : error.message);
    }
  });

  $("support").addEventListener("click", async () => {
    try {
      const ack = await client.request("chat.support", {});
      upsertConversation(ack.conversation);
      openConversation(ack.conversation.id);
    } catch (error) {
      say(error.message);
    }
  });

  // -- events -------------------------------------------------------------------------------

  function onMessage(message) {
    const id = message.conversation_id;
    const conversation = conversations.get(id);
    if (!conversation) {
      loadConversations().catch(() => {}); // a conversation created by someone else
      return;
    }
    // Only opened threads keep messages (they load their history first); others count unread.
    const data = threads.get(id);
    const known = data !== undefined && data.tracker.has(message.seq);
    const gap = data !== undefined && data.tracker.receive(message);
    // A thread still loading its history catches up when loaded; one not open, when opened.
    // A failed catch-up leaves the gap: the next message, resync or reconnect tries again.
    if (gap && data.loaded && id === openId) fillGap(id).catch((error) => say(error.message));
    conversation.last_seq = Math.max(conversation.last_seq, message.seq);
    if (!known && message.sender_id !== me && id !== openId) conversation.unread = (conversation.unread || 0) + 1;
    if (message.sender_id === me) conversation.last_read_seq = Math.max(conversation.last_read_seq || 0, message.seq);
    renderList();
    if (id === openId) {
      renderThread();
      markRead(id).catch(() => {});
    }
  }

  client.on("chat.message", onMessage);

  client.on("chat.read", (data) => {
    const conversation = conversations.get(data.conversation_id);
    if (!conversation) return;
    remember(data.user_id, data.name);
    conversation.reads = { ...(conversation.reads || {}), [data.user_id]: data.seq };
    if (data.user_id === me) {
      conversation.last_read_seq = Math.max(conversation.last_read_seq || 0, data.seq);
      conversation.unread = Math.max(0, conversation.last_seq - conversation.last_read_seq);
      renderList();
    }
    if (data.conversation_id === openId) renderThread();
  });

  client.on("chat.typing", (data) => {
    if (data.conversation_id !== openId) return;
    remember(data.user_id, data.name);
    clearTimeout(typingUsers.get(data.user_id));
    typingUsers.set(data.user_id, setTimeout(() => {
      typingUsers.delete(data.user_id);
      showTyping();
    }, TYPING_SHOW_MS));
    showTyping();
  });

  function showTyping() {
    const typists = [...typingUsers.keys()].map(nameOf);
    $("typing").textContent = typists.length ? `${typists.join(", ")} typing…` : "";
  }

  client.on("presence.changed", (data) => {
    online.set(data.user_id, data.online);
    renderList();
  });

  client.on("chat.member_added", (data) => {
    upsertConversation(data.conversation);
    renderList();
  });

  client.on("chat.member_removed", (data) => {
    if (data.user_id === me) {
      conversations.delete(data.conversation_id);
      if (openId === data.conversation_id) {
        openId = null;
        $("thread").hidden = true;
      }
    } else {
      loadConversations().catch(() => {});
    }
    renderList();
  });

  client.on("support.closed", (data) => {
    const conversation = conversations.get(data.conversation_id);
    if (conversation) conversation.closed = true;
    if (data.conversation_id === openId) say("Support closed this conversation. Contact support again to open a new one.");
  });

  // Refusals worth retrying (docs/protocol.md, "Errors"); "disconnected" waits for the next welcome.
  const RETRYABLE = new Set(["unavailable", "rate_limited", "server_error"]);

  // After every (re)connect and on resync: the conversations (unread counts, last messages), then
  // the open thread's messages after its synced seq, once each. A resume refused for a passing reason is tried again, or the gap would stay until the
  // next reconnect.
  async function resume(attempt) {
    try {
      await loadConversations();
      if (openId !== null) {
        await loadNewest(openId);
        await catchUp(openId);
        renderList();
        renderThread();
        await markRead(openId);
      }
    } catch (error) {
      say(error.message);
      if (RETRYABLE.has(error.code) && attempt < 5) {
        const wait = (error.details && error.details.retry_after_ms) || 1000 * attempt;
        setTimeout(() => { if (client.ready) resume(attempt + 1); }, wait);
      }
    }
  }

  client.on("welcome", () => {
    say("");
    resume(1);
  });

  // The server may have lost events for this connection (docs/protocol.md, "resync"): catch up
  // as after a reconnect; the socket stays open.
  client.on("resync", () => resume(1));

  client.on("state", (state, code) => {
    status.dataset.state = state;
    status.textContent = state === "open" ? "live" : state === "stopped" ? "disconnected" : `${state}…`;
    if (state === "stopped") {
      say(client.lastError ? `${client.lastError.message} (close ${code})` : `Disconnected (close ${code})`);
    }
  });

  client.on("queue", (size) => {
    if (size === 0) renderThread();
  });

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && openId !== null && client.ready) markRead(openId).catch(() => {});
  });

  client.start();
})();
