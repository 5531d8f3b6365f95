// GraphiQL for the ETR query API, served by the platform with every asset it needs.
// Queries are POSTed to /graphql with the header editor's headers; subscriptions run over
// the websocket /graphql/ws (graphql-transport-ws), the Authorization header going in the
// connection_init payload. The bearer token comes from ?token=… or the token field;
// ?query=… and ?variables=… open the editors with that operation (a link can share one).
(function () {
  'use strict';

  var DEFAULT_QUERY = [
    '# The wallets of the token\'s client: set the id in Variables.',
    'query Wallet($id: UUID!) {',
    '  wallet(id: $id) {',
    '    balance',
    '    held',
    '    available',
    '    status',
    '  }',
    '}',
    '',
    '# Status changes of the wallet\'s payments as they are applied:',
    '# subscription Changes($id: UUID!) {',
    '#   operationStatusChanged(walletId: $id) { paymentId statusCode status }',
    '# }',
    ''
  ].join('\n');

  function headersFor(token) {
    return JSON.stringify({ Authorization: 'Bearer ' + (token || '') }, null, 2);
  }

  function authorization(headers) {
    var found = null;
    Object.keys(headers || {}).forEach(function (k) {
      if (k.toLowerCase() === 'authorization') found = headers[k];
    });
    return found;
  }

  // Whether the operation to run is a subscription, from the parsed document GraphiQL gives.
  function isSubscription(params, opts) {
    var doc = opts && opts.documentAST;
    if (!doc || !doc.definitions) return false;
    var ops = doc.definitions.filter(function (d) { return d.kind === 'OperationDefinition'; });
    var op = ops.find(function (d) {
      return params.operationName ? d.name && d.name.value === params.operationName : true;
    });
    return !!op && op.operation === 'subscription';
  }

  function websocketUrl() {
    return (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/graphql/ws';
  }

  // One subscription over its own graphql-transport-ws connection, as an Observable.
  function subscribe(params, headers) {
    return {
      subscribe: function (observer) {
        var socket = new WebSocket(websocketUrl(), 'graphql-transport-ws');
        var finished = false;
        var send = function (message) { socket.send(JSON.stringify(message)); };
        socket.onopen = function () {
          var payload = {};
          var auth = authorization(headers);
          if (auth) payload.Authorization = auth;
          send({ type: 'connection_init', payload: payload });
        };
        socket.onmessage = function (event) {
          var message = JSON.parse(event.data);
          switch (message.type) {
            case 'connection_ack':
              send({ id: '1', type: 'subscribe', payload: params });
              break;
            case 'ping':
              send({ type: 'pong' });
              break;
            case 'next':
              observer.next(message.payload);
              break;
            case 'error':
              finished = true;
              observer.next({ errors: message.payload });
              observer.complete();
              socket.close();
              break;
            case 'complete':
              finished = true;
              observer.complete();
              socket.close();
              break;
          }
        };
        socket.onclose = function (event) {
          if (finished) return;
          finished = true;
          observer.error(new Error('the subscription socket closed: ' + event.code + ' ' + event.reason));
        };
        return {
          unsubscribe: function () {
            if (finished) return;
            finished = true;
            if (socket.readyState === WebSocket.OPEN) send({ id: '1', type: 'complete' });
            socket.close();
          }
        };
      }
    };
  }

  function fetcher(params, opts) {
    var headers = Object.assign({}, (opts && opts.headers) || {});
    if (isSubscription(params, opts)) return subscribe(params, headers);
    headers['Content-Type'] = 'application/json';
    return fetch('/graphql', {
      method: 'POST',
      headers: headers,
      body: JSON.stringify(params)
    }).then(function (response) {
      return response.text().then(function (text) {
        try {
          return JSON.parse(text);
        } catch (e) {
          return { errors: [{ message: 'HTTP ' + response.status + ': ' + text }] };
        }
      });
    });
  }

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  var input = document.getElementById('etr-token-input');

  var search = new URLSearchParams(location.search);

  // The schema, introspected by the server (GraphiQL's own introspection query nests deeper
  // than the API's depth limit); without it GraphiQL introspects as usual.
  var schema = null;

  function render(token) {
    root.render(React.createElement(GraphiQL, {
      key: token || '',
      fetcher: fetcher,
      schema: schema || undefined,
      defaultQuery: DEFAULT_QUERY,
      query: search.get('query') || undefined,
      variables: search.get('variables') || undefined,
      headers: headersFor(token),
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: 'headers'
    }, React.createElement(GraphiQL.Logo, null, 'ETR GraphQL')));
  }

  var initial = search.get('token') || '';
  input.value = initial;
  document.getElementById('etr-token').addEventListener('submit', function (event) {
    event.preventDefault();
    render(input.value.trim());
  });
  fetch('/graphql/introspection').then(function (r) { return r.json(); }).then(function (r) {
    if (r && r.data) schema = r.data;
  }, function () {}).then(function () { render(initial); });
})();
