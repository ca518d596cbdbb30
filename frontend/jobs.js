/*
 * The jobs list: filters, search, sort and cursor pagination over GET /api/jobs.
 *
 * The URL is the state. Its query string holds the filters (status, type,
 * priority, created_from, created_to, q, sort, order, limit; defaults left
 * out), `cursor`, the `next` token that opened the page shown, and `api`, which
 * is always kept. So a view can be bookmarked and a reload shows it again.
 *
 * The API's tokens only go forward, so Previous needs the tokens of the pages
 * before this one: they are a stack kept in history.state (which survives a
 * reload). A bookmarked later page has no stack; its Previous goes to the first
 * page. Changing a filter replaces the history entry and starts again at the
 * first page; Next and Previous push one, so the browser's Back works too.
 *
 * Created from/to are shown in the browser's time zone and sent, and kept in
 * the URL, as ISO UTC, so a bookmark means the same instant anywhere.
 *
 * Bulk actions: each row has a checkbox, the header one selects the whole page.
 * "Cancel selected" sends DELETE /api/jobs/{id} per job and "Retry selected"
 * POST /api/jobs/{id}/retry (an admin call, with the token every page keeps),
 * a few at a time, since the API has no bulk endpoint. The result says how
 * many succeeded and lists each failure with the API's status and message
 * (409 for a job not in a state the action applies to); the failed jobs stay
 * selected, so a fixed token can be tried on them again. The selection is the
 * jobs on the page shown: a job that leaves the page leaves the selection.
 */
(function () {
  "use strict";

  const DEFAULTS = { sort: "created", order: "desc", limit: "25" };
  const FILTERS = ["status", "type", "priority", "created_from", "created_to", "q", "sort", "order", "limit"];
  const SELECTS = { status: "f-status", type: "f-type", priority: "f-priority", sort: "f-sort", order: "f-order", limit: "f-limit" };
  const TIMES = { created_from: "f-created-from", created_to: "f-created-to" };
  const SEARCH_DEBOUNCE_MS = 350;
  const COLUMNS = 8;
  const BULK_PARALLEL = 4; // requests in flight at once during a bulk action
  const BULK_ACTIONS = {
    cancel: { done: "Cancelled", method: "DELETE", path: (id) => `/api/jobs/${encodeURIComponent(id)}`, admin: false },
    retry: { done: "Retried", method: "POST", path: (id) => `/api/jobs/${encodeURIComponent(id)}/retry`, admin: true },
  };

  const { el } = Pacer;
  const $ = (id) => document.getElementById(id);

  const view = {
    filters: {},     // the filters in the URL, defaults filled in
    cursor: "",      // the `next` token that opened this page; "" for the first page
    stack: [],       // the cursors of the pages before this one
    nextToken: null, // the token of the page after this one, from the last answer
    generation: 0,   // bumped by every load, so an older answer cannot overwrite a newer one
    shown: [],       // the ids of the jobs the table shows, in its order
    selected: new Set(), // the ids of the selected jobs, always among `shown`
    bulkBusy: false, // a bulk action is under way
  };

  // ---- the URL ------------------------------------------------------------

  function readUrl() {
    const params = new URLSearchParams(window.location.search);
    const filters = {};
    for (const name of FILTERS) filters[name] = params.get(name) || DEFAULTS[name] || "";
    view.filters = filters;
    view.cursor = params.get("cursor") || "";
    const state = window.history.state;
    view.stack = state && Array.isArray(state.stack) ? state.stack : [];
  }

  function writeUrl(mode) {
    const params = new URLSearchParams(window.location.search);
    for (const name of [...FILTERS, "cursor"]) params.delete(name);
    for (const name of FILTERS) {
      const value = view.filters[name];
      if (value && value !== DEFAULTS[name]) params.set(name, value);
    }
    if (view.cursor) params.set("cursor", view.cursor);
    const search = params.toString();
    const url = `${window.location.pathname}${search ? `?${search}` : ""}`;
    const state = { stack: view.stack };
    if (mode === "push") window.history.pushState(state, "", url);
    else window.history.replaceState(state, "", url);
  }

  // ---- the form -----------------------------------------------------------

  function fillForm() {
    for (const [name, id] of Object.entries(SELECTS)) {
      const select = $(id);
      const value = view.filters[name];
      // A value the page does not offer (an edited URL, say) still shows, and is still sent.
      if (value && ![...select.options].some((option) => option.value === value)) {
        select.append(el("option", { value }, value));
      }
      select.value = value;
    }
    for (const [name, id] of Object.entries(TIMES)) $(id).value = Pacer.isoToLocalInput(view.filters[name]);
    $("f-q").value = view.filters.q;
  }

  function readForm() {
    const filters = {};
    for (const [name, id] of Object.entries(SELECTS)) filters[name] = $(id).value;
    for (const [name, id] of Object.entries(TIMES)) {
      // Keep the exact instant from the URL while the input still shows it (inputs have minute precision).
      const shown = $(id).value;
      filters[name] = shown === Pacer.isoToLocalInput(view.filters[name]) ? view.filters[name] : Pacer.localInputToIso(shown);
    }
    filters.q = $("f-q").value.trim();
    return filters;
  }

  function applyFilters() {
    const filters = readForm();
    const changed = FILTERS.some((name) => (filters[name] || "") !== (view.filters[name] || ""));
    if (!changed) return;
    view.filters = filters;
    view.cursor = "";
    view.stack = [];
    writeUrl("replace");
    load();
  }

  function clearFilters() {
    for (const id of Object.values(SELECTS)) $(id).value = "";
    for (const [name, id] of Object.entries(SELECTS)) if (DEFAULTS[name]) $(id).value = DEFAULTS[name];
    for (const id of Object.values(TIMES)) $(id).value = "";
    $("f-q").value = "";
    applyFilters();
  }

  // ---- loading and rendering ----------------------------------------------

  function apiQuery() {
    const query = {};
    for (const name of FILTERS) query[name] = view.filters[name];
    query.next = view.cursor;
    return query;
  }

  async function load() {
    const generation = ++view.generation;
    const table = $("jobs-table");
    const query = apiQuery();
    table.dataset.state = "loading";
    table.classList.add("loading");
    renderPager(true);
    try {
      const answer = await Pacer.call("GET", "/api/jobs", { query });
      if (generation !== view.generation) return;
      Pacer.clearError($("jobs-error"));
      view.nextToken = answer.next || null;
      renderRows(answer.jobs || []);
      table.dataset.state = "ready";
    } catch (err) {
      if (generation !== view.generation) return;
      Pacer.showError($("jobs-error"), err);
      view.nextToken = null;
      renderEmpty(err instanceof Pacer.ApiError && err.status === 400
        ? "The API refused these filters." : "Could not load jobs.");
      table.dataset.state = "error";
    }
    // What the table now shows, so a reader (or a test) can tell which view it is.
    table.dataset.query = Pacer.queryString(query).slice(1);
    table.classList.remove("loading");
    renderPager(false);
  }

  function renderEmpty(text) {
    $("jobs-list").replaceChildren(
      el("tr", { class: "jobs-empty" }, el("td", { colspan: COLUMNS }, text)));
    showSelection([]);
  }

  function renderRows(jobs) {
    if (jobs.length === 0) {
      const filtered = FILTERS.some((name) => view.filters[name] && view.filters[name] !== DEFAULTS[name]);
      renderEmpty(filtered ? "No job matches these filters." : "No jobs yet.");
      return;
    }
    $("jobs-list").replaceChildren(...jobs.map(jobRow));
    showSelection(jobs.map((job) => job.id));
  }

  function jobRow(job) {
    const link = el("a", { href: Pacer.pageHref("job.html", { id: job.id }), "data-test": "job-link" },
      el("code", {}, job.id));
    const summary = Pacer.jobSummary(job);
    return el("tr", {
      "data-job-id": job.id, "data-status": job.status, "data-type": job.type, "data-priority": job.priority,
    },
    el("td", { class: "select-col" }, el("input", {
      type: "checkbox", class: "select-job", "data-job-id": job.id, "aria-label": `Select job ${job.id}`,
      checked: view.selected.has(job.id),
    })),
    el("td", {}, link),
    el("td", {}, Pacer.statusBadge(job.status)),
    el("td", {}, job.type),
    el("td", { class: "numeric" }, String(job.priority)),
    el("td", { class: "summary", title: summary }, summary),
    el("td", {}, Pacer.timeElement(job.created_at)),
    el("td", { class: "numeric" }, `${job.attempts ?? 0} / ${job.max_attempts ?? "—"}`));
  }

  function renderPager(loading) {
    const onFirstPage = !view.cursor;
    $("prev-page").disabled = loading || onFirstPage;
    $("next-page").disabled = loading || !view.nextToken;
    const page = view.cursor && view.stack.length === 0 ? "a later page" : `page ${view.stack.length + 1}`;
    $("page-info").textContent = loading ? "Loading…" : `Showing ${page}`;
    $("page-info").dataset.page = view.cursor && view.stack.length === 0 ? "" : String(view.stack.length + 1);
  }

  function nextPage() {
    if (!view.nextToken) return;
    view.stack = [...view.stack, view.cursor];
    view.cursor = view.nextToken;
    writeUrl("push");
    load();
  }

  function previousPage() {
    if (!view.cursor) return;
    const stack = [...view.stack];
    view.cursor = stack.length ? stack.pop() : ""; // no stack: a bookmarked later page goes back to the first
    view.stack = stack;
    writeUrl("push");
    load();
  }

  // ---- selection and bulk actions -----------------------------------------

  /** The table now shows these jobs: keep only them selected, and bring the controls up to date. */
  function showSelection(ids) {
    view.shown = ids;
    view.selected = new Set(ids.filter((id) => view.selected.has(id)));
    renderSelection();
  }

  function renderSelection() {
    const count = view.selected.size;
    const all = $("select-all");
    all.checked = count > 0 && count === view.shown.length;
    all.indeterminate = count > 0 && count < view.shown.length;
    all.disabled = view.bulkBusy || view.shown.length === 0;
    for (const box of document.querySelectorAll("#jobs-list .select-job")) {
      box.checked = view.selected.has(box.dataset.jobId);
      box.disabled = view.bulkBusy;
    }
    $("selected-count").dataset.count = String(count);
    $("selected-count").textContent = count === 0 ? "No job selected"
      : `${count} job${count === 1 ? "" : "s"} selected`;
    $("bulk-cancel").disabled = view.bulkBusy || count === 0;
    $("bulk-retry").disabled = view.bulkBusy || count === 0;
  }

  function selectAll() {
    view.selected = $("select-all").checked ? new Set(view.shown) : new Set();
    renderSelection();
  }

  function selectOne(event) {
    const box = event.target;
    if (!box.classList || !box.classList.contains("select-job")) return;
    if (box.checked) view.selected.add(box.dataset.jobId);
    else view.selected.delete(box.dataset.jobId);
    renderSelection();
  }

  /** Runs `task` on every id, at most BULK_PARALLEL at a time; resolves to the results in the ids' order. */
  async function eachLimited(ids, task) {
    const results = new Array(ids.length);
    let next = 0;
    async function lane() {
      while (next < ids.length) {
        const index = next++;
        results[index] = await task(ids[index]);
      }
    }
    await Promise.all(Array.from({ length: Math.min(BULK_PARALLEL, ids.length) }, lane));
    return results;
  }

  async function runBulk(name) {
    const action = BULK_ACTIONS[name];
    const ids = view.shown.filter((id) => view.selected.has(id));
    if (view.bulkBusy || ids.length === 0) return;
    view.bulkBusy = true;
    renderSelection();
    $("admin-token").removeAttribute("aria-invalid");
    const headers = action.admin ? Pacer.adminHeaders($("admin-token").value.trim()) : {};
    const results = await eachLimited(ids, async (id) => {
      try {
        await Pacer.call(action.method, action.path(id), { headers });
        return { id, ok: true };
      } catch (err) {
        return { id, ok: false, status: err instanceof Pacer.ApiError ? err.status : null, title: Pacer.errorTitle(err),
                 message: err.message };
      }
    });
    const failures = results.filter((result) => !result.ok);
    if (action.admin && failures.some((f) => f.status === 401 || f.status === 403)) {
      $("admin-token").setAttribute("aria-invalid", "true");
    }
    renderBulkResult(name, action, results, failures);
    view.selected = new Set(failures.map((f) => f.id)); // what failed stays selected, to try again
    view.bulkBusy = false;
    renderSelection();
    load(); // the statuses have changed
  }

  function renderBulkResult(name, action, results, failures) {
    const box = $("bulk-result");
    const succeeded = results.length - failures.length;
    box.dataset.action = name;
    box.dataset.succeeded = String(succeeded);
    box.dataset.failed = String(failures.length);
    $("bulk-summary").textContent = `${action.done} ${succeeded} of ${results.length} ` +
      `job${results.length === 1 ? "" : "s"}` + (failures.length ? `; ${failures.length} failed:` : ".");
    $("bulk-failures").replaceChildren(...failures.map((failure) => el("li", {
      "data-job-id": failure.id, "data-status": failure.status === null ? "" : String(failure.status),
    }, el("code", {}, failure.id), ` — ${failure.title}: ${failure.message}`)));
    box.hidden = false;
  }

  // ---- wiring -------------------------------------------------------------

  function init() {
    $("new-job-link").setAttribute("href", Pacer.pageHref("new.html"));
    readUrl();
    fillForm();
    writeUrl("replace"); // records the stack in history.state, so a reload finds it

    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      applyFilters();
    });
    for (const id of [...Object.values(SELECTS), ...Object.values(TIMES)]) {
      $(id).addEventListener("change", applyFilters);
    }
    let searchTimer = null;
    $("f-q").addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(applyFilters, SEARCH_DEBOUNCE_MS);
    });
    $("clear-filters").addEventListener("click", clearFilters);
    $("next-page").addEventListener("click", nextPage);
    $("prev-page").addEventListener("click", previousPage);
    $("refresh").addEventListener("click", load);
    Pacer.bindAdminToken($("admin-token"));
    $("select-all").addEventListener("change", selectAll);
    $("jobs-list").addEventListener("change", selectOne);
    $("bulk-cancel").addEventListener("click", () => runBulk("cancel"));
    $("bulk-retry").addEventListener("click", () => runBulk("retry"));
    window.addEventListener("popstate", () => {
      readUrl();
      fillForm();
      load();
    });
    load();
  }

  init();
})();
