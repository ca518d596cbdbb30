/*
 * The new-job form: POST /api/jobs {type, priority, payload, scheduled_for?}.
 *
 * The payload fields follow the type: each type has a fieldset, and only the
 * chosen one is shown and enabled. A field's id is its path in the request
 * with dots as dashes (payload.date_range.from is #payload-date_range-from),
 * and its message goes in #<id>-error. So a 400's `fields` land next to the
 * inputs they name. The page checks nothing itself: the server's rules are the
 * only copy, and the form is `novalidate` so the browser does not pre-empt them.
 *
 * scheduled_for is typed in the browser's time zone and sent as ISO UTC. An
 * Idempotency-Key header is sent only when the field has one.
 * On 201 (or 200, the same job again for a repeated key) the page opens the job;
 * a 409 (the key was used with a different body) is shown next to the key.
 */
(function () {
  "use strict";

  const TYPES = ["email", "report", "notification"];

  const $ = (id) => document.getElementById(id);
  let busy = false;

  // The payload each type sends, read from its fieldset.
  const PAYLOADS = {
    email: () => ({ to: value("payload-to"), subject: value("payload-subject"), body: value("payload-body") }),
    report: () => ({
      report_type: value("payload-report_type"),
      format: value("payload-format"),
      date_range: { from: value("payload-date_range-from"), to: value("payload-date_range-to") },
    }),
    notification: () => ({
      user_id: value("payload-user_id"), channel: value("payload-channel"), message: value("payload-message"),
    }),
  };

  function value(id) {
    return $(id).value;
  }

  function showType(type) {
    for (const fieldset of document.querySelectorAll("fieldset[data-type]")) {
      const chosen = fieldset.dataset.type === type;
      fieldset.hidden = !chosen;
      fieldset.disabled = !chosen;
    }
    clearErrors();
  }

  function requestBody() {
    const type = $("type").value;
    const body = { type, priority: Number($("priority").value), payload: PAYLOADS[type]() };
    const scheduled = Pacer.localInputToIso($("scheduled_for").value);
    if (scheduled) body.scheduled_for = scheduled;
    return body;
  }

  async function submit() {
    if (busy) return;
    busy = true;
    $("create-job").disabled = true;
    clearErrors();
    const key = $("idempotency-key").value.trim();
    try {
      const job = await Pacer.call("POST", "/api/jobs", {
        body: requestBody(),
        headers: key ? { "Idempotency-Key": key } : {},
      });
      window.location.assign(Pacer.pageHref("job.html", { id: job.id }));
    } catch (err) {
      showErrors(err);
      busy = false;
      $("create-job").disabled = false;
    }
  }

  // ---- errors -------------------------------------------------------------

  function clearErrors() {
    Pacer.clearError($("form-error"));
    for (const node of document.querySelectorAll("#new-job-form .field-error")) {
      node.hidden = true;
      node.textContent = "";
    }
    for (const node of document.querySelectorAll("#new-job-form [aria-invalid]")) node.removeAttribute("aria-invalid");
  }

  function showErrors(err) {
    Pacer.showError($("form-error"), err);
    let first = null;
    for (const { field, message } of err.fields || []) {
      const id = fieldId(String(field));
      if (!id) continue;
      const box = $(`${id}-error`);
      box.textContent = box.textContent ? `${box.textContent} ${message}` : String(message);
      box.hidden = false;
      // A group's error (payload.date_range) marks each input in the group.
      const inputs = $(id) ? [$(id)] : [...document.querySelectorAll(`[id^="${id}-"]:is(input, select, textarea)`)];
      for (const input of inputs) input.setAttribute("aria-invalid", "true");
      first = first || inputs[0];
    }
    // A 409 names no field, but only the Idempotency-Key can cause it: the key was used with another body.
    if (err.status === 409) {
      $("idempotency-key-error").textContent = err.message;
      $("idempotency-key-error").hidden = false;
      $("idempotency-key").setAttribute("aria-invalid", "true");
      first = first || $("idempotency-key");
    }
    if (first) first.focus();
  }

  // The id of the field a path names, or null. "payload.to" is "payload-to".
  // Pydantic may put the union's tag in the path ("payload.email.to" or
  // "email.payload.to"), so type names are dropped; a path given without the
  // "payload." prefix is tried with it.
  function fieldId(path) {
    const parts = path.split(".").filter((part) => part && !TYPES.includes(part));
    // A header's name comes capitalised ("Idempotency-Key"); the ids are lower case.
    const candidates = [parts.join("-"), parts.join("-").toLowerCase()];
    if (parts[0] !== "payload") candidates.push(["payload", ...parts].join("-"));
    return candidates.find((id) => id && document.getElementById(`${id}-error`)) || null;
  }

  // ---- wiring -------------------------------------------------------------

  function init() {
    $("cancel-link").setAttribute("href", Pacer.pageHref("jobs.html"));
    // The form calls the API only when sent; one health check fills the header's connection pill now.
    Pacer.call("GET", "/api/health").catch(() => {});
    const asked = new URLSearchParams(window.location.search).get("type");
    if (TYPES.includes(asked)) $("type").value = asked;
    showType($("type").value);
    $("type").addEventListener("change", () => showType($("type").value));
    $("new-job-form").addEventListener("submit", (event) => {
      event.preventDefault();
      submit();
    });
    // Typing in a field clears its own message.
    $("new-job-form").addEventListener("input", (event) => {
      const input = event.target;
      if (!input.id) return;
      input.removeAttribute("aria-invalid");
      const box = $(`${input.id}-error`);
      if (box) {
        box.hidden = true;
        box.textContent = "";
      }
    });
  }

  init();
})();
