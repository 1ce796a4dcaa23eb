// bazaar's GraphiQL set-up: endpoints, the Authorization header for subscriptions.
/*
 * Endpoints (same origin, no hard-coded hosts):
 *   queries / mutations : POST /graphql
 *   subscriptions       : ws(s)://<current host>/graphql, graphql-transport-ws
 *                         protocol (graphql-ws 5.x client), ws:// on an http
 *                         page and wss:// on an https page.
 *
 * Auth:
 *   1. If the Headers editor has an "Authorization" header (any case), it is
 *      sent as an HTTP header on POST /graphql (stock GraphiQL behaviour).
 *   2. Otherwise, if localStorage["bazaar.token"] holds an access token, it
 *      is sent as "Authorization: Bearer <token>" (a value that already starts
 *      with "Bearer " is sent as it is).
 *   3. For subscriptions, GraphiQL 3's createFetcher({ wsClient }) does not
 *      pass the editor headers to the WebSocket. So this page wraps the
 *      fetcher: on each request it works out the effective headers (the editor
 *      headers plus the Authorization header from step 1 or 2) and sends them
 *      as the graphql-transport-ws `connection_init` payload
 *      (connectionParams), e.g. {"Authorization": "Bearer eyJ..."}.
 *      The graphql-ws client is lazy: no socket is opened until a subscription
 *      runs. When the effective headers change, the old client is disposed
 *      and a new one is made, so a new token is used on the next
 *      subscription. Changing headers therefore also ends a subscription that
 *      is still running under the old headers.
 *   4. Headers typed into the editor (a bearer token) are never written to
 *      localStorage: shouldPersistHeaders is off, and the query history,
 *      which GraphiQL 3 saves with each run's headers regardless, goes
 *      through a storage that drops them.
 */
(function () {
  var TOKEN_KEY = 'bazaar.token';
  var httpUrl = '/graphql';
  var wsUrl = location.protocol.replace(/^http/, 'ws') + '//' + location.host + '/graphql';

  function storedAuthorization() {
    var token = null;
    try { token = window.localStorage.getItem(TOKEN_KEY); } catch (e) { /* storage disabled */ }
    if (!token) return null;
    token = token.trim();
    if (!token) return null;
    return /^bearer\s/i.test(token) ? token : 'Bearer ' + token;
  }

  // Returns a fresh headers object: editor headers + Authorization fallback.
  function effectiveHeaders(editorHeaders) {
    var headers = {};
    var hasAuth = false;
    if (editorHeaders && typeof editorHeaders === 'object') {
      Object.keys(editorHeaders).forEach(function (k) {
        headers[k] = editorHeaders[k];
        if (k.toLowerCase() === 'authorization' && editorHeaders[k]) hasAuth = true;
      });
    }
    if (!hasAuth) {
      var auth = storedAuthorization();
      if (auth) headers.Authorization = auth;
    }
    return headers;
  }

  // One lazy graphql-ws client (and matching GraphiQL fetcher) per distinct
  // set of effective headers; replaced when the headers change.
  var current = { key: null, client: null, fetcher: null };
  function fetcherFor(headers) {
    var key = JSON.stringify(headers);
    if (current.key !== key) {
      if (current.client) {
        try { current.client.dispose(); } catch (e) { /* ignore */ }
      }
      var connectionParams = headers;
      var client = graphqlWs.createClient({
        url: wsUrl,
        lazy: true,
        connectionParams: function () { return connectionParams; },
      });
      current = {
        key: key,
        client: client,
        // createFetcher sends subscriptions to wsClient and everything
        // else (including introspection) over HTTP POST to httpUrl.
        fetcher: GraphiQL.createFetcher({ url: httpUrl, wsClient: client }),
      };
    }
    return current.fetcher;
  }

  function fetcher(graphQLParams, opts) {
    var headers = effectiveHeaders(opts && opts.headers);
    var nextOpts = Object.assign({}, opts || {}, { headers: headers });
    return fetcherFor(headers)(graphQLParams, nextOpts);
  }

  // GraphiQL's localStorage, minus the headers its history and favourites keep of each run.
  var HISTORY_KEYS = ['graphiql:queries', 'graphiql:favorites'];
  function withoutHeaders(key, value) {
    if (HISTORY_KEYS.indexOf(key) < 0) return value;
    try {
      var stored = JSON.parse(value);
      (stored.queries || []).forEach(function (q) { delete q.headers; });
      return JSON.stringify(stored);
    } catch (e) {
      return null; // not the history GraphiQL writes: keep nothing rather than a token
    }
  }
  var storage = {
    getItem: function (key) { return window.localStorage.getItem(key); },
    setItem: function (key, value) {
      var kept = withoutHeaders(key, value);
      if (kept === null) window.localStorage.removeItem(key);
      else window.localStorage.setItem(key, kept);
    },
    removeItem: function (key) { window.localStorage.removeItem(key); },
    // Like GraphiQL's own: only its keys (the token under bazaar.token stays).
    clear: function () {
      Object.keys(window.localStorage).forEach(function (key) {
        if (key.indexOf('graphiql:') === 0) window.localStorage.removeItem(key);
      });
    },
    get length() { return window.localStorage.length; },
  };

  var defaultQuery = [
    '# Welcome to the bazaar GraphQL API.',
    '#',
    '# Authentication: open the "Headers" tab below',
    '# and paste your access token:',
    '#',
    '#   {"Authorization": "Bearer <paste accessToken>"}',
    '#',
    '# or, in the browser console:',
    '#',
    '#   localStorage.setItem("bazaar.token", "<accessToken>")',
    '#',
    '# The same Authorization header is also sent as',
    '# connectionParams on the WebSocket used for',
    '# subscriptions (graphql-transport-ws, /graphql).',
    '#',
    '# Browse the schema with the Docs panel (top left).',
    '',
    'query {',
    '  __typename',
    '}',
    '',
  ].join('\n');

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultHeaders: '{}',
      isHeadersEditorEnabled: true,
      // A bearer token typed into the headers editor must not outlive the tab in localStorage,
      // where any script on this origin (or anyone at the machine later) could read it.
      shouldPersistHeaders: false,
      storage: storage,
      defaultEditorToolsVisibility: 'headers',
    })
  );
})();
