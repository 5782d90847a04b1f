#!/bin/sh
# vcyclectl-agent for a GlideinWMS VM (DUNE): runs one glidein, the pilot of a GlideinWMS
# pool, with the arguments the community's factory operators give the site.
#
# The glidein authenticates to DUNE's pool with an IDTOKEN; it starts an HTCondor startd
# that pulls jobs and exits by itself after GLIDEIN_Max_Idle seconds without one, or when
# its time runs out. That exit is the VM's end: 300 when it left cleanly (the queue had
# nothing more), 600 when glidein_startup.sh failed (the pilot, not the site), 500 when
# the VM lacks what a glidein needs. MJF shutdowntime caps the glidein's lifetime.
set -u
: "${VM_LIB:=/usr/local/lib/vcyclectl-vm}"
: "${VM_ETC:=/etc/vcyclectl-vm}"
: "${GLIDEIN_DIR:=/scratch/glidein}"
: "${GLIDEIN_USER:=glidein}"
# shellcheck source=/dev/null
. "$VM_LIB/feedback.sh"
# shellcheck source=/dev/null
. "$VM_ETC/agent.env"   # GLIDEIN_STARTUP_URL GLIDEIN_ARGUMENTS IDLE_SECONDS CVMFS_PROXY

vm_start_heartbeats
if [ -n "${CVMFS_PROXY:-}" ] && [ -d /etc/cvmfs ]; then
    printf 'CVMFS_HTTP_PROXY="%s"\n' "$CVMFS_PROXY" > /etc/cvmfs/default.local
    cvmfs_config reload >/dev/null 2>&1 || true
fi
id "$GLIDEIN_USER" >/dev/null 2>&1 ||
    useradd --create-home --home-dir "$GLIDEIN_DIR" "$GLIDEIN_USER" ||
    vm_finish 500 "$MSG_500 (cannot create the glidein user)"
mkdir -p "$GLIDEIN_DIR/tokens"
install -m 0600 -o "$GLIDEIN_USER" "$VM_ETC/dune.idtoken" "$GLIDEIN_DIR/tokens/dune.idtoken"
cd "$GLIDEIN_DIR" || vm_finish 500 "$MSG_500 (no glidein folder)"
curl -fsS --retry 3 --max-time 120 -o glidein_startup.sh "$GLIDEIN_STARTUP_URL" ||
    vm_finish 600 "$MSG_600 (cannot fetch glidein_startup.sh)"
chmod 0755 glidein_startup.sh
chown -R "$GLIDEIN_USER" "$GLIDEIN_DIR"

left=$(vm_seconds_left)
lifetime=$((left - 300))
[ "$lifetime" -gt 600 ] || vm_finish 100 "$MSG_100 (too little time left for a glidein)"

# GLIDEIN_ARGUMENTS comes from the factory (-v, -name, -entry, -web, -sign ...): split on
# purpose. The idle and lifetime limits are ours, from the site's options and MJF.
# shellcheck disable=SC2086
runuser -u "$GLIDEIN_USER" -- env \
    MACHINEFEATURES="$MACHINEFEATURES" JOBFEATURES="$JOBFEATURES" \
    IDTOKENS_FILE="$GLIDEIN_DIR/tokens/dune.idtoken" \
    ./glidein_startup.sh $GLIDEIN_ARGUMENTS \
        -param_GLIDEIN_Max_Idle "$IDLE_SECONDS" \
        -param_GLIDEIN_Max_Walltime "$lifetime" \
        -dir "$GLIDEIN_DIR" > "$GLIDEIN_DIR/glidein.log" 2>&1
status=$?
tail -c 1000000 "$GLIDEIN_DIR/glidein.log" | vm_put glidein.log || true
if [ "$status" -eq 0 ]; then
    vm_finish 300 "$MSG_300"
fi
vm_finish 600 "$MSG_600 (glidein_startup.sh exited with $status)"
