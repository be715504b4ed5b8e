// Development OpenID provider for the websocket gateway (loopback only).
//
// A thin launcher around panva's oidc-provider 9.x. NOT for production: users,
// clients and secrets are hard-coded, storage is in memory, and it only ever
// listens on 127.0.0.1.
//
// Environment variables
// ---------------------
//   DEVIDP_PORT                 (required) TCP port; issuer is http://127.0.0.1:$DEVIDP_PORT
//   DEVIDP_GATEWAY_URL          gateway base URL (default http://127.0.0.1:8000). Gives the
//                               `gateway` client's redirect URI  $URL/oidc/callback/,
//                               post-logout redirect URI         $URL/
//                               back-channel logout URI          $URL/oidc/backchannel-logout/
//   DEVIDP_EXTRA_GATEWAY_URLS   comma-separated further gateway base URLs; each adds a redirect
//                               URI and a post-logout redirect URI (the back-channel logout URI
//                               stays the one of DEVIDP_GATEWAY_URL)
//   DEVIDP_KEYS_FILE            JSON file with the private JWKS {"keys":[...]}; created with one
//                               fresh RS256 key if missing. The first key signs. Default:
//                               ./devidp-keys-$PORT.json in the current directory.
//   DEVIDP_ACCESS_TOKEN_TTL     seconds, default 300 (also client_credentials tokens)
//   DEVIDP_ID_TOKEN_TTL         seconds, default 300
//   DEVIDP_REFRESH_TOKEN_TTL    seconds, default 3600
//   DEVIDP_SESSION_TTL          seconds, default 3600 (provider session and grant)
//   DEVIDP_API_AUDIENCE         resource indicator / `aud` of the JWT access tokens,
//                               default urn:wsgateway:api
//   DEVIDP_OPAQUE_AUDIENCE      resource indicator whose access tokens are opaque (for RFC 7662
//                               introspection), default urn:wsgateway:opaque-api
//   DEVIDP_PARENT_PID           optional; exit when that process is gone (set by the Python
//                               launcher so a killed test run leaves no provider behind)
//
// Users (real password check on /interaction/<uid>, form fields `login` and `password`):
//   alice / alice-password  groups [engineering, admins]  roles [admin, developer]
//   bob   / bob-password    groups [engineering]          roles [developer]
// Clients:
//   gateway       / gateway-secret        authorization_code (PKCE S256 required),
//                                         refresh_token, client_credentials
//   svc-reader    / svc-reader-secret     client_credentials, scope ws
//   svc-publisher / svc-publisher-secret  client_credentials, scopes ws publish
// API resource scopes: ws publish ops.
//
// Development endpoints (only answered for requests from 127.0.0.1):
//   POST /__dev/rotate-keys
//        New RS256 key, put first (signs from now on), previous keys kept in the JWKS,
//        keys file rewritten, provider rebuilt in-process (sessions, grants and tokens
//        survive: storage is shared). Answers {"kid": "<new kid>", "kids": [...]}.
//   POST /__dev/users/<login>/groups   body {"groups": [...], "roles": [...]}
//        Changes a user's groups/roles at runtime (next issued tokens carry them; "roles" may
//        be omitted to keep the current roles).
//        Answers {"login": ..., "groups": [...], "roles": [...]}.
//   GET  /__dev/health                 {"ok": true, "issuer": ...}
//
//   DEVIDP_END_SESSION          "off" to run without RP-initiated logout (no end_session_endpoint
//                               in discovery), like providers that offer none; default on
//
// RP-initiated logout is oidc-provider's own, unchanged: GET end_session_endpoint only (POST
// needs enableHttpPostMethods, which needs SameSite=None cookies over https). With a session
// it shows oidc-provider's page "Do you want to sign-out from <host>?" with the buttons
// "Yes, sign me out" (logout=yes, ends the provider session) and "No, stay signed in" (ends
// the requesting client's part only); both POST the hidden `xsrf` to
// <issuer>/session/end/confirm, back-channel logout tokens go to the gateway, and the browser
// is sent to the post_logout_redirect_uri with `state`. Without a session it confirms by itself.
//
// Logs go to stdout, one line per request (path without query string) and per notable
// event; tokens, codes and passwords are never logged. Prints `devidp ready <issuer>` once
// listening.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';

import Provider, { errors } from 'oidc-provider';

// ---------------------------------------------------------------------------
// configuration

function intEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number.parseInt(raw, 10);
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function stripSlash(url) {
  return url.replace(/\/+$/, '');
}

const PORT = intEnv('DEVIDP_PORT', undefined);
if (PORT === undefined) {
  console.error('devidp: DEVIDP_PORT is required');
  process.exit(2);
}
const HOST = '127.0.0.1';
const ISSUER = `http://${HOST}:${PORT}`;
const GATEWAY_URL = stripSlash(process.env.DEVIDP_GATEWAY_URL || 'http://127.0.0.1:8000');
const EXTRA_GATEWAY_URLS = (process.env.DEVIDP_EXTRA_GATEWAY_URLS || '')
  .split(',').map((s) => s.trim()).filter(Boolean).map(stripSlash);
const KEYS_FILE = path.resolve(process.env.DEVIDP_KEYS_FILE || `devidp-keys-${PORT}.json`);
const ACCESS_TOKEN_TTL = intEnv('DEVIDP_ACCESS_TOKEN_TTL', 300);
const ID_TOKEN_TTL = intEnv('DEVIDP_ID_TOKEN_TTL', 300);
const REFRESH_TOKEN_TTL = intEnv('DEVIDP_REFRESH_TOKEN_TTL', 3600);
const SESSION_TTL = intEnv('DEVIDP_SESSION_TTL', 3600);
const END_SESSION = (process.env.DEVIDP_END_SESSION || 'on').toLowerCase() !== 'off';
const API_AUDIENCE = process.env.DEVIDP_API_AUDIENCE || 'urn:wsgateway:api';
const OPAQUE_AUDIENCE = process.env.DEVIDP_OPAQUE_AUDIENCE || 'urn:wsgateway:opaque-api';
const API_SCOPES = ['ws', 'publish', 'ops'];

const USERS = {
  alice: {
    password: 'alice-password',
    name: 'Alice Example',
    email: 'alice@example.com',
    groups: ['engineering', 'admins'],
    roles: ['admin', 'developer'],
  },
  bob: {
    password: 'bob-password',
    name: 'Bob Example',
    email: 'bob@example.com',
    groups: ['engineering'],
    roles: ['developer'],
  },
};

// API resource scopes each client may obtain (others requested are silently dropped)
const CLIENT_API_SCOPES = {
  gateway: API_SCOPES,
  'svc-reader': ['ws'],
  'svc-publisher': ['ws', 'publish'],
};

const gatewayUrls = [GATEWAY_URL, ...EXTRA_GATEWAY_URLS.filter((u) => u !== GATEWAY_URL)];

const CLIENTS = [
  {
    client_id: 'gateway',
    client_secret: 'gateway-secret',
    client_name: 'WebSocket gateway',
    token_endpoint_auth_method: 'client_secret_basic', // client_secret_post works too
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    redirect_uris: gatewayUrls.map((u) => `${u}/oidc/callback/`),
    post_logout_redirect_uris: gatewayUrls.map((u) => `${u}/`),
    backchannel_logout_uri: `${GATEWAY_URL}/oidc/backchannel-logout/`,
    backchannel_logout_session_required: true,
    // client `scope` metadata may only list OpenID scopes; API scopes are per client below
    scope: 'openid profile email offline_access',
  },
  {
    client_id: 'svc-reader',
    client_secret: 'svc-reader-secret',
    client_name: 'Reader service',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  },
  {
    client_id: 'svc-publisher',
    client_secret: 'svc-publisher-secret',
    client_name: 'Publisher service',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  },
];

// ---------------------------------------------------------------------------
// logging (never tokens, codes or passwords)

function log(...parts) {
  process.stdout.write(`${new Date().toISOString()} devidp ${parts.join(' ')}\n`);
}

// ---------------------------------------------------------------------------
// keys

function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  // RFC 7638 thumbprint as kid
  const thumbprintInput = JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n });
  const kid = crypto.createHash('sha256').update(thumbprintInput).digest('base64url');
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

function writeKeys(keys) {
  fs.mkdirSync(path.dirname(KEYS_FILE), { recursive: true });
  const tmp = `${KEYS_FILE}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify({ keys }, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, KEYS_FILE);
}

function loadKeys() {
  if (!fs.existsSync(KEYS_FILE)) {
    const keys = [newSigningKey()];
    writeKeys(keys);
    log('created keys file', KEYS_FILE, 'kid', keys[0].kid);
    return keys;
  }
  const parsed = JSON.parse(fs.readFileSync(KEYS_FILE, 'utf8'));
  if (!parsed || !Array.isArray(parsed.keys) || parsed.keys.length === 0) {
    throw new Error(`${KEYS_FILE} must hold a JWKS {"keys": [...]} with at least one key`);
  }
  return parsed.keys;
}

log('node', process.version, 'pid', process.pid, 'loading keys');
let signingKeys = loadKeys();

// ---------------------------------------------------------------------------
// in-memory adapter; storage is module level so it survives provider rebuilds

const storage = new Map(); // key -> { payload, expiresAt }

function storageGet(key) {
  const entry = storage.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
    storage.delete(key);
    return undefined;
  }
  return entry.payload;
}

function storageSet(key, payload, expiresIn) {
  storage.set(key, {
    payload,
    expiresAt: expiresIn ? Date.now() + (expiresIn + 15) * 1000 : undefined,
  });
}

setInterval(() => {
  const now = Date.now();
  for (const [key, entry] of storage) {
    if (entry.expiresAt !== undefined && entry.expiresAt <= now) storage.delete(key);
  }
}, 60_000).unref();

const grantable = new Set([
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

class MemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    if (this.model === 'Session') {
      storageSet(`sessionUid:${payload.uid}`, id, expiresIn);
    }
    const { grantId, userCode } = payload;
    if (grantable.has(this.model) && grantId) {
      const grantKey = `grant:${grantId}`;
      const members = storageGet(grantKey) || [];
      members.push(key);
      storageSet(grantKey, members, expiresIn);
    }
    if (userCode) {
      storageSet(`userCode:${userCode}`, id, expiresIn);
    }
    storageSet(key, payload, expiresIn);
  }

  async find(id) {
    return storageGet(this.key(id));
  }

  async findByUid(uid) {
    const id = storageGet(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = storageGet(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const payload = storageGet(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    storage.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const grantKey = `grant:${grantId}`;
    for (const key of storageGet(grantKey) || []) storage.delete(key);
    storage.delete(grantKey);
  }
}

// ---------------------------------------------------------------------------
// accounts

async function findAccount(_ctx, sub) {
  const user = USERS[sub];
  if (!user) return undefined;
  return {
    accountId: sub,
    async claims() {
      return {
        sub,
        name: user.name,
        preferred_username: sub,
        email: user.email,
        email_verified: true,
        groups: [...user.groups],
        roles: [...user.roles],
      };
    },
  };
}

function checkPassword(login, password) {
  const user = Object.hasOwn(USERS, login) ? USERS[login] : undefined;
  const expected = Buffer.from(user ? user.password : 'x'.repeat(32));
  const given = Buffer.from(String(password ?? ''));
  const same = given.length === expected.length && crypto.timingSafeEqual(given, expected);
  return Boolean(user) && same;
}

// ---------------------------------------------------------------------------
// provider

function isLoopbackUrl(url) {
  const { hostname } = new URL(url);
  return hostname === '127.0.0.1' || hostname === '[::1]' || hostname === 'localhost';
}

const cookieKeys = [crypto.randomBytes(32).toString('base64url')];

function buildProvider() {
  const configuration = {
    adapter: MemoryAdapter,
    clients: CLIENTS,
    findAccount,
    jwks: { keys: signingKeys },
    cookies: { keys: cookieKeys },
    claims: {
      acr: null,
      auth_time: null,
      iss: null,
      sid: null,
      openid: ['sub', 'groups', 'roles'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    responseTypes: ['code'],
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // any of our (confidential) clients may introspect any token
        allowedPolicy: async () => true,
      },
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      backchannelLogout: { enabled: true },
      // oidc-provider's own confirm page and success page (logoutSource and
      // postLogoutSuccessSource left at their defaults): what a stock deployment shows.
      rpInitiatedLogout: { enabled: END_SESSION },
      userinfo: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => {
          if (oneOf) return oneOf.includes(API_AUDIENCE) ? API_AUDIENCE : oneOf[0];
          return API_AUDIENCE;
        },
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator, client) => {
          const scope = (CLIENT_API_SCOPES[client.clientId] || []).join(' ');
          if (resourceIndicator === API_AUDIENCE) {
            return {
              scope,
              audience: API_AUDIENCE,
              accessTokenFormat: 'jwt',
              accessTokenTTL: ACCESS_TOKEN_TTL,
              jwt: { sign: { alg: 'RS256' } },
            };
          }
          if (resourceIndicator === OPAQUE_AUDIENCE) {
            return {
              scope,
              audience: OPAQUE_AUDIENCE,
              accessTokenFormat: 'opaque',
              accessTokenTTL: ACCESS_TOKEN_TTL,
            };
          }
          throw new errors.InvalidTarget();
        },
      },
    },
    extraTokenClaims: async (_ctx, token) => {
      const extra = {};
      const user = token.accountId ? USERS[token.accountId] : undefined;
      if (user) {
        extra.groups = [...user.groups];
        extra.roles = [...user.roles];
      }
      if (token.sid) extra.sid = token.sid;
      return extra;
    },
    issueRefreshToken: async (_ctx, client, source) => client.grantTypeAllowed('refresh_token')
      && (client.clientId === 'gateway' || source.scopes.has('offline_access')),
    ttl: {
      AccessToken: () => ACCESS_TOKEN_TTL,
      ClientCredentials: () => ACCESS_TOKEN_TTL,
      IdToken: () => ID_TOKEN_TTL,
      RefreshToken: () => REFRESH_TOKEN_TTL,
      Session: () => SESSION_TTL,
      Grant: () => Math.max(SESSION_TTL, REFRESH_TOKEN_TTL),
      Interaction: () => 600,
      AuthorizationCode: () => 60,
    },
    interactions: {
      url: async (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    // oidc-provider's SSRF guard (an undici dispatcher) refuses special-use addresses such as
    // 127.0.0.1. This provider only ever talks to loopback gateways, so drop the guard for
    // loopback URLs (back-channel logout to the gateway) and keep it for anything else.
    fetch: (url, options) => {
      if (isLoopbackUrl(url)) {
        const { dispatcher, ...rest } = options;
        return globalThis.fetch(url, rest);
      }
      return globalThis.fetch(url, options);
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Error', Object.entries(out)
        .map(([k, v]) => `<p><strong>${esc(k)}</strong>: ${esc(v)}</p>`).join(''));
    },
  };

  const p = new Provider(ISSUER, configuration);
  p.proxy = false;

  const logError = (event) => (ctx, err) => {
    log(event, `${err.name || 'Error'}:`, err.error_description || err.message);
  };
  for (const event of ['authorization.error', 'grant.error', 'introspection.error',
    'revocation.error', 'end_session.error', 'userinfo.error', 'jwks.error',
    'discovery.error', 'check_session.error']) {
    p.on(event, logError(event));
  }
  p.on('server_error', (ctx, err) => log('server_error', err.stack || err.message));
  p.on('grant.success', (ctx) => log('grant.success', ctx.oidc.params?.grant_type || '',
    'client', ctx.oidc.client?.clientId || ''));
  p.on('backchannel.success', (ctx, client, accountId, sid) => log('backchannel.success',
    'client', client.clientId, 'sub', accountId, 'sid', sid));
  p.on('backchannel.error', (ctx, err, client, accountId, sid) => log('backchannel.error',
    'client', client.clientId, 'sub', accountId, 'sid', sid, '-', err.message));
  p.on('end_session.success', () => log('end_session.success'));
  return p;
}

let provider = buildProvider();
let providerHandler = provider.callback();

// ---------------------------------------------------------------------------
// HTML

function esc(value) {
  return String(value)
    .replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;').replaceAll("'", '&#39;');
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;max-width:28em;margin:3em auto}label,input,button{display:block;margin:.4em 0}.error{color:#b00}</style>
</head>
<body>
<h1>${esc(title)}</h1>
${body}
</body>
</html>
`;
}

function loginPage(uid, clientId, login, error) {
  const errorHtml = error ? `<p class="error" id="error">${esc(error)}</p>` : '';
  return page('devidp sign-in', `<p>Sign in to continue to <strong>${esc(clientId)}</strong>.</p>
${errorHtml}
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
  <label for="login">Username</label>
  <input id="login" type="text" name="login" value="${esc(login || '')}" required autofocus>
  <label for="password">Password</label>
  <input id="password" type="password" name="password" required>
  <button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${esc(uid)}/abort">
  <button type="submit">Cancel</button>
</form>`);
}

// ---------------------------------------------------------------------------
// HTTP helpers

function send(res, status, contentType, body, headers = {}) {
  res.writeHead(status, {
    'content-type': contentType,
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}

function sendJson(res, status, obj) {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(obj)}\n`);
}

async function readBody(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isLoopbackPeer(req) {
  const addr = req.socket.remoteAddress || '';
  return addr === '127.0.0.1' || addr === '::ffff:127.0.0.1' || addr === '::1';
}

// ---------------------------------------------------------------------------
// interactions (login form + automatic first-party consent)

async function autoConsent(req, res, details) {
  const { prompt: { details: missing }, grantId, session, params } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const savedGrantId = await grant.save();
  const result = grantId ? { consent: {} } : { consent: { grantId: savedGrantId } };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
  log('interaction consent auto-granted', 'client', params.client_id, 'sub', session.accountId);
}

async function handleInteraction(req, res, uid, action) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    log('interaction error', err.name || 'Error', err.message);
    send(res, 400, 'text/html; charset=utf-8',
      page('Sign-in expired', '<p>This sign-in request is unknown or expired. Start again from the application.</p>'));
    return;
  }
  if (details.uid !== uid) {
    send(res, 400, 'text/html; charset=utf-8', page('Error', '<p>interaction mismatch</p>'));
    return;
  }
  const { prompt, params } = details;

  if (req.method === 'GET' && action === undefined) {
    if (prompt.name === 'login') {
      send(res, 200, 'text/html; charset=utf-8', loginPage(uid, params.client_id));
      return;
    }
    if (prompt.name === 'consent') {
      await autoConsent(req, res, details);
      return;
    }
    send(res, 501, 'text/plain; charset=utf-8', `unsupported prompt ${prompt.name}\n`);
    return;
  }

  if (req.method === 'POST' && action === 'login') {
    const form = new URLSearchParams(await readBody(req));
    const login = form.get('login') || '';
    if (prompt.name !== 'login') {
      send(res, 400, 'text/html; charset=utf-8', page('Error', '<p>not expecting a login</p>'));
      return;
    }
    if (!checkPassword(login, form.get('password'))) {
      log('login failed', 'user', JSON.stringify(login.slice(0, 64)));
      send(res, 401, 'text/html; charset=utf-8',
        loginPage(uid, params.client_id, login, 'Invalid username or password.'));
      return;
    }
    log('login ok', 'user', login);
    await provider.interactionFinished(req, res, {
      login: { accountId: login, amr: ['pwd'] },
    }, { mergeWithLastSubmission: false });
    return;
  }

  if (req.method === 'POST' && action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }

  send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
}

// ---------------------------------------------------------------------------
// dev endpoints

async function handleDev(req, res, pathname) {
  if (!isLoopbackPeer(req)) {
    sendJson(res, 403, { error: 'forbidden' });
    return;
  }
  if (pathname === '/__dev/health' && req.method === 'GET') {
    sendJson(res, 200, { ok: true, issuer: ISSUER });
    return;
  }
  if (pathname === '/__dev/rotate-keys' && req.method === 'POST') {
    await readBody(req);
    const key = newSigningKey();
    const keys = [key, ...signingKeys];
    writeKeys(keys);
    signingKeys = keys;
    provider = buildProvider();
    providerHandler = provider.callback();
    log('keys rotated, signing kid', key.kid, 'keys in jwks', keys.length);
    sendJson(res, 200, { kid: key.kid, kids: keys.map((k) => k.kid) });
    return;
  }
  const m = /^\/__dev\/users\/([^/]+)\/groups$/.exec(pathname);
  if (m && req.method === 'POST') {
    const login = decodeURIComponent(m[1]);
    if (!Object.hasOwn(USERS, login)) {
      sendJson(res, 404, { error: 'unknown user' });
      return;
    }
    let body;
    try {
      body = JSON.parse(await readBody(req));
    } catch {
      sendJson(res, 400, { error: 'body must be JSON' });
      return;
    }
    const isStrList = (v) => Array.isArray(v) && v.every((s) => typeof s === 'string');
    if (!body || !isStrList(body.groups) || (body.roles !== undefined && !isStrList(body.roles))) {
      sendJson(res, 400, { error: 'expected {"groups": [str...], "roles": [str...]}' });
      return;
    }
    USERS[login].groups = [...body.groups];
    if (body.roles !== undefined) USERS[login].roles = [...body.roles];
    log('user updated', login, 'groups', JSON.stringify(USERS[login].groups),
      'roles', JSON.stringify(USERS[login].roles));
    sendJson(res, 200, { login, groups: USERS[login].groups, roles: USERS[login].roles });
    return;
  }
  sendJson(res, 404, { error: 'not found' });
}

// ---------------------------------------------------------------------------
// server

const server = http.createServer(async (req, res) => {
  const started = Date.now();
  const pathname = new URL(req.url, ISSUER).pathname;
  res.on('finish', () => {
    log(req.method, pathname, res.statusCode, `${Date.now() - started}ms`);
  });
  try {
    if (pathname.startsWith('/__dev/')) {
      await handleDev(req, res, pathname);
      return;
    }
    const m = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|abort))?\/?$/.exec(pathname);
    if (m) {
      await handleInteraction(req, res, m[1], m[2]);
      return;
    }
    providerHandler(req, res);
  } catch (err) {
    log('handler error', err.stack || err.message);
    if (!res.headersSent) {
      sendJson(res, err.status || 500, { error: 'server_error' });
    } else {
      res.destroy();
    }
  }
});

server.on('error', (err) => {
  console.error(`devidp: ${err.message}`);
  process.exit(1);
});

server.listen(PORT, HOST, () => {
  log('gateway redirect uris', JSON.stringify(CLIENTS[0].redirect_uris));
  log('keys file', KEYS_FILE, 'signing kid', signingKeys[0].kid);
  process.stdout.write(`devidp ready ${ISSUER}\n`);
});

const PARENT_PID = intEnv('DEVIDP_PARENT_PID', undefined);
if (PARENT_PID !== undefined) {
  setInterval(() => {
    try {
      process.kill(PARENT_PID, 0);
    } catch {
      log('parent process', PARENT_PID, 'is gone, stopping');
      process.exit(0);
    }
  }, 1000).unref();
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    log('stopping on', signal);
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  });
}
