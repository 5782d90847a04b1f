#!/bin/sh
# Debian's rpm (rpmbuild, rpm -qlp) for tests/packaging/test_rpm.py, which builds the EL9 RPM
# from packaging/rpm/vcyclectl.spec and checks its file list; systemd-analyze (the systemd
# package, always on Debian 12) for tests/e2e/test_units.py. Idempotent.
set -eu
exec sh "$(dirname "$0")/../debian-install.sh" tests/packaging/install.sh rpm systemd
