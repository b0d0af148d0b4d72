// Flash sale: thousands of POST /orders per second on one deal.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 loadtest/k6/flash_sale.js
//   k6 run -e BASE_URL=... -e PEAK_RATE=300 -e HOLD=3s -e USERS=50 -e STOCK=100 loadtest/k6/flash_sale.js
//
// Latency over time: k6 has no per-request timeline without extensions, so
// ask for its CSV output and plot from that:
//
//   k6 run --out csv=timeline.csv -e SUMMARY_JSON=summary.json loadtest/k6/flash_sale.js
//
// Each row of the CSV is one sample: metric_name,timestamp(s),metric_value,…
// with tags (scenario, name = "POST /orders", status, …). Filter
// metric_name == "http_req_duration" && name == "POST /orders" for the
// order latency, or the custom accept_latency / accept_to_confirmed samples.
//
// Env (defaults): BASE_URL (http://127.0.0.1:8080), ADMIN_EMAIL / ADMIN_PASSWORD
// (admin@flashdeal.local / change-me-locally), USERS (200), STOCK (500),
// PER_USER_LIMIT (2), PEAK_RATE (2000 iterations/s), HOLD (10s),
// PRE_VUS (200), MAX_VUS (2000), POLL_FRACTION (0.2), POLL_TIMEOUT_MS (10000),
// JOURNEY_RATE (5/s; 0 disables the journey scenario), SUMMARY_JSON (unset).
//
// Scenarios, both starting at t=0:
//   burst    ramping-arrival-rate 0 → PEAK_RATE in 1 s, PEAK_RATE for HOLD,
//            → 0 in 2 s. Each iteration: a random setup user orders 1 unit
//            with a fresh Idempotency-Key; POLL_FRACTION of the 202s are
//            polled until settled (accept_to_confirmed).
//   journey  constant-arrival-rate JOURNEY_RATE/s for the same 3 s + HOLD:
//            login, GET /deals, POST /orders, poll the order until settled.
//
// Oversell: teardown fails the run if the deal's `remaining` is negative,
// and the threshold units_accepted count<=STOCK fails it if more units were
// accepted (202) than the deal had. orders_accepted is also in the summary
// (and in SUMMARY_JSON) for the runner to compare with PostgreSQL:
//
//   select d.deal_id, d.stock, coalesce(sum(o.quantity), 0) sold
//   from catalog.deals d left join orders.orders o
//     on o.deal_id = d.deal_id and o.status = 'confirmed'
//   where d.deal_id = '<deal id logged by setup>' group by 1, 2;
//   -- sold must be <= stock, and equal to units_accepted once the writer caught up

import { check, fail } from 'k6';
import { Counter } from 'k6/metrics';
import {
  BASE_URL,
  TREND_STATS,
  adminToken,
  createDeal,
  durationMs,
  envNum,
  getDeal,
  listDeals,
  login,
  order,
  pollUntilSettled,
  randomKey,
  signupAndLogin,
  summaryOutputs,
} from './lib.js';

const USERS = envNum('USERS', 200);
const STOCK = envNum('STOCK', 500);
const PER_USER_LIMIT = envNum('PER_USER_LIMIT', 2);
const PEAK_RATE = envNum('PEAK_RATE', 2000);
const HOLD = __ENV.HOLD || '10s';
const PRE_VUS = envNum('PRE_VUS', 200);
const MAX_VUS = envNum('MAX_VUS', 2000);
const POLL_FRACTION = envNum('POLL_FRACTION', 0.2);
const POLL_TIMEOUT_MS = envNum('POLL_TIMEOUT_MS', 10000);
const JOURNEY_RATE = envNum('JOURNEY_RATE', 5);

const TOTAL_MS = 1000 + durationMs(HOLD) + 2000;

/** Units by which the deal's `remaining` went below zero (teardown). */
const oversold = new Counter('oversold');

const scenarios = {
  burst: {
    executor: 'ramping-arrival-rate',
    exec: 'burst',
    startRate: 0,
    timeUnit: '1s',
    preAllocatedVUs: PRE_VUS,
    maxVUs: MAX_VUS,
    stages: [
      { target: PEAK_RATE, duration: '1s' },
      { target: PEAK_RATE, duration: HOLD },
      { target: 0, duration: '2s' },
    ],
    gracefulStop: '30s',
  },
};
if (JOURNEY_RATE > 0) {
  scenarios.journey = {
    executor: 'constant-arrival-rate',
    exec: 'journey',
    rate: JOURNEY_RATE,
    timeUnit: '1s',
    duration: `${TOTAL_MS}ms`,
    preAllocatedVUs: Math.max(5, Math.ceil(JOURNEY_RATE * 2)),
    maxVUs: Math.max(20, Math.ceil(JOURNEY_RATE * 20)),
    gracefulStop: '30s',
  };
}

export const options = {
  setupTimeout: __ENV.SETUP_TIMEOUT || '600s',
  teardownTimeout: '60s',
  summaryTrendStats: TREND_STATS,
  scenarios,
  thresholds: {
    order_errors: ['rate<0.01'],
    http_req_failed: ['rate<0.01'],
    oversold: ['count==0'],
    units_accepted: [`count<=${STOCK}`],
    // Always-true thresholds: they only make k6 report these sub-metrics.
    'http_req_duration{name:POST /orders}': ['max>=0'],
    'http_req_duration{name:GET /orders/{id}}': ['max>=0'],
    'accept_latency{scenario:burst}': ['max>=0'],
  },
};

export function setup() {
  const t0 = Date.now();
  const users = signupAndLogin(USERS);
  const admin = adminToken();
  const deal = createDeal(admin, {
    stock: STOCK,
    per_user_limit: PER_USER_LIMIT,
    product_name: `k6 flash sale ${new Date().toISOString()}`,
  });
  console.log(
    `setup: ${users.length} users in ${Date.now() - t0} ms; deal ${deal.deal_id} ` +
      `stock=${STOCK} per_user_limit=${PER_USER_LIMIT} against ${BASE_URL}`,
  );
  return { users, dealId: deal.deal_id, stock: STOCK };
}

function pickUser(data) {
  return data.users[Math.floor(Math.random() * data.users.length)];
}

export function burst(data) {
  const u = pickUser(data);
  const r = order(u.token, data.dealId, 1, randomKey());
  if (r.status === 202 && r.orderId && Math.random() < POLL_FRACTION) {
    const p = pollUntilSettled(u.token, r.orderId, POLL_TIMEOUT_MS, r.acceptedAt);
    check(p, { 'sampled order confirmed': (x) => x.status === 'confirmed' });
  }
}

export function journey(data) {
  const u = pickUser(data);
  const token = login(u.email, u.password);
  if (!token) return;
  const { res, deals } = listDeals(200);
  check(res, {
    'GET /deals 200': (x) => x.status === 200,
    'deal listed': () => !!deals && deals.some((d) => d.deal_id === data.dealId),
  });
  const r = order(token, data.dealId, 1, randomKey());
  if (r.status === 202 && r.orderId) {
    const p = pollUntilSettled(token, r.orderId, POLL_TIMEOUT_MS, r.acceptedAt);
    check(p, { 'journey order confirmed': (x) => x.status === 'confirmed' });
  }
}

export function teardown(data) {
  const { res, deal } = getDeal(data.dealId);
  if (!deal) {
    fail(`teardown: GET /deals/${data.dealId} answered ${res.status} ${res.body}`);
  }
  const remaining = deal.remaining;
  const reserved = remaining === null || remaining === undefined ? 'unknown' : data.stock - remaining;
  console.log(
    `teardown: deal ${data.dealId} stock=${data.stock} remaining=${remaining} reserved=${reserved}`,
  );
  oversold.add(typeof remaining === 'number' && remaining < 0 ? -remaining : 0);
  if (typeof remaining === 'number' && remaining < 0) {
    fail(`OVERSOLD: deal ${data.dealId} remaining=${remaining} (stock ${data.stock})`);
  }
}

export function handleSummary(data) {
  return summaryOutputs(data, `flash_sale (stock=${STOCK}, peak=${PEAK_RATE}/s, hold=${HOLD})`);
}
