#!/usr/bin/env bash
# The whole test suite: starts (or installs) PostgreSQL and Redis, installs Anvil (and Node with
# it) and the dashboard's browser (Chromium, playwright-core), builds the binaries the end-to-end
# tests run, then runs the dashboard's unit tests, the API against its OpenAPI document
# (scripts/api-contract.sh: schemathesis against a served devnet chain), and every unit,
# property, integration and end-to-end test, then the long ones (chaos, the supervisor) one at a
# time. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v cargo >/dev/null 2>&1 || { echo "test: cargo is missing; install Rust (rustup.rs) first" >&2; exit 1; }
scripts/services.sh
BLOCKFILL_ANVIL_BIN="$(scripts/install-anvil.sh | tail -n 1)"
export BLOCKFILL_ANVIL_BIN
scripts/install-browser.sh >/dev/null   # Chromium and playwright-core, for tests/browser/
cargo build --workspace --bins
node --test admin-ui/test/
scripts/api-contract.sh
cargo test --workspace "$@"
# Tests marked #[ignore] are the long, load-sensitive ones (chaos, the supervisor, the fleet outage): run them alone. (The Anvil
# fixture recorder is ignored too; it is run by hand.)
cargo test -p blockfill-tests --test it "$@" -- --ignored --test-threads 1 --skip anvil_fixtures::
