/* Starts Swagger UI on Gala's OpenAPI document. A file of its own, not an
 * inline script: the page's Content-Security-Policy allows scripts from
 * this host only. */
'use strict';

window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '/api/openapi.json',
    dom_id: '#swagger-ui',
    layout: 'BaseLayout',
    presets: [SwaggerUIBundle.presets.apis],
    deepLinking: true,
    displayRequestDuration: true,
    // The default sends the document to a validator on a third-party host.
    validatorUrl: null,
  });
});
