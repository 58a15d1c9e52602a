#!/usr/bin/env bash
# Installs Anvil (Foundry's local EVM node) from the npm registry into
# $REPO/.cache/anvil, where the test harness (tests/src/anvil.rs) looks for it.
# Idempotent: does nothing if the binary is already there and executable.
# The last line of output is the absolute path of the anvil binary.
#
# Override the version with ANVIL_VERSION (default 1.7.1, the one tests/src/anvil.rs documents).
set -euo pipefail

ANVIL_VERSION="${ANVIL_VERSION:-1.7.1}"
PACKAGE="@foundry-rs/anvil-linux-amd64"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${SCRIPT_DIR}/.." && pwd)"
PREFIX="${REPO}/.cache/anvil"
BIN="${PREFIX}/node_modules/${PACKAGE}/bin/anvil"

log() { echo "install-anvil: $*" >&2; }

if [[ -x "${BIN}" ]]; then
    echo "${BIN}"
    exit 0
fi

# Serialize concurrent installs (e.g. test processes started in parallel by cargo-nextest).
mkdir -p "${PREFIX}"
if command -v flock >/dev/null 2>&1; then
    exec 9>"${PREFIX}/.install.lock"
    flock 9
    if [[ -x "${BIN}" ]]; then
        echo "${BIN}"
        exit 0
    fi
fi

case "$(uname -s)/$(uname -m)" in
    Linux/x86_64) ;;
    *) log "warning: ${PACKAGE} is built for linux/x86_64, this is $(uname -s)/$(uname -m)" ;;
esac

if ! command -v npm >/dev/null 2>&1; then
    log "npm not found; installing nodejs and npm with apt-get"
    SUDO=""
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO="sudo"
        else
            log "error: npm is missing and this is not root (and there is no sudo)"
            exit 1
        fi
    fi
    ${SUDO} apt-get update >&2
    ${SUDO} env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm >&2
    if ! command -v npm >/dev/null 2>&1; then
        log "error: apt-get installed nodejs and npm but npm is still not on PATH"
        exit 1
    fi
fi

log "installing ${PACKAGE}@${ANVIL_VERSION} into ${PREFIX}"
# A package.json in the prefix keeps npm from walking up to a parent project.
if [[ ! -f "${PREFIX}/package.json" ]]; then
    echo '{ "name": "blockfill-anvil-cache", "private": true }' > "${PREFIX}/package.json"
fi
npm install --prefix "${PREFIX}" --no-audit --no-fund --no-save --loglevel=error \
    "${PACKAGE}@${ANVIL_VERSION}" >&2

if [[ ! -f "${BIN}" ]]; then
    log "error: npm finished but ${BIN} does not exist"
    exit 1
fi
# Some npm versions drop the executable bit of package files.
chmod +x "${BIN}"
"${BIN}" --version >&2 || { log "error: ${BIN} does not run"; exit 1; }
echo "${BIN}"
