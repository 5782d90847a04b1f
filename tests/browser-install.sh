#!/bin/sh
# Debian's Chromium for tests/e2e/test_statuspage_browser.py (the status page rendered
# headless, screenshotted and checked); fonts-dejavu-core so text has a font. Idempotent.
set -eu
PACKAGES="chromium fonts-dejavu-core"
missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "tests/browser-install.sh: all present: $PACKAGES" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing
