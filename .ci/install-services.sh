#!/usr/bin/env bash
# Installs Debian's PostgreSQL and Redis for the production-shaped deployment of tests/integration
# (tests/integration/production.py). The test harness starts both itself, as plain processes in a
# temporary directory on 127.0.0.1 and free ports; nothing here starts or enables a system service:
# postgresql-common is told not to create its "main" cluster, and a temporary policy-rc.d keeps the
# packages' install scripts from starting their daemons.
#
# initdb and postgres refuse to run as root, and CI runs as root: the harness then runs them as the
# unprivileged "postgres" system user (via setpriv), which Debian's package creates and this script
# makes sure exists. Idempotent: does nothing when everything is already there.
set -euo pipefail

have_postgres() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
have_redis() { [ -x /usr/bin/redis-server ]; }

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi

if ! have_postgres || ! have_redis; then
    export DEBIAN_FRONTEND=noninteractive
    if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
        $sudo mkdir -p /etc/postgresql-common
        echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.conf >/dev/null
    fi
    policy_added=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod +x /usr/sbin/policy-rc.d
        policy_added=1
    fi
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends postgresql redis-server >/dev/null
    if [ -n "$policy_added" ]; then
        $sudo rm -f /usr/sbin/policy-rc.d
    fi
fi

if ! id -u postgres >/dev/null 2>&1; then
    $sudo useradd --system --user-group --no-create-home --shell /usr/sbin/nologin postgres
fi

ls -d /usr/lib/postgresql/*/bin | tail -n 1
/usr/bin/redis-server --version
