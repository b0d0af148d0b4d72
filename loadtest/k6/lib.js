// Shared helpers for the FlashDeal k6 scenarios (smoke.js, flash_sale.js).
//
// Works against anything that answers the API in docs/api.md: FlashDeal
// (`flashdeal up`, :8080) or the baseline server (:8090). Pick it with
// `-e BASE_URL=...`; admin credentials with `-e ADMIN_EMAIL=... -e ADMIN_PASSWORD=...`.
//
// Importing this module (init context) also installs the response callback
// that makes 409 an expected status, so sold-out / per-user-limit refusals
// do not count in `http_req_failed`.

import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const ADMIN_EMAIL = __ENV.ADMIN_EMAIL || 'admin@flashdeal.local';
export const ADMIN_PASSWORD = __ENV.ADMIN_PASSWORD || 'change-me-locally';

// Load-test users all share this password (the journey scenario logs in again).
export const USER_PASSWORD = __ENV.USER_PASSWORD || 'load-test-password';

// 2xx and 409 are "expected": a flash sale refuses most orders with 409.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409));

// ---------------------------------------------------------------- metrics --
/** POST /orders answered 202. */
export const ordersAccepted = new Counter('orders_accepted');
/** Units (sum of quantity) of the orders answered 202: compare with the stock. */
export const unitsAccepted = new Counter('units_accepted');
/** POST /orders answered 409 sold-out or per-user-limit. */
export const ordersSoldOut = new Counter('orders_sold_out');
/** POST /orders answered another 409 (deal-not-active, …): expected status, but worth seeing. */
export const ordersRefusedOther = new Counter('orders_refused_other');
/** POST /orders answered anything but 202/409 (true) or 202/409 (false). */
export const orderErrors = new Rate('order_errors');
/** Duration (ms) of the POST /orders requests that answered 202. */
export const acceptLatency = new Trend('accept_latency', true);
/** Time (ms) from receiving the 202 to seeing the order confirmed. */
export const acceptToConfirmed = new Trend('accept_to_confirmed', true);
/** Polled orders that reached `confirmed`. */
export const ordersConfirmed = new Counter('orders_confirmed');
/** Polled orders that reached `rejected` or `expired`. */
export const ordersRejected = new Counter('orders_rejected');
/** Polled orders still not settled when the poll timed out. */
export const ordersUnsettled = new Counter('orders_unsettled');

export const SETTLED = ['confirmed', 'rejected', 'expired'];

const JSON_HEADERS = { 'Content-Type': 'application/json' };

export function authHeaders(token, extra) {
  return Object.assign({ Authorization: `Bearer ${token}` }, JSON_HEADERS, extra || {});
}

/** Parses a JSON body, or null. */
export function jsonBody(res) {
  try {
    return res.json();
  } catch (_) {
    return null;
  }
}

/** The suffix of a problem+json `type` (e.g. `sold-out`), or null. */
export function problemType(res) {
  const b = jsonBody(res);
  if (!b || typeof b.type !== 'string') return null;
  return b.type.substring(b.type.lastIndexOf('/') + 1);
}

/** A run id, unique enough to keep emails from colliding between runs. */
export function newRunId() {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 1e9).toString(36)}`;
}

/** A random Idempotency-Key (visible ASCII, < 128 chars). */
export function randomKey() {
  return `k6-${__VU}-${__ITER}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

/** Parses a k6/Go-style duration ("500ms", "10s", "2m", "1m30s") into ms. */
export function durationMs(s) {
  const str = String(s).trim();
  if (/^\d+(\.\d+)?$/.test(str)) return Number(str) * 1000; // bare number: seconds
  const units = { ms: 1, s: 1000, m: 60000, h: 3600000 };
  let total = 0;
  let matched = '';
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let m;
  while ((m = re.exec(str)) !== null) {
    total += Number(m[1]) * units[m[2]];
    matched += m[0];
  }
  if (matched !== str) throw new Error(`bad duration: ${s}`);
  return total;
}

export function envNum(name, dflt) {
  const v = __ENV[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got ${v}`);
  return n;
}

// ------------------------------------------------------------------- auth --
export function login(email, password) {
  const res = http.post(`${BASE_URL}/auth/login`, JSON.stringify({ email, password }), {
    headers: JSON_HEADERS,
    tags: { name: 'POST /auth/login' },
  });
  const body = jsonBody(res);
  const ok = check(res, {
    'login 200': (r) => r.status === 200,
    'login has token': () => !!(body && body.access_token),
  });
  return ok ? body.access_token : null;
}

/**
 * Signs up `n` fresh users and logs them in, `chunk` requests per http.batch.
 * Returns [{email, password, token}], emails `u${i}-${runId}@load.test`.
 * Throws if any signup or login fails (setup must not run on a half-made user set).
 */
export function signupAndLogin(n, chunk = 50, runId = newRunId()) {
  const users = [];
  for (let i = 0; i < n; i++) {
    users.push({ email: `u${i}-${runId}@load.test`, password: USER_PASSWORD, token: null });
  }
  for (let start = 0; start < n; start += chunk) {
    const part = users.slice(start, start + chunk);
    const signups = http.batch(
      part.map((u) => ({
        method: 'POST',
        url: `${BASE_URL}/auth/signup`,
        body: JSON.stringify({ email: u.email, password: u.password }),
        params: { headers: JSON_HEADERS, tags: { name: 'POST /auth/signup' } },
      })),
    );
    signups.forEach((r, j) => {
      if (r.status !== 201) {
        throw new Error(`signup ${part[j].email}: ${r.status} ${r.body}`);
      }
    });
    const logins = http.batch(
      part.map((u) => ({
        method: 'POST',
        url: `${BASE_URL}/auth/login`,
        body: JSON.stringify({ email: u.email, password: u.password }),
        params: { headers: JSON_HEADERS, tags: { name: 'POST /auth/login' } },
      })),
    );
    logins.forEach((r, j) => {
      const b = r.status === 200 ? jsonBody(r) : null;
      if (!b || !b.access_token) {
        throw new Error(`login ${part[j].email}: ${r.status} ${r.body}`);
      }
      part[j].token = b.access_token;
    });
  }
  return users;
}

/** Logs in as the admin; throws if that fails. */
export function adminToken() {
  const token = login(ADMIN_EMAIL, ADMIN_PASSWORD);
  if (!token) {
    throw new Error(`admin login failed for ${ADMIN_EMAIL} (set ADMIN_EMAIL / ADMIN_PASSWORD)`);
  }
  return token;
}

// ------------------------------------------------------------------ deals --
/**
 * Creates a deal (POST /admin/deals), open now, ending in an hour.
 * opts: {stock, per_user_limit, price_cents, product_name, product_description}.
 * Returns the deal view (with deal_id); throws unless 201.
 */
export function createDeal(token, opts = {}) {
  const body = {
    product_name: opts.product_name || `k6 deal ${new Date().toISOString()}`,
    price_cents: opts.price_cents !== undefined ? opts.price_cents : 4900,
    stock: opts.stock !== undefined ? opts.stock : 100,
    per_user_limit: opts.per_user_limit !== undefined ? opts.per_user_limit : 2,
    ends_at: new Date(Date.now() + 3600 * 1000).toISOString(),
  };
  if (opts.product_description) body.product_description = opts.product_description;
  if (opts.starts_at) body.starts_at = opts.starts_at;
  const res = http.post(`${BASE_URL}/admin/deals`, JSON.stringify(body), {
    headers: authHeaders(token),
    tags: { name: 'POST /admin/deals' },
  });
  const deal = jsonBody(res);
  if (res.status !== 201 || !deal || !deal.deal_id) {
    throw new Error(`create deal: ${res.status} ${res.body}`);
  }
  // The deal reaches Redis only through the log (catalog outbox -> relay ->
  // catalog.events -> projector): wait until the gateway sees its stock.
  const deadline = Date.now() + 30000;
  for (;;) {
    const { deal: seen } = getDeal(deal.deal_id);
    if (seen && typeof seen.remaining === 'number') return seen;
    if (Date.now() > deadline) throw new Error(`deal ${deal.deal_id} did not reach Redis within 30 s`);
    sleep(0.05);
  }
}

export function getDeal(dealId) {
  const res = http.get(`${BASE_URL}/deals/${dealId}`, { tags: { name: 'GET /deals/{id}' } });
  return { res, deal: res.status === 200 ? jsonBody(res) : null };
}

export function listDeals(limit = 200) {
  const res = http.get(`${BASE_URL}/deals?limit=${limit}`, { tags: { name: 'GET /deals' } });
  const deals = res.status === 200 ? jsonBody(res) : null;
  return { res, deals: Array.isArray(deals) ? deals : null };
}

// ----------------------------------------------------------------- orders --
/**
 * POST /orders and records the order metrics.
 * Returns {res, status, orderId, problem, acceptedAt} where acceptedAt is
 * Date.now() when the 202 arrived (the origin of accept_to_confirmed).
 */
export function order(token, dealId, qty = 1, idemKey = undefined) {
  const headers = authHeaders(token, idemKey ? { 'Idempotency-Key': idemKey } : undefined);
  const res = http.post(
    `${BASE_URL}/orders`,
    JSON.stringify({ deal_id: dealId, quantity: qty }),
    { headers, tags: { name: 'POST /orders' } },
  );
  const acceptedAt = Date.now();
  const out = { res, status: res.status, orderId: null, problem: null, acceptedAt };
  if (res.status === 202) {
    const b = jsonBody(res);
    out.orderId = b && b.order_id ? b.order_id : null;
    ordersAccepted.add(1);
    unitsAccepted.add(qty);
    acceptLatency.add(res.timings.duration);
    orderErrors.add(!out.orderId);
  } else if (res.status === 409) {
    out.problem = problemType(res);
    if (out.problem === 'sold-out' || out.problem === 'per-user-limit') {
      ordersSoldOut.add(1);
    } else {
      ordersRefusedOther.add(1, { problem: String(out.problem) });
    }
    orderErrors.add(false);
  } else {
    out.problem = problemType(res);
    orderErrors.add(true);
  }
  return out;
}

/**
 * GETs /orders/{id} every 20 ms until its status is confirmed, rejected or
 * expired, or `timeoutMs` passed. `since` is when the 202 arrived (default now).
 * Records accept_to_confirmed + orders_confirmed, orders_rejected or
 * orders_unsettled. Returns {status, elapsedMs, settled}; elapsedMs is from
 * the 202 to the first poll that saw the settled state.
 */
export function pollUntilSettled(token, orderId, timeoutMs = 10000, since = Date.now()) {
  const params = { headers: { Authorization: `Bearer ${token}` }, tags: { name: 'GET /orders/{id}' } };
  let status = null;
  for (;;) {
    const res = http.get(`${BASE_URL}/orders/${orderId}`, params);
    if (res.status === 200) {
      const b = jsonBody(res);
      status = b ? b.status : null;
      if (SETTLED.indexOf(status) >= 0) {
        const elapsedMs = Date.now() - since;
        if (status === 'confirmed') {
          ordersConfirmed.add(1);
          acceptToConfirmed.add(elapsedMs);
        } else {
          ordersRejected.add(1, { status });
        }
        return { status, elapsedMs, settled: true };
      }
    }
    if (Date.now() - since >= timeoutMs) {
      ordersUnsettled.add(1);
      return { status, elapsedMs: Date.now() - since, settled: false };
    }
    sleep(0.02);
  }
}

// ---------------------------------------------------------------- summary --
export const TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'count'];

function fmtNum(v, isTime) {
  if (v === undefined || v === null || Number.isNaN(v)) return '-';
  if (isTime) return v >= 1000 ? `${(v / 1000).toFixed(2)}s` : `${v.toFixed(2)}ms`;
  return Number.isInteger(v) ? String(v) : v.toFixed(4);
}

function fmtMetric(m) {
  const v = m.values || {};
  const t = m.contains === 'time';
  switch (m.type) {
    case 'counter':
      return `count=${fmtNum(v.count)} rate=${fmtNum(v.rate)}/s`;
    case 'rate':
      return `rate=${(100 * (v.rate || 0)).toFixed(2)}% (${fmtNum(v.passes)} true / ${fmtNum(v.fails)} false)`;
    case 'gauge':
      return `value=${fmtNum(v.value, t)} min=${fmtNum(v.min, t)} max=${fmtNum(v.max, t)}`;
    case 'trend':
      return TREND_STATS.filter((k) => k in v)
        .concat(Object.keys(v).filter((k) => TREND_STATS.indexOf(k) < 0))
        .map((k) => `${k}=${k === 'count' ? fmtNum(v[k]) : fmtNum(v[k], t)}`)
        .join(' ');
    default:
      return JSON.stringify(v);
  }
}

/** One line with the figures a flash-sale run is judged on. */
export function headline(data) {
  const m = data.metrics || {};
  const val = (name, key) => (m[name] && m[name].values ? m[name].values[key] : undefined);
  const ms = (v) => (v === undefined ? '-' : `${v.toFixed(1)}ms`);
  const n = (v) => (v === undefined ? 0 : v);
  return [
    `accepted=${n(val('orders_accepted', 'count'))}`,
    `units=${n(val('units_accepted', 'count'))}`,
    `sold_out=${n(val('orders_sold_out', 'count'))}`,
    `refused_other=${n(val('orders_refused_other', 'count'))}`,
    `errors=${n(val('order_errors', 'passes'))}/${n(val('order_errors', 'passes')) + n(val('order_errors', 'fails'))}`,
    `accept_p95=${ms(val('accept_latency', 'p(95)'))}`,
    `accept_p99=${ms(val('accept_latency', 'p(99)'))}`,
    `confirmed=${n(val('orders_confirmed', 'count'))}`,
    `accept_to_confirmed_p99=${ms(val('accept_to_confirmed', 'p(99)'))}`,
    `http_req_failed=${(100 * n(val('http_req_failed', 'rate'))).toFixed(2)}%`,
  ].join(' ');
}

/** A short plain-text summary (the jslib textSummary is not available offline). */
export function textSummary(data, title = 'k6') {
  const lines = [];
  const metrics = data.metrics || {};
  const names = Object.keys(metrics).sort();
  const width = Math.max(10, ...names.map((n) => n.length));
  const failed = [];
  lines.push('');
  lines.push(`=== ${title} summary (${BASE_URL}) ===`);
  lines.push(headline(data));
  for (const name of names) {
    const m = metrics[name];
    let mark = ' ';
    if (m.thresholds) {
      const bad = Object.keys(m.thresholds).filter((k) => !m.thresholds[k].ok);
      mark = bad.length ? '✗' : '✓';
      bad.forEach((k) => failed.push(`${name}: ${k}`));
    }
    lines.push(`${mark} ${name.padEnd(width)} ${fmtMetric(m)}`);
  }
  const root = data.root_group || {};
  const checks = [];
  const walk = (g) => {
    (g.checks || []).forEach((c) => checks.push({ group: g.path || '', c }));
    (g.groups || []).forEach(walk);
  };
  walk(root);
  if (checks.length) {
    lines.push('checks:');
    checks.forEach(({ group, c }) => {
      const where = group ? ` [${group}]` : '';
      lines.push(`  ${c.fails ? '✗' : '✓'} ${c.name}${where}: ${c.passes} passed, ${c.fails} failed`);
    });
  }
  lines.push(failed.length ? `THRESHOLDS FAILED: ${failed.join('; ')}` : 'all thresholds passed');
  lines.push('');
  return lines.join('\n');
}

/** handleSummary outputs: text on stdout, full JSON to $SUMMARY_JSON if set. */
export function summaryOutputs(data, title) {
  const out = { stdout: textSummary(data, title) };
  if (__ENV.SUMMARY_JSON) out[__ENV.SUMMARY_JSON] = JSON.stringify(data, null, 2);
  return out;
}
