// The REST API v2, same origin: the dashboard listener serves /api/v2/ and /metrics with the
// REST API's own handler. The Basic credentials live in sessionStorage (this tab, until it is
// closed or the user logs out), never in localStorage.
const KEY = 'mqttd.auth';

export class ApiError extends Error {
  constructor(message, code) { super(message); this.code = code; }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export function credentials() {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) return null;
  try { return JSON.parse(raw); } catch { return null; }
}

function header(c) {
  const bytes = new TextEncoder().encode(`${c.username}:${c.password}`);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return 'Basic ' + btoa(bin);
}

// Checks the credentials with POST auth; stores them only when they are right.
export async function login(username, password) {
  const res = await fetch('/api/v2/auth', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  const data = await parse(res);
  if (data.code !== 0) throw new ApiError(data.message || `login failed (code ${data.code})`, data.code);
  sessionStorage.setItem(KEY, JSON.stringify({ username, password }));
}

export function logout() { sessionStorage.removeItem(KEY); }

async function parse(res) {
  let data;
  try { data = await res.json(); } catch {
    throw new ApiError(`HTTP ${res.status}: the answer is not JSON`);
  }
  if (res.status === 429) {
    throw new ApiError(`${data.message} (retry in ${res.headers.get('Retry-After') || '?'} s)`, data.code);
  }
  return data;
}

// One REST call: the `result` of {"code": 0, "result": ...}; anything else throws ApiError
// with the API's own message and code.
export async function api(method, path, body) {
  const c = credentials();
  if (!c) { onUnauthorized(); throw new ApiError('not logged in'); }
  const init = { method, headers: { Authorization: header(c) } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try { res = await fetch('/api/v2/' + path, init); } catch (e) {
    throw new ApiError(`the broker did not answer (${e.message})`);
  }
  if (res.status === 401) { onUnauthorized(); throw new ApiError('authentication required', 103); }
  const data = await parse(res);
  if (data.code !== 0) {
    throw new ApiError(`${data.message || 'error'} (code ${data.code})`, data.code);
  }
  return data.result;
}

// GET /metrics (Prometheus text) as {name or name{labels}: value}.
export async function metrics() {
  const c = credentials();
  const res = await fetch('/metrics', { headers: c ? { Authorization: header(c) } : {} });
  if (res.status !== 200) throw new ApiError(`GET /metrics: HTTP ${res.status}`);
  const out = {};
  for (const line of (await res.text()).split('\n')) {
    if (!line || line[0] === '#') continue;
    const sp = line.lastIndexOf(' ');
    out[line.slice(0, sp)] = Number(line.slice(sp + 1));
  }
  return out;
}

export const enc = encodeURIComponent;
