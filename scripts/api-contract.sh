#!/usr/bin/env bash
# The API against its own OpenAPI document: schemathesis (PyPI) generates requests from
# /openapi.json and checks every answer: no 5xx (not_a_server_error), the body matches the
# documented schema (response_schema_conformance), the status and the content type are documented
# (status_code_conformance, content_type_conformance), and so are the headers
# (response_headers_conformance). A self-check then makes sure a document that disagrees with
# the answers fails.
#
# Starts a devnet (`blockfill devnet`, 300 blocks) and `blockfill serve` against a fresh database
# and a unique Redis prefix, registers the devnet as chain `devnet` and requests a backfill (so the
# chain, backfill and batch routes answer real data), runs schemathesis, then stops both and drops
# the database and the Redis keys, also on failure. Needs PostgreSQL and Redis
# (scripts/services.sh) and a built `target/debug/blockfill` (`cargo build --bins`).
#
# Every request carries an admin key made with `blockfill keys create` before `serve` starts,
# which runs without a per-key rate limit; a run in which any operation answered only 401/403 or
# 429 fails.
#
# Environment: BLOCKFILL_BIN (default target/debug/blockfill); CONTRACT_MAX_EXAMPLES (examples
# per operation, default 25); CONTRACT_HEADERS (extra headers, one `Name: value` a line). schemathesis is installed with pip
# into .cache/contract-venv on first use (pinned version).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCHEMATHESIS=schemathesis==4.32.5
VENV=.cache/contract-venv
BIN=${BLOCKFILL_BIN:-target/debug/blockfill}
MAX_EXAMPLES=${CONTRACT_MAX_EXAMPLES:-25}
PG=postgres://postgres@127.0.0.1:5432
RUN_ID="contract_$$_$(date +%s)"
DATABASE="blockfill_$RUN_ID"
PREFIX="blockfill-$RUN_ID"
WORK=$(mktemp -d)

log() { echo "api-contract: $*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
started=$(date +%s.%N)

[[ -x $BIN ]] || fail "$BIN is missing: cargo build -p blockfill-orchestrator --bins"

stamp="$VENV/.installed-$SCHEMATHESIS"
if [[ ! -f $stamp ]]; then
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        log "installing python3-venv"
        as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
    fi
    log "installing $SCHEMATHESIS into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$SCHEMATHESIS"
    touch "$stamp"
fi
installed=$(date +%s.%N)

pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS \"$DATABASE\" WITH (FORCE)" >/dev/null 2>&1 ||
        log "could not drop database $DATABASE"
    redis-cli -h 127.0.0.1 -p 6379 --scan --pattern "$PREFIX*" 2>/dev/null |
        xargs -r -n 500 redis-cli -h 127.0.0.1 -p 6379 del >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { # description, command...
    local what=$1; shift
    for _ in $(seq 1 150); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    log "$what did not come up"; return 1
}

rpc_port=$(free_port)
api_port=$(free_port)
api="http://127.0.0.1:$api_port"
rpc="http://127.0.0.1:$rpc_port"

# The API is keyed from the start: an admin key, created as an operator would, goes on every
# request (a key that schemathesis itself creates through POST /v1/keys would otherwise end the
# loopback development mode half-way, and every route after it would answer only 401). No
# per-key rate limit: schemathesis sends as fast as it can, and a 429 tests nothing behind it.
token=$(RUST_LOG=warn "$BIN" keys create --database-url "$PG/$DATABASE" --redis-prefix "$PREFIX" \
    --name api-contract --role admin | sed -n 's/^token: *//p')
[[ -n $token ]] || fail "blockfill keys create printed no token"
RUST_LOG=warn "$BIN" devnet --addr "127.0.0.1:$rpc_port" --blocks 300 >"$WORK/devnet.log" 2>&1 &
pids+=($!)
RUST_LOG=warn "$BIN" serve --database-url "$PG/$DATABASE" --redis-prefix "$PREFIX" \
    --api-addr "127.0.0.1:$api_port" --rate-limit-per-key 0 >"$WORK/serve.log" 2>&1 &
pids+=($!)
headers="Authorization: Bearer $token"$'\n'"${CONTRACT_HEADERS:-}"
curl_headers=()
while IFS= read -r header; do
    [[ -n $header ]] && curl_headers+=(-H "$header")
done <<<"$headers"
wait_for "blockfill serve on $api" curl -sf "$api/readyz" || { cat "$WORK/serve.log" >&2; fail "serve"; }
wait_for "the devnet on $rpc" curl -sf -H 'content-type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "$rpc" ||
    { cat "$WORK/devnet.log" >&2; fail "devnet"; }
curl -sf "${curl_headers[@]}" -H 'content-type: application/json' \
    -d "{\"name\": \"devnet\", \"rpc_urls\": [\"$rpc\"], \"live_sync\": false}" "$api/v1/chains" >/dev/null ||
    fail "registering the devnet"
curl -sf "${curl_headers[@]}" -H 'content-type: application/json' \
    -d '{"chain": "devnet", "from": 0, "to": 199}' "$api/v1/backfills" >/dev/null ||
    fail "requesting a backfill"

st_headers=()
while IFS= read -r header; do
    [[ -n $header ]] && st_headers+=(--header "$header")
done <<<"$headers"
checks=not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance
log "schemathesis against $api/openapi.json (checks $checks, at most $MAX_EXAMPLES examples per operation)"
# No crash cache in the working tree (.schemathesis/): every run starts from the document alone.
printf '[cache]\nenabled = false\n' >"$WORK/schemathesis.toml"
status=0
# One worker: with two, hypothesis (on Python 3.11) sometimes fails with an internal "AST
# constructor recursion depth mismatch" (its lambda-source parsing is not thread-safe).
"$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" run "$api/openapi.json" \
    --checks "$checks" \
    --max-examples "$MAX_EXAMPLES" \
    --workers 1 \
    --seed 1 \
    --request-timeout 20 \
    "${st_headers[@]}" 2>&1 | tee "$WORK/run.log" || status=$?
ran=$(date +%s.%N)
# Every operation must have been tested behind the access layer, not only through its 401/403
# or 429 answers.
if grep -E -q 'Authentication failed|Rate limited' "$WORK/run.log"; then
    fail "operations were answered only 401/403 or 429: the run tested the access layer, not the API"
fi
# Self-check: the run must be able to fail. A copy of the document whose error schema requires
# a field no answer has must fail response_schema_conformance on GET /v1/chains/{name}.
curl -sf "${curl_headers[@]}" "$api/openapi.json" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
error = doc["components"]["schemas"]["ErrorBody"]
error["properties"]["self_check"] = {"type": "string"}
error["required"].append("self_check")
json.dump(doc, sys.stdout)' >"$WORK/broken.json"
if "$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" run "$WORK/broken.json" --url "$api" \
    --checks response_schema_conformance --max-examples 5 --phases examples,coverage \
    --include-path '/v1/chains/{name}' --include-method GET \
    "${st_headers[@]}" >"$WORK/self-check.log" 2>&1 ||
    ! grep -q '"self_check" is a required property' "$WORK/self-check.log"; then
    cat "$WORK/self-check.log" >&2
    fail "self-check: a document that disagrees with the answers was accepted"
fi
if grep -E -q ' ERROR |"level":"ERROR"' "$WORK/serve.log"; then
    log "the server logged errors:"; grep -E ' ERROR |"level":"ERROR"' "$WORK/serve.log" | head -20 >&2
fi
finished=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
[[ $status -eq 0 ]] || fail "schemathesis found failures (exit $status)"
log "ok: install $(elapsed "$started" "$installed")s, run $(elapsed "$installed" "$ran")s, self-check $(elapsed "$ran" "$finished")s"
