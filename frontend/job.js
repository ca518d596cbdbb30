/*
 * One job: job.html?id=<job id>. Its fields, result or error, the timeline of
 * every status change, the whole job as JSON, and the actions that apply:
 * Cancel while it is pending (DELETE /api/jobs/{id}), Retry once it has failed
 * (POST /api/jobs/{id}/retry, an admin call).
 *
 * It polls GET /api/jobs/{id} until the job is finished (completed, failed or
 * cancelled), each poll scheduled after the previous one ends, and starts
 * again after a retry. The admin token is the one the run page uses, kept in
 * localStorage by common.js (Pacer.bindAdminToken), so an admin types it once.
 */
(function () {
  "use strict";

  const POLL_INTERVAL_MS = 1500;

  const { el } = Pacer;
  const $ = (id) => document.getElementById(id);
  const jobId = new URLSearchParams(window.location.search).get("id") || "";
  const jobPath = `/api/jobs/${encodeURIComponent(jobId)}`;

  const view = {
    job: null,
    timer: null,
    busy: false,     // a cancel or retry is in flight
    shownAfter: "",  // the status the last action's message describes; the message goes once the job moves on
    generation: 0,   // bumped by every action, so an older poll cannot overwrite its answer
  };

  // ---- polling ------------------------------------------------------------

  function schedulePoll(delay) {
    clearTimeout(view.timer);
    view.timer = setTimeout(poll, delay);
  }

  async function poll() {
    const generation = view.generation;
    try {
      const job = await Pacer.call("GET", jobPath);
      if (generation !== view.generation) return;
      Pacer.clearError($("job-load-error"));
      show(job);
    } catch (err) {
      if (generation !== view.generation) return;
      Pacer.showError($("job-load-error"), err);
      if (err instanceof Pacer.ApiError && err.status === 404) {
        $("job").dataset.state = "missing";
        $("job-status").textContent = "not found";
        $("job-status").dataset.state = "missing";
        $("job-polling").textContent = "";
        return; // a job that does not exist will not start to
      }
      $("job-polling").textContent = "retrying…";
      schedulePoll(POLL_INTERVAL_MS);
    }
  }

  function show(job) {
    view.job = job;
    render(job);
    if (Pacer.isFinished(job)) {
      clearTimeout(view.timer);
      $("job-polling").textContent = "finished";
    } else {
      $("job-polling").textContent = "updating every few seconds";
      schedulePoll(POLL_INTERVAL_MS);
    }
  }

  // ---- actions ------------------------------------------------------------

  async function act(label, method, path, headers) {
    if (view.busy) return;
    view.busy = true;
    view.generation += 1;
    Pacer.clearError($("action-error"));
    $("action-message").hidden = true;
    renderActions(view.job);
    try {
      const job = await Pacer.call(method, path, { headers });
      $("action-message").textContent = `${label}: the job is ${job.status} now.`;
      $("action-message").hidden = false;
      view.shownAfter = job.status;
      view.busy = false;
      show(job);
    } catch (err) {
      Pacer.showError($("action-error"), err);
      if (err.status === 401 || err.status === 403) $("admin-token").setAttribute("aria-invalid", "true");
      view.busy = false;
      // The job may have moved on (that is what a 409 says): show where it is now.
      renderActions(view.job);
      schedulePoll(0);
    }
  }

  function cancelJob() {
    act("Cancelled", "DELETE", jobPath);
  }

  function retryJob() {
    act("Retried", "POST", `${jobPath}/retry`, Pacer.adminHeaders($("admin-token").value.trim()));
  }

  // ---- rendering ----------------------------------------------------------

  function render(job) {
    $("job").dataset.state = "loaded";
    $("job").dataset.status = job.status;
    $("job-id").textContent = job.id;
    document.title = `Job ${job.id} · Pacer`;
    $("job-status").textContent = job.status;
    $("job-status").dataset.state = job.status;
    if (view.shownAfter && job.status !== view.shownAfter) {
      $("action-message").hidden = true;
      view.shownAfter = "";
    }

    $("job-type").textContent = job.type;
    $("job-priority").textContent = String(job.priority);
    $("job-caller").textContent = job.caller || "—";
    $("job-created").replaceChildren(Pacer.timeElement(job.created_at));
    $("job-scheduled").replaceChildren(Pacer.timeElement(job.scheduled_for));
    $("job-started").replaceChildren(Pacer.timeElement(job.started_at));
    $("job-finished").replaceChildren(Pacer.timeElement(job.finished_at));
    $("job-attempts").textContent = `${job.attempts ?? 0} of ${job.max_attempts ?? "—"}`;

    $("job-payload").replaceChildren(...payloadRows(job.payload || {}));
    showBlock("job-result", job.result);
    showBlock("job-error", job.error);
    renderTimeline(job.timeline || []);
    $("job-json-text").textContent = JSON.stringify(job, null, 2);
    renderActions(job);
  }

  // Nested objects (a report's date_range) become dotted keys: date_range.from.
  function payloadRows(payload, prefix = "") {
    return Object.entries(payload).flatMap(([key, value]) => {
      const name = prefix + key;
      if (value && typeof value === "object" && !Array.isArray(value)) return payloadRows(value, `${name}.`);
      const shown = typeof value === "string" ? value : JSON.stringify(value);
      return [el("dt", {}, name), el("dd", { "data-field": name }, shown)];
    });
  }

  function showBlock(id, value) {
    const present = value !== null && value !== undefined && value !== "";
    $(`${id}-block`).hidden = !present;
    $(id).textContent = !present ? "" : typeof value === "string" ? value : JSON.stringify(value, null, 2);
  }

  function renderTimeline(entries) {
    const items = entries.map((entry) => {
      const meta = [`attempt ${entry.attempt ?? 0}`];
      if (entry.worker) meta.push(`worker ${entry.worker}`);
      return el("li", { class: "timeline-entry", "data-status": entry.status, "data-test": "timeline-entry" },
        el("div", { class: "timeline-line" },
          Pacer.statusBadge(entry.status),
          Pacer.timeElement(entry.at),
          el("span", { class: "timeline-meta" }, meta.join(" · "))),
        entry.note ? el("p", { class: "timeline-note" }, entry.note) : null);
    });
    $("timeline").replaceChildren(...items);
  }

  function renderActions(job) {
    const pending = Boolean(job) && job.status === "pending";
    const failed = Boolean(job) && job.status === "failed";
    $("cancel-job").hidden = !pending;
    $("cancel-job").disabled = view.busy;
    $("retry-job").hidden = !failed;
    $("retry-job").disabled = view.busy;
    $("admin-token-field").hidden = !failed;
  }

  // ---- wiring -------------------------------------------------------------

  function init() {
    $("job-id").textContent = jobId || "—";
    Pacer.bindAdminToken($("admin-token"));
    $("admin-token").addEventListener("keydown", (event) => {
      if (event.key === "Enter") retryJob();
    });
    $("cancel-job").addEventListener("click", cancelJob);
    $("retry-job").addEventListener("click", retryJob);

    if (!jobId) {
      $("job").dataset.state = "missing";
      $("job-status").textContent = "no job";
      const box = $("job-load-error");
      box.replaceChildren(el("strong", {}, "No job given"),
        el("span", {}, "Open this page from the jobs list, or add ?id=<job id> to its address."));
      box.hidden = false;
      return;
    }
    poll();
  }

  init();
})();
