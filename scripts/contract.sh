#!/usr/bin/env bash
# API contract test against the embedded default (`flashdeal up`), run by
# scripts/test.sh after the smoke test: schemathesis (PyPI) reads
# /openapi.json and sends generated requests, valid and invalid, to every
# operation, once as an admin and once as a customer. It fails on any 5xx
# (not_a_server_error), any status the document does not list for the
# operation (status_code_conformance), any body that does not match its
# schema (response_schema_conformance) and any undocumented content type
# (content_type_conformance). Uses its own ports, database and data
# directory, like scripts/smoke.sh. Bounded: CONTRACT_MAX_EXAMPLES cases per
# operation and CONTRACT_MAX_TIME seconds per pass.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${FLASHDEAL_BIN:-target/debug/flashdeal}
MAX_EXAMPLES=${CONTRACT_MAX_EXAMPLES:-25}
MAX_TIME=${CONTRACT_MAX_TIME:-30}
SEED=${CONTRACT_SEED:-1}
python3 -m pip install --quiet --disable-pip-version-check 'schemathesis>=4.3,<5' 2>&1 | grep -v "Running pip as the 'root' user" || true
ST=(python3 -m schemathesis.cli)
python3 -c 'import schemathesis.cli' 2>/dev/null || ST=(schemathesis)

db=flashdeal_contract
dir=$(mktemp -d /tmp/flashdeal-contract.XXXXXX)
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db
export FLASHDEAL_HTTP_ADDR=127.0.0.1:28081 FLASHDEAL_BROKER_PORT=29193 FLASHDEAL_DATA_DIR=$dir
export FLASHDEAL_ADMIN_PASSWORD=contract-admin-password RUST_LOG=warn
base="http://$FLASHDEAL_HTTP_ADDR"
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
"$BIN" seed >/dev/null
"$BIN" up >"$dir/up.log" 2>&1 &
pid=$!
trap 'status=$?; set +e; kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"; exit $status' EXIT
for _ in $(seq 1 300); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "$base/readyz" >/dev/null || { cat "$dir/up.log" >&2; echo "error: flashdeal up did not become ready" >&2; exit 1; }

token() { # email password -> access token
  curl -sf -X POST "$base/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$2\"}" | python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])'
}
curl -sf -o /dev/null -X POST "$base/auth/signup" -H 'content-type: application/json' \
  -d '{"email":"contract-customer@flashdeal.local","password":"contract-customer-password"}'
admin=$(token admin@flashdeal.local "$FLASHDEAL_ADMIN_PASSWORD")
customer=$(token contract-customer@flashdeal.local contract-customer-password)

out=target/contract   # schemathesis' full output, kept for CI logs
mkdir -p "$out"
status=0
for who in admin customer; do
  tok=${!who}
  echo "contract: schemathesis as $who (at most $MAX_EXAMPLES cases per operation, ${MAX_TIME}s)"
  set +e
  "${ST[@]}" run "$base/openapi.json" \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance \
    -H "Authorization: Bearer $tok" \
    --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" --seed "$SEED" \
    --phases examples,coverage,fuzzing --workers 1 --request-timeout 10 \
    --no-color --warnings off >"$out/$who.txt" 2>&1
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    head -c 20000 "$out/$who.txt" >&2
    status=$rc
  fi
  # The summary: operations tested, test cases, and the closing line.
  { grep -E '^ +Tested: ' "$out/$who.txt"; grep -A1 '^Test cases:' "$out/$who.txt" | tail -1
    grep -E '^=+ .* in [0-9.]+s =+$' "$out/$who.txt" | tr -s '=' | sed 's/^= //; s/ =$//'; } |
    sed "s/^ */contract ($who): /"
done
if grep -q 'panicked\|internal error' "$dir/up.log"; then
  grep 'panicked\|internal error' "$dir/up.log" | head -5 >&2
fi
[ "$status" -eq 0 ] || { echo "error: the gateway broke its API contract" >&2; exit "$status"; }
echo "contract: ok"
