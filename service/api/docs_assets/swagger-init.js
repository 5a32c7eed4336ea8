// Starts Swagger UI on the page's #swagger-ui element, for the OpenAPI document its data-openapi-url names.
// A served file, not an inline script: the docs pages keep the Content-Security-Policy (script-src 'self').
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // The default validator is a badge fetched from an outside server: nothing here leaves the service.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
  });
})();
