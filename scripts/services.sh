#!/usr/bin/env bash
# Makes sure the local PostgreSQL and Redis answer, starting them with the
# machine's own commands when they are installed but stopped. Sourced by
# scripts/up.sh and scripts/test.sh.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

if ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "PostgreSQL is not answering on 127.0.0.1:5432; starting it" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! redis_up && command -v redis-server >/dev/null 2>&1; then
  echo "Redis is not answering on 127.0.0.1:6379; starting it" >&2
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
for i in $(seq 1 50); do
  if pg_up && redis_up; then exit 0; fi
  sleep 0.2
done
pg_up || { echo "error: PostgreSQL is not reachable at 127.0.0.1:5432 (set DATABASE_URL for another server)" >&2; exit 1; }
redis_up || { echo "error: Redis is not reachable at 127.0.0.1:6379 (set REDIS_URL for another server)" >&2; exit 1; }
