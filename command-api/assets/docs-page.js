// The REST command API's reference: Swagger UI over /openapi.json, served by the platform
// with every file it needs. "Try it out" requests carry the bearer token given to
// "Authorize" (or ?token=…) and, on a POST whose Idempotency-Key is left empty, a fresh key.
(function () {
  'use strict';

  var token = new URLSearchParams(location.search).get('token') || '';

  function freshKey() {
    if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return (b + 256).toString(16).slice(1);
    }).join('');
  }

  function hasHeader(headers, name) {
    return Object.keys(headers || {}).some(function (k) {
      return k.toLowerCase() === name && headers[k] !== '';
    });
  }

  // The API requires Idempotency-Key on every POST; this page fills it when it is left empty,
  // so here it is shown as optional.
  function keyFilledByThePage(spec) {
    Object.keys(spec.paths || {}).forEach(function (path) {
      var item = spec.paths[path];
      Object.keys(item).forEach(function (method) {
        (item[method].parameters || []).forEach(function (p) {
          if (p.in === 'header' && p.name.toLowerCase() === 'idempotency-key') {
            p.required = false;
            p.description = 'Required by the API (a repeated key answers the first response). ' +
              'Left empty here, the page sends a fresh UUID.';
          }
        });
      });
    });
    return spec;
  }

  fetch('/openapi.json').then(function (r) { return r.json(); }).then(function (spec) {
    var ui = SwaggerUIBundle({
      spec: keyFilledByThePage(spec),
      dom_id: '#swagger-ui',
      validatorUrl: null,
      deepLinking: true,
      tryItOutEnabled: true,
      displayRequestDuration: true,
      persistAuthorization: false,
      requestInterceptor: function (request) {
        var method = (request.method || 'GET').toUpperCase();
        if (method !== 'GET' && !hasHeader(request.headers, 'idempotency-key')) {
          request.headers['Idempotency-Key'] = freshKey();
        }
        return request;
      },
      onComplete: function () {
        if (token) ui.preauthorizeApiKey('bearer', token);
      }
    });
    window.ui = ui;
  }, function (error) {
    document.getElementById('swagger-ui').textContent = 'could not read /openapi.json: ' + error;
  });
})();
