// Starts Swagger UI on /docs from a file, not an inline script: the page's
// Content-Security-Policy allows scripts from the host only (routes/docs.py).
"use strict";

window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout",
    deepLinking: true,
    // No request to the public validator: the page talks to this host only.
    validatorUrl: null,
  });
});
