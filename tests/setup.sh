#!/usr/bin/env bash
# Everything the test suite needs on a fresh Debian 12 machine, idempotent:
# the system services the cloud tests start on loopback (OpenStack control plane, MariaDB,
# RabbitMQ; cloud-init and shellcheck for the VM definitions; Chromium for the status page
# test; rpm for the RPM build test) and a virtualenv in .venv
# with vcyclectl and its test extras. Needs root for apt (CI and the dev machines are root).
set -euo pipefail
cd "$(dirname "$0")/.."

for script in tests/clouds/openstack/install.sh tests/examples/install.sh tests/browser-install.sh \
              tests/packaging/install.sh; do
    if [ -f "$script" ]; then
        bash "$script"
    fi
done

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
