#!/usr/bin/env bash
# Installs what the dashboard's browser test needs: Debian's Chromium (apt-get, if
# /usr/bin/chromium is missing) and the npm package playwright-core (no browser download) into
# $REPO/.cache/browser. Idempotent. Run after scripts/install-anvil.sh (which brings npm).
# The last line of output is the absolute path of the playwright-core package directory.
#
# Override the version with PLAYWRIGHT_CORE_VERSION (default 1.65.1).
set -euo pipefail

VERSION="${PLAYWRIGHT_CORE_VERSION:-1.65.1}"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${SCRIPT_DIR}/.." && pwd)"
PREFIX="${REPO}/.cache/browser"
PACKAGE_DIR="${PREFIX}/node_modules/playwright-core"

log() { echo "install-browser: $*" >&2; }

SUDO=""
if [[ "$(id -u)" -ne 0 ]] && command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
fi

if [[ ! -x /usr/bin/chromium ]]; then
    log "installing chromium with apt-get"
    ${SUDO} apt-get update >&2
    ${SUDO} env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >&2
fi
/usr/bin/chromium --version >&2 || { log "error: /usr/bin/chromium does not run"; exit 1; }

mkdir -p "${PREFIX}"
if command -v flock >/dev/null 2>&1; then
    exec 9>"${PREFIX}/.install.lock"
    flock 9
fi
installed="$(node -p "require('${PACKAGE_DIR}/package.json').version" 2>/dev/null || true)"
if [[ "${installed}" != "${VERSION}" ]]; then
    log "installing playwright-core@${VERSION} into ${PREFIX}"
    # A package.json in the prefix keeps npm from walking up to a parent project.
    if [[ ! -f "${PREFIX}/package.json" ]]; then
        echo '{ "name": "blockfill-browser-cache", "private": true }' > "${PREFIX}/package.json"
    fi
    npm install --prefix "${PREFIX}" --no-audit --no-fund --no-save --loglevel=error \
        "playwright-core@${VERSION}" >&2
fi
[[ -f "${PACKAGE_DIR}/package.json" ]] || { log "error: npm finished but ${PACKAGE_DIR} does not exist"; exit 1; }
echo "${PACKAGE_DIR}"
