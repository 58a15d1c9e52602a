#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432, user postgres, trust auth on loopback) and Redis
# (127.0.0.1:6379) are running. Starts them when they are installed but stopped, installs them
# with apt-get when missing. Idempotent; safe to run before every test run or demo.
set -euo pipefail

log() { echo "services: $*" >&2; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_install() {
    if [[ $apt_updated -eq 0 ]]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

wait_for() { # description, command...
    local what=$1; shift
    for _ in $(seq 1 100); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    log "$what did not come up"; return 1
}

redis_up() { [[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" == "PONG" ]]; }

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    log "installing Redis"
    apt_install redis-server
fi
if ! redis_up; then
    log "starting Redis on 127.0.0.1:6379"
    as_root mkdir -p /var/log/redis /var/lib/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/blockfill.log
    wait_for "Redis" redis_up
fi

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
pg_login() { psql "postgres://postgres@127.0.0.1:5432/postgres" -tAc 'SELECT 1' ; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
    log "installing PostgreSQL"
    apt_install postgresql postgresql-client
fi
if ! pg_up; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    log "starting PostgreSQL $version on 127.0.0.1:5432"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_for "PostgreSQL" pg_up
fi
if ! pg_login >/dev/null 2>&1; then
    # A fresh Debian cluster asks for passwords on TCP: trust loopback, as tests and the demo expect.
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    log "allowing trust auth on loopback in $hba"
    as_root sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
    as_root sed -i -E 's/^(local\s+all\s+(postgres|all)\s+)\S+/\1trust/' "$hba"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    wait_for "PostgreSQL login as postgres" pg_login
fi
log "PostgreSQL and Redis are up"
