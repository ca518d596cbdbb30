/*
 * What the pages (run, dashboard, jobs, job, new, dlq, callers, docs) share: where the API is, how
 * to call it, how to show its errors, times and counts; the whole header (brand,
 * nav and connection pill: each page's markup gives only its tagline); and the trend charts.
 * It defines one global, `Pacer`, and needs no build step.
 *
 * Every page loads it, the run page (index.html, app.js) too.
 *
 * Which API the pages talk to, first match wins:
 *   1. the `?api=` query parameter, e.g. jobs.html?api=http://127.0.0.1:8123
 *   2. `window.PACER_API`, set in config.js
 *   3. `${location.protocol}//${location.hostname}:8000`, where `chalice local` listens
 * Links between the pages carry the `api` parameter along, so a page opened
 * with `?api=` keeps talking to that API as the user moves around.
 *
 * Every text that comes from the API goes into the page through textContent
 * (`Pacer.el`), never through innerHTML.
 */
(function () {
  "use strict";

  const REQUEST_TIMEOUT_MS = 8000;
  const ADMIN_TOKEN_KEY = "pacer.adminToken";
  const PAGES = [
    { page: "run", href: "index.html", label: "Run" },
    { page: "dashboard", href: "dashboard.html", label: "Dashboard" },
    { page: "jobs", href: "jobs.html", label: "Jobs" },
    { page: "new", href: "new.html", label: "New job" },
    { page: "dlq", href: "dlq.html", label: "Dead letters" },
    { page: "callers", href: "callers.html", label: "Callers" },
    { page: "docs", href: "docs.html", label: "API" },
  ];

  const apiParam = new URLSearchParams(window.location.search).get("api");
  const apiBase = (apiParam || window.PACER_API ||
    `${window.location.protocol}//${window.location.hostname}:8000`).replace(/\/+$/, "");

  // ---- talking to the API -------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || `The API answered ${status}.`);
      this.status = status;
      this.code = body && body.error;
      this.fields = (body && Array.isArray(body.fields) && body.fields) || [];
    }
  }

  class UnreachableError extends Error {}

  /** Calls the API; resolves to {status, data}, rejects with ApiError or UnreachableError. */
  async function send(method, path, { body, headers = {}, query } = {}) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    const allHeaders = body === undefined ? headers : { ...headers, "Content-Type": "application/json" };
    let response;
    try {
      response = await fetch(apiBase + path + queryString(query), {
        method,
        headers: allHeaders,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
        cache: "no-store",
      });
    } catch (err) {
      const unreachable = new UnreachableError(`Could not reach the API at ${apiBase}.`);
      showConnection(unreachable);
      throw unreachable;
    } finally {
      clearTimeout(timer);
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = new ApiError(response.status, data);
      showConnection(response.status >= 500 ? error : null);
      throw error;
    }
    showConnection(null);
    return { status: response.status, data };
  }

  /** The header's connection pill (#connection), after every call: null when the API answered. */
  function showConnection(err) {
    const box = document.getElementById("connection");
    const text = document.getElementById("connection-text");
    if (!box || !text) return;
    box.dataset.connected = String(!err);
    text.textContent = !err ? "API connected"
      : err instanceof ApiError ? `API answered ${err.status}` : "API unreachable";
    box.title = err ? err.message : apiBase;
  }

  async function call(method, path, options) {
    return (await send(method, path, options)).data;
  }

  /** "?a=1&b=2" from an object, leaving out empty values; "" when nothing is left. */
  function queryString(params) {
    if (!params) return "";
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
    }
    const text = search.toString();
    return text ? `?${text}` : "";
  }

  function errorTitle(err) {
    if (err instanceof UnreachableError) return "API unreachable";
    if (err.status === 400) return "Please check the values (400)";
    if (err.status === 401) return "Admin token needed (401)";
    if (err.status === 403) return "Admin token rejected (403)";
    if (err.status === 404) return "Not found (404)";
    if (err.status === 409) return "Not possible in this state (409)";
    return `Request failed (${err.status})`;
  }

  /** Fills an `.error-box` with a title and the API's message; data-status carries the HTTP status. */
  function showError(box, err) {
    box.replaceChildren(el("strong", {}, errorTitle(err)), el("span", {}, err.message));
    box.dataset.status = err instanceof ApiError ? String(err.status) : "";
    box.hidden = false;
  }

  function clearError(box) {
    box.hidden = true;
    box.replaceChildren();
    box.dataset.status = "";
  }

  // ---- admin token --------------------------------------------------------

  // One token for every admin action on every page (the run page's concurrency,
  // the job page's retry), kept in localStorage so a reload or another page does
  // not ask for it again. Storage can be blocked (private modes); the token then
  // lasts as long as the page, which is all the input can promise anyway.
  function loadAdminToken() {
    try {
      return window.localStorage.getItem(ADMIN_TOKEN_KEY) || "";
    } catch (err) {
      return "";
    }
  }

  function saveAdminToken(token) {
    try {
      if (token) window.localStorage.setItem(ADMIN_TOKEN_KEY, token);
      else window.localStorage.removeItem(ADMIN_TOKEN_KEY);
    } catch (err) {
      // nothing to do: see loadAdminToken
    }
  }

  /** Fill an admin-token input from storage, and keep storage following it (clearing its error mark on each edit). */
  function bindAdminToken(input) {
    input.value = loadAdminToken();
    // "change" as well as "input": some ways of clearing a field (autofill, WebDriver) fire only "change".
    for (const type of ["input", "change"]) {
      input.addEventListener(type, () => {
        saveAdminToken(input.value.trim());
        input.removeAttribute("aria-invalid");
      });
    }
  }

  /** The headers of an admin call: none at all when the token is empty, so the API answers 401 (missing), not 403. */
  function adminHeaders(token) {
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  // ---- links between the pages --------------------------------------------

  /** A link to another page of the site, carrying the `api` parameter if this page has one. */
  function pageHref(file, params = {}) {
    return file + queryString({ ...params, api: apiParam });
  }

  /**
   * Fills the header, which every page's markup leaves empty but for its
   * tagline (`<header class="topbar" data-tagline="…">`): the brand, the
   * links to the pages, the API this page talks to, and the connection pill
   * that showConnection (and the run page) keep current. One header for every
   * page, so a change to it is made here once.
   */
  function renderHeader() {
    const header = document.querySelector("header.topbar");
    if (!header) return;
    const current = document.body.dataset.page;
    header.replaceChildren(
      el("div", { class: "brand" },
        el("span", { class: "brand-mark", "aria-hidden": "true" }),
        el("div", {}, el("h1", {}, "Pacer"), el("p", { class: "tagline" }, header.dataset.tagline || ""))),
      el("nav", { id: "site-nav", class: "site-nav", "aria-label": "Pages" },
        ...PAGES.map(({ page, href, label }) => el("a", {
          href: pageHref(href), "data-test": `nav-${page}`, class: "site-nav-link",
          "aria-current": page === current && "page",
        }, label))),
      el("div", { id: "endpoint", class: "endpoint" },
        el("code", { id: "api-base", class: "api-base", title: "The API this page talks to" }, apiBase),
        el("div", {
          id: "connection", class: "connection", "data-connected": "unknown", role: "status", "aria-live": "polite",
        }, el("span", { class: "connection-dot", "aria-hidden": "true" }), el("span", { id: "connection-text" }, "Connecting…"))),
    );
  }

  // ---- DOM ----------------------------------------------------------------

  /** Creates an element; children are Nodes or strings (strings become text, never markup). */
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) {
      if (value === null || value === undefined || value === false) continue;
      node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  /** A status pill; the colours come from style.css's `.badge[data-state=…]`. */
  function statusBadge(status) {
    return el("span", { class: "badge job-status", "data-state": status }, status || "—");
  }

  // ---- trend charts (hand-written SVG, so the pages work offline) ---------

  const SVG_NS = "http://www.w3.org/2000/svg";

  /** Creates an SVG element; `text`, when given, becomes its text content. */
  function svg(tag, attributes, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A y axis with round ticks: a step of 1, 2 or 5 times a power of ten (never
  // below one job, since buckets count whole jobs), and about four steps to the top.
  function yAxis(maxValue) {
    const rough = Math.max(1, maxValue / 4);
    const power = Math.pow(10, Math.floor(Math.log10(rough)));
    const step = [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= rough);
    const top = Math.max(step, Math.ceil(maxValue / step) * step);
    const ticks = [];
    for (let value = 0; value <= top; value += step) ticks.push(value);
    return { top, ticks };
  }

  /**
   * Redraws `chart` (an <svg>) as a line chart of equally spaced buckets, the
   * newest at the right: round y ticks, x labels, then one line per series.
   *
   *   height        the chart's height in px; the width follows the element
   *   defaultWidth  the width when the element has none yet (not laid out)
   *   points        how many buckets the x axis spans (at least 2)
   *   series        [{ name, values, area, attributes }], lines drawn in this
   *                 order; `name` is the CSS class and data-series, `area`
   *                 fills under the line, `attributes` go on the line
   *   formatTick    the text of a y tick
   *   xLabels       [{ ago, anchor, label }], `ago` buckets before the newest
   *   emptyText     shown instead of lines when no series has values
   *
   * Returns the geometry ({ xAt, yAt, pad, plotW, plotH }) so a page can add to
   * the chart, or null when it showed emptyText.
   */
  function drawTrendChart(chart, { height, defaultWidth, points, series, formatTick, xLabels, emptyText }) {
    const width = Math.max(320, Math.round(chart.getBoundingClientRect().width) || defaultWidth);
    const pad = { top: 12, right: 12, bottom: 26, left: 44 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
    chart.setAttribute("height", String(height));
    chart.replaceChildren();

    const axis = yAxis(Math.max(1, ...series.flatMap((line) => line.values)));
    const xAt = (i) => pad.left + (i / (points - 1)) * plotW;
    const yAt = (v) => pad.top + plotH - (v / axis.top) * plotH;

    const grid = svg("g", { class: "chart-grid" });
    for (const value of axis.ticks) {
      const y = yAt(value);
      grid.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y }));
      grid.append(svg("text", { x: pad.left - 8, y: y + 4, class: "chart-axis", "text-anchor": "end" },
        formatTick(value)));
    }
    for (const { ago, anchor, label } of xLabels) {
      grid.append(svg("text", { x: xAt(points - 1 - ago), y: height - 6, class: "chart-axis", "text-anchor": anchor },
        label));
    }
    chart.append(grid);

    if (series.every((line) => line.values.length === 0)) {
      chart.append(svg("text", {
        x: pad.left + plotW / 2, y: pad.top + plotH / 2, class: "chart-empty", "text-anchor": "middle",
      }, emptyText));
      return null;
    }

    const coordinates = (values) => values.map((v, i) => `${xAt(i).toFixed(1)},${yAt(v).toFixed(1)}`).join(" ");
    const baseline = yAt(0).toFixed(1);
    for (const { name, values } of series.filter((line) => line.area)) {
      const area = `${xAt(0).toFixed(1)},${baseline} ${coordinates(values)} ${xAt(values.length - 1).toFixed(1)},${baseline}`;
      chart.append(svg("polygon", { points: area, class: `chart-area ${name}` }));
    }
    for (const { name, values, attributes = {} } of series) {
      chart.append(svg("polyline", {
        points: coordinates(values), class: `chart-line ${name}`, "data-series": name, ...attributes,
      }));
    }
    return { xAt, yAt, pad, plotW, plotH };
  }

  // ---- formatting ---------------------------------------------------------

  const counts = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

  function formatCount(value) {
    return value === null || value === undefined ? "—" : counts.format(value);
  }

  /** Local time, with the date when it is not today; "—" for none. */
  function formatTime(iso) {
    if (!iso) return "—";
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return String(iso);
    const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
    const sameDay = when.toDateString() === new Date().toDateString();
    return sameDay ? time : `${when.toLocaleDateString()} ${time}`;
  }

  /** A <time> element showing formatTime, with the exact ISO value on hover. */
  function timeElement(iso) {
    const node = el("time", iso ? { datetime: iso, title: iso } : {}, formatTime(iso));
    return node;
  }

  /** The value of an <input type="datetime-local"> (browser's zone) as ISO UTC, or "" for none. */
  function localInputToIso(value) {
    if (!value) return "";
    const when = new Date(value);
    return Number.isNaN(when.getTime()) ? "" : when.toISOString();
  }

  /** An ISO time as the value an <input type="datetime-local"> shows, in the browser's zone. */
  function isoToLocalInput(iso) {
    if (!iso) return "";
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return "";
    const pad = (n) => String(n).padStart(2, "0");
    return `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}` +
      `T${pad(when.getHours())}:${pad(when.getMinutes())}`;
  }

  /** The text a person would recognise a job by: its payload's main text field. */
  function jobSummary(job) {
    const payload = job.payload || {};
    const text = { email: payload.subject, report: payload.report_type, notification: payload.message }[job.type];
    return text === undefined || text === null ? "" : String(text);
  }

  const FINISHED = ["completed", "failed", "cancelled"];

  function isFinished(job) {
    return FINISHED.includes(job.status);
  }

  window.Pacer = {
    apiBase,
    ApiError,
    UnreachableError,
    send,
    call,
    queryString,
    errorTitle,
    showError,
    clearError,
    loadAdminToken,
    saveAdminToken,
    bindAdminToken,
    adminHeaders,
    pageHref,
    el,
    statusBadge,
    svg,
    drawTrendChart,
    formatCount,
    formatTime,
    timeElement,
    localInputToIso,
    isoToLocalInput,
    jobSummary,
    isFinished,
    apiBase,
  };

  // Now, not at DOMContentLoaded: every page loads this file at the end of its
  // <body>, after the header, and its own script (which runs next) uses #connection.
  renderHeader();
})();
