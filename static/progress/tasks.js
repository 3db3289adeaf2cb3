/*
 * The batch-tasks page: the user's tasks with live progress (docs/protocol.md, "Batch tasks").
 * After every (re)connect, and on a resync event (events may have been lost), the page reads every
 * page of task.list and subscribes to each page's tasks: the subscribe ack carries each task's
 * snapshot, so the page shows the truth whatever it missed.
 * Events and acks only replace a task with a newer `version`.
 */
(function () {
  "use strict";

  const client = new RealtimeClient();
  const list = document.getElementById("tasks");
  const rowTemplate = document.getElementById("task-row");
  const notice = document.getElementById("notice");
  const status = document.getElementById("status");
  const tasks = new Map(); // task_id -> snapshot, newest first by id
  const failures = new Map(); // task_id -> Map(index -> error)

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
    if (!known || known.version <= task.version) tasks.set(task.task_id, task);
    render();
  }

  function formatEta(ms) {
    if (ms === null || ms === undefined) return "";
    const seconds = Math.round(ms / 1000);
    return seconds < 60 ? `${seconds} s left` : `${Math.floor(seconds / 60)} min ${seconds % 60} s left`;
  }

  function render() {
    const ordered = [...tasks.values()].sort((a, b) => b.task_id - a.task_id);
    list.replaceChildren(...ordered.map(renderRow));
  }

  function renderRow(task) {
    const row = rowTemplate.content.firstElementChild.cloneNode(true);
    row.dataset.id = task.task_id;
    row.dataset.status = task.status;
    row.querySelector(".name").textContent = task.name;
    row.querySelector(".state").textContent = task.status;
    row.querySelector("progress").value = task.progress;
    row.querySelector(".percent").textContent = `${task.progress}%`;
    const running = task.status === "running";
    const parts = [`${task.current} / ${task.total}`, task.stage, running ? formatEta(task.eta_ms) : "",
      task.failed ? `${task.failed} failed` : "", task.message, task.error];
    row.querySelector(".meta").textContent = parts.filter(Boolean).join(" · ");
    row.querySelector(".pause").hidden = !running;
    row.querySelector(".resume").hidden = task.status !== "paused";
    row.querySelector(".cancel").hidden = !["pending", "running", "paused"].includes(task.status);
    const download = row.querySelector(".download");
    download.hidden = task.status !== "completed";
    download.href = `/api/tasks/${task.task_id}/download`;
    row.querySelector(".pause").addEventListener("click", () => command("task.pause", task.task_id));
    row.querySelector(".resume").addEventListener("click", () => command("task.resume", task.task_id));
    row.querySelector(".cancel").addEventListener("click", () => command("task.cancel", task.task_id));
    const failed = failures.get(task.task_id);
    if (failed && failed.size) {
      const details = row.querySelector(".failures");
      details.hidden = false;
      details.querySelector("summary").textContent = `${failed.size} failed document(s)`;
      details.querySelector("ul").replaceChildren(...[...failed].sort((a, b) => a[0] - b[0]).map(([index, error]) => {
        const item = document.createElement("li");
        item.textContent = `row ${index + 1}: ${error}`; // text, never HTML: errors quote user data
        return item;
      }));
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
      say(`Not done: ${error.message}`);
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
  let syncing = false;
  let syncAgain = false;
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
    }
  }

  document.getElementById("create").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      const task = await api("/api/tasks/", { method: "POST", body: new FormData(form) });
      upsert(task);
      await follow([task.task_id]);
      form.reset();
      say("");
    } catch (error) {
      say(`Not created: ${error.message}${error.details ? " " + JSON.stringify(error.details) : ""}`);
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
