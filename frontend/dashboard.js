/*
 * The dashboard: job counts by status and by type, and a chart of the jobs
 * completed and failed per minute over the last hour, all from GET /api/stats.
 *
 * It polls every few seconds; each poll is scheduled only after the previous
 * one has finished. Each count links to the jobs list filtered by it. The
 * chart is hand-drawn SVG, so the page works offline.
 *
 * The admission card shows GET /api/jobs/dispatch (paused, backlog, in
 * flight), and its button pauses or resumes admission with
 * PUT /api/jobs/dispatch, an admin call. The token is the one every page
 * keeps (Pacer.bindAdminToken).
 */
(function () {
  "use strict";

  const POLL_INTERVAL_MS = 3000;
  const CHART_HEIGHT = 200;
  // Shown first and always, so the cards do not move; any other key the API
  // adds (a new job type, say) gets a card after these.
  const KNOWN_STATUSES = ["pending", "running", "completed", "failed", "cancelled"];
  const KNOWN_TYPES = ["email", "report", "notification"];

  const { el } = Pacer;
  const $ = (id) => document.getElementById(id);
  let lastStats = null;
  const admission = { paused: null, busy: false };

  async function poll() {
    try {
      const [stats, dispatch] = await Promise.all([Pacer.call("GET", "/api/stats"),
                                                   Pacer.call("GET", "/api/jobs/dispatch")]);
      lastStats = stats;
      Pacer.clearError($("dashboard-error"));
      $("stats-updated").textContent = Pacer.formatTime(new Date().toISOString());
      render(lastStats);
      if (!admission.busy) renderAdmission(dispatch);
    } catch (err) {
      Pacer.showError($("dashboard-error"), err);
    }
    setTimeout(poll, POLL_INTERVAL_MS);
  }

  // ---- admission: pause and resume -----------------------------------------

  function renderAdmission(dispatch) {
    admission.paused = Boolean(dispatch.paused);
    $("admission-state").textContent = admission.paused ? "paused" : "admitting";
    $("admission-state").dataset.state = admission.paused ? "stopped" : "running";
    setValue($("admission-backlog"), dispatch.backlog);
    setValue($("admission-in-flight"), dispatch.in_flight);
    const button = $("toggle-admission");
    button.textContent = admission.paused ? "Resume admission" : "Pause admission";
    button.dataset.action = admission.paused ? "resume" : "pause";
    button.disabled = admission.busy;
  }

  async function toggleAdmission() {
    if (admission.busy || admission.paused === null) return;
    admission.busy = true;
    $("toggle-admission").disabled = true;
    Pacer.clearError($("admission-error"));
    try {
      const dispatch = await Pacer.call("PUT", "/api/jobs/dispatch", {
        body: { paused: !admission.paused },
        headers: Pacer.adminHeaders($("admin-token").value.trim()),
      });
      admission.busy = false;
      renderAdmission(dispatch);
    } catch (err) {
      Pacer.showError($("admission-error"), err);
      if (err.status === 401 || err.status === 403) $("admin-token").setAttribute("aria-invalid", "true");
      admission.busy = false;
      $("toggle-admission").disabled = false;
    }
  }

  function render(stats) {
    setValue($("stat-total"), stats.total);
    renderCards($("stats-by-status"), "status", KNOWN_STATUSES, stats.by_status || {});
    renderCards($("stats-by-type"), "type", KNOWN_TYPES, stats.by_type || {});
    renderChart(stats.throughput || []);
  }

  function setValue(node, value) {
    const known = value !== null && value !== undefined;
    node.dataset.value = known ? String(value) : "";
    node.textContent = Pacer.formatCount(known ? value : null);
  }

  function renderCards(container, filter, known, counts) {
    const keys = [...known, ...Object.keys(counts).filter((key) => !known.includes(key)).sort()];
    const cards = keys.map((key) => {
      const value = el("strong", { id: `stat-${filter}-${key}`, class: "stat-value" });
      setValue(value, counts[key] === undefined ? 0 : counts[key]);
      return el("a", {
        class: "stat", "data-key": key, "data-test": `stat-${filter}-${key}`,
        href: Pacer.pageHref("jobs.html", { [filter]: key }),
        title: `List the ${key} jobs`,
      }, el("span", { class: "stat-label" }, key), value);
    });
    container.replaceChildren(...cards);
  }

  // ---- the trend chart (drawn by common.js) ---------------------------------

  function renderChart(buckets) {
    const completed = buckets.map((bucket) => Number(bucket.completed) || 0);
    const failed = buckets.map((bucket) => Number(bucket.failed) || 0);
    const total = (values) => values.reduce((sum, value) => sum + value, 0);
    setValue($("trend-completed"), total(completed));
    setValue($("trend-failed"), total(failed));

    const count = Math.max(buckets.length, 2);
    const geometry = Pacer.drawTrendChart($("trend-chart"), {
      height: CHART_HEIGHT,
      defaultWidth: 720,
      points: count,
      series: [
        { name: "completed", values: completed, area: true, attributes: { "data-count": completed.length } },
        { name: "failed", values: failed, attributes: { "data-count": failed.length } },
      ],
      formatTick: Pacer.formatCount,
      xLabels: [[count - 1, "start"], [Math.round((count - 1) / 2), "middle"], [0, "end"]].map(([ago, anchor]) => ({
        ago,
        anchor,
        label: ago === 0 ? "now" : `−${ago} min`,
      })),
      emptyText: "No throughput figures yet",
    });
    if (!geometry) return;

    // One invisible column per minute, so hovering shows that minute's figures.
    const { xAt, pad, plotW, plotH } = geometry;
    const chart = $("trend-chart");
    const columnW = plotW / (count - 1);
    buckets.forEach((bucket, i) => {
      const column = Pacer.svg("rect", {
        x: Math.max(pad.left, xAt(i) - columnW / 2), y: pad.top, width: columnW, height: plotH, class: "chart-hit",
      });
      column.append(Pacer.svg("title", {},
        `${Pacer.formatTime(bucket.minute)}: ${completed[i]} completed, ${failed[i]} failed`));
      chart.append(column);
    });
  }

  function init() {
    $("stat-total-link").setAttribute("href", Pacer.pageHref("jobs.html"));
    Pacer.bindAdminToken($("admin-token"));
    $("toggle-admission").addEventListener("click", toggleAdmission);
    window.addEventListener("resize", () => lastStats && renderChart(lastStats.throughput || []));
    renderChart([]);
    poll();
  }

  init();
})();
