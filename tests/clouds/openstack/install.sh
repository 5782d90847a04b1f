#!/bin/sh
# Install what the OpenStack driver tests need to run a real control plane on loopback:
# Keystone, Glance, Placement and Nova (Debian 12 packages, OpenStack Zed), MariaDB and
# RabbitMQ. Idempotent; run as root. Only the python3-* library packages are installed:
# the nova-common/glance-common packages would create system users and services, so their
# paste ini files are extracted from the .deb instead.
#
# Services are NOT started here (policy-rc.d forbids it during the install); the test
# fixture starts private instances of everything on free 127.0.0.1 ports.
set -eu

INI_DIR=${VCYCLECTL_OS_INI_DIR:-/var/lib/vcyclectl-openstack-test/ini}
PACKAGES="python3-keystone python3-nova python3-glance python3-placement mariadb-server rabbitmq-server"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

if [ -n "$missing" ]; then
    apt-get update -q
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        # Keep the packages' maintainer scripts from starting system-wide MariaDB/RabbitMQ.
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

if [ ! -f "$INI_DIR/nova/api-paste.ini" ] || [ ! -f "$INI_DIR/glance/glance-api-paste.ini" ]; then
    tmp=$(mktemp -d)
    chmod 755 "$tmp"  # apt-get download drops privileges to _apt
    (cd "$tmp" && apt-get download nova-common glance-common >/dev/null 2>&1) || {
        apt-get update -q
        (cd "$tmp" && apt-get download nova-common glance-common)
    }
    for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
    mkdir -p "$INI_DIR/nova" "$INI_DIR/glance"
    cp "$tmp/root/usr/share/nova-common/api-paste.ini" "$INI_DIR/nova/api-paste.ini"
    cp "$tmp/root/usr/share/glance-common/glance-api-paste.ini" "$INI_DIR/glance/glance-api-paste.ini"
    rm -rf "$tmp"
fi
echo "OpenStack test control plane installed; paste ini files in $INI_DIR"
