#!/usr/bin/env bash
# The API benchmark: status and gaps latency at a fixed request rate (1,000 req/s per route by
# default), idle and during a full-speed backfill, measured with oha (installed from crates.io
# into .cache/tools on first use). Extra arguments go to `blockfill bench-api` (see --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/services.sh
if ! command -v oha >/dev/null 2>&1 && [ ! -x .cache/tools/bin/oha ]; then
  echo "bench-api: installing oha (a load generator) from crates.io into .cache/tools" >&2
  cargo install --locked --quiet --root .cache/tools oha
fi
cargo build --release -p blockfill-orchestrator -p blockfill-workers
RUST_LOG="${RUST_LOG:-warn,blockfill::head=error}" exec target/release/blockfill bench-api "$@"
