/*
 * The chat page (docs/protocol.md, "Chat"): a conversation list (title, last message, time, unread
 * count, presence, support/group marker, filter) beside one open thread (names, times, day
 * separators, grouped messages, per-message state, thumbnails and file cards, typing line,
 * history scroll-back, only the rows near the view in the document) and its composer (Enter sends, Shift+Enter is a newline, a draft per
 * conversation kept in localStorage, a counter near CHAT_MAX_MESSAGE_CHARS, paste or drop a file).
 * A members panel beside the thread (names, roles, presence; a group's owner and admins add and
 * remove people, the owner makes members admins) follows chat.member_added/removed/role_changed live.
 * Under 720 px wide the page shows the list, the thread or the members (data-view), with a back
 * control. "Seen by ..." comes from chat.read events and, after a (re)load, from chat.join's
 * read_positions.
 * People are picked by name through GET /api/users/?search= (chat.selectors.search_people).
 *
 * Truth is the server's: each opened thread feeds events, acks and resume pages through a
 * SeqTracker (static/realtime/client.js), so a message that arrives twice (an event and a resume
 * page) is shown once, and one whose seq skips ahead (a lost event) is held while the hole is
 * fetched with chat.join {after_seq: synced} (docs/protocol.md, "Resume"), then shown in seq order.
 * After every (re)connect and on a resync event the page reloads the conversation list and
 * catches up the open thread the same way. Sends go through the client's offline queue with a
 * client_msg_id, so a send made while offline goes out after reconnecting and a resend after a
 * lost ack is not stored twice.
 *
 * Errors are sentences placed where the action was (the picker, the list, the thread) and cleared
 * when the next action there succeeds.
 */
(function () {
  "use strict";

  const root = document.getElementById("chat");
  const me = Number(root.dataset.userId);
  const MAX_CHARS = Number(root.dataset.maxChars);
  const client = new RealtimeClient();
  const $ = (id) => document.getElementById(id);
  const list = $("conversations");
  const messagesEl = $("messages");
  const scroller = $("scroller");
  const composer = $("composer");
  const textarea = $("composer-text");
  const status = $("status");
  const TYPING_SEND_MS = 3000; // at most one chat.typing per 3 s (the chat.typing rate limit)
  const TYPING_SHOW_MS = 4000;
  const GROUP_WITHIN_MS = 5 * 60 * 1000; // one sender's messages this close together form one group
  const COUNTER_FROM = 0.8; // the counter shows from 80% of CHAT_MAX_MESSAGE_CHARS
  const SEARCH_DELAY_MS = 250; // wait for a pause in typing before asking GET /api/users/
  const DRAFT_KEY = (id) => `switchboard.chat.draft.${me}.${id}`;

  const conversations = new Map(); // id -> summary from chat.conversations / events
  // id -> {messages: Map(seq -> message shown), list: the same in seq order, heights, hasOlder,
  // loaded, tracker, catchingUp, again}:
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
  let firstUnreadSeq = null; // the open thread's "new messages" divider goes above this seq
  let lastTypingSent = 0;
  let attachedFile = null;
  let loadingOlder = false;
  let listLoaded = false; // the first chat.conversations is in

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const dateFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
  const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long", year: "numeric" });

  // -- small helpers ------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text; // always text: content is never HTML
    return node;
  }

  function showError(target, text) {
    $(target).textContent = text || "";
  }

  // A refusal as a sentence: the server's field message when it gives one (an upload's "That file
  // type isn't allowed: use PDF, ..."), else its message; a lost connection says so.
  function describe(error) {
    if (!error) return "Something went wrong. Try again.";
    if (error.code === "disconnected") return "Not connected right now: try again when the status says live.";
    const details = error.details;
    if (details && typeof details === "object") {
      for (const value of Object.values(details)) {
        if (Array.isArray(value) && typeof value[0] === "string") return value[0];
      }
    }
    return error.message || String(error);
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      if (response.status === 429) throw { message: "Too many searches: wait a moment and type again." };
      throw body.error || { message: response.statusText };
    }
    return body;
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
    if (userId === me) return "You";
    return names.get(userId) || "someone";
  }

  // Who wrote a message: "You", else the sender's name; staff in a support conversation are
  // marked as support ("Ann Lee (support)").
  function senderLabel(message) {
    if (message.sender_id === me) return "You";
    const sender = message.sender || { id: message.sender_id, name: nameOf(message.sender_id), is_staff: false };
    const conversation = conversations.get(message.conversation_id);
    const support = sender.is_staff && conversation && conversation.kind === "support";
    return support ? `${sender.name} (support)` : sender.name;
  }

  function otherMembers(conversation) {
    return conversation.members.filter((m) => m.user_id !== me);
  }

  function titleOf(conversation) {
    if (conversation.kind === "direct") {
      const other = otherMembers(conversation)[0];
      return other ? other.name || other.username : "Direct message";
    }
    if (conversation.kind === "support") return conversation.title || "Support";
    return conversation.title || `Group ${conversation.id}`;
  }

  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }

  function dayLabel(date) {
    const today = new Date();
    const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (sameDay(date, today)) return "Today";
    if (sameDay(date, yesterday)) return "Yesterday";
    return dayFormat.format(date);
  }

  // A list row's time: the hour today, else the date.
  function shortWhen(ms) {
    const date = new Date(ms);
    return sameDay(date, new Date()) ? timeFormat.format(date) : dateFormat.format(date);
  }

  function timeElement(ms, className) {
    const time = el("time", className, timeFormat.format(new Date(ms)));
    time.dateTime = new Date(ms).toISOString();
    time.title = `${dayLabel(new Date(ms))} ${timeFormat.format(new Date(ms))}`;
    return time;
  }

  function fileSize(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
    return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  }

  function thread(id) {
    if (!threads.has(id)) {
      const data = {
        messages: new Map(), list: [], heights: new Map(), heightSum: 0,
        hasOlder: true, loaded: false, catchingUp: null, again: false,
      };
      data.tracker = new SeqTracker((message) => show(data, message));
      threads.set(id, data);
    }
    return threads.get(id);
  }

  function lastSeq(id) {
    const list = thread(id).list;
    return list.length ? list[list.length - 1].seq : 0;
  }

  // The index in ``list`` (messages in seq order) of the first message whose seq is at least ``seq``.
  function seqIndex(list, seq) {
    let low = 0;
    let high = list.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (list[middle].seq < seq) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  // -- phone layout: the list or the thread --------------------------------------------------

  function setView(view) {
    root.dataset.view = view;
    // A hidden thread is not measured (see renderThread): shown again, it is rendered.
    if (view === "thread") renderThread();
  }

  $("back").addEventListener("click", () => {
    setView("list");
    const row = list.querySelector(`li[data-id='${openId}'] button`);
    if (row) row.focus();
  });

  // -- conversation list --------------------------------------------------------------------

  // Newest activity first: the last message's time; a conversation without one, when this page
  // learnt of it after its first list (just created or joined), else by id.
  function activity(conversation) {
    return conversation.last_message ? conversation.last_message.created_at : conversation.arrived_at || 0;
  }

  function preview(conversation) {
    const message = conversation.last_message;
    if (!message) return conversation.kind === "support" ? "Ask us anything" : "No messages yet";
    let text = message.content;
    if (message.attachment && (!text || text === message.attachment.name)) {
      text = message.content_type === "image" ? `Image: ${message.attachment.name}` : `File: ${message.attachment.name}`;
    }
    const who = message.sender_id === me ? "You" : conversation.kind === "direct" ? "" : (message.sender && message.sender.name) || "";
    return who ? `${who}: ${text}` : text;
  }

  function renderList() {
    const filter = $("filter").value.trim().toLowerCase();
    const sorted = [...conversations.values()].sort((a, b) => activity(b) - activity(a) || b.id - a.id);
    const shown = sorted.filter((c) => !filter || titleOf(c).toLowerCase().includes(filter));
    list.replaceChildren(...shown.map((conversation) => {
      const li = el("li");
      li.dataset.id = conversation.id;
      li.setAttribute("aria-current", String(conversation.id === openId));
      const button = el("button", "row");
      button.type = "button";
      const others = otherMembers(conversation);
      const isOnline = others.some((m) => online.get(m.user_id));
      const dot = el("span", "presence");
      dot.dataset.online = String(isOnline);
      dot.setAttribute("aria-hidden", "true");
      const main = el("span", "row-main");
      const top = el("span", "row-top");
      const name = el("span", "name", titleOf(conversation));
      top.append(name);
      // The dot and the badge are visual: screen readers hear these words instead.
      if (isOnline) top.append(el("span", "visually-hidden", "(online)"));
      if (conversation.kind !== "direct") top.append(el("span", `marker ${conversation.kind}`, conversation.kind === "support" ? "Support" : "Group"));
      if (conversation.last_message) top.append(el("span", "when", shortWhen(conversation.last_message.created_at)));
      const bottom = el("span", "row-bottom");
      bottom.append(el("span", "preview", preview(conversation)));
      const unread = el("span", "unread", conversation.unread > 0 ? String(conversation.unread) : "");
      bottom.append(unread);
      if (conversation.unread > 0) bottom.append(el("span", "visually-hidden", "unread"));
      main.append(top, bottom);
      button.append(dot, main);
      button.addEventListener("click", () => openConversation(conversation.id));
      li.append(button);
      return li;
    }));
    $("empty-list").hidden = conversations.size > 0;
  }

  $("filter").addEventListener("input", renderList);

  function upsertConversation(summary) {
    const known = conversations.get(summary.id) || {
      unread: 0, last_read_seq: 0, last_message: null, arrived_at: listLoaded ? Date.now() : 0,
    };
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
    listLoaded = true;
  }

  // -- the open thread ----------------------------------------------------------------------

  function renderAttachment(message) {
    const attachment = message.attachment;
    if (message.content_type === "image") {
      const link = el("a", "thumb");
      link.href = attachment.url;
      link.target = "_blank";
      link.rel = "noopener";
      const img = el("img");
      img.src = attachment.url;
      img.alt = attachment.name;
      link.append(img);
      return link;
    }
    const card = el("a", "file-card");
    card.href = attachment.url;
    card.setAttribute("download", attachment.name);
    card.append(el("span", "file-icon", (attachment.name.split(".").pop() || "file").slice(0, 4).toUpperCase()));
    const text = el("span", "file-text");
    text.append(el("span", "file-name", attachment.name), el("span", "file-size", `${fileSize(attachment.size)} · Download`));
    card.append(text);
    return card;
  }

  // Grouped under the previous message (no name repeated on screen; still read out): the same
  // sender within GROUP_WITHIN_MS.
  function isContinued(message, previous) {
    const at = message.created_at || Date.now();
    return Boolean(previous && previous.sender_id === message.sender_id && at - (previous.created_at || Date.now()) < GROUP_WITHIN_MS);
  }

  function renderMessage(message, previous) {
    const li = el("li", "message");
    if (message.seq) li.dataset.seq = message.seq;
    const mine = message.sender_id === me;
    if (mine) li.classList.add("mine");
    const at = message.created_at || Date.now();
    if (isContinued(message, previous)) li.classList.add("continued");
    const meta = el("div", "meta");
    meta.append(el("span", "who", senderLabel(message)), timeElement(at, "time"));
    li.append(meta);
    const body = el("div", "body");
    if (message.attachment) body.append(renderAttachment(message));
    const text = el("p", "content");
    // textContent: content is shown exactly as sent, never as HTML.
    if (!message.attachment || message.content !== message.attachment.name) text.textContent = message.content;
    body.append(text);
    li.append(body);
    return li;
  }

  // -- the thread's window ------------------------------------------------------------------

  // Only the rows near the view are in the document. With every loaded row kept, Chromium's
  // layout, pre-paint and paint grew with the rows: a page of history cost 150 ms at the median
  // and 290 ms with 10,000 loaded (bench/chat_page.py --profile: 65 of 112 ms a page were
  // pre-paint and layout). The thread is a run of blocks, one per message (its day separator or
  // "New messages" divider, then the message) and one per pending send; the blocks above and
  // below the window are stood in for by two spacers as tall as those blocks were measured (or,
  // never shown yet, the mean of the measured ones). The list's content is kept where the reader
  // sees it by the first row in view; a ResizeObserver re-measures rows that change size (an
  // image loading, the window's width).
  const OVERSCAN = 1; // viewports of rows kept above and below the one in view
  const FIRST_ESTIMATE_PX = 48; // a block's height before any is measured
  const topSpacer = spacer();
  const bottomSpacer = spacer();
  let rowCache = new Map(); // key -> row, the rows in the window
  let rowsOf = null; // the conversation they belong to
  const rowHeights = new WeakMap(); // message row -> its height when measured
  const resized = new ResizeObserver((entries) => {
    const changed = entries.some((entry) => {
      const was = rowHeights.get(entry.target);
      return was !== undefined && Math.abs(entry.borderBoxSize[0].blockSize - was) > 0.5;
    });
    if (changed) renderThread();
  });
  window.addEventListener("resize", () => renderThread());

  function spacer() {
    const li = el("li", "spacer");
    li.setAttribute("aria-hidden", "true");
    return li;
  }

  function heightOf(data, id) {
    const px = data.heights.get(id);
    if (px !== undefined) return px;
    return data.heights.size ? data.heightSum / data.heights.size : FIRST_ESTIMATE_PX;
  }

  function setHeight(data, id, px) {
    data.heightSum += px - (data.heights.get(id) || 0);
    data.heights.set(id, px);
  }

  function forgetHeight(data, id) {
    data.heightSum -= data.heights.get(id) || 0;
    data.heights.delete(id);
  }

  // Others' read marks on the open conversation: user id -> seq (chat.read events).
  function readers() {
    const conversation = conversations.get(openId);
    return Object.entries((conversation && conversation.reads) || {})
      .map(([userId, seq]) => [userId === "null" ? null : Number(userId), seq])
      .filter(([userId]) => userId !== me);
  }

  // The rows of block ``i`` as [key, make()]: a key names everything the row shows, so a row
  // whose key was shown before is reused as it is. ``view`` holds the thread's messages and
  // pending sends, the read marks and the newest of my messages someone has read (``seenSeq``).
  function blockRows(view, i) {
    const { list, sends, marks, seenSeq } = view;
    if (i >= list.length) {
      const [id, item] = sends[i - list.length];
      const before = i === 0 ? null : i === list.length ? list[i - 1] : { sender_id: me, created_at: Date.now() };
      return [[`pending ${id} ${isContinued({ sender_id: me, created_at: Date.now() }, before)}`, () => {
        const row = renderMessage({ sender_id: me, conversation_id: openId, content: item.content, content_type: "text", created_at: Date.now() }, before);
        row.dataset.pending = id;
        row.append(el("span", "state", "Sending…"));
        return row;
      }]];
    }
    const message = list[i];
    let previous = i > 0 ? list[i - 1] : null;
    const rows = [];
    const date = new Date(message.created_at);
    if (!previous || !sameDay(new Date(previous.created_at), date)) {
      const label = dayLabel(date);
      rows.push([`day ${message.seq} ${label}`, () => {
        const day = el("li", "day");
        day.append(el("span", "", label));
        return day;
      }]);
      previous = null;
    }
    if (firstUnreadSeq !== null && message.seq === firstUnreadSeq) {
      rows.push([`new ${message.seq}`, () => {
        const divider = el("li", "new-divider");
        divider.append(el("span", "", "New messages"));
        return divider;
      }]);
      previous = null;
    }
    let state = "";
    if (message.sender_id === me) {
      state = message.seq === seenSeq
        ? `Seen by ${marks.filter(([, seq]) => seq >= message.seq).map(([userId]) => nameOf(userId)).join(", ")}`
        : message.seq < seenSeq ? "Seen" : "Sent";
    }
    const before = previous;
    const continued = isContinued(message, before);
    rows.push([`m ${message.seq} ${continued} ${senderLabel(message)} ${state}`, () => {
      const row = renderMessage(message, before);
      if (state) row.append(el("span", state.startsWith("Seen by") ? "receipt" : "state", state));
      return row;
    }]);
    return rows;
  }

  // The open thread's window: the blocks around the reader's place rendered between the two
  // spacers, the reader's place kept. ``bottom``: show the newest (a send of one's own; a reader
  // at the bottom stays there anyway); ``toSeq``: put that message's block at the top (the
  // "New messages" divider on opening). Work a call: the blocks' heights summed, the window's
  // rows made or reused, measured once; whatever the number of messages loaded.
  function renderThread({ bottom = false, toSeq = null } = {}) {
    if (openId === null) return;
    const data = thread(openId);
    const switched = rowsOf !== openId; // the rows in the document are another conversation's
    if (switched) {
      rowCache = new Map();
      rowsOf = openId;
    }
    // Hidden (the list or the members on a phone), nothing can be measured: rendered when shown.
    if (!scroller.clientHeight) return;
    const list = data.list;
    const sends = [...pending].filter(([, item]) => item.conversationId === openId);
    const count = list.length + sends.length;
    const idOf = (i) => (i < list.length ? list[i].seq : `p${sends[i - list.length][0]}`);
    const marks = readers();
    // The newest of my messages someone has read carries "Seen by ..."; mine before it are seen.
    const readTo = Math.max(0, ...marks.map(([, seq]) => seq));
    let seenSeq = 0;
    for (let i = seqIndex(list, readTo + 1) - 1; i >= 0; i--) {
      if (list[i].sender_id === me) {
        seenSeq = list[i].seq;
        break;
      }
    }
    const view = { list, sends, marks, seenSeq };

    const viewport = scroller.getBoundingClientRect();
    const height = scroller.clientHeight;
    const atBottom = bottom || (toSeq === null && scroller.scrollTop + height >= scroller.scrollHeight - 8);
    // The reader's place: the first row at least partly in view, and where it is on screen.
    let anchor = null;
    if (!atBottom && toSeq === null && !switched) {
      for (const row of messagesEl.children) {
        if (!row.dataset.seq && !row.dataset.pending) continue;
        const box = row.getBoundingClientRect();
        if (box.top >= viewport.bottom) break; // none in view: the reader jumped past the window
        if (box.bottom > viewport.top) {
          anchor = { seq: row.dataset.seq, pending: row.dataset.pending, offset: box.top - viewport.top };
          break;
        }
      }
    }
    const anchorIndex = !anchor ? -1 : anchor.seq
      ? seqIndex(list, Number(anchor.seq))
      : list.length + sends.findIndex(([id]) => id === anchor.pending);

    // Where each block starts, from the list's top.
    const tops = new Float64Array(count + 1);
    for (let i = 0; i < count; i++) tops[i + 1] = tops[i] + heightOf(data, idOf(i));
    const total = tops[count];
    let from;
    if (atBottom) from = total - height;
    else if (toSeq !== null) from = tops[seqIndex(list, toSeq)];
    else if (anchorIndex >= 0) from = tops[anchorIndex] - anchor.offset;
    else from = viewport.top - messagesEl.getBoundingClientRect().top;
    let start = 0;
    while (start < count - 1 && tops[start + 1] <= from - OVERSCAN * height) start++;
    let end = start;
    while (end < count && tops[end] < from + (1 + OVERSCAN) * height) end++;

    const cache = new Map();
    const rows = [];
    const firsts = []; // each block's first row (a separator, or its message)
    const ends = []; // each block's last row: its message
    for (let i = start; i < end; i++) {
      firsts.push(null);
      for (const [key, make] of blockRows(view, i)) {
        const row = rowCache.get(key) || make();
        cache.set(key, row);
        rows.push(row);
        firsts[firsts.length - 1] ||= row;
      }
      ends.push(rows[rows.length - 1]);
    }
    topSpacer.style.height = `${tops[start]}px`;
    bottomSpacer.style.height = `${total - tops[end]}px`;
    if (start > 0) rows.unshift(topSpacer);
    if (end < count) rows.push(bottomSpacer);
    // Rows no longer wanted go first: left in place, each row after them would be moved in turn.
    const keep = new Set(rows);
    for (const child of [...messagesEl.children]) {
      if (keep.has(child)) continue;
      resized.unobserve(child);
      child.remove();
    }
    const children = messagesEl.children; // live
    rows.forEach((row, index) => {
      if (children[index] !== row) messagesEl.insertBefore(row, children[index] || null);
    });
    rowCache = cache;
    $("older").hidden = !data.hasOlder;

    // Each block measured from the end of the one before it (separators and margins included).
    let above = (start > 0 ? topSpacer : messagesEl).getBoundingClientRect()[start > 0 ? "bottom" : "top"];
    ends.forEach((row, offset) => {
      const box = row.getBoundingClientRect();
      setHeight(data, idOf(start + offset), box.bottom - above);
      above = box.bottom;
      if (!rowHeights.has(row)) resized.observe(row);
      rowHeights.set(row, box.height);
    });

    if (atBottom) {
      scroller.scrollTop = scroller.scrollHeight;
    } else if (toSeq !== null) {
      const first = firsts[seqIndex(list, toSeq) - start];
      if (first) first.scrollIntoView({ block: "start" });
    } else if (anchor) {
      const row = messagesEl.querySelector(anchor.seq ? `li[data-seq='${anchor.seq}']` : `li[data-pending='${anchor.pending}']`);
      if (row) scroller.scrollTop += row.getBoundingClientRect().top - viewport.top - anchor.offset;
    }
  }

  // Whether the rows rendered reach far enough past the view (half the overscan) on both sides;
  // if not, the reader scrolled towards an edge of the window and it is rendered again there.
  function windowCovers() {
    const viewport = scroller.getBoundingClientRect();
    const margin = (OVERSCAN * scroller.clientHeight) / 2;
    return (!topSpacer.isConnected || topSpacer.getBoundingClientRect().bottom <= viewport.top - margin)
      && (!bottomSpacer.isConnected || bottomSpacer.getBoundingClientRect().top >= viewport.bottom + margin);
  }

  // A message the thread shows: released by its tracker in seq order, or from a history page.
  function show(data, message) {
    if (message.sender) remember(message.sender.id, message.sender.name);
    const list = data.list;
    if (data.messages.has(message.seq)) list[seqIndex(list, message.seq)] = message;
    else if (!list.length || list[list.length - 1].seq < message.seq) list.push(message);
    else list.splice(seqIndex(list, message.seq), 0, message);
    data.messages.set(message.seq, message);
    if (message.client_msg_id && pending.delete(message.client_msg_id)) forgetHeight(data, `p${message.client_msg_id}`);
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
            applyReadPositions(id, reply.read_positions || []);
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

  // How far each member has read, from chat.join (docs/protocol.md, "chat.join"): a reloaded page
  // shows "Seen by ..." without the chat.read events it missed. A mark never moves back.
  function applyReadPositions(id, positions) {
    const conversation = conversations.get(id);
    if (!conversation) return;
    const reads = { ...(conversation.reads || {}) };
    for (const { user_id: userId, seq } of positions) reads[userId] = Math.max(reads[userId] || 0, seq);
    conversation.reads = reads;
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

  function threadMeta(conversation) {
    if (conversation.kind === "support") return "Our support team answers here.";
    const others = otherMembers(conversation);
    if (conversation.kind === "direct") {
      const other = others[0];
      return other && online.get(other.user_id) ? "Online" : "Offline";
    }
    const here = others.filter((m) => online.get(m.user_id)).length;
    return `${conversation.members.length} members · ${here} online`;
  }

  function renderThreadHead() {
    const conversation = conversations.get(openId);
    if (!conversation) return;
    $("thread-title").textContent = titleOf(conversation);
    $("thread-meta").textContent = threadMeta(conversation);
    $("thread").dataset.kind = conversation.kind;
    $("members-toggle").hidden = false;
  }

  async function openConversation(id) {
    if (openId !== null && openId !== id && client.ready) {
      client.request("chat.leave", { conversation_id: openId }).catch(() => {});
    }
    if (openId !== id) saveDraft();
    const switching = openId !== id;
    openId = id;
    history.replaceState(null, "", `#conversation-${id}`); // a reload opens it again
    const conversation = conversations.get(id);
    firstUnreadSeq = conversation && conversation.unread > 0 ? (conversation.last_read_seq || 0) + 1 : null;
    $("thread-body").hidden = false;
    $("thread-empty").hidden = true;
    setView("thread");
    renderThreadHead();
    $("typing").textContent = "";
    typingUsers.clear();
    if (switching) {
      closeMembers(false);
      showError("thread-error", "");
      clearAttachment();
      textarea.value = localStorage.getItem(DRAFT_KEY(id)) || "";
      updateComposer();
      messagesEl.replaceChildren();
    }
    renderList();
    $("thread-body").dataset.loading = "";
    try {
      await loadNewest(id);
      await catchUp(id);
      renderList();
      renderThreadHead();
      const data = thread(id);
      if (firstUnreadSeq !== null && data.messages.has(firstUnreadSeq)) renderThread({ toSeq: firstUnreadSeq });
      else renderThread({ bottom: true });
      await markRead(id);
    } catch (error) {
      showError("thread-error", describe(error));
    } finally {
      delete $("thread-body").dataset.loading;
    }
  }

  // How long to wait before asking for an older page again after a refusal worth retrying: the
  // server's retry_after_ms when it says, doubling from 0.5 s, at most 30 s.
  const OLDER_RETRY_FIRST_MS = 500;
  const OLDER_RETRY_MAX_MS = 30_000;

  // The page of history before the oldest message loaded, shown above it (renderThread keeps the
  // reader's place). Refused for a passing reason (rate_limited: a reader scrolling fast, or a
  // server busy for a moment), it is asked again after a pause, quietly, for as long as the
  // conversation stays open and the connection up: the reader sees older messages arrive late,
  // never an error for it.
  async function loadOlder() {
    if (loadingOlder || openId === null) return;
    loadingOlder = true;
    const id = openId;
    const data = thread(id);
    try {
      let page;
      for (let attempt = 0; !page; attempt++) {
        const before = data.list.length ? data.list[0].seq : undefined;
        try {
          page = await client.request("chat.history", { conversation_id: id, before_seq: before, limit: 50 });
        } catch (error) {
          if (!RETRYABLE.has(error.code)) throw error;
          const backoff = Math.min(OLDER_RETRY_FIRST_MS * 2 ** attempt, OLDER_RETRY_MAX_MS);
          await new Promise((resolve) => setTimeout(resolve, Math.max(backoff, (error.details && error.details.retry_after_ms) || 0)));
          if (openId !== id) return;
        }
      }
      page.messages.forEach((message) => show(data, message)); // older than any shown: no gap below
      data.hasOlder = page.has_more;
      if (openId === id) renderThread();
    } finally {
      loadingOlder = false;
    }
  }

  $("older").addEventListener("click", () => loadOlder().catch((error) => showError("thread-error", describe(error))));
  // The window follows the reader; history loads as they reach the top.
  scroller.addEventListener("scroll", () => {
    if (openId === null) return;
    // Read before the window moves: rows measured taller than estimated may move the top away.
    const atTop = scroller.scrollTop < 40;
    if (!windowCovers()) renderThread();
    if (atTop && thread(openId).hasOlder && thread(openId).loaded) {
      loadOlder().catch((error) => showError("thread-error", describe(error)));
    }
  });

  async function markRead(id) {
    const conversation = conversations.get(id);
    const seq = lastSeq(id);
    if (!conversation || document.hidden || seq <= (conversation.last_read_seq || 0)) return;
    const reply = await client.request("chat.read", { conversation_id: id, seq });
    conversation.last_read_seq = reply.last_read_seq;
    conversation.unread = reply.unread;
    renderList();
  }

  // -- composer -----------------------------------------------------------------------------

  function saveDraft() {
    if (openId === null) return;
    if (textarea.value) localStorage.setItem(DRAFT_KEY(openId), textarea.value);
    else localStorage.removeItem(DRAFT_KEY(openId));
  }

  // The counter from 80% of the limit; past it the send is refused here, in words.
  function updateComposer() {
    const length = textarea.value.length;
    const counter = $("counter");
    counter.textContent = length >= MAX_CHARS * COUNTER_FROM ? `${length.toLocaleString()} / ${MAX_CHARS.toLocaleString()}` : "";
    counter.dataset.over = String(length > MAX_CHARS);
    // Grow with the text up to a few lines, then scroll inside.
    textarea.style.height = "auto";
    textarea.style.height = `${Math.min(textarea.scrollHeight, 160)}px`;
  }

  function attach(file) {
    attachedFile = file;
    $("attached-name").textContent = `${file.type.startsWith("image/") ? "Image" : "File"}: ${file.name} (${fileSize(file.size)})`;
    $("attached").hidden = false;
  }

  function clearAttachment() {
    attachedFile = null;
    $("file").value = "";
    $("attached").hidden = true;
  }

  function send(data, shownAs) {
    const clientMsgId = newClientMsgId();
    pending.set(clientMsgId, { conversationId: data.conversation_id, content: shownAs });
    renderThread({ bottom: true });
    client.enqueue("chat.send", { ...data, client_msg_id: clientMsgId })
      .then((ack) => {
        onMessage(ack.message);
      })
      .catch((error) => {
        pending.delete(clientMsgId);
        renderThread();
        showError("thread-error", `Not sent: ${describe(error)}`);
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
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw body.error || { message: `The upload failed (${response.status}). Try again.` };
    return { kind, attachment: body };
  }

  async function submitComposer() {
    const content = textarea.value;
    const file = attachedFile;
    if (openId === null || (!content.trim() && !file)) return;
    if (content.length > MAX_CHARS) {
      showError("thread-error", `That message is too long: at most ${MAX_CHARS.toLocaleString()} characters.`);
      return;
    }
    const id = openId;
    try {
      if (file) {
        const { kind, attachment } = await upload(file);
        send({ conversation_id: id, content, content_type: kind, attachment_id: attachment.id }, content || attachment.name);
        clearAttachment();
      } else {
        send({ conversation_id: id, content }, content);
      }
      showError("thread-error", "");
      textarea.value = "";
      localStorage.removeItem(DRAFT_KEY(id));
      updateComposer();
    } catch (error) {
      showError("thread-error", describe(error));
    }
  }

  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submitComposer();
  });

  // Enter sends, Shift+Enter is a newline; not while an input method is composing a character.
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submitComposer();
    }
  });

  textarea.addEventListener("input", () => {
    updateComposer();
    saveDraft();
    const now = Date.now();
    if (openId === null || !client.ready || now - lastTypingSent < TYPING_SEND_MS) return;
    lastTypingSent = now;
    client.request("chat.typing", { conversation_id: openId }).catch(() => {});
  });

  $("file").addEventListener("change", (event) => {
    if (event.target.files[0]) attach(event.target.files[0]);
  });
  $("attached-remove").addEventListener("click", () => {
    clearAttachment();
    textarea.focus();
  });
  // A pasted or dropped image or file is attached as if picked.
  textarea.addEventListener("paste", (event) => {
    const file = [...(event.clipboardData ? event.clipboardData.files : [])][0];
    if (file) {
      event.preventDefault();
      attach(file);
    }
  });
  $("thread").addEventListener("dragover", (event) => {
    if (openId !== null) event.preventDefault();
  });
  $("thread").addEventListener("drop", (event) => {
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file && openId !== null) {
      event.preventDefault();
      attach(file);
    }
  });

  // -- new message, new group, support ------------------------------------------------------

  const picker = { mode: "direct", chosen: new Map() };

  function openPicker(mode) {
    picker.mode = mode;
    picker.chosen.clear();
    const form = $("picker");
    form.reset();
    form.hidden = false;
    $("picker-heading").textContent = mode === "group" ? "New group" : "New message";
    $("picker-submit").textContent = mode === "group" ? "Create group" : "Start chat";
    $("group-title-field").hidden = mode !== "group";
    $("first-message-field").hidden = mode !== "direct";
    $("new-direct-open").setAttribute("aria-expanded", String(mode === "direct"));
    $("new-group-open").setAttribute("aria-expanded", String(mode === "group"));
    showError("picker-error", "");
    renderChosen();
    $("people-results").replaceChildren();
    (mode === "group" ? $("group-title") : $("people-search")).focus();
  }

  function closePicker() {
    $("picker").hidden = true;
    $("new-direct-open").setAttribute("aria-expanded", "false");
    $("new-group-open").setAttribute("aria-expanded", "false");
  }

  function renderChosen() {
    $("chosen").replaceChildren(...[...picker.chosen.values()].map((person) => {
      const li = el("li", "chip");
      li.append(el("span", "", person.name));
      const remove = el("button", "quiet", "×");
      remove.type = "button";
      remove.setAttribute("aria-label", `Remove ${person.name}`);
      remove.addEventListener("click", () => {
        picker.chosen.delete(person.id);
        renderChosen();
        $("people-search").focus();
      });
      li.append(remove);
      return li;
    }));
  }

  function directWith(userId) {
    return [...conversations.values()].find((c) => c.kind === "direct" && c.members.some((m) => m.user_id === userId));
  }

  function choose(person) {
    remember(person.id, person.name);
    $("people-search").value = "";
    $("people-results").replaceChildren();
    if (picker.mode === "direct") {
      const existing = directWith(person.id);
      if (existing) {
        closePicker();
        openConversation(existing.id);
        return;
      }
      picker.chosen.clear();
    }
    picker.chosen.set(person.id, person);
    renderChosen();
    (picker.mode === "direct" ? $("first-message") : $("people-search")).focus();
  }

  // A people search box (the picker's, the members panel's): after a pause in typing it asks
  // GET /api/users/?search= and lists the people found but those ``skip(person)`` leaves out;
  // choosing one (a click, or Enter for the first) calls ``pick(person)``. Refusals go to ``error``.
  function peopleSearch({ input, results, error, skip, pick }) {
    let timer = null;
    let asked = "";
    async function search() {
      const text = input.value.trim();
      if (text.length < 2) {
        results.replaceChildren();
        return;
      }
      asked = text;
      try {
        const body = await getJson(`/api/users/?search=${encodeURIComponent(text)}`);
        if (asked !== text) return; // a newer search is on its way
        showError(error, "");
        const people = body.users.filter((person) => !skip(person));
        if (!people.length) {
          results.replaceChildren(el("li", "none", `Nobody found for “${text}”.`));
          return;
        }
        results.replaceChildren(...people.map((person) => {
          const li = el("li");
          const button = el("button", "person");
          button.type = "button";
          button.dataset.userId = person.id;
          button.append(el("span", "person-name", person.name));
          const detail = person.is_staff ? `@${person.username} · support` : `@${person.username}`;
          button.append(el("span", "person-detail", detail));
          button.addEventListener("click", () => pick(person));
          li.append(button);
          return li;
        }));
      } catch (failure) {
        showError(error, describe(failure));
      }
    }
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(search, SEARCH_DELAY_MS);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault(); // Enter in the search picks the first person found, it does not submit
        const first = results.querySelector("button.person");
        if (first) first.click();
      }
    });
  }

  peopleSearch({
    input: $("people-search"), results: $("people-results"), error: "picker-error",
    skip: (person) => picker.chosen.has(person.id), pick: choose,
  });
  $("new-direct-open").addEventListener("click", () => openPicker("direct"));
  $("new-group-open").addEventListener("click", () => openPicker("group"));
  $("picker-close").addEventListener("click", closePicker);
  $("picker").addEventListener("keydown", (event) => {
    if (event.key === "Escape") closePicker();
  });

  $("picker").addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = [...picker.chosen.keys()];
    try {
      if (picker.mode === "direct") {
        const content = $("first-message").value;
        if (!chosen.length) throw { message: "Pick who to write to: type their name, then choose them." };
        if (!content.trim()) throw { message: "Write a first message." };
        const ack = await client.request("chat.send", { recipient_id: chosen[0], content, client_msg_id: newClientMsgId() });
        await loadConversations();
        closePicker();
        showError("notice", "");
        openConversation(ack.message.conversation_id);
      } else {
        const title = $("group-title").value.trim();
        if (!title) throw { message: "Give the group a name." };
        if (!chosen.length) throw { message: "Add at least one person: type their name, then choose them." };
        const ack = await client.request("chat.create_group", { title, member_ids: chosen });
        upsertConversation(ack.conversation);
        closePicker();
        showError("notice", "");
        openConversation(ack.conversation.id);
      }
    } catch (error) {
      showError("picker-error", describe(error));
    }
  });

  $("support").addEventListener("click", async () => {
    try {
      const ack = await client.request("chat.support", {});
      upsertConversation(ack.conversation);
      showError("notice", "");
      openConversation(ack.conversation.id);
    } catch (error) {
      showError("notice", describe(error));
    }
  });

  // -- the members panel --------------------------------------------------------------------

  // The open conversation's members with their roles and presence; a group's owner and admins add
  // people (the people search) and remove them, and the owner sets each member's role. The page
  // offers only what chat.services allows (remove_member: the owner removes anyone, an admin plain
  // members; add_member: owner and admins; change_role: the owner, to member or admin, never the
  // owner's own); the server decides, and a refusal is shown in words. Roles changed anywhere (this
  // page, another, REST, the admin site) arrive as chat.member_role_changed.
  const panel = $("members-panel");
  const ROLE_NAMES = { owner: "Owner", admin: "Admin", member: "Member" };
  const ROLE_ORDER = { owner: 0, admin: 1, member: 2 };
  const ASSIGNABLE_ROLES = ["member", "admin"]; // chat.serializers.ASSIGNABLE_ROLES

  function roleOf(conversation, userId) {
    const member = conversation.members.find((m) => m.user_id === userId);
    return member ? member.role : null;
  }

  function canAdd(conversation) {
    const role = roleOf(conversation, me);
    return conversation.kind === "group" && (role === "owner" || role === "admin");
  }

  function canRemove(conversation, member) {
    const role = roleOf(conversation, me);
    if (conversation.kind !== "group" || member.user_id === me) return false;
    return role === "owner" || (role === "admin" && member.role === "member");
  }

  function canChangeRole(conversation, member) {
    return conversation.kind === "group" && roleOf(conversation, me) === "owner" && member.role !== "owner";
  }

  // The owner's control for one member's role: a select labelled with their name; choosing applies it.
  function roleSelect(conversation, member, name) {
    const select = el("select", "member-role");
    select.id = `member-role-${member.user_id}`;
    select.dataset.key = `role:${member.user_id}`;
    select.setAttribute("aria-label", `Role of ${name}`);
    for (const role of ASSIGNABLE_ROLES) {
      const option = el("option", "", ROLE_NAMES[role]);
      option.value = role;
      option.selected = member.role === role;
      select.append(option);
    }
    select.addEventListener("change", () => changeRole(conversation.id, member.user_id, name, select.value));
    return select;
  }

  function memberRow(conversation, member) {
    const li = el("li");
    li.dataset.userId = member.user_id;
    const name = member.name || member.username;
    const isOnline = member.user_id === me ? client.ready : Boolean(online.get(member.user_id));
    const dot = el("span", "presence");
    dot.dataset.online = String(isOnline);
    dot.setAttribute("aria-hidden", "true");
    const main = el("span", "member-main");
    main.append(el("span", "member-name", member.user_id === me ? `${name} (you)` : name));
    const changeable = canChangeRole(conversation, member);
    const detail = [];
    // Where the owner's select shows the role, the line does not say it twice.
    if (conversation.kind === "group" && !changeable) detail.push(ROLE_NAMES[member.role] || member.role);
    if (member.is_staff) detail.push("Support");
    detail.push(isOnline ? "online" : "offline");
    main.append(el("span", "member-detail", detail.join(" · ")));
    li.append(dot, main);
    if (changeable) li.append(roleSelect(conversation, member, name));
    if (canRemove(conversation, member)) {
      const remove = el("button", "danger", "Remove");
      remove.type = "button";
      remove.dataset.key = `remove:${member.user_id}`;
      remove.setAttribute("aria-label", `Remove ${name}`);
      remove.addEventListener("click", () => removeMember(conversation.id, member.user_id, name));
      li.append(remove);
    } else if (conversation.kind === "group" && member.user_id === me) {
      const leave = el("button", "danger", "Leave group");
      leave.type = "button";
      leave.dataset.key = "leave";
      leave.addEventListener("click", () => removeMember(conversation.id, me, name));
      li.append(leave);
    }
    return li;
  }

  function renderMembers() {
    const conversation = conversations.get(openId);
    if (panel.hidden || !conversation) return;
    const label = (m) => m.name || m.username;
    const members = [...conversation.members].sort(
      (a, b) => (ROLE_ORDER[a.role] ?? 3) - (ROLE_ORDER[b.role] ?? 3) || label(a).localeCompare(label(b)),
    );
    $("members-heading").textContent = `Members (${members.length})`;
    $("member-add").hidden = !canAdd(conversation);
    // Rows are redrawn on every change (presence, roles): the focused control keeps the focus.
    const focused = $("members").contains(document.activeElement) ? document.activeElement.dataset.key : null;
    $("members").replaceChildren(...members.map((member) => memberRow(conversation, member)));
    const again = focused && $("members").querySelector(`[data-key="${focused}"]`);
    if (again) again.focus();
  }

  function openMembers() {
    panel.hidden = false;
    root.dataset.panel = "members";
    $("members-toggle").setAttribute("aria-expanded", "true");
    showError("members-error", "");
    $("members-status").textContent = "";
    setView("members");
    renderMembers();
    $("members-heading").focus();
  }

  function closeMembers(focusToggle) {
    if (panel.hidden) return;
    panel.hidden = true;
    delete root.dataset.panel;
    $("members-toggle").setAttribute("aria-expanded", "false");
    if (root.dataset.view === "members") setView("thread");
    if (focusToggle) $("members-toggle").focus();
  }

  $("members-toggle").addEventListener("click", () => (panel.hidden ? openMembers() : closeMembers(true)));
  $("members-close").addEventListener("click", () => closeMembers(true));
  $("members-back").addEventListener("click", () => closeMembers(true));
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeMembers(true);
  });

  // A conversation's members changed (an ack or an event): every place that shows them.
  function membersChanged(id) {
    renderList();
    if (id === openId) {
      renderThreadHead();
      renderMembers();
    }
  }

  async function addMember(person) {
    const id = openId;
    remember(person.id, person.name);
    $("member-search").value = "";
    $("member-results").replaceChildren();
    showError("members-error", "");
    try {
      const ack = await client.request("chat.add_member", { conversation_id: id, user_id: person.id });
      upsertConversation(ack.conversation);
      membersChanged(id);
      $("members-status").textContent = `${person.name} was added.`;
    } catch (error) {
      showError("members-error", describe(error));
    }
    $("member-search").focus();
  }

  peopleSearch({
    input: $("member-search"), results: $("member-results"), error: "members-error",
    skip: (person) => {
      const conversation = conversations.get(openId);
      return Boolean(conversation && roleOf(conversation, person.id));
    },
    pick: addMember,
  });

  async function removeMember(conversationId, userId, name) {
    showError("members-error", "");
    try {
      await client.request("chat.remove_member", { conversation_id: conversationId, user_id: userId });
      // The chat.member_removed event says the same (and who owns the group now); shown at once.
      memberRemoved({ conversation_id: conversationId, user_id: userId, by: me, owner_id: null });
      if (userId !== me) $("members-status").textContent = `${name} was removed.`;
    } catch (error) {
      showError("members-error", describe(error));
    }
  }

  async function changeRole(conversationId, userId, name, role) {
    showError("members-error", "");
    try {
      const ack = await client.request("chat.change_role", { conversation_id: conversationId, user_id: userId, role });
      // The chat.member_role_changed event says the same; shown at once.
      roleChanged(ack);
      $("members-status").textContent = `${name} is now ${role === "admin" ? "an admin" : "a member"}.`;
    } catch (error) {
      showError("members-error", `Could not change ${name}'s role: ${describe(error)}`);
      renderMembers(); // the select shows the role the page knows again
    }
  }

  // A member's role changed (chat.member_role_changed, or this page's own change).
  function roleChanged(data) {
    const conversation = conversations.get(data.conversation_id);
    if (!conversation) return;
    conversation.members = conversation.members.map((m) => (m.user_id === data.user_id ? { ...m, role: data.role } : m));
    membersChanged(data.conversation_id);
  }

  // Someone left or was removed (chat.member_removed, or this page's own remove): oneself, and the
  // conversation goes from this page with a word why; another, and the lists drop them.
  function memberRemoved(data) {
    const conversation = conversations.get(data.conversation_id);
    if (!conversation) return;
    if (data.user_id === me) {
      conversations.delete(data.conversation_id);
      const title = titleOf(conversation);
      showError("notice", data.by === me ? `You left “${title}”.` : `You were removed from “${title}”.`);
      if (openId === data.conversation_id) {
        closeMembers(false);
        openId = null;
        history.replaceState(null, "", location.pathname);
        $("thread-body").hidden = true;
        $("thread-empty").hidden = false;
        $("members-toggle").hidden = true;
        $("thread-title").textContent = "No conversation open";
        $("thread-meta").textContent = "";
        setView("list");
      }
      renderList();
      return;
    }
    conversation.members = conversation.members
      .filter((m) => m.user_id !== data.user_id)
      .map((m) => (m.user_id === data.owner_id ? { ...m, role: "owner" } : m));
    membersChanged(data.conversation_id);
  }

  // -- events -------------------------------------------------------------------------------

  function announce(message) {
    $("announcer").textContent = `${senderLabel(message)}: ${message.content || (message.attachment && message.attachment.name) || ""}`;
  }

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
    if (gap && data.loaded && id === openId) fillGap(id).catch((error) => showError("thread-error", describe(error)));
    conversation.last_seq = Math.max(conversation.last_seq, message.seq);
    if (!conversation.last_message || conversation.last_message.seq <= message.seq) conversation.last_message = message;
    if (!known && message.sender_id !== me && id !== openId) conversation.unread = (conversation.unread || 0) + 1;
    if (message.sender_id === me) conversation.last_read_seq = Math.max(conversation.last_read_seq || 0, message.seq);
    renderList();
    if (id === openId) {
      if (!known && message.sender_id !== me) announce(message);
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
    renderThreadHead();
    renderMembers();
  });

  client.on("chat.member_added", (data) => {
    upsertConversation(data.conversation);
    membersChanged(data.conversation.id);
  });

  client.on("chat.member_removed", memberRemoved);

  client.on("chat.member_role_changed", roleChanged);

  client.on("support.closed", (data) => {
    const conversation = conversations.get(data.conversation_id);
    if (conversation) conversation.closed = true;
    if (data.conversation_id === openId) {
      showError("thread-error", "Support closed this conversation. Contact support again to open a new one.");
    }
  });

  // Refusals worth retrying (docs/protocol.md, "Errors"); "disconnected" waits for the next welcome.
  const RETRYABLE = new Set(["unavailable", "rate_limited", "server_error"]);

  // After every (re)connect and on resync: the conversations (unread counts, last messages), then
  // the open thread's messages after its synced seq, once each. A resume refused for a passing
  // reason is tried again, or the gap would stay until the next reconnect.
  async function resume(attempt) {
    try {
      await loadConversations();
      showError("notice", "");
      const linked = /^#conversation-(\d+)$/.exec(location.hash);
      if (openId === null && linked && conversations.has(Number(linked[1]))) {
        await openConversation(Number(linked[1]));
        return;
      }
      if (openId !== null) {
        await loadNewest(openId);
        await catchUp(openId);
        renderList();
        renderThreadHead();
        renderThread();
        await markRead(openId);
      }
    } catch (error) {
      showError("notice", describe(error));
      if (RETRYABLE.has(error.code) && attempt < 5) {
        const wait = (error.details && error.details.retry_after_ms) || 1000 * attempt;
        setTimeout(() => { if (client.ready) resume(attempt + 1); }, wait);
      }
    }
  }

  client.on("welcome", () => resume(1));

  // The server may have lost events for this connection (docs/protocol.md, "resync"): catch up
  // as after a reconnect; the socket stays open.
  client.on("resync", () => resume(1));

  // Connection state, quietly: "connecting…", "live", "reconnecting in Ns" (counting down to the
  // client's next attempt, client.reconnectAt), "disconnected" with why.
  let countdown = null;
  client.on("state", (state, code) => {
    clearInterval(countdown);
    status.dataset.state = state;
    if (state === "reconnecting" && client.reconnectAt) {
      const tick = () => {
        const seconds = Math.max(0, Math.ceil((client.reconnectAt - Date.now()) / 1000));
        status.textContent = seconds > 0 ? `reconnecting in ${seconds} s` : "reconnecting…";
      };
      tick();
      countdown = setInterval(tick, 1000);
    } else {
      status.textContent = state === "open" ? "live" : state === "stopped" ? "disconnected" : `${state}…`;
    }
    if (state === "stopped") {
      showError("notice", client.lastError ? `${client.lastError.message} (close ${code})` : `Disconnected (close ${code}). Reload the page to reconnect.`);
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
