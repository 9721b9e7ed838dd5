#!/bin/sh
# Creates .venv with pip on a fresh machine and installs the project with pinned dependencies.
# Debian's python3 may lack ensurepip (package python3-venv); then pip itself is fetched from PyPI.
set -eu
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
STAMP="$VENV/.installed"

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        echo "bootstrap: '$PYTHON -m venv' failed (no ensurepip); creating the venv without pip and fetching pip" >&2
        rm -rf "$VENV"
        "$PYTHON" -m venv --without-pip "$VENV"
        "$VENV/bin/python" scripts/fetch_pip.py
    fi
fi
if [ ! -x "$VENV/bin/pip" ]; then
    "$VENV/bin/python" scripts/fetch_pip.py
fi

# Reinstall only when the pins changed: keeps `make test` fast on a warm checkout.
want=$(cat pyproject.toml constraints.txt | cksum)
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
    echo "bootstrap: installing pinned dependencies into $VENV" >&2
    log="$VENV/install.log"
    # pip's own output only when it fails: machine-wide index settings make it noisy otherwise.
    if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade "pip==25.3" &&
           "$VENV/bin/python" -m pip install --disable-pip-version-check -c constraints.txt -e ".[dev]"; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "bootstrap: pip install failed (log above, kept in $log)" >&2
        exit 1
    fi
    echo "$want" > "$STAMP"
fi
