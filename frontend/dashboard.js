/*
 * The dashboard: job counts by status and by type, and a chart of the jobs
 * completed and failed per minute over the last hour, all from GET /api/stats.
 *
 * It polls every few seconds; each poll is scheduled only after the previous
 * one has finished. Each count links to the jobs list filtered by it. The
 * chart is hand-drawn SVG, so the page works offline.
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

  async function poll() {
    try {
      lastStats = await Pacer.call("GET", "/api/stats");
      Pacer.clearError($("dashboard-error"));
      $("stats-updated").textContent = Pacer.formatTime(new Date().toISOString());
      render(lastStats);
    } catch (err) {
      Pacer.showError($("dashboard-error"), err);
    }
    setTimeout(poll, POLL_INTERVAL_MS);
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

  // ---- the trend chart (hand-written SVG) ---------------------------------

  const SVG_NS = "http://www.w3.org/2000/svg";

  function svg(tag, attributes, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Round ticks: a step of 1, 2 or 5 times a power of ten, about four steps to the top.
  function yAxis(maxValue) {
    const rough = Math.max(1, maxValue / 4);
    const power = Math.pow(10, Math.floor(Math.log10(rough)));
    const step = [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= rough);
    const top = Math.max(step, Math.ceil(maxValue / step) * step);
    const ticks = [];
    for (let value = 0; value <= top; value += step) ticks.push(value);
    return { top, ticks };
  }

  function renderChart(buckets) {
    const chart = $("trend-chart");
    const width = Math.max(320, Math.round(chart.getBoundingClientRect().width) || 720);
    const height = CHART_HEIGHT;
    const pad = { top: 12, right: 12, bottom: 26, left: 44 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
    chart.setAttribute("height", String(height));
    chart.replaceChildren();

    const completed = buckets.map((bucket) => Number(bucket.completed) || 0);
    const failed = buckets.map((bucket) => Number(bucket.failed) || 0);
    const total = (values) => values.reduce((sum, value) => sum + value, 0);
    setValue($("trend-completed"), total(completed));
    setValue($("trend-failed"), total(failed));

    const count = Math.max(buckets.length, 2);
    const axis = yAxis(Math.max(1, ...completed, ...failed));
    const xAt = (i) => pad.left + (i / (count - 1)) * plotW;
    const yAt = (v) => pad.top + plotH - (v / axis.top) * plotH;

    const grid = svg("g", { class: "chart-grid" });
    for (const value of axis.ticks) {
      const y = yAt(value);
      grid.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y }));
      grid.append(svg("text", { x: pad.left - 8, y: y + 4, class: "chart-axis", "text-anchor": "end" },
        Pacer.formatCount(value)));
    }
    for (const [minutesAgo, anchor] of [[count - 1, "start"], [Math.round((count - 1) / 2), "middle"], [0, "end"]]) {
      const label = minutesAgo === 0 ? "now" : `−${minutesAgo} min`;
      grid.append(svg("text", { x: xAt(count - 1 - minutesAgo), y: height - 6, class: "chart-axis", "text-anchor": anchor },
        label));
    }
    chart.append(grid);

    if (buckets.length === 0) {
      chart.append(svg("text", {
        x: pad.left + plotW / 2, y: pad.top + plotH / 2, class: "chart-empty", "text-anchor": "middle",
      }, "No throughput figures yet"));
      return;
    }

    const points = (values) => values.map((v, i) => `${xAt(i).toFixed(1)},${yAt(v).toFixed(1)}`).join(" ");
    const baseline = yAt(0).toFixed(1);
    const area = `${xAt(0).toFixed(1)},${baseline} ${points(completed)} ${xAt(completed.length - 1).toFixed(1)},${baseline}`;
    chart.append(svg("polygon", { points: area, class: "chart-area completed" }));
    chart.append(svg("polyline", {
      points: points(completed), class: "chart-line completed", "data-series": "completed", "data-count": completed.length,
    }));
    chart.append(svg("polyline", {
      points: points(failed), class: "chart-line failed", "data-series": "failed", "data-count": failed.length,
    }));

    // One invisible column per minute, so hovering shows that minute's figures.
    const columnW = plotW / (count - 1);
    buckets.forEach((bucket, i) => {
      const column = svg("rect", {
        x: Math.max(pad.left, xAt(i) - columnW / 2), y: pad.top, width: columnW, height: plotH, class: "chart-hit",
      });
      column.append(svg("title", {},
        `${Pacer.formatTime(bucket.minute)}: ${completed[i]} completed, ${failed[i]} failed`));
      chart.append(column);
    });
  }

  function init() {
    $("stat-total-link").setAttribute("href", Pacer.pageHref("jobs.html"));
    window.addEventListener("resize", () => lastStats && renderChart(lastStats.throughput || []));
    renderChart([]);
    poll();
  }

  init();
})();
