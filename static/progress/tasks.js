/*
 * The batch-tasks page: the user's tasks with live progress (docs/protocol.md, "Batch tasks").
 * After every (re)connect, and on a resync event (events may have been lost), the page reads every
 * page of task.list and subscribes to each page's tasks: the subscribe ack carries each task's
 * snapshot, so the page shows the truth whatever it missed.
 * Events and acks only replace a task with a newer `version`.
 *
 * Each task: a progress bar, a sentence of how far it is (documents, stage, time left), its
 * status, the error of a failed task, Pause / Resume / Cancel while it may move, the ZIP's download
 * once done, and the documents that failed with why. A status change is read out (aria-live).
 * An upload the server refuses shows each reason under its field.
 */
(function () {
  "use strict";

  const client = new RealtimeClient();
  const list = document.getElementById("tasks");
  const notice = document.getElementById("notice");
  const status = document.getElementById("status");
  const tasks = new Map(); // task_id -> snapshot, newest first by id
  const failures = new Map(); // task_id -> Map(index -> error)
  const openFailures = new Set(); // task ids whose failure list the user opened (kept across redraws)
  let syncing = false; // sync() is reading the list: "no tasks yet" waits for it
  let syncAgain = false;

  function say(text) {
    notice.textContent = text;
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function api(path, options = {}) {
    const response = await fetch(path, { credentials: "same-origin", ...options,
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json", ...(options.headers || {}) } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw body.error || { message: JSON.stringify(body) };
    return body;
  }

  function upsert(task) {
    const known = tasks.get(task.task_id);
    if (!known || known.version <= task.version) {
      tasks.set(task.task_id, task);
      if (known && known.status !== task.status) announce(`${task.name}: ${STATUS_WORDS[task.status].toLowerCase()}. ${progressLine(task)}`);
    }
    render();
  }

  const STATUS_WORDS = {
    pending: "Waiting to start",
    running: "Running",
    paused: "Paused",
    completed: "Done",
    failed: "Failed",
    cancelled: "Cancelled",
  };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text; // text, never HTML: names and errors quote user data
    return node;
  }

  function announce(text) {
    document.getElementById("announcer").textContent = text;
  }

  function formatEta(ms) {
    if (ms === null || ms === undefined) return "";
    const seconds = Math.max(1, Math.round(ms / 1000));
    return seconds < 60 ? `about ${seconds} s left` : `about ${Math.floor(seconds / 60)} min ${seconds % 60} s left`;
  }

  function plural(count, one, many) {
    return `${count.toLocaleString()} ${count === 1 ? one : many}`;
  }

  // What the task is doing, in a sentence: how far, at which stage, how long still.
  function progressLine(task) {
    if (task.status === "pending") return "Waiting for a worker to pick it up.";
    if (task.status === "completed") {
      const made = `${plural(task.succeeded, "document", "documents")} made`;
      return task.failed ? `${made}, ${task.failed.toLocaleString()} failed (listed below).` : `${made}.`;
    }
    const done = `${task.current.toLocaleString()} of ${plural(task.total, "document", "documents")}`;
    if (task.status === "failed") return task.total ? `Stopped after ${done}.` : "Stopped before any document was made.";
    if (task.status === "cancelled") return `Cancelled after ${done}.`;
    const parts = [done];
    if (task.stage) parts.push(task.stage);
    if (task.status === "running") parts.push(formatEta(task.eta_ms));
    if (task.failed) parts.push(`${task.failed.toLocaleString()} failed`);
    return parts.filter(Boolean).join(" · ");
  }

  function render() {
    const ordered = [...tasks.values()].sort((a, b) => b.task_id - a.task_id);
    // Keep focus on the control it was on (by its data-key) across the redraw.
    const active = document.activeElement;
    const key = active && list.contains(active) ? active.dataset.key : null;
    list.replaceChildren(...ordered.map(renderRow));
    document.getElementById("empty").hidden = ordered.length > 0 || syncing;
    if (key) {
      const again = list.querySelector(`[data-key="${key}"]:not([hidden])`);
      const row = list.querySelector(`li[data-id="${key.split(":")[0]}"]`);
      if (again) again.focus();
      else if (row) row.querySelector("h3").focus(); // its button went away (paused: no Pause)
    }
  }

  function actionButton(task, label, type, className) {
    const node = el("button", className, label);
    node.type = "button";
    node.dataset.key = `${task.task_id}:${type}`;
    node.setAttribute("aria-label", `${label} “${task.name}”`);
    node.addEventListener("click", () => command(`task.${type}`, task.task_id));
    return node;
  }

  function renderRow(task) {
    const id = task.task_id;
    const row = el("li", "card task");
    row.dataset.id = id;
    row.dataset.status = task.status;
    const head = el("div", "task-head");
    const name = el("h3", "name", task.name);
    name.id = `task-${id}-name`;
    name.tabIndex = -1;
    head.append(name, el("span", `badge status-${task.status}`, STATUS_WORDS[task.status] || task.status));
    row.append(head);

    const bar = el("div", "bar-row");
    const progress = el("progress");
    progress.max = 100;
    progress.value = task.progress;
    progress.setAttribute("aria-labelledby", name.id);
    bar.append(progress, el("span", "percent", `${Math.floor(task.progress)}%`));
    row.append(bar);
    row.append(el("p", "meta", progressLine(task)));
    if (task.error) row.append(el("p", "error task-error", task.error));
    else if (task.message && task.status === "running") row.append(el("p", "hint", task.message)); // others: the badge says it

    const actions = el("div", "actions");
    if (task.status === "running") actions.append(actionButton(task, "Pause", "pause", "pause"));
    if (task.status === "paused") actions.append(actionButton(task, "Resume", "resume", "resume primary"));
    if (["pending", "running", "paused"].includes(task.status)) actions.append(actionButton(task, "Cancel", "cancel", "cancel danger"));
    if (task.status === "completed") {
      const download = el("a", "button primary download", "Download ZIP");
      download.href = `/api/tasks/${id}/download`;
      download.setAttribute("download", "");
      download.setAttribute("aria-label", `Download ZIP of “${task.name}”`);
      download.dataset.key = `${id}:download`;
      actions.append(download);
    }
    if (actions.childElementCount) row.append(actions);

    const failed = failures.get(id);
    if (failed && failed.size) {
      const details = el("details", "failures");
      details.open = openFailures.has(id);
      details.addEventListener("toggle", () => (details.open ? openFailures.add(id) : openFailures.delete(id)));
      const summary = el("summary", "", `${plural(failed.size, "document", "documents")} failed: see why`);
      summary.dataset.key = `${id}:failures`;
      const items = el("ul");
      items.append(...[...failed].sort((a, b) => a[0] - b[0]).map(([index, error]) => el("li", "", `Row ${index + 1}: ${error}`)));
      details.append(summary, items);
      row.append(details);
    }
    return row;
  }

  async function command(type, taskId) {
    try {
      const result = await client.request(type, { task_id: taskId });
      upsert(result.task);
      say("");
    } catch (error) {
      if (error.details && error.details.task) upsert(error.details.task);
      say(`Not done: ${error.message}.`);
    }
  }

  async function follow(ids) {
    for (let start = 0; start < ids.length; start += 100) {
      const result = await client.request("task.subscribe", { task_ids: ids.slice(start, start + 100) });
      result.tasks.forEach(upsert);
    }
  }

  async function loadFailures(task) {
    const detail = await api(`/api/tasks/${task.task_id}/`);
    failures.set(task.task_id, new Map(detail.documents.filter((d) => d.status === "failed").map((d) => [d.index, d.error])));
  }

  // Every task, (re)subscribed: their snapshots. One at a time; asked again meanwhile, once more after.
  async function sync() {
    if (syncing) {
      syncAgain = true;
      return;
    }
    syncing = true;
    try {
      do {
        syncAgain = false;
        // Page by page (docs/protocol.md, "Lists"): a page's at most 100 tasks are one subscribe.
        await client.requestAll("task.list", {}, "tasks", async (listed) => {
          listed.forEach(upsert);
          const unknownFailures = listed.filter((t) => t.failed > (failures.get(t.task_id) || new Map()).size);
          await Promise.all(unknownFailures.map(loadFailures));
          await follow(listed.map((t) => t.task_id));
        });
        render();
      } while (syncAgain && client.ready);
    } catch (error) {
      say(`Could not load the tasks: ${error.message}`);
    } finally {
      syncing = false;
      render();
    }
  }

  // The upload form: each refusal under its field, in the server's words (progress/generation.py
  // check_upload: a bad header row, a template field the data has no column for, ...).
  const form = document.getElementById("create");
  const FIELD_ERRORS = { name: "task-name-error", data_file: "data-file-error", template: "template-error" };

  function showFieldErrors(details) {
    for (const [field, id] of Object.entries(FIELD_ERRORS)) {
      const messages = (details && details[field]) || [];
      document.getElementById(id).textContent = messages.join(" ");
      form.elements[field].setAttribute("aria-invalid", String(messages.length > 0));
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const createError = document.getElementById("create-error");
    const missing = {};
    if (!form.elements.name.value.trim()) missing.name = ["Give the batch a name."];
    if (!form.elements.data_file.files.length) missing.data_file = ["Choose a CSV or XLSX file."];
    if (!form.elements.template.files.length) missing.template = ["Choose a DOCX, HTML or text template."];
    showFieldErrors(missing);
    if (Object.keys(missing).length) {
      createError.textContent = "";
      form.elements[Object.keys(missing)[0]].focus();
      return;
    }
    const submit = document.getElementById("create-submit");
    submit.disabled = true;
    try {
      const task = await api("/api/tasks/", { method: "POST", body: new FormData(form) });
      upsert(task);
      await follow([task.task_id]);
      form.reset();
      createError.textContent = "";
      announce(`Created “${task.name}”: waiting to start.`);
    } catch (error) {
      showFieldErrors(error.details);
      const fields = Object.keys(error.details || {}).filter((field) => FIELD_ERRORS[field]);
      createError.textContent = fields.length ? "Not created: fix the marked field and try again." : `Not created: ${error.message}.`;
      if (fields.length) form.elements[fields[0]].focus();
    } finally {
      submit.disabled = false;
    }
  });

  client
    .on("state", (state) => {
      status.dataset.state = state;
      status.textContent = { open: "live", connecting: "connecting…", reconnecting: "reconnecting…", stopped: "disconnected" }[state];
      if (state === "stopped" && client.lastError) say(`Disconnected: ${client.lastError.message}. Reload the page to sign in again.`);
    })
    .on("welcome", sync)
    .on("resync", sync)
    .on("task.completed", async (task) => {
      upsert(task);
      // Failures that happened before this page subscribed come from the task's detail.
      if (task.failed > (failures.get(task.task_id) || new Map()).size) {
        await loadFailures(task);
        render();
      }
    })
    .on("task.document_failed", (data) => {
      if (!failures.has(data.task_id)) failures.set(data.task_id, new Map());
      failures.get(data.task_id).set(data.index, data.error);
      render();
    });
  for (const type of ["task.started", "task.progress", "task.paused", "task.resumed", "task.failed", "task.cancelled"]) {
    client.on(type, upsert);
  }
  client.start();
})();
