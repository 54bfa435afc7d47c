#!/usr/bin/env bash
# Set up and run the whole test suite on a fresh Debian machine with Python 3.11.
# Installs the Debian packages the tests need when missing (redis-server for the
# Redis tests, redis-tools' redis-cli to create the tests' Redis Cluster — Sentinels are
# redis-server --sentinel —, chromium and chromium-driver for the browser tests), makes .venv, installs fixguard
# with its test and dev extras, then runs ruff, mypy --strict and pytest.
# Then the lowest-versions step: a second venv, .venv-lowest, gets every
# dependency at exactly the floor setup.cfg declares (scripts/lowest.py) and
# runs pytest again, so no floor is declared that was not tested.
# FIXGUARD_SKIP_LOWEST=1 skips that step (a quick local run; CI never sets it).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# the browser tests speak DevTools to chromium directly; chromedriver comes along for
# anyone who drives the same browser through WebDriver
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "${missing[*]} missing: installing the Debian packages" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "the tests need ${missing[*]}: install them (Debian: apt-get install ${missing[*]})" >&2
        exit 2
    fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,dev]'

.venv/bin/ruff check .
.venv/bin/mypy --strict fixguard
.venv/bin/python -m pytest "$@"

if [ "${FIXGUARD_SKIP_LOWEST:-0}" = 1 ]; then
    exit 0
fi
echo "== lowest versions: the suite again with every dependency at its declared floor" >&2
if [ ! -x .venv-lowest/bin/python ]; then
    "$PY" -m venv .venv-lowest
fi
"$PY" scripts/lowest.py > .venv-lowest/constraints.txt
.venv-lowest/bin/python -m pip install -q --disable-pip-version-check \
    -c .venv-lowest/constraints.txt -e '.[test]'
FIXGUARD_LOWEST="$PWD/.venv-lowest/constraints.txt" exec .venv-lowest/bin/python -m pytest "$@"
