/*
 * The dead-letter queue: GET /api/dlq lists the messages SQS moved there, each
 * with the worker's last failure reason; POST /api/dlq/redrive moves them back
 * to the jobs queue. Both are admin calls, with the token every page keeps
 * (Pacer.bindAdminToken).
 *
 * The page does not poll. Listing peeks: it receives the messages and makes
 * them visible again at once, so a poll running beside a redrive could hide
 * messages from it for a moment. It lists when opened (if a token is kept),
 * on Refresh, and after a redrive.
 */
(function () {
  "use strict";

  const LIST_LIMIT = 100; // the most GET /api/dlq shows at once

  const { el } = Pacer;
  const $ = (id) => document.getElementById(id);
  const view = { busy: false, generation: 0 };

  function token() {
    return $("admin-token").value.trim();
  }

  function adminFailed(err) {
    if (err.status === 401 || err.status === 403) $("admin-token").setAttribute("aria-invalid", "true");
  }

  function setCount(value) {
    const known = value !== null && value !== undefined;
    $("dlq-count").dataset.value = known ? String(value) : "";
    $("dlq-count").textContent = Pacer.formatCount(known ? value : null);
  }

  function renderEmpty(text) {
    $("dlq-list").replaceChildren(el("tr", { class: "jobs-empty" }, el("td", { colspan: 5 }, text)));
  }

  function letterRow(letter) {
    return el("tr", { "data-message-id": letter.message_id, "data-test": "dead-letter" },
      el("td", {}, el("code", {}, letter.message_id)),
      el("td", { class: "dlq-reason", "data-test": "reason" },
        letter.reason || el("span", { class: "muted" }, "no reason recorded")),
      el("td", {}, el("code", { class: "dlq-body", "data-test": "body", title: letter.body }, letter.body)),
      el("td", { class: "numeric" }, String(letter.receive_count)),
      el("td", {}, Pacer.timeElement(letter.sent_at)));
  }

  async function list() {
    const generation = ++view.generation;
    const table = $("dlq-table");
    table.dataset.state = "loading";
    table.classList.add("loading");
    try {
      const answer = await Pacer.call("GET", "/api/dlq", {
        query: { limit: LIST_LIMIT }, headers: Pacer.adminHeaders(token()),
      });
      if (generation !== view.generation) return;
      Pacer.clearError($("dlq-error"));
      const letters = answer.messages || [];
      setCount(answer.count);
      if (letters.length) $("dlq-list").replaceChildren(...letters.map(letterRow));
      else renderEmpty("The dead-letter queue is empty.");
      table.dataset.state = "ready";
      $("redrive-dlq").disabled = view.busy || letters.length === 0;
    } catch (err) {
      if (generation !== view.generation) return;
      Pacer.showError($("dlq-error"), err);
      adminFailed(err);
      setCount(null);
      renderEmpty(err.status === 401 || err.status === 403
        ? "The admin token is needed to see the dead letters." : "Could not load the dead letters.");
      table.dataset.state = "error";
      $("redrive-dlq").disabled = true;
    }
    table.classList.remove("loading");
  }

  async function redrive() {
    if (view.busy) return;
    view.busy = true;
    $("redrive-dlq").disabled = true;
    $("dlq-message").hidden = true;
    Pacer.clearError($("dlq-error"));
    try {
      const moved = await Pacer.call("POST", "/api/dlq/redrive", { headers: Pacer.adminHeaders(token()) });
      const message = $("dlq-message");
      message.dataset.moved = String(moved.moved);
      message.dataset.remaining = String(moved.remaining);
      message.textContent = `Moved ${Pacer.formatCount(moved.moved)} back to the jobs queue; ` +
        `${Pacer.formatCount(moved.remaining)} left in the dead-letter queue.`;
      message.hidden = false;
    } catch (err) {
      Pacer.showError($("dlq-error"), err);
      adminFailed(err);
    }
    view.busy = false;
    await list();
  }

  function init() {
    Pacer.bindAdminToken($("admin-token"));
    $("dlq-form").addEventListener("submit", (event) => {
      event.preventDefault(); // Enter in the token field lists, too
      list();
    });
    $("redrive-dlq").addEventListener("click", redrive);
    if (token()) list();
  }

  init();
})();
