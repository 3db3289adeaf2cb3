/*
 * The workspaces page: the user's workspaces in their order, kept live by workspace.* events
 * (docs/protocol.md, "Workspaces"). Every change goes through a socket command; the page only
 * redraws from acks and events, so other tabs and other members see exactly what this tab sees.
 * After every (re)connect and on a resync event (events may have been lost) it loads the list again.
 */
(function () {
  "use strict";

  const client = new RealtimeClient();
  const list = document.getElementById("workspaces");
  const rowTemplate = document.getElementById("workspace-row");
  const notice = document.getElementById("notice");
  const status = document.getElementById("status");
  let me = null;
  let workspaces = []; // in this user's order
  // While the list loads page by page, live events wait in `missed` and are applied to the loaded
  // list after its last page (its pages may be older than they are); `reloadAgain`: load it again.
  let loading = false;
  let reloadAgain = false;
  let missed = [];
  // Unsaved name edits by workspace id, with the version they started from: a live update from
  // someone else must not wipe what the user is typing, and saving it must then be a conflict.
  const drafts = new Map();

  function say(text) {
    notice.textContent = text;
  }

  function roleOf(workspace) {
    const member = workspace.members.find((m) => m.user_id === me);
    return member ? member.role : null;
  }

  function upsert(workspace) {
    const index = workspaces.findIndex((w) => w.id === workspace.id);
    if (index === -1) workspaces.push(workspace);
    else if (workspaces[index].version <= workspace.version) workspaces[index] = workspace;
    render();
  }

  function remove(id) {
    workspaces = workspaces.filter((w) => w.id !== id);
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
        say(`Could not load the workspaces: ${error.message}`);
      }
      const replay = missed;
      missed = [];
      replay.forEach((apply) => apply());
    } while (reloadAgain && client.ready);
    loading = false;
    render();
  }

  function render() {
    // Keep the caret in the name being edited when a live update redraws the list.
    const focused = document.activeElement && document.activeElement.closest("#workspaces li");
    list.replaceChildren(...workspaces.map(renderRow));
    if (focused) {
      const input = list.querySelector(`li[data-id="${focused.dataset.id}"] .rename input`);
      if (input) input.focus();
    }
  }

  function renderRow(workspace, index) {
    const row = rowTemplate.content.firstElementChild.cloneNode(true);
    const role = roleOf(workspace);
    row.dataset.id = workspace.id;
    const name = row.querySelector(".rename input");
    const draft = drafts.get(workspace.id);
    name.value = draft ? draft.name : workspace.name;
    name.addEventListener("input", () => {
      drafts.set(workspace.id, { name: name.value, version: draft ? draft.version : workspace.version });
    });
    name.disabled = role === "viewer";
    row.querySelector(".rename button").hidden = role === "viewer";
    row.querySelector(".meta").textContent = `v${workspace.version} · ${role} · ${workspace.members.length} member(s)`;
    row.querySelector(".up").disabled = index === 0;
    row.querySelector(".down").disabled = index === workspaces.length - 1;
    row.querySelector(".delete").hidden = role !== "owner";
    row.querySelector(".share").hidden = role !== "owner";

    row.querySelector(".rename").addEventListener("submit", (event) => {
      event.preventDefault();
      const basedOn = drafts.has(workspace.id) ? drafts.get(workspace.id).version : workspace.version;
      drafts.delete(workspace.id);
      command("workspace.update", { id: workspace.id, version: basedOn, changes: { name: name.value } });
    });
    row.querySelector(".delete").addEventListener("click", () => {
      if (confirm(`Delete "${workspace.name}" for every member?`)) command("workspace.delete", { id: workspace.id });
    });
    row.querySelector(".up").addEventListener("click", () => move(index, -1));
    row.querySelector(".down").addEventListener("click", () => move(index, 1));
    row.querySelector(".share").addEventListener("submit", (event) => {
      event.preventDefault();
      const form = event.target;
      command("workspace.share", { id: workspace.id, user_id: Number(form.user_id.value), role: form.role.value });
    });
    return row;
  }

  function move(index, delta) {
    const ids = workspaces.map((w) => w.id);
    const [id] = ids.splice(index, 1);
    ids.splice(index + delta, 0, id);
    command("workspace.reorder", { ids });
  }

  async function command(type, data) {
    try {
      const result = await client.request(type, data);
      say("");
      return result;
    } catch (error) {
      if (error.code === "conflict") {
        const current = error.details.workspace;
        upsert(current);
        say(`"${current.name}" was changed by someone else (now version ${current.version}); your edit was not saved. Review it and try again.`);
      } else if (error.code === "invalid" && error.details) {
        say(`Not saved: ${JSON.stringify(error.details)}`);
      } else {
        say(`Not saved: ${error.message}`);
      }
      return null;
    }
  }

  document.getElementById("create").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    if (await command("workspace.create", { name: form.name.value })) form.reset();
  });

  client
    .on("state", (state, code) => {
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
