#!/usr/bin/env bash
# The demo: starts (or installs) PostgreSQL and Redis, builds release binaries, then runs
# `blockfill demo`: a devnet, the orchestrator and two workers backfilling 100,000 blocks, with
# the dashboard at http://127.0.0.1:8080/. Extra arguments go to `blockfill demo` (see --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v cargo >/dev/null 2>&1 || { echo "demo: cargo is missing; install Rust (rustup.rs) first" >&2; exit 1; }
scripts/services.sh
cargo build --release -p blockfill-orchestrator -p blockfill-workers
RUST_LOG="${RUST_LOG:-warn}" exec target/release/blockfill demo "$@"
