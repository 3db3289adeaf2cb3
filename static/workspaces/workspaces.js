/*
 * The workspaces page: the user's workspaces in their order, kept live by workspace.* events
 * (docs/protocol.md, "Workspaces"). Every change goes through a socket command; the list is
 * redrawn only from acks and events, so other tabs and other members see what this tab sees.
 * After every (re)connect and on a resync event (events may have been lost) it loads the list again.
 *
 * Per row: rename in place (click the name; Enter saves, Escape cancels), reorder by dragging the
 * handle (a mouse, a finger or a pen), by the ↑/↓ buttons or with Alt+↑/Alt+↓, share by picking a
 * person by name (GET /api/users/?search=, the people search every client uses) and a role,
 * members listed with their roles (the owner removes them), delete after an in-place confirmation.
 *
 * An edit that someone else's change overtook (the server answers `conflict` with the current
 * workspace) keeps the user's draft and shows their version beside it: "Use mine" saves the
 * draft over theirs (at their version), "Keep theirs" drops the draft.
 */
(function () {
  "use strict";

  const client = new RealtimeClient();
  const $ = (id) => document.getElementById(id);
  const list = $("workspaces");
  const status = $("status");
  const SEARCH_DELAY_MS = 250; // wait for a pause in typing before asking GET /api/users/
  const ROLE_NAMES = { owner: "Owner", editor: "Editor", viewer: "Viewer" };
  let me = null;
  let workspaces = []; // in this user's order
  // While the list loads page by page, live events wait in `missed` and are applied to the loaded
  // list after its last page (its pages may be older than they are); `reloadAgain`: load it again.
  let loading = false;
  let reloadAgain = false;
  let missed = [];
  // What the user is doing with each row, by workspace id; it survives redraws: {editing, draft,
  // baseVersion (the version the draft started from), conflict (their workspace), confirmDelete,
  // sharing, query, results, chosen (a person), role, error}.
  const ui = new Map();
  // The handle being dragged: {id, pointerId, startX, startY, started, target: {id, after} | null}.
  let drag = null;
  const DRAG_START_PX = 4; // a press that moves less is a click or a tap on the handle, not a drag

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const dateFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text; // always text: names are never HTML
    return node;
  }

  function button(text, className, onClick, key) {
    const node = el("button", className, text);
    node.type = "button";
    if (key) node.dataset.key = key;
    node.addEventListener("click", onClick);
    return node;
  }

  function stateOf(id) {
    if (!ui.has(id)) ui.set(id, { role: "editor", query: "", results: [] });
    return ui.get(id);
  }

  function say(text) {
    $("notice").textContent = text;
  }

  function announce(text) {
    $("announcer").textContent = text;
  }

  function roleOf(workspace) {
    const member = workspace.members.find((m) => m.user_id === me);
    return member ? member.role : null;
  }

  function when(ms) {
    const date = new Date(ms);
    const today = new Date();
    const sameDay = date.toDateString() === today.toDateString();
    return sameDay ? `today ${timeFormat.format(date)}` : dateFormat.format(date);
  }

  // A refusal as a sentence: the server's first field message when it gives one, else its message.
  function describe(error) {
    if (error.code === "disconnected") return "Not connected right now: try again when the status says live.";
    const details = error.details;
    if (details && typeof details === "object") {
      for (const value of Object.values(details)) {
        if (Array.isArray(value) && typeof value[0] === "string") return `${error.message}: ${value[0]}`;
      }
    }
    return error.message || String(error);
  }

  // -- the list, from acks and events ----------------------------------------------------------

  function upsert(workspace) {
    const index = workspaces.findIndex((w) => w.id === workspace.id);
    if (index === -1) workspaces.push(workspace);
    else if (workspaces[index].version <= workspace.version) workspaces[index] = workspace;
    render();
  }

  function remove(id) {
    workspaces = workspaces.filter((w) => w.id !== id);
    ui.delete(id);
    render();
  }

  function reorder(ids) {
    const byId = new Map(workspaces.map((w) => [w.id, w]));
    // An id we do not have: a workspace that moved between two pages of the list was skipped.
    if (ids.some((id) => !byId.has(id))) reload();
    workspaces = ids.map((id) => byId.get(id)).filter(Boolean);
    render();
  }

  // Apply a live event now, or after the list load in progress.
  function live(apply) {
    return (data) => (loading ? missed.push(() => apply(data)) : apply(data));
  }

  // Every page of workspace.list (docs/protocol.md, "Lists"), then the events that came meanwhile:
  // together the truth, whatever was missed while away. A user's workspaces may be megabytes
  // (64 KiB of settings each): one reply could not hold them.
  async function reload() {
    if (loading) {
      reloadAgain = true;
      return;
    }
    loading = true;
    do {
      reloadAgain = false;
      try {
        workspaces = await client.requestAll("workspace.list", {}, "workspaces");
        say("");
      } catch (error) {
        say(`Could not load the workspaces: ${describe(error)}`);
      }
      const replay = missed;
      missed = [];
      replay.forEach((apply) => apply());
    } while (reloadAgain && client.ready);
    loading = false;
    render();
  }

  async function command(type, data) {
    const result = await client.request(type, data);
    say("");
    return result;
  }

  // -- drawing -----------------------------------------------------------------------------------

  // Redraw every row from `workspaces` and `ui`; the focused control (by its data-key) and the
  // caret of a text field being typed in come back after the redraw.
  function render() {
    const active = document.activeElement;
    const key = active && active.dataset ? active.dataset.key : null;
    const caret = key && active.selectionStart !== undefined ? [active.selectionStart, active.selectionEnd] : null;
    list.replaceChildren(...workspaces.map(renderRow));
    $("empty").hidden = loading || workspaces.length > 0;
    if (key) {
      const again = list.querySelector(`[data-key="${key}"]`);
      if (again && !again.disabled) {
        again.focus();
        if (caret && again.setSelectionRange) again.setSelectionRange(caret[0], caret[1]);
      } else if (again || key.endsWith(":up") || key.endsWith(":down")) {
        const row = list.querySelector(`li[data-id="${key.split(":")[0]}"] .handle`);
        if (row) row.focus(); // a move button that became disabled: stay on the row
      }
    }
  }

  function renderRow(workspace, index) {
    const state = stateOf(workspace.id);
    const role = roleOf(workspace);
    const id = workspace.id;
    const row = el("li", "card workspace");
    row.dataset.id = id;
    row.dataset.version = workspace.version;
    row.setAttribute("aria-label", workspace.name);

    const main = el("div", "card-main");
    const handle = el("button", "handle", "⠿");
    handle.type = "button";
    handle.dataset.key = `${id}:handle`;
    handle.setAttribute("aria-label", `Reorder “${workspace.name}”: Alt+↑ or Alt+↓`);
    handle.title = "Drag to reorder";
    main.append(handle);

    const body = el("div", "card-body");
    if (state.editing) body.append(renameForm(workspace, state));
    else if (role === "viewer") body.append(el("h2", "ws-name", workspace.name));
    else {
      const heading = el("h2", "ws-name");
      const rename = button(workspace.name, "name-button", () => startEditing(workspace), `${id}:name`);
      rename.title = "Rename";
      rename.setAttribute("aria-label", `${workspace.name}: rename`);
      heading.append(rename);
      body.append(heading);
    }
    const count = workspace.members.length;
    const meta = [ROLE_NAMES[role] || role, count === 1 ? "only you" : `${count} members`, `changed ${when(workspace.updated_at)}`];
    body.append(el("p", "meta", meta.join(" · ")));
    main.append(body);

    const actions = el("div", "actions");
    const up = button("↑", "icon up", () => move(id, -1), `${id}:up`);
    up.setAttribute("aria-label", `Move “${workspace.name}” up`);
    up.disabled = index === 0;
    const down = button("↓", "icon down", () => move(id, 1), `${id}:down`);
    down.setAttribute("aria-label", `Move “${workspace.name}” down`);
    down.disabled = index === workspaces.length - 1;
    const share = button(role === "owner" ? "Share" : "Members", "share-toggle", () => {
      state.sharing = !state.sharing;
      render();
      if (state.sharing) focusKey(role === "owner" ? `${id}:search` : `${id}:share`);
    }, `${id}:share`);
    share.setAttribute("aria-expanded", String(Boolean(state.sharing)));
    share.setAttribute("aria-controls", `share-${id}`);
    actions.append(up, down, share);
    if (role === "owner") {
      const del = button("Delete", "danger delete", () => {
        state.confirmDelete = true;
        render();
        focusKey(`${id}:confirm-delete`);
      }, `${id}:delete`);
      del.hidden = Boolean(state.confirmDelete);
      actions.append(del);
    }
    main.append(actions);
    row.append(main);

    if (state.confirmDelete) row.append(deleteConfirmation(workspace, state));
    if (state.conflict) row.append(conflictPanel(workspace, state));
    if (state.error) {
      const error = el("p", "error", state.error);
      error.setAttribute("role", "alert");
      row.append(error);
    }
    if (state.sharing) row.append(sharePanel(workspace, state, role));

    // Keyboard reorder from anywhere in the row but a text field (Alt+arrows move the caret there).
    row.addEventListener("keydown", (event) => {
      if (!event.altKey || !["ArrowUp", "ArrowDown"].includes(event.key)) return;
      if (event.target.matches("input, textarea, select")) return;
      event.preventDefault();
      move(id, event.key === "ArrowUp" ? -1 : 1);
    });
    dragByHandle(row, handle, id);
    return row;
  }

  function focusKey(key) {
    const node = list.querySelector(`[data-key="${key}"]`);
    if (node) node.focus();
  }

  // -- rename in place, and the conflict -----------------------------------------------------------

  function startEditing(workspace) {
    const state = stateOf(workspace.id);
    Object.assign(state, { editing: true, draft: workspace.name, baseVersion: workspace.version, error: "" });
    render();
    const input = list.querySelector(`[data-key="${workspace.id}:rename"]`);
    if (input) {
      input.focus();
      input.select();
    }
  }

  function stopEditing(id) {
    Object.assign(stateOf(id), { editing: false, draft: null, baseVersion: null, conflict: null, error: "" });
  }

  function renameForm(workspace, state) {
    const id = workspace.id;
    const form = el("form", "rename");
    const label = el("label", "visually-hidden", "Name");
    label.htmlFor = `rename-${id}`;
    const input = el("input");
    input.id = `rename-${id}`;
    input.name = "name";
    input.required = true;
    input.maxLength = 200;
    input.autocomplete = "off";
    input.value = state.draft;
    input.dataset.key = `${id}:rename`;
    input.addEventListener("input", () => {
      state.draft = input.value;
      const mine = form.closest("li") && form.closest("li").querySelector(".mine .side-name");
      if (mine) mine.textContent = input.value; // the conflict's "Yours" is what the field holds
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        stopEditing(id);
        render();
        focusKey(`${id}:name`);
      }
    });
    // During a conflict its panel's "Use mine" and "Keep theirs" are the choices (Enter still saves).
    const save = el("button", "primary", "Save");
    save.type = "submit";
    save.dataset.key = `${id}:save`;
    save.hidden = Boolean(state.conflict);
    const cancel = button("Cancel", "quiet", () => {
      stopEditing(id);
      render();
      focusKey(`${id}:name`);
    }, `${id}:cancel`);
    cancel.hidden = Boolean(state.conflict);
    form.append(label, input, save, cancel);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      // After a conflict the user has seen theirs: saving again is choosing theirs' version to replace.
      saveName(workspace.id, state.draft, state.conflict ? state.conflict.version : state.baseVersion);
    });
    return form;
  }

  async function saveName(id, name, version) {
    const state = stateOf(id);
    try {
      const result = await command("workspace.update", { id, version, changes: { name } });
      stopEditing(id);
      upsert(result.workspace);
      announce(`Renamed to “${name}”.`);
      focusKey(`${id}:name`);
    } catch (error) {
      if (error.code === "conflict" && error.details && error.details.workspace) {
        // Their change came first: keep the draft, show theirs beside it, let the user choose.
        state.conflict = error.details.workspace;
        state.error = "";
        upsert(error.details.workspace);
        focusKey(`${id}:use-mine`);
      } else {
        state.error = `Not renamed: ${describe(error)}`;
        render();
      }
    }
  }

  function conflictPanel(workspace, state) {
    const id = workspace.id;
    const theirs = state.conflict;
    const panel = el("div", "conflict");
    panel.setAttribute("role", "group");
    panel.setAttribute("aria-labelledby", `conflict-${id}`);
    const title = el("p", "conflict-title", "Someone else renamed this workspace while you were editing. Your text is kept: choose which name to keep.");
    title.id = `conflict-${id}`;
    panel.append(title);
    const sides = el("div", "sides");
    const theirsBox = el("div", "side theirs");
    theirsBox.append(el("h3", "", "Theirs"), el("p", "side-name", theirs.name));
    theirsBox.append(button("Keep theirs", "", () => {
      stopEditing(id);
      render();
      announce(`Kept “${theirs.name}”.`);
      focusKey(`${id}:name`);
    }, `${id}:keep-theirs`));
    const mineBox = el("div", "side mine");
    mineBox.append(el("h3", "", "Yours"), el("p", "side-name", state.draft));
    mineBox.append(button("Use mine", "primary", () => saveName(id, state.draft, theirs.version), `${id}:use-mine`));
    sides.append(theirsBox, mineBox);
    panel.append(sides);
    return panel;
  }

  // -- delete -----------------------------------------------------------------------------------------

  function deleteConfirmation(workspace, state) {
    const id = workspace.id;
    const box = el("div", "confirm");
    box.append(el("p", "", `Delete “${workspace.name}” for all ${workspace.members.length} member(s)? This cannot be undone.`));
    box.append(button("Delete for everyone", "danger-solid", async () => {
      try {
        await command("workspace.delete", { id });
        announce(`Deleted “${workspace.name}”.`);
        remove(id);
        $("create-name").focus();
      } catch (error) {
        Object.assign(state, { confirmDelete: false, error: `Not deleted: ${describe(error)}` });
        render();
      }
    }, `${id}:confirm-delete`));
    box.append(button("Keep it", "quiet", () => {
      state.confirmDelete = false;
      render();
      focusKey(`${id}:delete`);
    }, `${id}:keep`));
    return box;
  }

  // -- reorder: buttons, Alt+arrows, drag and drop --------------------------------------------------

  async function moveTo(id, target) {
    const ids = workspaces.map((w) => w.id);
    const from = ids.indexOf(id);
    if (from === -1 || target < 0 || target >= ids.length || target === from) return;
    ids.splice(from, 1);
    ids.splice(target, 0, id);
    const name = workspaces[from].name;
    try {
      await command("workspace.reorder", { ids });
      reorder(ids);
      announce(`Moved “${name}” to position ${target + 1} of ${ids.length}.`);
    } catch (error) {
      say(`Not moved: ${describe(error)}`);
    }
  }

  function move(id, delta) {
    moveTo(id, workspaces.findIndex((w) => w.id === id) + delta);
  }

  // Dragging by the handle, with Pointer Events: one path for a mouse, a finger and a pen (HTML5
  // drag and drop never fires on touch). The handle captures the pointer, so its moves and its
  // release come to it wherever the pointer goes; the row under the pointer shows where the
  // workspace would land. Only the handle has touch-action: none (base.css): a finger anywhere
  // else still scrolls the page. Escape, or the browser taking the pointer back, cancels.
  function dragByHandle(row, handle, id) {
    handle.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return; // the main button; a touch or a pen contact is button 0 too
      handle.setPointerCapture(event.pointerId);
      drag = { id, pointerId: event.pointerId, startX: event.clientX, startY: event.clientY, started: false, target: null };
    });
    handle.addEventListener("pointermove", (event) => {
      if (!drag || drag.pointerId !== event.pointerId) return;
      if (!drag.started) {
        if (Math.hypot(event.clientX - drag.startX, event.clientY - drag.startY) < DRAG_START_PX) return;
        drag.started = true;
        row.classList.add("dragging");
      }
      drag.target = dropTarget(event.clientX, event.clientY);
    });
    handle.addEventListener("pointerup", (event) => {
      if (!drag || drag.pointerId !== event.pointerId) return;
      const { started, target } = drag;
      endDrag();
      if (!started || !target) return;
      const ids = workspaces.map((w) => w.id);
      const from = ids.indexOf(id);
      let index = ids.indexOf(target.id) + (target.after ? 1 : 0);
      if (from < index) index -= 1; // the dragged row leaves its place first
      moveTo(id, index);
    });
    const cancel = (event) => {
      if (drag && drag.pointerId === event.pointerId) endDrag();
    };
    handle.addEventListener("pointercancel", cancel);
    handle.addEventListener("lostpointercapture", cancel); // also after pointerup: endDrag already ran
    handle.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && drag && drag.started) endDrag();
    });
  }

  // The row under the pointer and its half (the dragged workspace lands before or after it),
  // marked on the page; null over the dragged row itself or outside the list.
  function dropTarget(x, y) {
    clearDropMarks();
    const hit = document.elementFromPoint(x, y);
    const over = hit && hit.closest("#workspaces > li");
    if (!over || Number(over.dataset.id) === drag.id) return null;
    const box = over.getBoundingClientRect();
    const after = y > box.top + box.height / 2;
    over.classList.add(after ? "drop-after" : "drop-before");
    return { id: Number(over.dataset.id), after };
  }

  function clearDropMarks() {
    list.querySelectorAll(".drop-before, .drop-after").forEach((node) => node.classList.remove("drop-before", "drop-after"));
  }

  function endDrag() {
    drag = null;
    clearDropMarks();
    list.querySelectorAll(".dragging").forEach((node) => node.classList.remove("dragging"));
  }

  // -- share: members with roles, a person picked by name ---------------------------------------------

  function sharePanel(workspace, state, role) {
    const id = workspace.id;
    const panel = el("div", "share-panel");
    panel.id = `share-${id}`;
    const heading = el("h3", "", "Members");
    heading.id = `members-${id}`;
    panel.append(heading);
    const members = el("ul", "members");
    members.setAttribute("aria-labelledby", heading.id);
    for (const member of workspace.members) {
      const item = el("li");
      const who = el("span", "member-name", member.user_id === me ? `${member.name} (you)` : member.name);
      item.append(who, el("span", "role-badge", ROLE_NAMES[member.role] || member.role));
      if (role === "owner" && member.role !== "owner") {
        const removeButton = button("Remove", "quiet", async () => {
          try {
            await command("workspace.unshare", { id, user_id: member.user_id });
            announce(`${member.name} removed.`);
          } catch (error) {
            state.error = `Not removed: ${describe(error)}`;
            render();
          }
        }, `${id}:remove-${member.user_id}`);
        removeButton.setAttribute("aria-label", `Remove ${member.name}`);
        item.append(removeButton);
      }
      members.append(item);
    }
    panel.append(members);
    if (role !== "owner") return panel;

    const form = el("form", "share-form");
    form.setAttribute("aria-label", `Share “${workspace.name}”`);
    const searchLabel = el("label", "field", "Add a person");
    searchLabel.htmlFor = `search-${id}`;
    const search = el("input");
    search.type = "search";
    search.id = `search-${id}`;
    search.autocomplete = "off";
    search.placeholder = "Type a name";
    search.value = state.chosen ? "" : state.query;
    search.dataset.key = `${id}:search`;
    search.setAttribute("aria-controls", `people-${id}`);
    search.setAttribute("aria-describedby", `people-hint-${id}`);
    search.hidden = Boolean(state.chosen);
    let timer = null;
    search.addEventListener("input", () => {
      state.query = search.value;
      clearTimeout(timer);
      timer = setTimeout(() => findPeople(workspace, state), SEARCH_DELAY_MS);
    });
    const people = el("ul", "people");
    people.id = `people-${id}`;
    people.setAttribute("aria-label", "People found");
    if (!state.chosen) {
      for (const person of state.results) {
        const item = el("li");
        const pick = button("", "person", () => {
          state.chosen = person;
          state.results = [];
          render();
          focusKey(`${id}:role`);
        }, `${id}:person-${person.id}`);
        pick.append(el("span", "person-name", person.name), el("span", "person-detail", `@${person.username}`));
        item.append(pick);
        people.append(item);
      }
      if (state.noneFound) people.append(el("li", "none", `Nobody found for “${state.query}”.`));
    }
    const hint = el("p", "hint", "At least 2 letters of a name or username.");
    hint.id = `people-hint-${id}`;
    hint.hidden = Boolean(state.chosen);
    form.append(searchLabel, search, hint, people);
    if (state.chosen) {
      const chip = el("p", "chip");
      chip.append(el("span", "", state.chosen.name));
      const clear = button("×", "", () => {
        state.chosen = null;
        render();
        focusKey(`${id}:search`);
      }, `${id}:unchoose`);
      clear.setAttribute("aria-label", `Choose someone else than ${state.chosen.name}`);
      chip.append(clear);
      form.append(chip);
    }
    const roleLabel = el("label", "field", "Role");
    roleLabel.htmlFor = `role-${id}`;
    const select = el("select");
    select.id = `role-${id}`;
    select.dataset.key = `${id}:role`;
    for (const [value, text] of [["editor", "Editor: can rename and reorder"], ["viewer", "Viewer: can only look"]]) {
      const option = el("option", "", text);
      option.value = value;
      option.selected = state.role === value;
      select.append(option);
    }
    select.addEventListener("change", () => {
      state.role = select.value;
    });
    const submit = el("button", "primary", "Share");
    submit.type = "submit";
    submit.dataset.key = `${id}:share-submit`;
    const row = el("div", "share-submit");
    row.append(roleLabel, select, submit);
    form.append(row);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!state.chosen) {
        state.error = "Pick a person first: type part of their name and choose them from the list.";
        render();
        focusKey(`${id}:search`);
        return;
      }
      const person = state.chosen;
      try {
        const result = await command("workspace.share", { id, user_id: person.id, role: state.role });
        Object.assign(state, { chosen: null, query: "", results: [], error: "" });
        upsert(result.workspace);
        announce(`Shared with ${person.name} as ${ROLE_NAMES[state.role].toLowerCase()}.`);
        focusKey(`${id}:search`);
      } catch (error) {
        state.error = `Not shared: ${describe(error)}`;
        render();
      }
    });
    panel.append(form);
    return panel;
  }

  async function findPeople(workspace, state) {
    const text = state.query.trim();
    state.noneFound = false;
    if (text.length < 2) {
      state.results = [];
      render();
      return;
    }
    state.asked = text;
    try {
      const response = await fetch(`/api/users/?search=${encodeURIComponent(text)}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      const body = await response.json().catch(() => ({}));
      if (state.asked !== text) return; // a newer search is on its way
      if (!response.ok) {
        state.error = response.status === 429 ? "Too many searches: wait a moment and type again." : describe(body.error || {});
        render();
        return;
      }
      const current = workspaces.find((w) => w.id === workspace.id) || workspace;
      const memberIds = new Set(current.members.map((m) => m.user_id));
      state.results = body.users.filter((person) => !memberIds.has(person.id));
      state.noneFound = state.results.length === 0;
      state.error = "";
    } catch (error) {
      state.error = "Could not search: check the connection and type again.";
    }
    render();
  }

  // -- create, and the socket ------------------------------------------------------------------------

  $("create").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      const result = await command("workspace.create", { name: form.name.value });
      upsert(result.workspace);
      announce(`Created “${form.name.value}”.`);
      form.reset();
    } catch (error) {
      say(`Not created: ${describe(error)}`);
    }
  });

  client
    .on("state", (state) => {
      status.dataset.state = state;
      status.textContent = { open: "live", connecting: "connecting…", reconnecting: "reconnecting…", stopped: "disconnected" }[state];
      if (state === "stopped" && client.lastError) say(`Disconnected: ${client.lastError.message}. Reload the page to sign in again.`);
    })
    .on("welcome", (data) => {
      me = data.user.id;
      reload(); // after every (re)connect
    })
    .on("resync", () => reload()) // events may have been lost (docs/protocol.md, "resync")
    .on("workspace.created", live(upsert))
    .on("workspace.updated", live(upsert))
    .on("workspace.deleted", live((data) => remove(data.id)))
    .on("workspace.shared", live((data) => upsert(data.workspace)))
    .on("workspace.unshared", live((data) => {
      if (data.user_id === me) remove(data.id);
      else reload(); // the event does not carry the new member list
    }))
    .on("workspace.reordered", live((data) => reorder(data.ids)))
    .start();
})();
