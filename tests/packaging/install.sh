#!/bin/sh
# Debian's rpm (rpmbuild, rpm -qlp) for tests/packaging/test_rpm.py, which builds the EL9 RPM
# from packaging/rpm/vcyclectl.spec and checks its file list; systemd-analyze (the systemd
# package, always on Debian 12) for tests/e2e/test_units.py. Idempotent.
set -eu
PACKAGES="rpm systemd"
missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "tests/packaging/install.sh: all present: $PACKAGES" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing
