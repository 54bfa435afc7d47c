#!/usr/bin/env bash
# Set up and run the whole test suite on a fresh Debian machine with Python 3.11.
# Installs redis-server (Debian package) when missing, makes .venv, installs
# fixguard with its test extra, then runs ruff, mypy --strict and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "redis-server missing: installing the Debian package" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
        echo "redis-server is required by the tests: install it (Debian: apt-get install redis-server)" >&2
        exit 2
    fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check .
.venv/bin/mypy --strict fixguard
exec .venv/bin/python -m pytest "$@"
