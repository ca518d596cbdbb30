/*
 * The callers page: GET /api/callers as a table (a row per caller and way in:
 * weight, rate limit, backlog, in flight, done, failed, jobs settled in the
 * last minute, queue-wait p50/p95), a bar chart of each caller's share of the
 * jobs settled in the last minute, and a form that weighs a caller with
 * PUT /api/callers/{caller}, an admin call with the token every page keeps
 * (Pacer.bindAdminToken).
 *
 * It polls every few seconds; each poll is scheduled only after the previous
 * one has finished. The chart is hand-drawn SVG, so the page works offline.
 */
(function () {
  "use strict";

  const POLL_INTERVAL_MS = 3000;
  const COLUMNS = 11;
  const ORIGINS = { compute: "fair compute", typed: "typed jobs" };
  const BAR_HEIGHT = 18;
  const BAR_GAP = 10;
  const LABEL_WIDTH = 190;
  const LABEL_CHARS = 24; // a longer caller id is cut to fit LABEL_WIDTH; the bar's tooltip has it whole
  const SHARE_WIDTH = 64;

  const { el } = Pacer;
  const $ = (id) => document.getElementById(id);
  const view = { rows: null, busy: false };

  function seconds(value) {
    if (value === null || value === undefined) return "—";
    return value < 1 ? `${Math.round(value * 1000)} ms` : `${Number(value).toFixed(2)} s`;
  }

  function perMinute(value) {
    if (value === null || value === undefined) return "—";
    return Number.isInteger(value) ? Pacer.formatCount(value) : Number(value).toFixed(1);
  }

  function numeric(test, value, text) {
    const known = value !== null && value !== undefined;
    return el("td", { class: "numeric", "data-test": test, "data-value": known ? String(value) : "" },
      text === undefined ? Pacer.formatCount(known ? value : null) : text);
  }

  function callerRow(row) {
    return el("tr", { "data-caller": row.caller, "data-origin": row.origin, "data-test": "caller-row" },
      el("td", {}, el("button", {
        type: "button", class: "link-button", "data-test": "caller", title: "Weigh this caller",
      }, row.caller)),
      el("td", { class: "nowrap", "data-test": "origin" }, ORIGINS[row.origin] || row.origin),
      numeric("weight", row.weight, String(row.weight)),
      numeric("limit", row.limit, row.limit === null || row.limit === undefined ? "none" : perMinute(row.limit)),
      numeric("backlog", row.backlog),
      numeric("in-flight", row.in_flight),
      numeric("done", row.done),
      numeric("failed", row.failed),
      numeric("throughput", row.throughput_per_min, perMinute(row.throughput_per_min)),
      numeric("p50", row.p50_wait_s, seconds(row.p50_wait_s)),
      numeric("p95", row.p95_wait_s, seconds(row.p95_wait_s)));
  }

  function renderTable(answer) {
    const rows = answer.callers || [];
    $("sample-size").textContent = Pacer.formatCount(answer.sample_size);
    if (rows.length) $("callers-list").replaceChildren(...rows.map(callerRow));
    else {
      $("callers-list").replaceChildren(el("tr", { class: "jobs-empty" },
        el("td", { colspan: COLUMNS }, "No callers yet: submit compute numbers or typed jobs with an X-Caller-ID.")));
    }
    const names = [...new Set(rows.map((row) => row.caller))];
    $("known-callers").replaceChildren(...names.map((name) => el("option", { value: name })));
  }

  // ---- the share chart: one bar per caller, a segment per way in ------------

  function shares(rows) {
    const byCaller = new Map();
    for (const row of rows) {
      const entry = byCaller.get(row.caller) || { caller: row.caller, compute: 0, typed: 0 };
      entry[row.origin] = (entry[row.origin] || 0) + (Number(row.throughput_per_min) || 0);
      byCaller.set(row.caller, entry);
    }
    const callers = [...byCaller.values()].map((entry) => ({ ...entry, total: entry.compute + entry.typed }));
    const total = callers.reduce((sum, entry) => sum + entry.total, 0);
    return { total, callers: callers.filter((entry) => entry.total > 0).sort((a, b) => b.total - a.total) };
  }

  function label(caller) {
    return caller.length <= LABEL_CHARS ? caller : `${caller.slice(0, LABEL_CHARS - 1)}…`;
  }

  function renderChart(rows) {
    const chart = $("share-chart");
    const { total, callers } = shares(rows);
    const width = Math.max(320, Math.round(chart.getBoundingClientRect().width) || 720);
    const height = Math.max(1, callers.length) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP;
    const plotW = width - LABEL_WIDTH - SHARE_WIDTH;
    chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
    chart.setAttribute("height", String(height));
    chart.replaceChildren();
    if (!callers.length) {
      chart.append(Pacer.svg("text", { x: width / 2, y: height / 2 + 4, class: "chart-empty", "text-anchor": "middle" },
        "No jobs settled in the last minute"));
      return;
    }
    callers.forEach((entry, i) => {
      const y = BAR_GAP + i * (BAR_HEIGHT + BAR_GAP);
      const share = entry.total / total;
      const bar = Pacer.svg("g", { class: "share-bar", "data-caller": entry.caller, "data-share": share.toFixed(4) });
      bar.append(Pacer.svg("title", {},
        `${entry.caller}: ${perMinute(entry.compute)} compute and ${perMinute(entry.typed)} typed a minute`));
      bar.append(Pacer.svg("text", { x: LABEL_WIDTH - 10, y: y + BAR_HEIGHT - 5, class: "chart-axis share-label",
        "text-anchor": "end" }, label(entry.caller)));
      let x = LABEL_WIDTH;
      for (const origin of Object.keys(ORIGINS)) {
        const segment = (entry[origin] / total) * plotW;
        if (segment > 0) {
          bar.append(Pacer.svg("rect", { x, y, width: segment, height: BAR_HEIGHT, rx: 3, class: `share ${origin}` }));
          x += segment;
        }
      }
      bar.append(Pacer.svg("text", { x: x + 8, y: y + BAR_HEIGHT - 5, class: "chart-axis" },
        `${(share * 100).toFixed(1)}%`));
      chart.append(bar);
    });
  }

  async function poll() {
    const table = $("callers-table");
    try {
      const answer = await Pacer.call("GET", "/api/callers");
      view.rows = answer.callers || [];
      Pacer.clearError($("callers-error"));
      $("callers-updated").textContent = Pacer.formatTime(new Date().toISOString());
      renderTable(answer);
      renderChart(view.rows);
      table.dataset.state = "ready";
    } catch (err) {
      Pacer.showError($("callers-error"), err);
      table.dataset.state = "error";
    }
    setTimeout(poll, POLL_INTERVAL_MS);
  }

  // ---- weighing a caller ----------------------------------------------------

  function markInvalid(id) {
    $(id).setAttribute("aria-invalid", "true");
  }

  /**
   * One admin PUT for the caller in the form: `request(caller)` gives its path and body, `confirm(answer)` the
   * message's data and text. A refusal shows in the error box and marks the token or the field it names.
   */
  async function adminPut(request, confirm, field, input) {
    if (view.busy) return;
    const caller = $("weight-caller").value.trim();
    if (!caller) return; // the buttons wait for a caller (see updateButton)
    Pacer.clearError($("weight-error"));
    $("weight-message").hidden = true;
    view.busy = true;
    updateButton();
    try {
      const { path, body } = request(caller);
      const answer = await Pacer.call("PUT", path, {
        body, headers: Pacer.adminHeaders($("admin-token").value.trim()),
      });
      const message = $("weight-message");
      const { data, text } = confirm(answer);
      Object.assign(message.dataset, { caller: answer.caller }, data);
      message.textContent = text;
      message.hidden = false;
    } catch (err) {
      Pacer.showError($("weight-error"), err);
      if (err.status === 401 || err.status === 403) markInvalid("admin-token");
      if (err.fields && err.fields.some((named) => named.field === field)) markInvalid(input);
    }
    view.busy = false;
    updateButton();
  }

  function setWeight(event) {
    event.preventDefault();
    const raw = $("weight-value").value.trim();
    return adminPut(
      (caller) => ({
        path: `/api/callers/${encodeURIComponent(caller)}`,
        // An empty or unreadable number goes as null, so the API names the field (400) as it would for anyone.
        body: { weight: raw === "" || Number.isNaN(Number(raw)) ? null : Number(raw) },
      }),
      (weighed) => ({
        data: { weight: String(weighed.weight) },
        text: `${weighed.caller} now weighs ${weighed.weight} in every way in.`,
      }),
      "weight", "weight-value");
  }

  /** PUT /api/jobs/limits for the caller: its typed jobs per minute, or null (an empty field) to free it. */
  function setLimit() {
    const raw = $("limit-value").value.trim();
    return adminPut(
      (caller) => ({
        path: "/api/jobs/limits",
        body: { caller, per_minute: raw === "" ? null : Number.isNaN(Number(raw)) ? raw : Number(raw) },
      }),
      (limited) => ({
        data: { limit: String(limited.per_minute) },
        text: limited.per_minute === null
          ? `${limited.caller}'s typed jobs are no longer limited.`
          : `${limited.caller}'s typed jobs are limited to ${limited.per_minute} a minute.`,
      }),
      "per_minute", "limit-value");
  }

  function updateButton() {
    const idle = !view.busy && $("weight-caller").value.trim();
    $("set-weight").disabled = !idle;
    $("set-limit").disabled = !idle;
  }

  /** A click on a caller's name fills the form with it and its weight. */
  function pickCaller(event) {
    const button = event.target.closest("[data-test='caller']");
    if (!button) return;
    const row = button.closest("tr");
    $("weight-caller").value = row.dataset.caller;
    $("weight-value").value = row.querySelector("[data-test='weight']").dataset.value;
    const limit = row.querySelector("[data-test='limit']").dataset.value;
    $("limit-value").value = limit === "null" || limit === undefined ? "" : limit;
    $("weight-value").focus();
    updateButton();
  }

  function init() {
    Pacer.bindAdminToken($("admin-token"));
    $("weight-form").addEventListener("submit", setWeight);
    $("set-limit").addEventListener("click", setLimit);
    $("callers-list").addEventListener("click", pickCaller);
    for (const id of ["weight-caller", "weight-value", "limit-value"]) {
      $(id).addEventListener("input", () => {
        $(id).removeAttribute("aria-invalid");
        updateButton();
      });
    }
    updateButton();
    window.addEventListener("resize", () => view.rows && renderChart(view.rows));
    renderChart([]);
    poll();
  }

  init();
})();
