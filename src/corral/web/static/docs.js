// Starts Swagger UI (installed by the set-up, served by Corral) on the API's OpenAPI document.
"use strict";
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
