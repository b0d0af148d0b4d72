#!/usr/bin/env bash
# The project's test command (README, .ci/run): formatting, lints, then
# every test target against the real PostgreSQL and Redis of this machine
# and an embedded broker per test, then the k6 smoke test and the API
# contract test (schemathesis) against `flashdeal up`. Fails when any test
# target ran 0 tests.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { echo "==> [$(( $(date +%s) - started ))s] $*"; }

step "toolchain (rust-toolchain.toml)"
rustup toolchain install
bash scripts/services.sh
export SQLX_OFFLINE=true CARGO_TERM_COLOR=never

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "deployment config (docker-compose.yml, deploy/)"
python3 scripts/check_config.py

step "cargo test"
mkdir -p target
log=target/test-output.log
# The chaos suite (eight processes of its own) runs after the others, so
# the tests with a deadline (auth changes enforced within 1 s) do not share
# two cores with it.
set +e
cargo test --workspace --all-targets --locked --no-fail-fast -- --skip chaos:: 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || { echo "error: tests failed" >&2; exit "$status"; }
step "chaos suite (tests/it/chaos.rs; docs/reliability.md)"
set +e
cargo test --test it --locked -- chaos:: --nocapture 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || { echo "error: the chaos suite failed" >&2; exit "$status"; }
targets=$(grep -c '^running [0-9]* tests\?$' "$log" || true)
if grep -q '^running 0 tests$' "$log"; then
  echo "error: a test target ran zero tests:" >&2
  grep -B2 '^running 0 tests$' "$log" >&2
  exit 1
fi
passed=$(grep -o '[0-9]* passed' "$log" | awk '{s+=$1} END {print s}')
step "$targets test targets, $passed tests passed"

step "k6 smoke against flashdeal up (embedded broker)"
cargo build --locked --bin flashdeal
bash scripts/smoke.sh
step "API contract: schemathesis against flashdeal up (embedded broker)"
bash scripts/contract.sh
step "ok"
