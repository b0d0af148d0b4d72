#!/usr/bin/env bash
# Starts the whole system on the embedded default: local PostgreSQL and
# Redis, the embedded Kafka-compatible broker, and every FlashDeal role in
# one process. Seeds an admin and a demo deal first (once).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup toolchain install >/dev/null   # the version pinned in rust-toolchain.toml
bash scripts/services.sh
export SQLX_OFFLINE=true
cargo build --locked --bin flashdeal
export FLASHDEAL_ADMIN_EMAIL="${FLASHDEAL_ADMIN_EMAIL:-admin@flashdeal.local}"
export FLASHDEAL_ADMIN_PASSWORD="${FLASHDEAL_ADMIN_PASSWORD:-change-me-locally}"
./target/debug/flashdeal seed
exec ./target/debug/flashdeal up "$@"
