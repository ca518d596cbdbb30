/*
 * Pacer's control page: start, re-pace and stop a run, and watch it go.
 *
 * Which API it talks to is common.js's rule (Pacer.apiBase): `?api=`, else
 * `window.PACER_API` from config.js, else port 8000 on this host. The calls
 * and their errors, the admin token and the time and count formats come from
 * common.js too, so every page makes, shows and keeps them the same way.
 * The page calls `<base>/api/run`, `<base>/api/stop`, `<base>/api/status`,
 * `<base>/api/workers`, `<base>/api/bots` and `<base>/api/bots/count`.
 *
 * It polls GET /api/status about once a second, and GET /api/workers and the
 * bots (GET /api/bots with GET /api/bots/count) every two: the fleet card
 * shows the Lambda workers and the bots together.
 * Each next poll is scheduled only after the previous one has finished, so a slow
 * API never has requests piling up. The workers poll is independent: an API
 * without /api/workers (or one that fails it) leaves the rest of the page working.
 * Setting the concurrency or the bot count ("Add bot" is the count plus one;
 * the local stack starts or stops reference bot processes to match) needs the admin token, which the page keeps in
 * localStorage so that a reload does not ask for it again.
 * The server validates every input; the page shows its messages rather than
 * keeping a second copy of the rules.
 */
(function () {
  "use strict";

  const POLL_INTERVAL_MS = 1000;
  const WORKERS_POLL_INTERVAL_MS = 2000;
  const CHART_SECONDS = 60;
  const CHART_HEIGHT = 170;
  const FIELDS = ["x", "y", "total"];

  const { apiBase, ApiError, UnreachableError, formatCount, formatTime } = Pacer;
  const $ = (id) => document.getElementById(id);

  const view = {
    status: null,        // the last status object the API returned
    connected: null,     // null until the first poll answers or fails
    busy: false,         // an action (start/update/stop) is in flight
    statusGeneration: 0, // bumped by every action, so an older poll cannot overwrite its result
  };

  const workersView = {
    data: null,            // the last workers object the API returned
    available: null,       // null until the first workers poll answers or fails
    unavailableReason: "",
    busy: false,           // a concurrency change is in flight
    generation: 0,         // bumped by every change, so an older poll cannot overwrite its result
    concurrencyEdited: false, // once the user types, polls stop refilling #concurrency
  };

  const botsView = {
    list: null,            // the last GET /api/bots answer
    count: undefined,      // the desired bot count (null: never set); undefined until the first poll answers
    available: null,
    unavailableReason: "",
    busy: false,           // a count change is in flight
    generation: 0,
    countEdited: false,    // once the user types, polls stop refilling #bot-count
  };

  // ---- talking to the API -------------------------------------------------

  // common.js makes the call (and keeps the header's pill current); this page adds
  // "— retrying" to the pill from its status poll, in setConnected.
  function callApi(method, path, body, headers = {}) {
    return Pacer.call(method, path, { body, headers });
  }

  // ---- polling ------------------------------------------------------------

  async function poll() {
    const generation = view.statusGeneration;
    try {
      const status = await callApi("GET", "/api/status");
      setConnected(true);
      if (generation === view.statusGeneration) {
        view.status = status;
      }
    } catch (err) {
      setConnected(false, err);
    }
    render();
    setTimeout(poll, POLL_INTERVAL_MS);
  }

  function setConnected(connected, err) {
    view.connected = connected;
    const box = $("connection");
    box.dataset.connected = String(connected);
    if (connected) {
      $("connection-text").textContent = "API connected";
      box.title = apiBase;
    } else {
      const reason = err instanceof ApiError ? `answered ${err.status}` : "unreachable";
      $("connection-text").textContent = `API ${reason} — retrying`;
      box.title = err ? err.message : "";
    }
  }

  async function pollWorkers() {
    const generation = workersView.generation;
    try {
      const workers = await callApi("GET", "/api/workers");
      workersView.available = true;
      if (generation === workersView.generation) {
        workersView.data = workers;
      }
    } catch (err) {
      // An API without the route answers 404 (chalice local: 403, without CORS
      // headers, so fetch fails outright). Either way it is not the page's
      // connection problem, so the note stays quiet and the status poll decides.
      workersView.available = false;
      workersView.unavailableReason = err instanceof ApiError ? `the API answered ${err.status}` : "no answer";
    }
    renderWorkers();
    setTimeout(pollWorkers, WORKERS_POLL_INTERVAL_MS);
  }

  async function pollBots() {
    const generation = botsView.generation;
    try {
      const [list, count] = await Promise.all([callApi("GET", "/api/bots"), callApi("GET", "/api/bots/count")]);
      botsView.available = true;
      if (generation === botsView.generation) {
        botsView.list = list;
        botsView.count = count.count;
      }
    } catch (err) {
      botsView.available = false;
      botsView.unavailableReason = err instanceof ApiError ? `the API answered ${err.status}` : "no answer";
    }
    renderBots();
    setTimeout(pollBots, WORKERS_POLL_INTERVAL_MS);
  }

  // ---- actions ------------------------------------------------------------

  function readNumber(id) {
    const raw = $(id).value.trim();
    return raw === "" ? null : Number(raw);
  }

  function rateBody() {
    return { x: readNumber("x"), y: readNumber("y") };
  }

  function startBody() {
    const body = rateBody();
    const total = readNumber("total");
    if (total !== null) body.total = total;
    return body;
  }

  const actions = {
    start: () => callApi("POST", "/api/run", startBody()),
    update: () => callApi("PUT", "/api/run", rateBody()),
    stop: () => callApi("POST", "/api/stop"),
  };

  async function perform(name) {
    if (view.busy || $(name).disabled) return;
    view.busy = true;
    view.statusGeneration += 1;
    clearErrors();
    renderControls();
    try {
      view.status = await actions[name]();
      setConnected(true);
    } catch (err) {
      showError(err);
    } finally {
      view.busy = false;
      render();
    }
  }

  function primaryAction() {
    return isActive() ? "update" : "start";
  }

  async function setConcurrency() {
    if (workersView.busy || $("set-concurrency").disabled) return;
    workersView.busy = true;
    workersView.generation += 1;
    clearAdminFormError("workers-error", "concurrency");
    renderWorkerControls();
    try {
      workersView.data = await callApi("PUT", "/api/workers",
        { concurrency: readNumber("concurrency") }, Pacer.adminHeaders($("admin-token").value.trim()));
      workersView.available = true;
      workersView.concurrencyEdited = false;
    } catch (err) {
      showAdminFormError("workers-error", "concurrency", err);
    } finally {
      workersView.busy = false;
      renderWorkers();
    }
  }

  // `next(current)` is the count to ask for, given the one stored now: "Add bot" reads it first, so two clicks (or
  // two admins) add two bots rather than setting the same count twice.
  async function changeBotCount(next) {
    if (botsView.busy) return;
    botsView.busy = true;
    botsView.generation += 1;
    clearAdminFormError("bots-error", "bot-count");
    renderBotControls();
    try {
      const current = await callApi("GET", "/api/bots/count");
      const answer = await callApi("PUT", "/api/bots/count", { count: next(current.count) },
        Pacer.adminHeaders($("admin-token").value.trim()));
      botsView.count = answer.count;
      botsView.available = true;
      botsView.countEdited = false;
    } catch (err) {
      showAdminFormError("bots-error", "bot-count", err);
    } finally {
      botsView.busy = false;
      renderBots();
    }
  }

  // ---- errors -------------------------------------------------------------

  function clearErrors() {
    clearErrorBox($("error"));
    FIELDS.forEach(clearFieldError);
  }

  function clearErrorBox(box) {
    box.hidden = true;
    box.textContent = "";
    box.dataset.status = "";
  }

  function clearFieldError(field) {
    $(field).removeAttribute("aria-invalid");
    $(`${field}-error`).hidden = true;
    $(`${field}-error`).textContent = "";
  }

  function fillErrorBox(box, err) {
    const title = document.createElement("strong");
    title.textContent = errorTitle(err);
    const message = document.createElement("span");
    message.textContent = err.message;
    box.replaceChildren(title, message);
    box.dataset.status = err instanceof ApiError ? String(err.status) : "";
    box.hidden = false;
  }

  function showError(err) {
    fillErrorBox($("error"), err);
    for (const { field, message: fieldMessage } of err.fields || []) {
      // Field paths may arrive dotted ("body.x"); the last part names the input.
      const name = String(field).split(".").pop();
      if (!FIELDS.includes(name)) continue;
      $(name).setAttribute("aria-invalid", "true");
      $(`${name}-error`).textContent = fieldMessage;
      $(`${name}-error`).hidden = false;
    }
  }

  function errorTitle(err) {
    if (err instanceof UnreachableError) return "API unreachable";
    if (err.status === 401) return "Admin token needed (401)";
    if (err.status === 403) return "Admin token rejected (403)";
    if (err.code === "validation_error") return "Please check the values";
    if (err.code === "conflict") return "Not possible right now";
    return `Request failed (${err.status})`;
  }

  // An admin form's error box and the field a 400 names (the shared admin token takes a 401 or 403).
  function clearAdminFormError(boxId, fieldId) {
    clearErrorBox($(boxId));
    $(fieldId).removeAttribute("aria-invalid");
    $("admin-token").removeAttribute("aria-invalid");
  }

  function showAdminFormError(boxId, fieldId, err) {
    fillErrorBox($(boxId), err);
    if (err.status === 401 || err.status === 403) {
      $("admin-token").setAttribute("aria-invalid", "true");
    } else if (err.status === 400) {
      $(fieldId).setAttribute("aria-invalid", "true");
    }
  }

  // ---- rendering ----------------------------------------------------------

  function isActive() {
    return Boolean(view.status && view.status.state === "running");
  }

  function render() {
    renderControls();
    renderStatus(view.status);
    renderChart(view.status ? view.status.series || [] : []);
  }

  function renderControls() {
    const known = view.status !== null;
    const active = isActive();
    $("start").disabled = view.busy || !known || active;
    $("update").disabled = view.busy || !active;
    $("stop").disabled = view.busy || !active;
    // A running run keeps the total it started with; only its rate can change.
    $("total").disabled = active;
    renderRatePreview();
  }

  function renderRatePreview() {
    const x = readNumber("x");
    const y = readNumber("y");
    const preview = $("rate-preview");
    if (!(x > 0 && y > 0)) {
      preview.textContent = "";
      return;
    }
    const perMin = x / y;
    const gapMs = 60000 / perMin;
    let text = `= ${formatRate(perMin)} jobs/min, one every ${formatDuration(gapMs)}`;
    const total = readNumber("total");
    if (!isActive() && total > 0) {
      text += ` · ${formatCount(total)} jobs in about ${formatDuration(total * gapMs)}`;
    }
    preview.textContent = text;
  }

  function renderStatus(status) {
    const state = status ? status.state : "unknown";
    const badge = $("state");
    badge.textContent = state;
    badge.dataset.state = state;
    $("status-panel").classList.toggle("stale", view.connected === false);

    $("run-id").textContent = (status && status.run_id) || "—";
    setCounter("enqueued", status && status.enqueued);
    setCounter("processed", status && status.processed);
    setCounter("failed", status && status.failed);
    setCounter("in-flight", status && status.in_flight);

    renderProgress(status);
    renderRates(status);

    $("started-at").textContent = formatTime(status && status.started_at);
    $("updated-at").textContent = formatTime(status && status.updated_at);
    $("stopped-at").textContent = formatTime(status && status.stopped_at);
    $("elapsed").textContent = formatElapsed(status);
  }

  function setCounter(id, value) {
    const number = Number(value) || 0;
    $(id).dataset.value = String(number);
    $(id).textContent = formatCount(number);
  }

  function renderProgress(status) {
    const total = status && status.total;
    const track = $("progress-track");
    const fill = $("progress");
    if (!total) {
      track.dataset.determinate = "false";
      track.dataset.complete = "false";
      track.removeAttribute("aria-valuenow");
      fill.dataset.progress = "";
      fill.style.width = "0%";
      $("progress-label").textContent = status && status.run_id
        ? "no total — runs until stopped"
        : "no run yet";
      return;
    }
    const done = (status.processed || 0) + (status.failed || 0);
    const fraction = Math.min(1, done / total);
    const percent = Math.round(fraction * 1000) / 10;
    track.dataset.determinate = "true";
    track.dataset.complete = String(fraction >= 1);
    track.setAttribute("aria-valuenow", String(percent));
    fill.dataset.progress = fraction.toFixed(4);
    fill.style.width = `${percent}%`;
    $("progress-label").textContent = `${formatCount(done)} of ${formatCount(total)} · ${percent}%`;
  }

  function renderRates(status) {
    const configured = $("configured");
    const perMin = status ? status.configured_per_min : null;
    if (perMin === null || perMin === undefined) {
      configured.textContent = "—";
      configured.dataset.perMin = "";
      $("configured-detail").textContent = "";
    } else {
      configured.textContent = `${formatRate(perMin)} /min`;
      configured.dataset.perMin = String(perMin);
      $("configured-detail").textContent =
        `${formatCount(status.x)} jobs every ${formatRate(status.y)} min`;
    }

    const achieved = status && status.achieved;
    $("achieved-window").textContent = achieved ? `last ${achieved.window_s} s` : "";
    $("achieved-processed").textContent = achieved ? `${formatRate(achieved.processed_per_min)} /min` : "—";
    $("achieved-enqueued").textContent = achieved ? `${formatRate(achieved.enqueued_per_min)} /min` : "—";
  }

  // ---- workers ------------------------------------------------------------

  function renderWorkers() {
    const data = workersView.data;
    const workers = renderFleetPart("workers", workersView.available, data && data.workers);
    setWorkerCount("concurrency-desired", data && data.concurrency);

    // Until the user types, the input follows the desired count (another admin may change it).
    const input = $("concurrency");
    if (data && !workersView.concurrencyEdited && document.activeElement !== input) {
      input.value = String(data.concurrency);
    }

    renderWorkersNote(data);
    renderWorkerRows(data, workers);
    renderWorkerControls();
  }

  /** The fleet card's parts (workers, bots) alike: the panel's availability, and its up and down counts
   *  (`${id}-up`, `${id}-down`); answers the part's items (none while unknown). */
  function renderFleetPart(id, available, items) {
    const panel = $(id);
    panel.dataset.available = String(available);
    // Data from an earlier answer stays on screen, faded, while the API fails.
    panel.classList.toggle("stale", available === false && Boolean(items));
    const known = items || [];
    const down = known.filter((item) => item.state === "down").length;
    setWorkerCount(`${id}-up`, items && known.length - down);
    setWorkerCount(`${id}-down`, items && down);
    return known;
  }

  /** A fleet table with nothing to list: one row saying why, across its columns. */
  function showEmptyRow(body, text, columns) {
    const td = cell(text);
    td.colSpan = columns;
    const row = document.createElement("tr");
    row.className = "workers-empty";
    row.append(td);
    body.replaceChildren(row);
  }

  function setWorkerCount(id, value) {
    const known = value !== null && value !== undefined;
    $(id).dataset.value = known ? String(value) : "";
    $(id).textContent = known ? formatCount(value) : "—";
  }

  function renderWorkersNote(data) {
    const note = $("workers-note");
    if (workersView.available === false) {
      note.textContent = `Workers unavailable (${workersView.unavailableReason}) — retrying.`;
    } else if (data) {
      note.textContent = `Job-worker processes and their heartbeats. One silent for ` +
        `${formatCount(data.down_after_s)} s is marked down; the runtime follows the desired count within seconds.`;
    } else {
      note.textContent = "Job-worker processes and their heartbeats.";
    }
  }

  function renderWorkerRows(data, workers) {
    const body = $("workers-list");
    if (!data || workers.length === 0) {
      let text = "No worker has reported yet.";
      if (!data) text = workersView.available === false ? "Workers unavailable" : "Loading workers…";
      showEmptyRow(body, text, 5);
      return;
    }
    // Down workers last; otherwise by id, so rows do not jump between idle and busy.
    const sorted = [...workers].sort((a, b) =>
      (a.state === "down") - (b.state === "down") || String(a.id).localeCompare(String(b.id)));
    body.replaceChildren(...sorted.map(workerRow));
  }

  function workerRow(worker) {
    const row = document.createElement("tr");
    row.dataset.workerId = worker.id;
    row.dataset.state = worker.state;

    const id = document.createElement("code");
    id.textContent = worker.id;
    const badge = document.createElement("span");
    badge.className = "badge worker-state";
    badge.dataset.state = worker.state;
    badge.textContent = worker.state;

    const cells = [
      cell(id),
      cell(badge),
      cell(formatCount(worker.jobs_done), "numeric"),
      cell(formatTime(worker.started_at)),
      cell(formatSecondsAgo(worker.seconds_since_beat), "numeric"),
    ];
    cells[3].title = worker.started_at || "";
    cells[4].title = worker.last_beat_at || "";
    row.append(...cells);
    return row;
  }

  function cell(content, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (content instanceof Node) td.append(content);
    else td.textContent = content;
    return td;
  }

  function renderWorkerControls() {
    $("set-concurrency").disabled = workersView.busy || workersView.available !== true;
  }

  // ---- bots ---------------------------------------------------------------

  function renderBots() {
    const list = botsView.list;
    const bots = renderFleetPart("bots", botsView.available, list && list.bots);
    setWorkerCount("bots-desired", botsView.count);

    const input = $("bot-count");
    if (botsView.count !== undefined && !botsView.countEdited && document.activeElement !== input) {
      input.value = botsView.count === null ? "" : String(botsView.count);
    }

    const note = $("bots-note");
    if (botsView.available === false) {
      note.textContent = `Bots unavailable (${botsView.unavailableReason}) — retrying.`;
    } else if (list) {
      note.textContent = `Workers outside Lambda that pull typed jobs submitted with "target": "bot". One silent ` +
        `for ${formatCount(list.down_after_s)} s is marked down. make up starts or stops reference bots to match ` +
        `the desired count within seconds; on AWS bots run on their owners' machines and the count is advisory.`;
    }
    renderBotRows(list, bots);
    renderBotControls();
  }

  function renderBotRows(list, bots) {
    const body = $("bots-list");
    if (!list || bots.length === 0) {
      let text = "No bot has registered yet.";
      if (!list) text = botsView.available === false ? "Bots unavailable" : "Loading bots…";
      showEmptyRow(body, text, 6);
      return;
    }
    // Down bots last; otherwise in the order they registered, so rows do not jump between idle and busy.
    const sorted = bots.map((bot, order) => ({ bot, order }))
      .sort((a, b) => (a.bot.state === "down") - (b.bot.state === "down") || a.order - b.order)
      .map(({ bot }) => bot);
    body.replaceChildren(...sorted.map(botRow));
  }

  function botRow(bot) {
    const row = document.createElement("tr");
    row.dataset.botId = bot.id;
    row.dataset.botName = bot.name;
    row.dataset.state = bot.state;

    const name = document.createElement("span");
    const id = document.createElement("code");
    id.textContent = bot.id;
    name.append(`${bot.name} `, id);
    const badge = document.createElement("span");
    badge.className = "badge worker-state";
    badge.dataset.state = bot.state;
    badge.textContent = bot.state;
    const jobs = document.createElement("span");
    jobs.className = "bot-jobs";
    if (bot.jobs.length === 0) jobs.textContent = "—";
    for (const jobId of bot.jobs) {
      const link = document.createElement("a");
      link.href = Pacer.pageHref("job.html", { id: jobId });
      link.textContent = jobId;
      jobs.append(link, " ");
    }

    const cells = [
      cell(name),
      cell(badge),
      cell(jobs),
      cell(formatCount(bot.jobs_done), "numeric bot-done"),
      cell(formatCount(bot.jobs_failed), "numeric bot-failed"),
      cell(formatSecondsAgo(bot.seconds_since_beat), "numeric"),
    ];
    cells[5].title = bot.last_beat_at || "";
    row.append(...cells);
    return row;
  }

  function renderBotControls() {
    const off = botsView.busy || botsView.available !== true;
    $("set-bot-count").disabled = off;
    $("add-bot").disabled = off;
  }

  // ---- the throughput chart (drawn by common.js) ---------------------------

  // One value per second for the minute that ends at the last complete second.
  // The newest bucket is the second still in progress: drawing it would make the
  // lines dip at the right edge on every poll. The series, not the browser's
  // clock, anchors the window, so clock skew cannot shift the chart. A second
  // the series leaves out had nothing happen in it.
  function perSecond(series) {
    const newest = series.reduce((max, bucket) => Math.max(max, bucket.t), -Infinity);
    const last = series.length > 1 ? newest - 1 : newest;
    const first = last - CHART_SECONDS + 1;
    const processed = new Array(CHART_SECONDS).fill(0);
    const enqueued = new Array(CHART_SECONDS).fill(0);
    for (const bucket of series) {
      const i = bucket.t - first;
      if (i < 0 || i >= CHART_SECONDS) continue;
      processed[i] = bucket.processed || 0;
      enqueued[i] = bucket.enqueued || 0;
    }
    return { processed, enqueued };
  }

  function renderChart(series) {
    const hasData = series.length > 0;
    const { processed, enqueued } = hasData
      ? perSecond(series)
      : { processed: [], enqueued: [] };
    Pacer.drawTrendChart($("chart"), {
      height: CHART_HEIGHT,
      defaultWidth: 640,
      points: CHART_SECONDS,
      series: [
        { name: "enqueued", values: enqueued },
        { name: "processed", values: processed, area: true },
      ],
      formatTick: formatRate,
      xLabels: [[60, "start"], [30, "middle"], [0, "end"]].map(([seconds, anchor]) => ({
        ago: Math.min(seconds, CHART_SECONDS - 1),
        anchor,
        label: seconds === 0 ? "now" : `−${seconds} s`,
      })),
      emptyText: "No jobs yet — start a run to see throughput",
    });

    if (!hasData) {
      $("latest-processed").textContent = "—";
      $("latest-enqueued").textContent = "—";
      return;
    }
    $("latest-processed").textContent = `${formatCount(processed[CHART_SECONDS - 1])} /s`;
    $("latest-enqueued").textContent = `${formatCount(enqueued[CHART_SECONDS - 1])} /s`;
  }

  // ---- formatting ---------------------------------------------------------

  function formatRate(value) {
    if (value === null || value === undefined) return "—";
    const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
    return new Intl.NumberFormat("en-US", { maximumFractionDigits: digits }).format(value);
  }

  function formatDuration(ms) {
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const seconds = ms / 1000;
    if (seconds < 60) return `${formatRate(seconds)} s`;
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
    return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }

  function formatSecondsAgo(seconds) {
    if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return "—";
    const value = Math.max(0, Number(seconds));
    return value < 60 ? `${value.toFixed(1)} s ago` : `${formatDuration(value * 1000)} ago`;
  }

  function formatElapsed(status) {
    if (!status || !status.started_at) return "—";
    const start = Date.parse(status.started_at);
    const endIso = status.stopped_at || (status.state === "running" ? null : status.updated_at);
    const end = endIso ? Date.parse(endIso) : Date.now();
    if (Number.isNaN(start) || Number.isNaN(end)) return "—";
    return formatDuration(Math.max(0, end - start));
  }

  // ---- wiring -------------------------------------------------------------

  function init() {
    for (const name of Object.keys(actions)) {
      $(name).addEventListener("click", () => perform(name));
    }
    for (const field of FIELDS) {
      $(field).addEventListener("input", () => {
        clearFieldError(field);
        renderRatePreview();
      });
      $(field).addEventListener("keydown", (event) => {
        if (event.key === "Enter") perform(primaryAction());
      });
    }
    window.addEventListener("resize", () => renderChart(view.status ? view.status.series || [] : []));

    Pacer.bindAdminToken($("admin-token"));
    // "change" as well as "input": some ways of clearing a field (autofill, WebDriver) fire only "change".
    for (const type of ["input", "change"]) {
      $("concurrency").addEventListener(type, () => {
        workersView.concurrencyEdited = true;
        $("concurrency").removeAttribute("aria-invalid");
      });
    }
    // A form, so Enter in either field submits it (and password managers know what the token field is).
    $("concurrency-form").addEventListener("submit", (event) => {
      event.preventDefault();
      setConcurrency();
    });

    for (const type of ["input", "change"]) {
      $("bot-count").addEventListener(type, () => {
        botsView.countEdited = true;
        $("bot-count").removeAttribute("aria-invalid");
      });
    }
    $("bot-count-form").addEventListener("submit", (event) => {
      event.preventDefault();
      if (!$("set-bot-count").disabled) changeBotCount(() => readNumber("bot-count"));
    });
    $("add-bot").addEventListener("click", () => changeBotCount((current) => (current || 0) + 1));

    render();
    renderWorkers();
    renderBots();
    poll();
    pollWorkers();
    pollBots();
  }

  init();
})();
