#!/bin/sh
# The report test opens the HTML report in a real headless browser: Debian's Chromium.
# Installs it when missing (root with apt-get); otherwise says what to install and fails.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "ensure-chromium: /usr/bin/chromium is missing; install Debian's 'chromium' package (as root)" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: /usr/bin/chromium is missing and apt-get is not available; install Chromium" >&2
    exit 1
fi
echo "ensure-chromium: installing Debian's chromium for the report test" >&2
log=$(mktemp)
if ! { $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "ensure-chromium: apt-get install chromium failed (log above)" >&2
    exit 1
fi
rm -f "$log"
