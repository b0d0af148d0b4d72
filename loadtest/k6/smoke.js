// Smoke: a few seconds of real orders, every accepted order followed to
// `confirmed`. Exits non-zero on any error (failed threshold or setup/teardown).
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 loadtest/k6/smoke.js
//
// 20 users, one deal of 30 units with a per-user limit of 2, ~100 orders of
// 1 unit over 5 s (constant-arrival-rate 20/s): about 30 are accepted (202),
// the rest refused with 409 sold-out / per-user-limit. Each 202 is polled
// until settled and must be `confirmed` within 10 s (a check; `checks` must
// be 100 %). Thresholds: order_errors 0, http_req_failed 0, checks 100 %,
// units_accepted <= 30, no order left unsettled or rejected, at least one
// order accepted, no dropped iteration. teardown fails the run if the deal's
// `remaining` is negative.
//
// Env: BASE_URL, ADMIN_EMAIL, ADMIN_PASSWORD (see lib.js), SUMMARY_JSON.
//
// Oversell check the test command runs afterwards against PostgreSQL (the
// deal id is in the setup/teardown log lines); it must return no rows:
//
//   select d.deal_id, d.stock, coalesce(sum(o.quantity), 0) sold
//   from catalog.deals d left join orders.orders o
//     on o.deal_id = d.deal_id and o.status = 'confirmed'
//   group by 1, 2 having coalesce(sum(o.quantity), 0) > d.stock;
//
// and the per-user limit (no rows either):
//
//   select o.deal_id, o.user_id, sum(o.quantity) from orders.orders o
//   join catalog.deals d using (deal_id) where o.status = 'confirmed'
//   group by o.deal_id, o.user_id, d.per_user_limit
//   having sum(o.quantity) > d.per_user_limit;

import { check, fail } from 'k6';
import { Counter } from 'k6/metrics';
import {
  BASE_URL,
  TREND_STATS,
  adminToken,
  createDeal,
  getDeal,
  order,
  pollUntilSettled,
  randomKey,
  signupAndLogin,
  summaryOutputs,
} from './lib.js';

const USERS = 20;
const STOCK = 30;
const PER_USER_LIMIT = 2;
const CONFIRM_TIMEOUT_MS = 10000;

const oversold = new Counter('oversold');

export const options = {
  setupTimeout: '120s',
  teardownTimeout: '30s',
  summaryTrendStats: TREND_STATS,
  scenarios: {
    orders: {
      executor: 'constant-arrival-rate',
      rate: 20,
      timeUnit: '1s',
      duration: '5s',
      preAllocatedVUs: 20,
      maxVUs: 100,
      gracefulStop: '15s',
    },
  },
  thresholds: {
    order_errors: ['rate<0.0001'],
    http_req_failed: ['rate<0.0001'],
    checks: ['rate==1.0'],
    orders_accepted: ['count>0'],
    units_accepted: [`count<=${STOCK}`],
    orders_unsettled: ['count==0'],
    orders_rejected: ['count==0'],
    dropped_iterations: ['count==0'],
    oversold: ['count==0'],
  },
};

export function setup() {
  const users = signupAndLogin(USERS);
  const deal = createDeal(adminToken(), {
    stock: STOCK,
    per_user_limit: PER_USER_LIMIT,
    product_name: `k6 smoke ${new Date().toISOString()}`,
  });
  console.log(`setup: deal ${deal.deal_id} stock=${STOCK} per_user_limit=${PER_USER_LIMIT} against ${BASE_URL}`);
  return { tokens: users.map((u) => u.token), dealId: deal.deal_id, stock: STOCK };
}

export default function (data) {
  const token = data.tokens[Math.floor(Math.random() * data.tokens.length)];
  const r = order(token, data.dealId, 1, randomKey());
  check(r, {
    'order answered 202 or 409 sold-out/per-user-limit': (x) =>
      x.status === 202 || (x.status === 409 && (x.problem === 'sold-out' || x.problem === 'per-user-limit')),
  });
  if (r.status === 202) {
    check(r, { '202 has an order_id': (x) => !!x.orderId });
    if (!r.orderId) return;
    const p = pollUntilSettled(token, r.orderId, CONFIRM_TIMEOUT_MS, r.acceptedAt);
    check(p, { 'accepted order confirmed within 10 s': (x) => x.status === 'confirmed' });
  }
}

export function teardown(data) {
  const { res, deal } = getDeal(data.dealId);
  if (!deal) {
    fail(`teardown: GET /deals/${data.dealId} answered ${res.status} ${res.body}`);
  }
  const remaining = deal.remaining;
  console.log(`teardown: deal ${data.dealId} stock=${data.stock} remaining=${remaining}`);
  oversold.add(typeof remaining === 'number' && remaining < 0 ? -remaining : 0);
  if (typeof remaining === 'number' && remaining < 0) {
    fail(`OVERSOLD: deal ${data.dealId} remaining=${remaining} (stock ${data.stock})`);
  }
}

export function handleSummary(data) {
  return summaryOutputs(data, 'smoke');
}
