#!/bin/sh
# vcyclectl-agent for the squid machinetype: a CVMFS and Frontier HTTP proxy for the other
# machinetypes of a space (their cvmfs_proxy option points at it).
#
# Squid here is Debian's, set up the way CVMFS/Frontier proxies are run at WLCG sites:
# large objects, a memory cache for the small catalog files, only the site's networks
# allowed in. It does not look for work, so it never ends for idleness: it serves until
# MJF shutdowntime (100), or ends with 500 when squid cannot run on this VM.
set -u
: "${VM_LIB:=/usr/local/lib/vcyclectl-vm}"
: "${VM_ETC:=/etc/vcyclectl-vm}"
: "${SQUID_CONF:=/etc/squid/squid.conf}"
: "${POLL_SECONDS:=60}"
: "${SHUTDOWN_GRACE_SECONDS:=120}"
# shellcheck source=/dev/null
. "$VM_LIB/feedback.sh"
# shellcheck source=/dev/null
. "$VM_ETC/agent.env"   # ALLOWED_NETWORKS CACHE_MB MEMORY_MB

vm_start_heartbeats
command -v squid >/dev/null || vm_finish 500 "$MSG_500 (squid missing from the image)"
{
    echo "# Written by vcyclectl-agent."
    for network in $ALLOWED_NETWORKS; do
        echo "acl site_networks src $network"
    done
    cat <<CONF
http_access allow site_networks
http_access deny all
http_port 3128
cache_mem ${MEMORY_MB} MB
maximum_object_size_in_memory 128 KB
maximum_object_size 1024 MB
cache_dir ufs /var/spool/squid ${CACHE_MB} 16 256
collapsed_forwarding on
minimum_expiry_time 0
CONF
} > "$SQUID_CONF"
squid -k parse -f "$SQUID_CONF" >/dev/null 2>&1 || vm_finish 500 "$MSG_500 (squid.conf rejected)"
squid -z -f "$SQUID_CONF" >/dev/null 2>&1
systemctl restart squid || vm_finish 500 "$MSG_500 (squid did not start)"

while :; do
    sleep "$POLL_SECONDS"
    if [ "$(vm_seconds_left)" -lt "$SHUTDOWN_GRACE_SECONDS" ]; then
        systemctl stop squid
        vm_finish 100 "$MSG_100 (MJF shutdowntime)"
    fi
    systemctl is-active --quiet squid || vm_finish 500 "$MSG_500 (squid stopped)"
done
