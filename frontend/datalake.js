/*
 * The dashboard's datalake and metrics cards: GET /api/datalake/stats (a row
 * per date, with its success rate and a link to that date's export) and
 * GET /api/metrics/summary (jobs by status and way in, throughput, failure
 * rate, queue wait and processing percentiles, workers, DLQ depth, lag).
 *
 * Each export link opens the first page of /api/datalake/export/{date}
 * (NDJSON); a larger day continues with the cursor in X-Next-Cursor.
 */
(function () {
  "use strict";

  const POLL_INTERVAL_MS = 3000;
  const { el } = Pacer;
  const $ = (id) => document.getElementById(id);

  function percent(rate) {
    return rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(1)}%`;
  }

  function seconds(value) {
    return value === null || value === undefined ? "—" : `${Number(value).toFixed(3)} s`;
  }

  function cell(text, attributes) {
    return el("td", attributes || {}, String(text));
  }

  function row(day, isTotal) {
    const numeric = { class: "numeric" };
    const exportCell = isTotal ? cell("") : el("td", {}, el("a", {
      class: "export-link", "data-date": day.date, href: `${Pacer.apiBase}/api/datalake/export/${day.date}`,
      title: `The records of ${day.date} as NDJSON`,
    }, "NDJSON"));
    return el("tr", { "data-date": day.date },
      el(isTotal ? "th" : "td", isTotal ? { scope: "row" } : {}, isTotal ? "total" : day.date),
      cell(Pacer.formatCount(day.objects), numeric), cell(Pacer.formatCount(day.records), numeric),
      cell(Pacer.formatCount(day.bytes), numeric), cell(Pacer.formatCount(day.done), numeric),
      cell(Pacer.formatCount(day.failed), numeric),
      cell(percent(day.success_rate), { ...numeric, class: "numeric success-rate" }), exportCell);
  }

  function renderStats(stats) {
    const rows = stats.dates.map((day) => row(day, false));
    $("datalake-rows").replaceChildren(...(rows.length ? rows
      : [el("tr", {}, el("td", { colspan: "8", class: "muted" }, "No results in the datalake yet"))]));
    $("datalake-totals").replaceChildren(row(stats.totals, true));
    $("datalake-updated").textContent = Pacer.formatTime(new Date().toISOString());
  }

  function metric(id, label, value) {
    return el("div", { class: "stat", "data-test": `metric-${id}` },
      el("span", { class: "stat-label" }, label), el("strong", { id: `metric-${id}`, class: "stat-value" }, value));
  }

  function renderSummary(summary) {
    const jobs = summary.jobs;
    const ways = Object.entries(jobs.by_origin).map(([origin, counts]) =>
      metric(`origin-${origin}`, `${origin}: done / failed`,
        `${Pacer.formatCount(counts.done)} / ${Pacer.formatCount(counts.failed)}`));
    $("metrics-grid").replaceChildren(
      metric("done", "done", Pacer.formatCount(jobs.by_status.done)),
      metric("failed", "failed", Pacer.formatCount(jobs.by_status.failed)),
      ...ways,
      metric("queued", "messages queued / in flight",
        `${Pacer.formatCount(jobs.queued_messages)} / ${Pacer.formatCount(jobs.in_flight_messages)}`),
      metric("throughput-minute", "finished last minute", Pacer.formatCount(summary.throughput.last_minute)),
      metric("throughput-hour", "finished last hour", Pacer.formatCount(summary.throughput.last_hour)),
      metric("failure-rate", "failure rate, last hour", percent(summary.failure_rate.last_hour)),
      metric("wait", "queue wait p50 / p95 / p99",
        [summary.queue_wait_s.p50, summary.queue_wait_s.p95, summary.queue_wait_s.p99].map(seconds).join(" / ")),
      metric("processing", "processing p50 / p95 / p99",
        [summary.processing_s.p50, summary.processing_s.p95, summary.processing_s.p99].map(seconds).join(" / ")),
      metric("workers", "workers up / down", `${summary.workers.up} / ${summary.workers.down}`),
      metric("dlq", "DLQ depth", Pacer.formatCount(summary.dlq_depth)),
      metric("lag", "datalake lag p50 / p99",
        `${seconds(summary.datalake_lag_s.p50)} / ${seconds(summary.datalake_lag_s.p99)}`),
    );
    $("metrics-sampled").textContent = Pacer.formatCount(summary.sampled.records);
    $("metrics-sampled").dataset.value = String(summary.sampled.records);
  }

  async function poll() {
    const [stats, summary] = await Promise.allSettled([
      Pacer.call("GET", "/api/datalake/stats"), Pacer.call("GET", "/api/metrics/summary")]);
    if (stats.status === "fulfilled") {
      Pacer.clearError($("datalake-error"));
      renderStats(stats.value);
    } else {
      Pacer.showError($("datalake-error"), stats.reason);
    }
    if (summary.status === "fulfilled") {
      Pacer.clearError($("metrics-error"));
      renderSummary(summary.value);
    } else {
      Pacer.showError($("metrics-error"), summary.reason);
    }
    setTimeout(poll, POLL_INTERVAL_MS);
  }

  poll();
})();
