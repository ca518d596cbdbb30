/*
 * The API reference page: Swagger UI (vendored from npm's swagger-ui-dist in
 * vendor/swagger-ui/, so it works offline) over the document the API builds
 * from its own routes and models, GET /api/openapi.json on the API this page
 * talks to (common.js's rule: `?api=`, config.js, else port 8000).
 */
(function () {
  "use strict";

  const { apiBase, loadAdminToken } = Pacer;
  const url = `${apiBase}/api/openapi.json`;
  const link = document.getElementById("openapi-link");
  link.href = url;

  function showFailure(message) {
    const box = document.getElementById("docs-error");
    box.textContent = message;
    box.hidden = false;
  }

  if (typeof window.SwaggerUIBundle !== "function") {
    showFailure("Swagger UI did not load (vendor/swagger-ui/swagger-ui-bundle.js).");
    return;
  }

  // Fetched through common.js, so the header's connection pill says whether the API answered.
  Pacer.call("GET", "/api/openapi.json").then((spec) => {
    // The document names no server (it is the API it came from); "Try it out" must call that API, not this page's host.
    spec.servers = [{ url: apiBase }];
    const ui = window.SwaggerUIBundle({
      spec,
      dom_id: "#swagger-ui",
      deepLinking: true,
      docExpansion: "list",
      defaultModelsExpandDepth: 0,
      tryItOutEnabled: false,
    });
    const token = loadAdminToken();
    if (token) ui.preauthorizeApiKey("adminToken", token);  // the token the other pages keep
  }).catch((err) => {
    showFailure(`Could not load ${url}: ${err.message}`);
  });
})();
